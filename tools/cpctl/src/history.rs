//! First-run history (`cpctl history`; `just deploy-local` starts it in the
//! background on every start, so it must be cheap when there is nothing to do).
//!
//! - CoinGecko answers `/ping`: the resumable backfill of the last
//!   [`BACKFILL_DAYS`] days (chunks already stored are skipped), and any
//!   stand-in sample history is deleted: real data replaces it.
//! - CoinGecko cannot be reached (no Internet, or refused) and the database
//!   holds no history at all: the shipped Binance candles, stored as source
//!   `sample`, moved forward in time so they end at the hour before now, with a
//!   `sample_history` row per coin saying what they really are. The dashboard
//!   labels them on every page; they are never passed off as market data.
//!
//! Either way the transform (full) and the site follow at once, so the
//! dashboard has its charts without waiting for the next scheduled cycle.

use anyhow::Context;
use chrono::{Duration, Utc};
use domain::VsCurrency;
use domain::{CoinId, TickSource};
use serde::Serialize;
use settings::{ConfigError, Env};
use storage::{PgStore, Run, RunOutcome, SampleHistory};
use tracing::{info, warn};

/// History fetched when CoinGecko answers: the Demo plan serves the last 365 days.
pub const BACKFILL_DAYS: i64 = 364;

/// What `cpctl history` did.
#[derive(Debug, Serialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum HistoryReport {
    /// Real history from CoinGecko.
    Coingecko { backfill: ingest::backfill::BackfillReport, sample_ticks_removed: u64 },
    /// The shipped candles, labelled as a sample.
    Sample(SampleReport),
    /// CoinGecko unreachable, and history already stored: nothing to do.
    AlreadyStored,
}

#[derive(Debug, Default, Serialize)]
pub struct SampleReport {
    pub coins: usize,
    pub candles: usize,
    pub new_rows: u64,
    pub shift_days: i64,
}

/// What `cpctl history` reads: CoinGecko's client, the coins, and what the
/// transform and the site generator that follow read.
#[derive(Debug)]
pub struct Config {
    pub coingecko: coingecko::Config,
    pub coins: Vec<CoinId>,
    pub vs_currency: VsCurrency,
    pub transform: transform::Config,
    pub site: site_gen::Config,
}

impl Config {
    pub fn load(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            coingecko: env.load()?,
            coins: env.load::<crate::config::Coins>()?.coins,
            vs_currency: env.load::<crate::config::Currency>()?.vs_currency,
            transform: transform::Config::load(env)?,
            site: site_gen::Config::load(env)?,
        })
    }
}

pub async fn run(config: &Config) -> anyhow::Result<HistoryReport> {
    // One pool for the whole job; the transform's and the site's database is the same.
    let store = PgStore::connect(&config.transform.database).await?;
    let source = coingecko::Client::new(&config.coingecko)?;
    let report = match source.ping().await {
        Ok(()) => {
            let now = Utc::now();
            info!(base = source.base_url(), days = BACKFILL_DAYS, "CoinGecko answers: backfilling history");
            let request = ingest::backfill::BackfillRequest {
                coins: config.coins.clone(),
                vs_currency: config.vs_currency.clone(),
                from: now - Duration::days(BACKFILL_DAYS),
                to: now,
            };
            let backfill = ingest::backfill::backfill(&source, &store, &request).await?;
            let removed = store.remove_sample_history().await?;
            if removed > 0 {
                info!(rows = removed, "real history arrived: the sample history is deleted");
            }
            HistoryReport::Coingecko { backfill, sample_ticks_removed: removed }
        }
        Err(e) => {
            warn!(error = %telemetry::failure::Chain(&e), base = source.base_url(), "CoinGecko cannot be reached");
            let presence = store.history_presence().await?;
            if presence.coingecko || presence.sample_coins > 0 {
                info!(
                    coingecko = presence.coingecko,
                    sample_coins = presence.sample_coins,
                    "history already stored; nothing to load"
                );
                return Ok(HistoryReport::AlreadyStored);
            }
            info!("loading the shipped candles as sample history, labelled as such");
            HistoryReport::Sample(load_sample(&store, &config.coins).await?)
        }
    };
    // The new rows reach the dashboard now, not on the next scheduled cycle;
    // on this job's pool.
    let transform = transform::Transform::with_store(&config.transform, store.clone())?;
    // The sample's candles are years old, moved to end now: their alerts are
    // recorded, never sent to anyone as if they were today's moves.
    let notify_none = matches!(report, HistoryReport::Sample(_));
    transform.run(transform::TransformRequest { full: true, notify_none, ..Default::default() }).await?;
    site_gen::SiteGen::with_store(&config.site, store).await?.run().await?;
    Ok(report)
}

/// Loads every configured coin's shipped candles as `sample` history, one
/// transaction per coin, recorded as a `history` run.
async fn load_sample(store: &PgStore, coins: &[CoinId]) -> anyhow::Result<SampleReport> {
    let data = dataset::DataDir::locate()?;
    let now = Utc::now();
    let run = Run::start(store, "history").await?;
    let result = async {
        let mut report = SampleReport::default();
        for file in data.candle_files()? {
            let Some(coin) = dataset::coin_of_file(&file).filter(|c| coins.contains(c)) else {
                continue;
            };
            let candles = dataset::read_candles(&file)?;
            let (Some(first), Some(last)) = (candles.first(), candles.last()) else {
                warn!(file = %file.display(), "no candles in the file");
                continue;
            };
            let shift = stream::replay::shift_to_end_before(last.open_time, now);
            let ticks = stream::replay::candle_ticks(&candles, &coin, TickSource::Sample, shift);
            let sample = SampleHistory {
                coin: coin.clone(),
                original_from: first.open_time,
                original_to: last.open_time,
                shift_secs: shift.num_seconds(),
                candles: i32::try_from(candles.len()).context("too many candles")?,
            };
            let added = store.load_sample_history(&sample, &ticks).await?;
            info!(%coin, rows = added, shift_days = shift.num_days(), "sample history loaded");
            report.coins += 1;
            report.candles += candles.len();
            report.new_rows += added;
            report.shift_days = shift.num_days();
        }
        if report.coins == 0 {
            anyhow::bail!("no candle file in {} for the configured coins", data.root().display());
        }
        Ok::<_, anyhow::Error>(report)
    }
    .await;
    run.finish(store, result, |result| match result {
        Ok(r) => RunOutcome::succeeded(
            r.candles as i64,
            r.new_rows as i64,
            serde_json::json!({ "source": "sample", "coins": r.coins, "shift_days": r.shift_days }),
        ),
        Err(err) => RunOutcome::failed(err.as_ref(), serde_json::json!({ "source": "sample" })),
    })
    .await
}
