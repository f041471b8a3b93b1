//! Test harness for integration tests: each test gets its own database, bucket
//! and topic on the real local services (`just up`), so tests run in parallel
//! and leave nothing behind. They are made by the functions `cpctl setup`
//! makes a deployment's with (crate `provision`). There are no mocks of
//! Postgres, Kafka or S3 here; only CoinGecko, which is out of reach, is faked
//! (with wiremock, in the tests).
//!
//! Endpoints come from the same variables the pipeline reads (`DATABASE_URL`,
//! `AWS_ENDPOINT_URL`, `KAFKA_BROKERS`), through the same configuration types
//! ([`config`]), defaulting to the local stack's ports.
//! A service that is not there fails the test with a message saying so.
#![allow(clippy::unwrap_used)] // a test harness panics by design, with a message

pub mod exchange;

use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use storage::{PgConfig, PgStore, S3Config, S3Store};

/// Simulated ticks for steps `steps` (5 s apart from 2026-01-01T00:00Z), one
/// per coin and step, in step order; every (coin, time) is distinct.
pub fn ticks(coins: &[domain::CoinId], steps: std::ops::Range<u64>) -> Vec<domain::Tick> {
    let start = chrono::DateTime::<chrono::Utc>::from_timestamp(1_767_225_600, 0).unwrap();
    steps
        .flat_map(|i| {
            coins.iter().map(move |coin| domain::Tick {
                coin: coin.clone(),
                event_time: start + chrono::Duration::seconds(5 * i as i64),
                price: 100.0 + i as f64,
                volume: Some(1.0),
                interval_secs: 5,
                source: domain::TickSource::Simulated,
                seq: i,
                bar: None,
            })
        })
        .collect()
}

/// A `/coins/markets` snapshot of `coin` (named `name`) at `at`: price 100, so
/// no hourly move, and CoinGecko's 24 h change `change_pct`: a known alert, or
/// none, for the alert tests.
pub fn snapshot(
    coin: &str,
    name: &str,
    at: chrono::DateTime<chrono::Utc>,
    change_pct: f64,
) -> domain::MarketSnapshot {
    domain::MarketSnapshot {
        coin: domain::CoinId::parse(coin).unwrap(),
        vs_currency: domain::VsCurrency::usd(),
        symbol: coin.chars().take(3).collect(),
        name: name.to_owned(),
        observed_at: at,
        current_price: Some(100.0),
        market_cap: None,
        market_cap_rank: None,
        fully_diluted_valuation: None,
        total_volume: None,
        high_24h: None,
        low_24h: None,
        price_change_24h: None,
        price_change_percentage_24h: Some(change_pct),
        circulating_supply: None,
        total_supply: None,
        max_supply: None,
    }
}

/// Stores `snapshots` as one ingest run would.
pub async fn ingest_snapshots(store: &PgStore, snapshots: &[domain::MarketSnapshot]) {
    use storage::SnapshotStore;
    let run = storage::Run::start(store, "ingest").await.unwrap();
    store.upsert_snapshots(run.id(), snapshots).await.unwrap();
}

/// A configuration (`storage::PgConfig`, `stream::KafkaConfig`…) as the
/// pipeline would load it from this environment.
pub fn config<T: DeserializeOwned>() -> T {
    settings::Env::from_process()
        .load()
        .unwrap_or_else(|e| panic!("the test environment's configuration: {e}"))
}

/// The local broker's SASL_SSL listener with its SCRAM user, as
/// `scripts/stack.sh` sets them up and `local_stack_env` exports them
/// (`KAFKA_SECURE_*`): the rest of the configuration is [`config`]'s.
pub fn secured_kafka() -> stream::KafkaConfig {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: run the tests with `just test`, which starts the secured listener")
        })
    };
    let password_file = var("KAFKA_SECURE_PASSWORD_FILE");
    let password = std::fs::read_to_string(&password_file)
        .unwrap_or_else(|e| panic!("the SCRAM password in {password_file}: {e}"));
    let mut kafka: stream::KafkaConfig = config();
    kafka.brokers = var("KAFKA_SECURE_BROKERS");
    kafka.security_protocol = stream::SecurityProtocol::SaslSsl;
    kafka.sasl_mechanism = Some(stream::SaslMechanism::ScramSha512);
    kafka.sasl_username = Some(var("KAFKA_SECURE_USERNAME"));
    kafka.sasl_password = Some(SecretString::from(password.trim_end().to_owned()));
    kafka.ssl_ca_location = Some(PathBuf::from(var("KAFKA_SECURE_CA_LOCATION")));
    kafka
}

/// The real market data the project ships in `data/` (or `CRYPTO_DATA_DIR`),
/// found at run time from the test's working directory.
pub fn data() -> dataset::DataDir {
    dataset::DataDir::locate().unwrap_or_else(|e| panic!("test data: {e}"))
}

/// One shipped candle file, e.g. `candle_file("BTCUSDT_1h.csv")` (read compressed).
pub fn candle_file(name: &str) -> PathBuf {
    data().file(&format!("binance_1h/{name}")).unwrap_or_else(|e| panic!("test data: {e}"))
}

/// Runs `f` on a fresh runtime in its own thread: `Drop` cannot await, and the
/// test's runtime may already be shutting down when a guard is dropped.
fn block_on_side<F>(f: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let handle = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(f);
    });
    let _ = handle.join();
}

/// A database of its own, migrated, dropped when the value is dropped.
#[derive(Debug)]
pub struct TestDb {
    pub store: PgStore,
    pub config: PgConfig,
    /// `config`'s URL, for a process of its own (`DATABASE_URL`).
    pub url: SecretString,
    name: String,
    admin: PgConfig,
}

impl TestDb {
    pub async fn new() -> Self {
        let admin: PgConfig = config();
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        let (config, store) = storage::create_database(&admin, &name).await.unwrap_or_else(|e| {
            panic!(
                "cannot create a test database on the test Postgres (DATABASE_URL): {}; start the stack with `just up`",
                telemetry::failure::Chain(&e)
            )
        });
        let url = config.database_url.clone();
        Self { store, config, url, name, admin }
    }

    /// A plain client, for assertions in SQL.
    pub async fn client(&self) -> storage::PgClient {
        self.store.client().await.unwrap()
    }

    /// `SELECT count(*) FROM {table}` (a table name of the test's own).
    pub async fn count(&self, table: &str) -> i64 {
        let row = self.client().await.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await.unwrap();
        row.get(0)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        block_on_side(async move {
            let _ = storage::drop_database(&admin, &name).await;
        });
    }
}

/// The test S3 endpoint: `AWS_ENDPOINT_URL` (of [`S3Config`]), else the
/// stack's LocalStack; never AWS's.
pub fn s3_endpoint() -> String {
    let s3: S3Config = config();
    s3.endpoint().map_or_else(
        || String::from("http://127.0.0.1:4566"),
        |u| u.as_str().trim_end_matches('/').to_owned(),
    )
}

/// An S3 client for the test endpoint ([`s3_endpoint`]), path-style, test
/// credentials unless the environment has some.
pub async fn s3_client() -> aws_sdk_s3::Client {
    s3_client_at(&s3_endpoint()).await
}

/// [`s3_client`] through another endpoint (a [`TcpGate`] in front of the test endpoint).
pub async fn s3_client_at(endpoint: &str) -> aws_sdk_s3::Client {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(std::env::var("AWS_REGION").unwrap_or_else(|_| String::from("us-east-1"))));
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
        loader = loader.credentials_provider(Credentials::new("test", "test", None, None, "testkit"));
    }
    let shared = loader.load().await;
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&shared).force_path_style(true).build())
}

/// A bucket of its own, emptied and deleted when dropped.
#[derive(Debug)]
pub struct TestBucket {
    pub store: S3Store,
    name: String,
}

impl TestBucket {
    pub async fn new() -> Self {
        let client = s3_client().await;
        let name = format!("test-{}", uuid::Uuid::new_v4().simple());
        provision::bucket(&client, &name).await.unwrap_or_else(|e| {
            panic!("cannot create a bucket on the test S3 endpoint: {}", telemetry::failure::Chain(&e))
        });
        Self { store: S3Store::new(client, name.clone()), name }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Every key in the bucket, sorted.
    pub async fn keys(&self) -> Vec<String> {
        list_keys(self.store.client(), &self.name).await
    }

    /// The body of `key`.
    pub async fn get(&self, key: &str) -> Vec<u8> {
        let object = self.store.client().get_object().bucket(&self.name).key(key).send().await.unwrap();
        object.body.collect().await.unwrap().into_bytes().to_vec()
    }
}

async fn list_keys(client: &aws_sdk_s3::Client, bucket: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut pages = client.list_objects_v2().bucket(bucket).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.unwrap();
        keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_owned)));
    }
    keys.sort();
    keys
}

impl Drop for TestBucket {
    fn drop(&mut self) {
        let name = self.name.clone();
        block_on_side(async move {
            let client = s3_client().await;
            for key in list_keys(&client, &name).await {
                let _ = client.delete_object().bucket(&name).key(key).send().await;
            }
            let _ = client.delete_bucket().bucket(&name).send().await;
        });
    }
}

/// A topic of its own on the local broker, deleted when dropped.
#[derive(Debug)]
pub struct TestTopic {
    name: String,
    kafka: stream::KafkaConfig,
}

impl TestTopic {
    /// A topic on the brokers of `kafka`, reached with its security settings.
    pub async fn create(kafka: &stream::KafkaConfig, partitions: i32) -> Self {
        let name = format!("test-{}", uuid::Uuid::new_v4().simple());
        provision::topics(kafka, &[(&name, partitions)])
            .await
            .unwrap_or_else(|e| panic!("cannot create a test topic: {}", telemetry::failure::Chain(&e)));
        Self { name, kafka: kafka.clone() }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestTopic {
    fn drop(&mut self) {
        let (name, kafka) = (self.name.clone(), self.kafka.clone());
        block_on_side(async move {
            let _ = provision::delete_topics(&kafka, &[&name]).await;
        });
    }
}

/// A TCP relay to a real service that a test can cut and restore, to see
/// what the code does when the service goes away for a while (Postgres
/// stopped, a network partition) without stopping the service other tests use.
#[derive(Debug)]
pub struct TcpGate {
    addr: std::net::SocketAddr,
    open: std::sync::Arc<std::sync::atomic::AtomicBool>,
    generation: tokio::sync::watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpGate {
    /// Relays `127.0.0.1:<port>` (see [`TcpGate::port`]) to `target`.
    pub async fn new(target: std::net::SocketAddr) -> Self {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (generation, _) = tokio::sync::watch::channel(0u64);
        let (gate_open, gen_tx) = (open.clone(), generation.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else { return };
                if !gate_open.load(Ordering::SeqCst) {
                    drop(inbound); // refused while cut
                    continue;
                }
                let mut cut = gen_tx.subscribe();
                tokio::spawn(async move {
                    let Ok(outbound) = tokio::net::TcpStream::connect(target).await else { return };
                    let (mut a, mut b) = (inbound, outbound);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut a, &mut b) => {}
                        _ = cut.changed() => {} // dropping both ends kills the connection
                    }
                });
            }
        });
        Self { addr, open, generation, task }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Kills every relayed connection and refuses new ones until [`TcpGate::restore`].
    pub fn cut(&self) {
        self.open.store(false, std::sync::atomic::Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    pub fn restore(&self) {
        self.open.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for TcpGate {
    fn drop(&mut self) {
        self.cut();
        self.task.abort();
    }
}

impl TestDb {
    /// This database's configuration with its port replaced by `port` (a [`TcpGate`]).
    pub fn config_via_port(&self, port: u16) -> PgConfig {
        let mut url = url::Url::parse(self.url.expose_secret()).unwrap();
        url.set_port(Some(port)).unwrap();
        self.config.with_url(SecretString::from(url.to_string()))
    }

    /// The address the database listens on.
    pub fn socket_addr(&self) -> std::net::SocketAddr {
        let url = url::Url::parse(self.url.expose_secret()).unwrap();
        let host = url.host_str().unwrap_or("127.0.0.1");
        format!("{host}:{}", url.port().unwrap_or(5432)).parse().unwrap()
    }

    /// Waits until `SELECT count(*) FROM {table}` reaches `n`, or panics after `timeout`.
    pub async fn wait_for_count(&self, table: &str, n: i64, timeout: Duration) -> i64 {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let count = self.count(table).await;
            if count >= n {
                return count;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{table} has {count} rows after {timeout:?}, want {n}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
