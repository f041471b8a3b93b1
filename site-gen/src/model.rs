//! What the dashboard shows, as read from the database: plain data, so the
//! rendering is a pure function of it (and testable on fixed values).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

/// Everything one generation of the site reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SiteData {
    pub generated_at: DateTime<Utc>,
    /// Currency prices are quoted in (`usd`).
    pub vs_currency: String,
    /// The configured coins, in the configured order, each with its data.
    pub coins: Vec<Coin>,
    /// Latest alerts of every coin, newest first (at most [`MAX_ALERTS`]).
    pub alerts: Vec<Alert>,
    /// How many alerts exist in all (the page says when it shows fewer).
    pub alerts_total: i64,
    /// Transform runs, newest first, with the rows cleaning dropped.
    pub quality: Vec<QualityRun>,
    /// The latest runs of each function, newest first.
    pub runs: Vec<Run>,
    pub freshness: Vec<Freshness>,
    /// The notifications of the alerts listed, by alert (one per channel).
    pub deliveries: BTreeMap<AlertKey, Vec<Delivery>>,
    /// The latest notifications that failed for good, newest first (the Runs page).
    pub failed_deliveries: Vec<Delivery>,
}

/// Alerts listed on the alerts page.
pub const MAX_ALERTS: i64 = 500;
/// Runs listed per function on the runs page.
pub const RUNS_PER_FUNCTION: i64 = 20;
/// Failed notifications listed on the runs page.
pub const FAILED_DELIVERIES: i64 = 50;
/// Transform runs listed on the data-quality page.
pub const QUALITY_RUNS: i64 = 50;

impl SiteData {
    /// No observation of any coin yet: the site says so instead of showing empty charts.
    pub fn is_empty(&self) -> bool {
        self.coins.iter().all(|c| c.hourly.is_empty() && c.latest.is_none())
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Coin {
    /// CoinGecko id (`bitcoin`): also the page's file name.
    pub id: String,
    /// Display name and symbol from CoinGecko, when a snapshot has been stored.
    pub name: Option<String>,
    pub symbol: Option<String>,
    /// The newest observation of any source.
    pub latest: Option<Observation>,
    /// Hourly candles, oldest first.
    pub hourly: Vec<Hourly>,
    /// Daily traded volume in the quote currency, oldest first.
    pub volume: Vec<DailyVolume>,
    /// Daily rank by 24 h performance, oldest first.
    pub ranks: Vec<DailyRank>,
    /// This coin's alerts, oldest first.
    pub alerts: Vec<Alert>,
    /// Set when the coin's history is the shipped sample (offline first run):
    /// every page then says what it really is.
    pub sample: Option<Sample>,
    /// The exchanges' latest bars of real trades, newest first (empty without a live feed).
    pub live: Vec<LiveBar>,
}

// The rows the dashboard reads, as storage returns them (see storage's
// `inputs`, `outputs` and `runs` modules, where their SQL is).
pub use storage::inputs::{Observation, SampleRecord as Sample};
pub use storage::live::LiveBar;
pub use storage::outbox::{AlertKey, Delivery};
pub use storage::outputs::{Alert, DailyRank, DailyVolume, Hourly, QualityRun};
pub use storage::runs::RunRecord as Run;

/// When a source last delivered data.
#[derive(Debug, Clone, PartialEq)]
pub struct Freshness {
    /// `batch`, `stream`, `history`, `sample`, `transform`, or a live exchange (`binance`, `coinbase`).
    pub source: String,
    pub last: Option<DateTime<Utc>>,
    /// Older than this is stale (`None`: never stale, e.g. a one-off backfill).
    pub stale_after_secs: Option<i64>,
}
