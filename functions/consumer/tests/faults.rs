//! Faults on the real services, with exact counts, on durable settings
//! (`synchronous_commit=on`, `fsync=on`: see `the_database_commits_durably`).
//! Each test streams a known set of ticks (distinct ones, redeliveries of
//! some, poison records) while a service fails, and ends with: stored =
//! distinct published, none doubled, dead letters = poison sent.
//!
//! These tests crash the local stack's own services (`scripts/stack.sh kill`),
//! so they live in a test binary of their own (cargo runs test binaries one
//! after another), run one at a time, and bring the services back
//! (`scripts/stack.sh up`) even when they fail. The consumer killed between
//! the database commit and the offset commit is in `streaming.rs`.
#![allow(clippy::unwrap_used)] // tests panic on failure by design

use std::time::Duration;

use consumer::poller::PollerStats;
use domain::{CoinId, Tick};
use testkit::TestDb;

mod common;

use common::*;

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Brings the stack's services back when the test ends, however it ends.
struct Revive;

impl Drop for Revive {
    fn drop(&mut self) {
        match stack(&["up"]) {
            Ok(status) if status.success() => {}
            other => eprintln!("scripts/stack.sh up after a fault test: {other:?}"),
        }
    }
}

const POISON: [&[u8]; 2] = [b"not json at all", br#"{"v":1,"coin":"bitcoin","price":5}"#];

/// Distinct ticks in the set (its redeliveries are on top).
const DISTINCT: usize = 20_000;

/// The known set, published at a steady pace so the fault lands mid-stream:
/// the poison first, then the distinct ticks in chunks, then a tenth of them again.
fn stream_known_set(topics: &Topics) -> tokio::task::JoinHandle<()> {
    let ticks: Vec<Tick> = simulated(&CoinId::defaults(), (DISTINCT / 5) as u64);
    assert_eq!(ticks.len(), DISTINCT);
    let kafka = topics.kafka.clone();
    tokio::spawn(async move {
        let publisher = stream::Publisher::connect(&kafka).await.unwrap();
        for p in POISON {
            publisher.publish_raw(Some(b"bitcoin"), p, None).await.unwrap();
        }
        for chunk in ticks.chunks(200).chain(ticks[..DISTINCT / 10].chunks(200)) {
            // Through a broker restart too: librdkafka retries until the
            // broker is back (message.timeout.ms 120 s), idempotently.
            if let Err(e) = publisher.publish(chunk).await {
                panic!("publishing failed: {e}: {:?}", std::error::Error::source(&e));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    })
}

async fn assert_exact(db: &TestDb, topics: &Topics, stored_by_poller: u64) {
    assert_eq!(db.count("price_ticks").await, DISTINCT as i64, "stored = distinct published");
    let client = db.client().await;
    let row = client
        .query_one("SELECT count(*) - count(DISTINCT (coin_id, event_time, source)) FROM price_ticks", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 0, "no tick doubled");
    assert_eq!(stored_by_poller, DISTINCT as u64, "rows inserted, summed over every batch, retries included");
    assert_eq!(topics.dead_letters_written(), POISON.len() as i64, "dead letters = poison sent");
}

/// Kills `service` with SIGKILL once `n` ticks are stored, then starts it again.
async fn crash_when_stored(db: &TestDb, n: i64, service: &str) {
    db.wait_for_count("price_ticks", n, WAIT).await;
    let start = std::time::Instant::now();
    assert!(stack(&["kill", service]).unwrap().success(), "scripts/stack.sh kill {service}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(stack(&["up"]).unwrap().success(), "scripts/stack.sh up after killing {service}");
    eprintln!("{service}: killed and up again in {:.1} s", start.elapsed().as_secs_f64());
}

/// Streams the known set through the poller and the consumer function while
/// `service` is SIGKILLed (once 4,000 ticks are stored) and started again,
/// then checks the counts exactly. Returns the poller's figures.
async fn stream_through_a_crash_of(service: &str) -> PollerStats {
    let _alone = ONE_AT_A_TIME.lock().await;
    let _revive = Revive;
    let (db, topics) = (TestDb::new().await, Topics::new().await);
    let (token, task) =
        spawn_poller(topics.poller(&group()), topics.consumer(db.store.clone(), &CoinId::defaults()).await);
    let publishing = stream_known_set(&topics);

    crash_when_stored(&db, 4_000, service).await;
    // The producer recovers: every send of the set is acknowledged.
    publishing.await.unwrap();
    // And the poller: it reads on past the crash.
    db.wait_for_count("price_ticks", DISTINCT as i64, WAIT).await;
    let stats = stop(token, task).await;
    assert_exact(&db, &topics, stats.stored).await;
    stats
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_mid_batch_loses_and_doubles_nothing() {
    let stats = stream_through_a_crash_of("postgres").await;
    assert!(stats.failed_attempts > 0, "batches failed while Postgres was down: {stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_restarted_mid_stream_loses_and_doubles_nothing() {
    stream_through_a_crash_of("kafka").await;
}
