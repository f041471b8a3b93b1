//! Shared by the site-gen integration tests: a database holding real data.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::Duration;

use site_gen::{LoadOptions, Output, SiteGen};
use storage::SnapshotStore;
use testkit::TestDb;

pub const COINS: [&str; 5] = ["bitcoin", "ethereum", "solana", "ripple", "binancecoin"];

/// The last `hours` real hourly candles of the five coins, one real CoinGecko
/// `/coins/markets` response (names, symbols), transformed.
pub async fn populated(hours: usize) -> TestDb {
    let db = TestDb::new().await;
    let mut ticks = Vec::new();
    for file in ["BTCUSDT_1h.csv", "ETHUSDT_1h.csv", "SOLUSDT_1h.csv", "XRPUSDT_1h.csv", "BNBUSDT_1h.csv"] {
        let path = testkit::candle_file(file);
        let coin = stream::replay::coin_of_file(&path).unwrap();
        let all = stream::replay::read_candles(&path, &coin).unwrap();
        ticks.extend(all[all.len().saturating_sub(hours)..].iter().cloned());
    }
    db.store.load_ticks(&ticks).await.unwrap();
    let body = testkit::data().read("coingecko/dashbrd_coins_markets.json").unwrap();
    let snapshots =
        coingecko::parse_markets(&body, &domain::VsCurrency::parse("usd").unwrap(), chrono::Utc::now())
            .unwrap();
    let run = storage::Run::start(&db.store, "ingest").await.unwrap();
    db.store.upsert_snapshots(run.id(), &snapshots).await.unwrap();
    let transform = transform::Transform {
        watermark_lag_secs: 0.0,
        ..transform::Transform::with_defaults(db.store.clone())
    };
    transform.run(transform::TransformRequest { full: true, ..Default::default() }).await.unwrap();
    db
}

pub fn options() -> LoadOptions {
    LoadOptions {
        coins: COINS.iter().map(|c| c.to_string()).collect(),
        vs_currency: "usd".into(),
        stale_batch: Duration::from_secs(1500),
        stale_stream: Duration::from_secs(60),
    }
}

/// A generator writing into a fresh temporary folder.
pub async fn to_dir(db: &TestDb) -> (SiteGen, TempDir) {
    let dir = TempDir::new();
    (SiteGen::new(db.store.clone(), options(), Output::Dir(dir.0.clone()), None).await, dir)
}

/// A temporary folder, removed when dropped.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("site-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.0.join(path)).unwrap()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
