//! What the streaming tests share: topics of a test's own, a poller run in
//! the background, simulated ticks.
#![allow(dead_code)] // each test binary uses its part

use std::borrow::Borrow;
use std::time::Duration;

use consumer::Consumer;
use consumer::poller::{Poller, PollerConfig, PollerStats};
use domain::{CoinId, Tick};
use rdkafka::Message;
use rdkafka::consumer::Consumer as _;
use rdkafka::message::Headers;
use storage::PgStore;
use stream::{KafkaConfig, Publisher};
use testkit::TestTopic;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const WAIT: Duration = Duration::from_secs(120);

/// A prices topic and a dead-letter topic of the test's own.
pub struct Topics {
    pub kafka: KafkaConfig,
    pub prices: TestTopic,
    pub dlq: TestTopic,
    /// Dead letters read that carried the original record's `trace-id` header.
    pub traced: std::sync::atomic::AtomicUsize,
}

impl Topics {
    pub async fn new() -> Self {
        Self::on(testkit::config()).await
    }

    /// On the broker's SASL_SSL listener, as the SCRAM user.
    pub async fn secured() -> Self {
        Self::on(testkit::secured_kafka()).await
    }

    pub async fn on(mut kafka: KafkaConfig) -> Self {
        let prices = TestTopic::create(&kafka, 6).await;
        let dlq = TestTopic::create(&kafka, 1).await;
        kafka.topic = prices.name().to_owned();
        kafka.dlq_topic = dlq.name().to_owned();
        Self { kafka, prices, dlq, traced: Default::default() }
    }

    pub async fn publisher(&self) -> Publisher {
        Publisher::connect_to(&self.kafka, self.prices.name()).await.unwrap()
    }

    pub async fn consumer(&self, store: PgStore, coins: &[CoinId]) -> Consumer<PgStore, Publisher> {
        Consumer {
            store,
            dead_letters: Publisher::connect_to(&self.kafka, self.dlq.name()).await.unwrap(),
            coins: coins.iter().cloned().collect(),
        }
    }

    pub fn poller(&self, group: &str) -> Poller {
        let config = PollerConfig {
            max_records: 500,
            max_wait: Duration::from_millis(200),
            retry_base: Duration::from_millis(100),
            retry_max: Duration::from_secs(1),
        };
        Poller::new(&self.kafka, group, self.prices.name(), config).unwrap()
    }

    /// Every record of the dead-letter topic: (value, reason, source offset).
    pub async fn dead_letters(&self, expected: usize) -> Vec<(Vec<u8>, String, i64)> {
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

pub fn group() -> String {
    format!("test-group-{}", uuid::Uuid::new_v4().simple())
}

/// Runs a poller (owned or shared) in the background until the returned token is cancelled.
pub fn spawn_poller(
    poller: impl Borrow<Poller> + Send + 'static,
    consumer: Consumer<PgStore, Publisher>,
) -> (CancellationToken, JoinHandle<PollerStats>) {
    let token = CancellationToken::new();
    let stop = token.clone();
    let task = tokio::spawn(async move { poller.borrow().run(&consumer, stop).await });
    (token, task)
}

pub async fn stop(token: CancellationToken, task: JoinHandle<PollerStats>) -> PollerStats {
    token.cancel();
    tokio::time::timeout(Duration::from_secs(30), task).await.expect("poller stops on request").unwrap()
}

pub fn simulated(coins: &[CoinId], per_coin: u64) -> Vec<Tick> {
    testkit::ticks(coins, 0..per_coin)
}

impl Topics {
    /// Records ever written to the dead-letter topic (its high watermarks):
    /// an exact count, whatever a reader has seen so far.
    pub fn dead_letters_written(&self) -> i64 {
        let consumer = stream::consumer(&self.kafka, &group()).unwrap();
        let metadata = consumer.fetch_metadata(Some(self.dlq.name()), Duration::from_secs(10)).unwrap();
        metadata.topics()[0]
            .partitions()
            .iter()
            .map(|p| consumer.fetch_watermarks(self.dlq.name(), p.id(), Duration::from_secs(10)).unwrap().1)
            .sum()
    }
}

/// Runs this checkout's `scripts/stack.sh` with `args` (`kill postgres`, `up`…).
pub fn stack(args: &[&str]) -> std::io::Result<std::process::ExitStatus> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/stack.sh");
    std::process::Command::new("bash").arg(script).args(args).stdout(std::process::Stdio::null()).status()
}
