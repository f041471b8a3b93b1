use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::{Duration as StdDuration, Instant};

use alerting::{RuleDefaults, Rules};
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use lambda_runtime::LambdaEvent;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use storage::outbox::{Enqueued, RuleCooldown};
use storage::{PgStore, Run, RunOutcome};
use tracing::{info, instrument, warn};
use transforms::{AlertConfig, CleanConfig};
use uuid::Uuid;

use crate::io::{self, instants, ints, strings};
use crate::store::{Snapshot, TransformStore};
use crate::{Config, TransformError};

/// The invocation payload; unknown fields (an EventBridge event's) are ignored.
#[derive(Debug, Default, Deserialize)]
pub struct TransformRequest {
    /// Rebuild every table from every observation.
    #[serde(default)]
    pub full: bool,
    /// Queue every new alert for sending, however old (a rebuild that should
    /// tell people about history); by default only those within `ALERT_NOTIFY_MAX_AGE`.
    #[serde(default)]
    pub notify_history: bool,
    /// Send none of the alerts this run finds: record them all as historical
    /// (wins over `notify_history`). For observations that are not today's
    /// market however recent their instants: the shipped candles loaded as
    /// sample history, moved to end now.
    #[serde(default)]
    pub notify_none: bool,
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
    /// Notifications queued for the notify step, and those of alerts too old to send.
    pub notifications: Enqueued,
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

/// The transform job with its settings and store, built once per process.
#[derive(Debug, Clone)]
pub struct Transform<S = PgStore> {
    pub store: S,
    pub clean: CleanConfig,
    pub rules: Rules,
    /// The channels each new alert is queued for (`sns`, `webhook:NAME`).
    pub channels: Vec<String>,
    /// Only alerts this recent when first seen are queued to be sent.
    pub notify_max_age: StdDuration,
    /// Rows ingested within this many seconds wait for the next run (see `io::watermarks`).
    pub watermark_lag_secs: f64,
}

impl<S> Transform<S> {
    /// The job with the defaults of every setting: one rule, `default` (±5 % in
    /// 1 h), no channels (tests, benchmarks).
    pub fn with_defaults(store: S) -> Self {
        Self {
            store,
            clean: CleanConfig::default(),
            rules: Rules::from_defaults(default_rule()),
            channels: Vec::new(),
            notify_max_age: StdDuration::from_secs(2 * 3600),
            watermark_lag_secs: 30.0,
        }
    }
}

/// `ALERT_THRESHOLD_PCT` and `ALERT_WINDOW_HOURS`'s defaults.
fn default_rule() -> RuleDefaults {
    let AlertConfig { threshold, window } = AlertConfig::default();
    RuleDefaults { threshold, window }
}

impl Transform {
    pub async fn from_config(config: &Config) -> Result<Self, TransformError> {
        Self::with_store(config, PgStore::connect(&config.database).await?)
    }

    /// The job on an existing pool (a process that already has one).
    pub fn with_store(config: &Config, store: PgStore) -> Result<Self, TransformError> {
        let t = &config.tuning;
        let clean = CleanConfig { max_deviation: t.max_deviation, neighbourhood: t.neighbourhood };
        clean.validate().map_err(TransformError::Config)?;
        let defaults = RuleDefaults { threshold: t.alert_threshold, window: t.alert_window };
        let rules = match (&t.alert_rules_file, &t.alert_rules) {
            (Some(path), None) => Rules::load(path, defaults)?,
            (None, Some(text)) => Rules::parse(text, std::path::Path::new("ALERT_RULES"), defaults)?,
            (None, None) => Rules::from_defaults(defaults),
            (Some(_), Some(_)) => return Err(TransformError::TwoRuleSources),
        };
        for rule in rules.iter() {
            alert_config(rule).validate().map_err(TransformError::Config)?;
        }
        info!(
            rules = rules.len(),
            channels = ?config.channels.names(),
            file = ?t.alert_rules_file,
            "alert rules loaded"
        );
        Ok(Self {
            store,
            clean,
            rules,
            channels: config.channels.names(),
            notify_max_age: t.notify_max_age,
            watermark_lag_secs: t.watermark_lag.as_secs_f64(),
        })
    }
}

fn alert_config(rule: &alerting::Rule) -> AlertConfig {
    AlertConfig { threshold: rule.threshold, window: rule.window }
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

impl<S: TransformStore> Transform<S> {
    /// Runs once and records the run in `pipeline_runs`.
    #[instrument(skip_all, fields(full = request.full))]
    pub async fn run(&self, request: TransformRequest) -> Result<TransformReport, TransformError> {
        let run = Run::start(&self.store, "transform").await?;
        let result = self.transform(run.id(), &request).await;
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

    async fn transform(
        &self,
        run_id: Uuid,
        request: &TransformRequest,
    ) -> Result<TransformReport, TransformError> {
        let full = request.full;
        let started = Instant::now();
        // A full rebuild reads everything stored up to now, whoever asks for it
        // (the CLI's --full or the event's {"full": true}).
        let lag_secs = if full { 0.0 } else { self.watermark_lag_secs };
        let mut snapshot = self.store.begin().await?;
        let marks = snapshot.watermarks(lag_secs).await?;
        let recompute: Option<BTreeSet<NaiveDate>> = if full {
            None
        } else {
            let touched = snapshot.affected_days(&marks).await?;
            Some(touched.iter().flat_map(|d| [*d - Duration::days(1), *d, *d + Duration::days(1)]).collect())
        };
        let (from, to) = match &recompute {
            None => (None, None),
            Some(days) => match (days.first(), days.last()) {
                (Some(first), Some(last)) => {
                    // One day of context either side: previous closes, cleaning windows.
                    (Some(midnight(*first - Duration::days(1))), Some(midnight(*last + Duration::days(2))))
                }
                _ => {
                    // Nothing new: only the watermarks move.
                    snapshot.write_watermarks(&marks).await?;
                    snapshot.commit().await?;
                    return Ok(TransformReport {
                        run_id,
                        full,
                        elapsed_ms: started.elapsed().as_millis() as u64,
                        ..Default::default()
                    });
                }
            },
        };
        let observations = io::frame(snapshot.load(&marks, from, to).await?)?;
        let observed = observations.height();
        let load_ms = started.elapsed().as_millis() as u64;
        let computing = Instant::now();
        let outputs = compute(observations, &self.clean, &self.rules, recompute.as_ref())?;
        let compute_ms = computing.elapsed().as_millis() as u64;
        let writing = Instant::now();
        let days = match &recompute {
            Some(days) => days.len(),
            None => distinct_days(&outputs.hourly)?,
        };
        snapshot.write(run_id, recompute.as_ref(), &outputs).await?;
        // In the same transaction as the alerts: a notification exists if and only if its alert does.
        let cooldowns: Vec<RuleCooldown> = self
            .rules
            .iter()
            .map(|r| RuleCooldown {
                rule: r.name.clone(),
                cooldown_secs: i32::try_from(r.cooldown.as_secs()).unwrap_or(i32::MAX),
            })
            .collect();
        let send_from = if request.notify_none {
            Some(DateTime::<Utc>::MAX_UTC)
        } else if request.notify_history {
            None
        } else {
            Some(Utc::now() - Duration::from_std(self.notify_max_age).unwrap_or(Duration::MAX))
        };
        let notifications = snapshot.enqueue(run_id, &self.channels, &cooldowns, send_from).await?;
        snapshot.write_watermarks(&marks).await?;
        snapshot.commit().await?;
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
            notifications,
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
    rules: &Rules,
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
    // Each rule's alerts (its hourly closes, and CoinGecko's 24 h change), tagged with its name.
    let mut per_rule = Vec::with_capacity(2 * rules.len());
    for rule in rules.iter() {
        let config = alert_config(rule);
        for frame in [
            transforms::alerts(hourly.clone().lazy(), &config),
            transforms::snapshot_alerts(clean.clone().lazy(), &config),
        ] {
            let frame = match &rule.coins {
                None => frame,
                Some(coins) => {
                    let ids: Vec<&str> = coins.iter().map(domain::CoinId::as_str).collect();
                    frame.filter(
                        col("coin").is_in(lit(Series::new("coins".into(), ids)).implode(false), false),
                    )
                }
            };
            per_rule.push(frame.with_column(lit(rule.name.as_str()).alias("rule")));
        }
    }
    let alerts = concat(per_rule, UnionArgs::default())?.collect()?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::floats;

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
                bar: None,
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
        let out =
            compute(frame, &CleanConfig::default(), &Rules::from_defaults(default_rule()), None).unwrap();
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
        let out = compute(
            frame,
            &CleanConfig::default(),
            &Rules::from_defaults(default_rule()),
            Some(&BTreeSet::from([day])),
        )
        .unwrap();
        assert_eq!(out.hourly.height(), 2, "the two hours of the 31st");
        assert_eq!(out.alerts.height(), 1, "the jump at 00:00 on the 31st");
    }

    #[test]
    fn midnight_is_the_start_of_the_utc_day() {
        let day = NaiveDate::from_ymd_opt(2024, 3, 31).unwrap();
        assert_eq!(midnight(day).to_rfc3339(), "2024-03-31T00:00:00+00:00");
    }

    type Range = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

    /// The transform's store in memory: observations with the instant each
    /// was ingested, one input's watermark, and what runs wrote.
    #[derive(Debug, Default)]
    struct Memory {
        ticks: Vec<(domain::Tick, DateTime<Utc>)>,
        now: Option<DateTime<Utc>>,
        mark: std::sync::Mutex<Option<DateTime<Utc>>>,
        /// The (from, to) of each load.
        loads: std::sync::Mutex<Vec<Range>>,
        writes: std::sync::Mutex<Vec<(Option<BTreeSet<NaiveDate>>, usize)>>,
        runs: std::sync::Mutex<Vec<storage::RunOutcome>>,
    }

    #[derive(Debug, Clone)]
    struct Fake(std::sync::Arc<Memory>);

    #[derive(Debug)]
    struct FakeSnapshot(std::sync::Arc<Memory>);

    impl storage::RunLog for Fake {
        async fn open(&self, _run: &Run) -> Result<(), storage::StorageError> {
            Ok(())
        }
        async fn close(&self, _run: &Run, outcome: &RunOutcome) -> Result<(), storage::StorageError> {
            self.0.runs.lock().unwrap().push(outcome.clone());
            Ok(())
        }
    }

    impl TransformStore for Fake {
        type Snapshot = FakeSnapshot;
        async fn begin(&self) -> Result<FakeSnapshot, TransformError> {
            Ok(FakeSnapshot(self.0.clone()))
        }
    }

    impl Snapshot for FakeSnapshot {
        async fn watermarks(
            &mut self,
            _lag_secs: f64,
        ) -> Result<Vec<storage::inputs::Watermark>, TransformError> {
            let since = *self.0.mark.lock().unwrap();
            Ok(vec![storage::inputs::Watermark {
                input: String::from("price_ticks"),
                since,
                until: self.0.now,
            }])
        }
        async fn affected_days(
            &mut self,
            marks: &[storage::inputs::Watermark],
        ) -> Result<BTreeSet<NaiveDate>, TransformError> {
            let m = &marks[0];
            Ok(self
                .0
                .ticks
                .iter()
                .filter(|(_, at)| m.since.is_none_or(|s| *at > s) && m.until.is_some_and(|u| *at <= u))
                .map(|(t, _)| t.event_time.date_naive())
                .collect())
        }
        async fn load(
            &mut self,
            _marks: &[storage::inputs::Watermark],
            from: Option<DateTime<Utc>>,
            to: Option<DateTime<Utc>>,
        ) -> Result<storage::inputs::Observations, TransformError> {
            self.0.loads.lock().unwrap().push((from, to));
            let ticks = self.0.ticks.iter().map(|(t, _)| t).filter(move |t| {
                from.is_none_or(|f| t.event_time >= f) && to.is_none_or(|e| t.event_time < e)
            });
            Ok(io::tick_observations(ticks))
        }
        async fn write(
            &mut self,
            _run_id: Uuid,
            days: Option<&BTreeSet<NaiveDate>>,
            outputs: &Outputs,
        ) -> Result<(), TransformError> {
            self.0.writes.lock().unwrap().push((days.cloned(), outputs.hourly.height()));
            Ok(())
        }
        async fn enqueue(
            &mut self,
            _run_id: Uuid,
            channels: &[String],
            _rules: &[RuleCooldown],
            _send_from: Option<DateTime<Utc>>,
        ) -> Result<Enqueued, TransformError> {
            assert!(channels.is_empty(), "the fake has no channels");
            Ok(Enqueued::default())
        }
        async fn write_watermarks(
            &mut self,
            marks: &[storage::inputs::Watermark],
        ) -> Result<(), TransformError> {
            *self.0.mark.lock().unwrap() = marks[0].until;
            Ok(())
        }
        async fn commit(self) -> Result<(), TransformError> {
            Ok(())
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    /// Hourly bitcoin ticks on 2024-03-30 and 2024-03-31 ingested long ago, and
    /// two on 2024-04-05 ingested after the watermark.
    fn memory(mark: &str) -> Memory {
        let old = utc("2024-04-01T00:00:00Z");
        let new = utc("2024-04-06T00:00:00Z");
        let mut all: Vec<(domain::Tick, DateTime<Utc>)> =
            ticks("bitcoin", &[100.0; 26]).into_iter().map(|t| (t, old)).collect();
        for (i, price) in [100.0, 101.0].into_iter().enumerate() {
            let mut t = all[0].0.clone();
            t.event_time = utc("2024-04-05T10:00:00Z") + Duration::hours(i as i64);
            t.price = price;
            all.push((t, new));
        }
        Memory {
            ticks: all,
            now: Some(utc("2024-04-06T12:00:00Z")),
            mark: std::sync::Mutex::new(Some(utc(mark))),
            ..Memory::default()
        }
    }

    fn job(memory: Memory) -> Transform<Fake> {
        Transform::with_defaults(Fake(std::sync::Arc::new(memory)))
    }

    // Polars blocks in place: a multi-threaded runtime, as the function's.
    #[tokio::test(flavor = "multi_thread")]
    async fn an_incremental_run_recomputes_the_days_new_rows_touch_and_their_neighbours() {
        let job = job(memory("2024-04-02T00:00:00Z"));
        let report = job.run(TransformRequest::default()).await.unwrap();
        let m = &job.store.0;
        let days = BTreeSet::from([day("2024-04-04"), day("2024-04-05"), day("2024-04-06")]);
        assert_eq!(*m.writes.lock().unwrap(), vec![(Some(days), 2)], "the two new hours, nothing older");
        // One more day of context either side of the recomputed days.
        assert_eq!(
            *m.loads.lock().unwrap(),
            vec![(Some(utc("2024-04-03T00:00:00Z")), Some(utc("2024-04-08T00:00:00Z")))]
        );
        assert_eq!(*m.mark.lock().unwrap(), m.now, "the watermark moves to this run's");
        assert_eq!((report.days, report.observations, report.hourly_rows), (3, 2, 2));
        assert_eq!(m.runs.lock().unwrap()[0].status, storage::RunStatus::Succeeded);
    }

    // Polars blocks in place: a multi-threaded runtime, as the function's.
    #[tokio::test(flavor = "multi_thread")]
    async fn with_nothing_new_only_the_watermark_moves() {
        let job = job(memory("2024-04-06T06:00:00Z"));
        let report = job.run(TransformRequest::default()).await.unwrap();
        let m = &job.store.0;
        assert!(m.writes.lock().unwrap().is_empty() && m.loads.lock().unwrap().is_empty());
        assert_eq!(*m.mark.lock().unwrap(), m.now);
        assert_eq!((report.days, report.observations), (0, 0));
    }

    // Polars blocks in place: a multi-threaded runtime, as the function's.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_full_run_reads_everything_and_replaces_every_day() {
        let job = job(memory("2024-04-06T06:00:00Z"));
        let report = job.run(TransformRequest { full: true, ..Default::default() }).await.unwrap();
        let m = &job.store.0;
        assert_eq!(*m.loads.lock().unwrap(), vec![(None, None)]);
        assert_eq!(*m.writes.lock().unwrap(), vec![(None, 28)], "every hour of every day");
        assert_eq!((report.days, report.observations), (3, 28));
    }
}
