//! The streaming path on the real local Kafka and Postgres: ticks published to
//! a topic of the test's own, the poller handing batches to the consumer
//! function, rows and dead letters checked exactly.
#![allow(clippy::unwrap_used)] // tests panic on failure by design

use std::borrow::Borrow;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use consumer::Consumer;
use consumer::poller::{Poller, PollerConfig, PollerStats};
use domain::{CoinId, Tick};
use rdkafka::Message;
use rdkafka::consumer::Consumer as _;
use rdkafka::message::Headers;
use storage::PgStore;
use stream::{KafkaConfig, Publisher};
use testkit::{TcpGate, TestDb, TestTopic};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(120);

/// A prices topic and a dead-letter topic of the test's own.
struct Topics {
    kafka: KafkaConfig,
    prices: TestTopic,
    dlq: TestTopic,
    /// Dead letters read that carried the original record's `trace-id` header.
    traced: std::sync::atomic::AtomicUsize,
}

impl Topics {
    async fn new() -> Self {
        let mut kafka: KafkaConfig = testkit::config();
        let prices = TestTopic::create(&kafka.brokers, 6).await;
        let dlq = TestTopic::create(&kafka.brokers, 1).await;
        kafka.topic = prices.name().to_owned();
        kafka.dlq_topic = dlq.name().to_owned();
        Self { kafka, prices, dlq, traced: Default::default() }
    }

    fn publisher(&self) -> Publisher {
        Publisher::to_topic(&self.kafka, self.prices.name()).unwrap()
    }

    fn consumer(&self, store: PgStore, coins: &[CoinId]) -> Consumer<PgStore, Publisher> {
        Consumer {
            store,
            dead_letters: Publisher::to_topic(&self.kafka, self.dlq.name()).unwrap(),
            coins: coins.iter().cloned().collect(),
        }
    }

    fn poller(&self, group: &str) -> Poller {
        let config = PollerConfig {
            max_records: 500,
            max_wait: Duration::from_millis(200),
            retry_base: Duration::from_millis(100),
            retry_max: Duration::from_secs(1),
        };
        Poller::new(&self.kafka, group, self.prices.name(), config).unwrap()
    }

    /// Every record of the dead-letter topic: (value, reason, source offset).
    async fn dead_letters(&self, expected: usize) -> Vec<(Vec<u8>, String, i64)> {
        let consumer =
            stream::consumer(&self.kafka, &format!("dlq-reader-{}", uuid::Uuid::new_v4())).unwrap();
        consumer.subscribe(&[self.dlq.name()]).unwrap();
        let mut out = Vec::new();
        while out.len() < expected {
            let m = tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await.unwrap().unwrap();
            let header = |name: &str| {
                m.headers()
                    .and_then(|h| h.iter().find(|x| x.key == name).and_then(|x| x.value))
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_default()
            };
            assert_eq!(header("dlq.source.topic"), self.prices.name());
            if let Some(h) = m.headers() {
                // The record's own headers come first, then the dead letter's.
                let keys: Vec<&str> = h.iter().map(|x| x.key).collect();
                if keys.contains(&"trace-id") {
                    assert_eq!(keys.first(), Some(&"trace-id"), "{keys:?}");
                    assert_eq!(header("trace-id"), "t-42");
                    self.traced.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
            out.push((
                m.payload().unwrap_or_default().to_vec(),
                header("dlq.reason"),
                header("dlq.source.offset").parse().unwrap(),
            ));
        }
        out
    }
}

fn group() -> String {
    format!("test-group-{}", uuid::Uuid::new_v4().simple())
}

/// Runs a poller (owned or shared) in the background until the returned token is cancelled.
fn spawn_poller(
    poller: impl Borrow<Poller> + Send + 'static,
    consumer: Consumer<PgStore, Publisher>,
) -> (CancellationToken, JoinHandle<PollerStats>) {
    let token = CancellationToken::new();
    let stop = token.clone();
    let task = tokio::spawn(async move { poller.borrow().run(&consumer, stop).await });
    (token, task)
}

async fn stop(token: CancellationToken, task: JoinHandle<PollerStats>) -> PollerStats {
    token.cancel();
    tokio::time::timeout(Duration::from_secs(30), task).await.expect("poller stops on request").unwrap()
}

fn simulated(coins: &[CoinId], per_coin: u64) -> Vec<Tick> {
    testkit::ticks(coins, 0..per_coin)
}

/// The consumer commits offsets once Postgres says "committed": that promise
/// holds only if the commit survives a crash, so the stack the tests run on
/// must commit durably, as RDS does.
#[tokio::test]
async fn the_database_commits_durably() {
    let db = TestDb::new().await;
    let client = db.client().await;
    for setting in ["synchronous_commit", "fsync"] {
        let row = client.query_one(&format!("SHOW {setting}"), &[]).await.unwrap();
        assert_eq!(row.get::<_, String>(0), "on", "{setting} must be on");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_coin_lands_exactly_once_with_its_prices() {
    let (db, topics) = (TestDb::new().await, Topics::new().await);
    let path = testkit::candle_file("BTCUSDT_1h.csv");
    let coin = stream::replay::coin_of_file(&path).unwrap();
    let candles = stream::replay::read_candles(&path, &coin).unwrap();
    assert_eq!(candles.len(), 31_973);

    topics.publisher().publish(&candles).await.unwrap();
    let (token, task) = spawn_poller(topics.poller(&group()), topics.consumer(db.store.clone(), &[coin]));
    db.wait_for_count("price_ticks", 31_973, WAIT).await;
    let stats = stop(token, task).await;

    assert_eq!(db.count("price_ticks").await, 31_973);
    assert_eq!(stats.stored, 31_973);
    let rows = db
        .client()
        .await
        .query("SELECT event_time, price, volume FROM price_ticks ORDER BY event_time", &[])
        .await
        .unwrap();
    for (row, candle) in rows.iter().zip(&candles) {
        assert_eq!(row.get::<_, DateTime<Utc>>(0), candle.event_time);
        assert_eq!(row.get::<_, f64>(1), candle.price);
        assert_eq!(row.get::<_, Option<f64>>(2), candle.volume);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_batch_handled_twice_adds_no_rows() {
    let (db, topics) = (TestDb::new().await, Topics::new().await);
    let coins = CoinId::defaults();
    topics.publisher().publish(simulated(&coins, 20)).await.unwrap();
    let poller = topics.poller(&group());
    let consumer = topics.consumer(db.store.clone(), &coins);
    let never = CancellationToken::new();
    let mut batch = Vec::new();
    while batch.len() < 100 {
        batch.extend(poller.next_batch(&never).await);
    }
    let event = poller.event(&batch);

    let first = consumer.handle_batch(&event).await.unwrap();
    let second = consumer.handle_batch(&event).await.unwrap();

    assert_eq!((first.stored, second.stored, second.duplicates), (100, 0, 100));
    assert_eq!(db.count("price_ticks").await, 100);
    assert_eq!(db.count("pipeline_runs").await, 2, "each batch is recorded as a consumer run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_db_commit_and_offset_commit_loses_and_doubles_nothing() {
    let (db, topics) = (TestDb::new().await, Topics::new().await);
    let coins = CoinId::defaults();
    topics.publisher().publish(simulated(&coins, 200)).await.unwrap();
    let group = group();

    // First life: one batch stored, then the process "dies" before committing.
    let first_stored = {
        let poller = topics.poller(&group);
        let batch = poller.next_batch(&CancellationToken::new()).await;
        let report =
            topics.consumer(db.store.clone(), &coins).handle_batch(&poller.event(&batch)).await.unwrap();
        assert!(report.stored > 0);
        report.stored
    }; // dropped without commit

    // Second life: everything is delivered again, the stored part is absorbed.
    let (token, task) = spawn_poller(topics.poller(&group), topics.consumer(db.store.clone(), &coins));
    db.wait_for_count("price_ticks", 1000, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stats = stop(token, task).await;

    assert_eq!(db.count("price_ticks").await, 1000);
    assert_eq!(stats.records, 1000, "nothing was committed, so every record came back");
    assert_eq!(stats.stored, 1000 - first_stored, "the redelivered part was absorbed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_records_go_to_the_dead_letter_topic_and_the_consumer_keeps_going() {
    let (db, topics) = (TestDb::new().await, Topics::new().await);
    let coins = CoinId::defaults();
    let publisher = topics.publisher();
    let poison: Vec<&[u8]> = vec![
        b"definitely not json",
        br#"{"v":1,"coin":"dogecoin","event_time":"2026-01-01T00:00:00Z","price":1,"interval_secs":5,"source":"simulated","seq":0}"#,
        br#"{"v":1,"coin":"bitcoin","event_time":"2026-01-01T00:00:00Z","price":-5,"interval_secs":5,"source":"simulated","seq":0}"#,
        br#"{"v":1,"coin":"bitcoin","price":5}"#,
    ];
    let ticks = simulated(&coins, 10);
    publisher.publish(&ticks[..25]).await.unwrap();
    for p in &poison {
        // A tracing header, as producers add: the dead letter must keep it.
        let headers = rdkafka::message::OwnedHeaders::new()
            .insert(rdkafka::message::Header { key: "trace-id", value: Some(&b"t-42"[..]) });
        publisher.publish_raw(Some(b"bitcoin"), p, Some(headers)).await.unwrap();
    }
    publisher.publish(&ticks[25..]).await.unwrap();

    let (token, task) = spawn_poller(topics.poller(&group()), topics.consumer(db.store.clone(), &coins));
    db.wait_for_count("price_ticks", 50, WAIT).await;
    // Still consuming after the poison.
    publisher.publish(&simulated(&coins[..1], 12)[10..]).await.unwrap();
    db.wait_for_count("price_ticks", 52, WAIT).await;
    let stats = stop(token, task).await;

    assert_eq!(db.count("price_ticks").await, 52);
    assert_eq!(stats.dead_lettered, 4);
    let letters = topics.dead_letters(4).await;
    let values: HashSet<Vec<u8>> = letters.iter().map(|(v, _, _)| v.clone()).collect();
    assert_eq!(values, poison.iter().map(|p| p.to_vec()).collect(), "original bytes kept");
    let reasons: Vec<&str> = letters.iter().map(|(_, r, _)| r.as_str()).collect();
    for want in ["not JSON", "unknown coin \"dogecoin\"", "price -5", "missing field"] {
        assert!(reasons.iter().any(|r| r.contains(want)), "{want} in {reasons:?}");
    }
    assert_eq!(
        topics.traced.load(std::sync::atomic::Ordering::Relaxed),
        4,
        "every dead letter kept its headers"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_going_away_mid_stream_loses_nothing() {
    let (db, topics) = (TestDb::new().await, Topics::new().await);
    let coins = CoinId::defaults();
    let gate = TcpGate::new(db.socket_addr()).await;
    let store = PgStore::connect(&db.config_via_port(gate.port())).await.unwrap();
    let publisher = topics.publisher();
    let (token, task) = spawn_poller(topics.poller(&group()), topics.consumer(store, &coins));

    let ticks = simulated(&coins, 120);
    publisher.publish(&ticks[..200]).await.unwrap();
    db.wait_for_count("price_ticks", 200, WAIT).await;

    gate.cut(); // Postgres unreachable: connections die, new ones are refused
    publisher.publish(&ticks[200..400]).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(db.count("price_ticks").await, 200, "nothing written while away");

    gate.restore();
    publisher.publish(&ticks[400..]).await.unwrap();
    db.wait_for_count("price_ticks", 600, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stats = stop(token, task).await;

    assert_eq!(db.count("price_ticks").await, 600);
    assert!(stats.failed_attempts > 0, "batches failed while Postgres was away: {stats:?}");
    assert_eq!(stats.stored, 600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pollers_in_one_group_split_the_partitions_and_store_every_tick_once() {
    let (db, topics) = (TestDb::new().await, Topics::new().await);
    // Twenty keys spread over the six partitions.
    let coins: Vec<CoinId> = (0..20).map(|i| CoinId::parse(&format!("coin-{i:02}")).unwrap()).collect();
    let group = group();
    let (a, b) = (Arc::new(topics.poller(&group)), Arc::new(topics.poller(&group)));
    let (ta, ja) = spawn_poller(a.clone(), topics.consumer(db.store.clone(), &coins));
    let (tb, jb) = spawn_poller(b.clone(), topics.consumer(db.store.clone(), &coins));
    // Publish once both members own partitions, so the split is real.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while a.assigned_partitions() + b.assigned_partitions() < 6
        || a.assigned_partitions() == 0
        || b.assigned_partitions() == 0
    {
        assert!(tokio::time::Instant::now() < deadline, "group did not settle");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    topics.publisher().publish(simulated(&coins, 100)).await.unwrap();
    db.wait_for_count("price_ticks", 2000, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (sa, sb) = (stop(ta, ja).await, stop(tb, jb).await);

    assert_eq!(db.count("price_ticks").await, 2000);
    assert!(sa.records > 0 && sb.records > 0, "both pollers worked: {sa:?} {sb:?}");
    assert_eq!(sa.stored + sb.stored, 2000);
}
