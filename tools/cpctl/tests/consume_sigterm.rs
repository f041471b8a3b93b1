//! `cpctl consume` (the local poller) as a process: on SIGTERM it finishes the
//! batch in flight, commits, and exits 0; a restart resumes after what was
//! committed. Real Kafka and Postgres, topics and database of the test's own.
#![allow(clippy::unwrap_used)] // tests panic on failure by design

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use domain::{CoinId, Tick};
use secrecy::ExposeSecret;
use stream::Publisher;
use testkit::{TestDb, TestTopic};

fn ticks(from: u64, to: u64) -> Vec<Tick> {
    testkit::ticks(&[CoinId::parse("bitcoin").unwrap()], from..to)
}

fn consume(db: &TestDb, topic: &str, dlq: &str, group: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_cpctl"))
        .arg("consume")
        .env("DATABASE_URL", db.url.expose_secret())
        .env("KAFKA_TOPIC", topic)
        .env("KAFKA_DLQ_TOPIC", dlq)
        .env("KAFKA_CONSUMER_GROUP", group)
        .env("CONSUMER_MAX_WAIT_MS", "200")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn terminate(mut child: Child) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    for _ in 0..300 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    panic!("cpctl consume did not stop within 30 s of SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_poller_cleanly_and_a_restart_resumes() {
    let db = TestDb::new().await;
    let kafka: stream::KafkaConfig = testkit::config();
    let (topic, dlq) = (TestTopic::create(&kafka, 3).await, TestTopic::create(&kafka, 1).await);
    let group = format!("sigterm-{}", uuid::Uuid::new_v4().simple());
    let publisher = Publisher::connect_to(&kafka, topic.name()).await.unwrap();

    publisher.publish(ticks(0, 500)).await.unwrap();
    let first = consume(&db, topic.name(), dlq.name(), &group);
    db.wait_for_count("price_ticks", 500, Duration::from_secs(60)).await;
    let status = terminate(first);
    assert!(status.success(), "exit status on SIGTERM: {status}");

    // What the first process stored it also committed: the second one gets only new ticks.
    publisher.publish(ticks(500, 600)).await.unwrap();
    let second = consume(&db, topic.name(), dlq.name(), &group);
    db.wait_for_count("price_ticks", 600, Duration::from_secs(60)).await;
    assert!(terminate(second).success());

    assert_eq!(db.count("price_ticks").await, 600);
    let batches = db
        .client()
        .await
        .query_one(
            "SELECT coalesce(sum(rows_in), 0)::int8 FROM pipeline_runs WHERE function = 'consumer'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        batches.get::<_, i64>(0),
        600,
        "no record was handled twice: offsets were committed before exit"
    );
}
