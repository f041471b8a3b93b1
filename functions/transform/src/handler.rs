use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Instant;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use lambda_runtime::LambdaEvent;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use storage::{PgStore, Run, RunOutcome, inputs, outputs};
use tracing::{info, instrument, warn};
use transforms::{AlertConfig, CleanConfig};
use uuid::Uuid;

use crate::io::{self, floats, instants, int4s, ints, strings};
use crate::{Config, TransformError};

/// The invocation payload; unknown fields (an EventBridge event's) are ignored.
#[derive(Debug, Default, Deserialize)]
pub struct TransformRequest {
    /// Rebuild every table from every observation.
    #[serde(default)]
    pub full: bool,
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TransformReport {
    pub run_id: Uuid,
    pub full: bool,
    /// UTC days whose results were recomputed.
    pub days: usize,
    /// Observations read, context days included.
    pub observations: usize,
    pub hourly_rows: usize,
    pub ranking_rows: usize,
    pub alerts: usize,
    pub volume_rows: usize,
    /// Observations of the recomputed days dropped by cleaning, by reason.
    pub dropped: BTreeMap<String, i64>,
    pub elapsed_ms: u64,
    /// The run's phases: reading observations (watermarks and affected days
    /// included), the pure compute, writing results and committing.
    pub load_ms: u64,
    pub compute_ms: u64,
    pub write_ms: u64,
}

/// The transform job with its settings and pool, built once per process.
#[derive(Debug, Clone)]
pub struct Transform {
    pub store: PgStore,
    pub clean: CleanConfig,
    pub alerts: AlertConfig,
    /// Rows ingested within this many seconds wait for the next run (see `io::watermarks`).
    pub watermark_lag_secs: f64,
}

impl Transform {
    pub async fn from_config(config: &Config) -> Result<Self, TransformError> {
        Self::with_store(config, PgStore::connect(&config.database).await?)
    }

    /// The job on an existing pool (a process that already has one).
    pub fn with_store(config: &Config, store: PgStore) -> Result<Self, TransformError> {
        let t = &config.tuning;
        let clean = CleanConfig { max_deviation: t.max_deviation, neighbourhood: t.neighbourhood };
        let alerts = AlertConfig { threshold: t.alert_threshold, window: t.alert_window };
        clean.validate().map_err(TransformError::Config)?;
        alerts.validate().map_err(TransformError::Config)?;
        Ok(Self { store, clean, alerts, watermark_lag_secs: t.watermark_lag.as_secs_f64() })
    }
}

/// The Lambda handler.
pub async fn handle(
    transform: &Transform,
    event: LambdaEvent<serde_json::Value>,
) -> Result<TransformReport, TransformError> {
    transform.run(parse_request(event.payload)?).await
}

/// No payload or an EventBridge event: an incremental run; `{"full": true}`: a rebuild.
fn parse_request(payload: serde_json::Value) -> Result<TransformRequest, TransformError> {
    match payload {
        serde_json::Value::Null => Ok(TransformRequest::default()),
        payload => serde_json::from_value(payload).map_err(|e| TransformError::BadRequest(e.to_string())),
    }
}

impl Outputs {
    /// How many alerts each coin has.
    pub fn alert_counts(&self) -> Result<BTreeMap<String, usize>, TransformError> {
        let mut counts = BTreeMap::new();
        for coin in strings(&self.alerts, "coin")? {
            *counts.entry(coin).or_default() += 1;
        }
        Ok(counts)
    }
}

/// The frames of one run, restricted to the recomputed days.
#[derive(Debug)]
pub struct Outputs {
    pub hourly: DataFrame,
    pub ranking: DataFrame,
    pub alerts: DataFrame,
    pub volume: DataFrame,
    /// Rows cleaning dropped, by reason.
    pub dropped: DataFrame,
    /// How long each transform took (clean, hourly, ranking, alerts, volume).
    pub steps: Vec<(&'static str, std::time::Duration)>,
}

impl Transform {
    /// Runs once and records the run in `pipeline_runs`.
    #[instrument(skip_all, fields(full = request.full))]
    pub async fn run(&self, request: TransformRequest) -> Result<TransformReport, TransformError> {
        let run = Run::start(&self.store, "transform").await?;
        let result = self.transform(run.id(), request.full).await;
        let result = run
            .finish(&self.store, result, |result| match result {
                Ok(report) => RunOutcome::succeeded(
                    report.observations as i64,
                    (report.hourly_rows + report.ranking_rows + report.alerts + report.volume_rows) as i64,
                    serde_json::to_value(report).unwrap_or_default(),
                ),
                Err(err) => RunOutcome::failed(err, serde_json::json!({ "full": request.full })),
            })
            .await;
        match &result {
            Ok(r) => info!(
                days = r.days,
                rows = r.hourly_rows,
                alerts = r.alerts,
                elapsed_ms = r.elapsed_ms,
                "transform done"
            ),
            Err(e) => warn!(error = %telemetry::failure::Chain(e), "transform failed"),
        }
        result
    }

    async fn transform(&self, run_id: Uuid, full: bool) -> Result<TransformReport, TransformError> {
        let started = Instant::now();
        let mut client = self.store.client().await?;
        // One run at a time per database: the scheduler's cycle and a history
        // load (`cpctl history`) may both transform at once, and two runs over
        // the same days would fail each other's writes. A session lock, taken
        // before the run's snapshot so the second run sees the first's results.
        outputs::lock(&client).await?;
        let result = self.transform_locked(&mut client, run_id, full, started).await;
        if let Err(e) = outputs::unlock(&client).await {
            // A pooled connection must not keep the lock: close it instead.
            warn!(error = %telemetry::failure::Chain(&e), "could not release the transform lock; closing its connection");
            storage::discard(client);
        }
        result
    }

    async fn transform_locked(
        &self,
        client: &mut storage::PgClient,
        run_id: Uuid,
        full: bool,
        started: Instant,
    ) -> Result<TransformReport, TransformError> {
        // A full rebuild reads everything stored up to now, whoever asks for it
        // (the CLI's --full or the event's {"full": true}).
        let lag_secs = if full { 0.0 } else { self.watermark_lag_secs };
        // One snapshot for reading, one transaction for writing: a run's
        // results appear whole or not at all.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .start()
            .await
            .map_err(|e| TransformError::query("begin a transaction", e))?;
        let marks = inputs::watermarks(&tx, lag_secs).await?;
        let recompute: Option<BTreeSet<NaiveDate>> = if full {
            None
        } else {
            let touched = inputs::affected_days(&tx, &marks).await?;
            Some(touched.iter().flat_map(|d| [*d - Duration::days(1), *d, *d + Duration::days(1)]).collect())
        };
        let (from, to) = match &recompute {
            None => (None, None),
            Some(days) if days.is_empty() => {
                inputs::write_watermarks(&tx, &marks).await?;
                tx.commit().await.map_err(|e| TransformError::query("commit the transform", e))?;
                return Ok(TransformReport {
                    run_id,
                    full,
                    elapsed_ms: started.elapsed().as_millis() as u64,
                    ..Default::default()
                });
            }
            Some(days) => {
                // One day of context either side: previous closes, cleaning windows.
                let first = days.first().copied().unwrap_or_default() - Duration::days(1);
                let last = days.last().copied().unwrap_or_default() + Duration::days(2);
                (Some(midnight(first)), Some(midnight(last)))
            }
        };
        let observations = io::frame(inputs::load(&tx, &marks, from, to).await?)?;
        let observed = observations.height();
        let load_ms = started.elapsed().as_millis() as u64;
        let computing = Instant::now();
        let outputs = compute(observations, &self.clean, &self.alerts, recompute.as_ref())?;
        let compute_ms = computing.elapsed().as_millis() as u64;
        let writing = Instant::now();
        let days = match &recompute {
            Some(days) => days.len(),
            None => distinct_days(&outputs.hourly)?,
        };
        write_outputs(&tx, run_id, recompute.as_ref(), &outputs).await?;
        inputs::write_watermarks(&tx, &marks).await?;
        tx.commit().await.map_err(|e| TransformError::query("commit the transform", e))?;
        let write_ms = writing.elapsed().as_millis() as u64;

        let dropped =
            strings(&outputs.dropped, "reason")?.into_iter().zip(ints(&outputs.dropped, "rows")?).collect();
        Ok(TransformReport {
            run_id,
            full,
            days,
            observations: observed,
            hourly_rows: outputs.hourly.height(),
            ranking_rows: outputs.ranking.height(),
            alerts: outputs.alerts.height(),
            volume_rows: outputs.volume.height(),
            dropped,
            elapsed_ms: started.elapsed().as_millis() as u64,
            load_ms,
            compute_ms,
            write_ms,
        })
    }
}

/// The pure part of a run: every transform over an observations frame (the
/// `transforms` crate's input), then each output cut to `days` (all of them
/// when `None`). No I/O: tested on literal frames, timed alone by the bench.
pub fn compute(
    observations: DataFrame,
    clean_config: &CleanConfig,
    alert_config: &AlertConfig,
    days: Option<&BTreeSet<NaiveDate>>,
) -> Result<Outputs, TransformError> {
    let mut steps = Vec::with_capacity(5);
    let mut timed = |step: &'static str, started: Instant| steps.push((step, started.elapsed()));
    let started = Instant::now();
    let classified = transforms::classify(observations.lazy(), clean_config).collect()?;
    let clean = transforms::kept(classified.clone().lazy()).collect()?;
    timed("clean", started);
    let started = Instant::now();
    let hourly = transforms::hourly(clean.clone().lazy()).collect()?;
    timed("hourly", started);
    let started = Instant::now();
    let ranking = transforms::daily_ranking(clean.clone().lazy()).collect()?;
    timed("ranking", started);
    let started = Instant::now();
    let hour_alerts = transforms::alerts(hourly.clone().lazy(), alert_config).collect()?;
    let day_alerts = transforms::snapshot_alerts(clean.clone().lazy(), alert_config).collect()?;
    let alerts = hour_alerts.vstack(&day_alerts)?;
    timed("alerts", started);
    let started = Instant::now();
    let volume = transforms::daily_volume(clean.lazy()).collect()?;
    timed("volume", started);
    // On an incremental run, each output keeps the rows whose UTC day is recomputed.
    let days = days
        .map(|days| lit(Series::new("days".into(), days.iter().copied().collect::<Vec<_>>())).implode(false));
    let in_days = |df: DataFrame, day: Expr| -> Result<DataFrame, TransformError> {
        Ok(match &days {
            Some(days) => df.lazy().filter(day.is_in(days.clone(), false)).collect()?,
            None => df,
        })
    };
    let utc_day = |column: &str| col(column).dt().date();
    Ok(Outputs {
        hourly: in_days(hourly, utc_day("hour"))?,
        ranking: in_days(ranking, col("day"))?,
        alerts: in_days(alerts, utc_day("at"))?,
        volume: in_days(volume, col("day"))?,
        dropped: transforms::drop_counts(in_days(classified, utc_day("ts"))?.lazy()).collect()?,
        steps,
    })
}

fn midnight(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(NaiveTime::MIN).and_utc()
}

fn distinct_days(hourly: &DataFrame) -> Result<usize, TransformError> {
    Ok(instants(hourly, "hour")?.iter().map(DateTime::date_naive).collect::<HashSet<_>>().len())
}

/// Replaces the recomputed days' rows of every output table (all rows on a
/// full run): delete, then binary `COPY`, inside the run's transaction.
async fn write_outputs(
    tx: &tokio_postgres::Transaction<'_>,
    run_id: Uuid,
    days: Option<&BTreeSet<NaiveDate>>,
    out: &Outputs,
) -> Result<(), TransformError> {
    outputs::clear_days(tx, days).await?;
    use io::Kind::{Date, Float8, Int4, Text, Timestamptz};
    let hourly = [
        ("coin_id", "coin", Text),
        ("hour", "hour", Timestamptz),
        ("avg_price", "avg_price", Float8),
        ("open", "open", Float8),
        ("high", "high", Float8),
        ("low", "low", Float8),
        ("close", "close", Float8),
        ("observations", "observations", Int4),
    ];
    outputs::copy_into(tx, "price_hourly", &io::columns(&out.hourly, &hourly)?).await?;
    let ranking = [
        ("day", "day", Date),
        ("coin_id", "coin", Text),
        ("last_price", "last_price", Float8),
        ("prev_last_price", "prev_last_price", Float8),
        ("performance", "performance", Float8),
        ("rank", "rank", Int4),
    ];
    outputs::copy_into(tx, "daily_ranking", &io::columns(&out.ranking, &ranking)?).await?;
    let volume = [
        ("coin_id", "coin", Text),
        ("day", "day", Date),
        ("method", "method", Text),
        ("volume_usd", "volume_usd", Float8),
    ];
    outputs::copy_into(tx, "daily_volume", &io::columns(&out.volume, &volume)?).await?;

    let a = &out.alerts;
    let alerts = outputs::AlertRows {
        coin: strings(a, "coin")?,
        at: instants(a, "at")?,
        window_secs: int4s(a, "window_secs")?,
        change_pct: floats(a, "change_pct")?,
        direction: strings(a, "direction")?,
        price_before: floats(a, "price_before")?,
        price_after: floats(a, "price_after")?,
    };
    outputs::insert_alerts(tx, run_id, &alerts).await?;
    let d = &out.dropped;
    outputs::insert_quality(tx, run_id, &strings(d, "reason")?, &ints(d, "rows")?).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scheduled_event_is_an_incremental_run_and_full_asks_for_a_rebuild() {
        let scheduled =
            serde_json::json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}});
        assert!(!parse_request(scheduled).unwrap().full);
        assert!(!parse_request(serde_json::Value::Null).unwrap().full);
        assert!(parse_request(serde_json::json!({"full": true})).unwrap().full);
    }

    #[test]
    fn a_malformed_request_is_a_permanent_error() {
        let err = parse_request(serde_json::json!({"full": "yes"})).unwrap_err();
        assert!(matches!(err, TransformError::BadRequest(_)), "{err}");
        assert_eq!(lambda_runtime::Diagnostic::from(err).error_type, "Transform.Permanent");
    }

    /// Hourly ticks of one coin at the given prices, from 2024-03-30T22:00Z.
    fn ticks(coin: &str, prices: &[f64]) -> Vec<domain::Tick> {
        let start = DateTime::parse_from_rfc3339("2024-03-30T22:00:00Z").unwrap().with_timezone(&Utc);
        prices
            .iter()
            .enumerate()
            .map(|(i, &price)| domain::Tick {
                coin: domain::CoinId::parse(coin).unwrap(),
                event_time: start + Duration::hours(i as i64),
                price,
                volume: Some(2.0),
                interval_secs: 3600,
                source: domain::TickSource::Replay,
                seq: i as u64,
            })
            .collect()
    }

    #[test]
    fn compute_runs_every_transform_on_a_literal_frame() {
        // Bitcoin jumps 6 % in its third hour; solana never moves more than 1 %;
        // a duplicate of bitcoin's first tick is dropped by cleaning.
        let mut all = ticks("bitcoin", &[100.0, 100.0, 106.0, 106.5]);
        all.extend(ticks("solana", &[10.0, 10.1, 10.0, 10.05]));
        all.push(all[0].clone());
        let frame = crate::ticks_frame(&all).unwrap();
        let out = compute(frame, &CleanConfig::default(), &AlertConfig::default(), None).unwrap();
        assert_eq!(out.hourly.height(), 8, "one candle per coin and hour");
        assert_eq!(out.alert_counts().unwrap(), BTreeMap::from([("bitcoin".to_owned(), 1)]));
        assert_eq!(floats(&out.alerts, "price_after").unwrap(), vec![106.0]);
        assert_eq!(strings(&out.dropped, "reason").unwrap(), vec!["duplicate".to_owned()]);
        // Two UTC days (22:00 and 23:00 on the 30th, 00:00 and 01:00 on the 31st) per coin.
        assert_eq!(out.volume.height(), 4);
        // Volume in USD: base volume × price, summed per day (bitcoin on the 31st: 2 × 106 + 2 × 106.5).
        let volumes = floats(&out.volume, "volume_usd").unwrap();
        assert!(volumes.contains(&425.0), "{volumes:?}");
    }

    #[test]
    fn compute_keeps_only_the_days_asked_for() {
        let frame = crate::ticks_frame(&ticks("bitcoin", &[100.0, 100.0, 106.0, 106.5])).unwrap();
        let day = NaiveDate::from_ymd_opt(2024, 3, 31).unwrap();
        let out =
            compute(frame, &CleanConfig::default(), &AlertConfig::default(), Some(&BTreeSet::from([day])))
                .unwrap();
        assert_eq!(out.hourly.height(), 2, "the two hours of the 31st");
        assert_eq!(out.alerts.height(), 1, "the jump at 00:00 on the 31st");
    }

    #[test]
    fn midnight_is_the_start_of_the_utc_day() {
        let day = NaiveDate::from_ymd_opt(2024, 3, 31).unwrap();
        assert_eq!(midnight(day).to_rfc3339(), "2024-03-31T00:00:00+00:00");
    }
}
