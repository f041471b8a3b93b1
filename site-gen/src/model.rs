//! What the dashboard shows, as read from the database: plain data, so the
//! rendering is a pure function of it (and testable on fixed values).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

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
}

/// Alerts listed on the alerts page.
pub const MAX_ALERTS: i64 = 500;
/// Runs listed per function on the runs page.
pub const RUNS_PER_FUNCTION: i64 = 20;
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
}

/// Shipped candles standing in for a coin's history (`sample_history`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// The candles' real open times, first and last.
    pub original_from: DateTime<Utc>,
    pub original_to: DateTime<Utc>,
    /// Shown instant = real instant + this.
    pub shift_secs: i64,
    pub loaded_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    pub price: f64,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hourly {
    pub hour: DateTime<Utc>,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub avg: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DailyVolume {
    pub day: NaiveDate,
    pub volume: f64,
    /// `interval_sum` or `rolling_24h` (see migrations/V005).
    pub method: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DailyRank {
    pub day: NaiveDate,
    pub rank: i32,
    /// Change of the day's last price against the day before's, as a fraction.
    pub performance: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub coin_id: String,
    pub at: DateTime<Utc>,
    pub window_secs: i32,
    /// In percent, as the transforms store it (5.2 = +5.2 %).
    pub change_pct: f64,
    /// `up` or `down`.
    pub direction: String,
    pub price_before: f64,
    pub price_after: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QualityRun {
    pub run_id: Uuid,
    pub started_at: DateTime<Utc>,
    pub status: String,
    pub rows_in: Option<i64>,
    /// Rows dropped by reason (missing, duplicate, invalid, aberrant…).
    pub dropped: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub function: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub status: String,
    pub rows_in: Option<i64>,
    pub rows_out: Option<i64>,
    pub error: Option<String>,
}

/// When a source last delivered data.
#[derive(Debug, Clone, PartialEq)]
pub struct Freshness {
    /// `batch`, `stream`, `history`, `sample` or `transform`.
    pub source: String,
    pub last: Option<DateTime<Utc>>,
    /// Older than this is stale (`None`: never stale, e.g. a one-off backfill).
    pub stale_after_secs: Option<i64>,
}
