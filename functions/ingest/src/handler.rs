use std::future::Future;

use chrono::{DateTime, Utc};
use coingecko::{CoinGeckoError, Fetched};
use domain::{CoinId, MarketSnapshot, VsCurrency};
use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use storage::{ObjectStore, PgStore, Run, RunLog, RunOutcome, S3Store, SnapshotStore};
use telemetry::failure::Classify;
use tracing::{info, instrument, warn};
use uuid::Uuid;

use crate::{Config, IngestError};

/// Where market snapshots come from.
pub trait MarketSource {
    fn fetch_markets(
        &self,
        coins: &[CoinId],
        vs_currency: &VsCurrency,
    ) -> impl Future<Output = Result<Fetched<Vec<MarketSnapshot>>, CoinGeckoError>> + Send;
}

impl MarketSource for coingecko::Client {
    async fn fetch_markets(
        &self,
        coins: &[CoinId],
        vs_currency: &VsCurrency,
    ) -> Result<Fetched<Vec<MarketSnapshot>>, CoinGeckoError> {
        self.coins_markets(coins, vs_currency).await
    }
}

/// The invocation payload. Every field is optional, and unknown fields are
/// ignored, so an EventBridge scheduled event invokes a default ingest.
#[derive(Debug, Default, Deserialize)]
pub struct IngestRequest {
    /// Coins to fetch instead of the configured ones.
    #[serde(default)]
    pub coins: Option<Vec<CoinId>>,
    #[serde(default)]
    pub vs_currency: Option<VsCurrency>,
}

/// What one ingest did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IngestReport {
    pub run_id: Uuid,
    /// Snapshots in the response.
    pub rows_in: usize,
    /// Snapshots that were new (0 when the same response is ingested again).
    pub rows_out: u64,
    /// Where the raw response was stored.
    pub raw_key: String,
    /// Requested coins the response did not include.
    pub missing: Vec<CoinId>,
}

/// The ingest job with its clients, built once per process.
#[derive(Debug)]
pub struct Ingest<S, D, O> {
    pub source: S,
    pub store: D,
    pub objects: O,
    pub coins: Vec<CoinId>,
    pub vs_currency: VsCurrency,
}

impl Ingest<coingecko::Client, PgStore, S3Store> {
    /// Builds the real clients from the configuration.
    pub async fn from_config(config: &Config) -> Result<Self, IngestError> {
        let source = coingecko::Client::new(&config.coingecko)?;
        let store = PgStore::connect(&config.database).await?;
        let objects = S3Store::new(storage::s3_client(&config.s3).await, config.raw_bucket.clone());
        Ok(Self {
            source,
            store,
            objects,
            coins: config.coins.clone(),
            vs_currency: config.vs_currency.clone(),
        })
    }
}

/// The Lambda handler: parses the payload and runs one ingest.
pub async fn handle<S, D, O>(
    ingest: &Ingest<S, D, O>,
    event: LambdaEvent<serde_json::Value>,
) -> Result<IngestReport, IngestError>
where
    S: MarketSource + Sync,
    D: RunLog + SnapshotStore + Sync,
    O: ObjectStore + Sync,
{
    let request: IngestRequest = match event.payload {
        serde_json::Value::Null => IngestRequest::default(),
        payload => serde_json::from_value(payload).map_err(|e| IngestError::BadRequest(e.to_string()))?,
    };
    ingest.run(request).await
}

impl<S, D, O> Ingest<S, D, O>
where
    S: MarketSource + Sync,
    D: RunLog + SnapshotStore + Sync,
    O: ObjectStore + Sync,
{
    /// Fetches, stores the raw body, then the parsed rows, and records the run.
    ///
    /// Order matters: the response is parsed whole before anything is written,
    /// so a bad response writes nothing; the raw object is written before the
    /// rows, so every stored row can be traced to the body it came from.
    #[instrument(skip_all, fields(run_id))]
    pub async fn run(&self, request: IngestRequest) -> Result<IngestReport, IngestError> {
        let coins = request.coins.unwrap_or_else(|| self.coins.clone());
        let vs_currency = request.vs_currency.unwrap_or_else(|| self.vs_currency.clone());
        if coins.is_empty() {
            return Err(IngestError::BadRequest(String::from("`coins` is empty: name at least one coin")));
        }
        let run = Run::start(&self.store, "ingest").await?;
        tracing::Span::current().record("run_id", tracing::field::display(run.id()));
        let result = self.ingest(run.id(), &coins, &vs_currency).await;
        let result = run
            .finish(&self.store, result, |result| match result {
                Ok(report) => RunOutcome::succeeded(
                    report.rows_in as i64,
                    report.rows_out as i64,
                    serde_json::json!({ "raw_key": report.raw_key, "missing": report.missing }),
                ),
                Err(err) => RunOutcome::failed(err, serde_json::json!({ "retryable": err.is_retryable() })),
            })
            .await;
        match &result {
            Ok(report) => {
                info!(rows_in = report.rows_in, rows = report.rows_out, key = %report.raw_key, "ingest done")
            }
            Err(err) => {
                warn!(error = %telemetry::failure::Chain(err), retryable = err.is_retryable(), "ingest failed")
            }
        }
        result
    }

    async fn ingest(
        &self,
        run_id: Uuid,
        coins: &[CoinId],
        vs_currency: &VsCurrency,
    ) -> Result<IngestReport, IngestError> {
        let fetched = self.source.fetch_markets(coins, vs_currency).await?;
        let missing: Vec<CoinId> =
            coins.iter().filter(|c| !fetched.value.iter().any(|s| &s.coin == *c)).cloned().collect();
        if !missing.is_empty() {
            warn!(?missing, "CoinGecko returned no data for some requested coins (unknown ids?)");
        }
        let raw_key = raw_key(fetched.fetched_at, run_id);
        self.objects.put(&raw_key, fetched.body.clone(), "application/json").await?;
        let rows_out = self.store.upsert_snapshots(run_id, &fetched.value).await?;
        Ok(IngestReport { run_id, rows_in: fetched.value.len(), rows_out, raw_key, missing })
    }
}

/// Raw objects are keyed by ingestion time, Hive-style (`dt=`), so Athena or
/// Spark can read the landing zone as a partitioned table. The zone is an
/// append-only audit log: every fetch is kept as fetched, while the tables
/// stay idempotent.
pub(crate) fn raw_key(fetched_at: DateTime<Utc>, run_id: Uuid) -> String {
    format!(
        "coingecko/coins_markets/dt={}/{}-{}.json",
        fetched_at.format("%Y-%m-%d"),
        fetched_at.format("%H%M%S%.3fZ"),
        run_id.simple()
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use bytes::Bytes;
    use storage::StorageError;

    use super::*;

    /// In-memory stand-ins for the real services; the real ones are exercised
    /// by the integration tests in `tests/`.
    #[derive(Default)]
    struct Fakes {
        runs: Mutex<Vec<(Uuid, Option<RunOutcome>)>>,
        rows: Mutex<Vec<MarketSnapshot>>,
        objects: Mutex<Vec<String>>,
        fail_objects: bool,
    }

    struct FakeSource(Result<&'static [u8], u16>);

    impl MarketSource for FakeSource {
        async fn fetch_markets(
            &self,
            _coins: &[CoinId],
            vs: &VsCurrency,
        ) -> Result<Fetched<Vec<MarketSnapshot>>, CoinGeckoError> {
            let body = self.0.map_err(|status| CoinGeckoError::Api {
                endpoint: "/coins/markets".into(),
                status,
                code: None,
                message: "nope".into(),
            })?;
            let now = Utc::now();
            let value =
                coingecko::parse_markets(body, vs, now).map_err(|reason| CoinGeckoError::Malformed {
                    endpoint: "/coins/markets".into(),
                    reason,
                    excerpt: String::new(),
                })?;
            Ok(Fetched { body: Bytes::from_static(body), fetched_at: now, value })
        }
    }

    impl RunLog for &Fakes {
        async fn open(&self, run: &Run) -> Result<(), StorageError> {
            self.runs.lock().unwrap().push((run.id(), None));
            Ok(())
        }
        async fn close(&self, run: &Run, outcome: &RunOutcome) -> Result<(), StorageError> {
            for r in self.runs.lock().unwrap().iter_mut().filter(|r| r.0 == run.id()) {
                r.1 = Some(outcome.clone());
            }
            Ok(())
        }
    }

    impl SnapshotStore for &Fakes {
        async fn upsert_snapshots(
            &self,
            _run: Uuid,
            snapshots: &[MarketSnapshot],
        ) -> Result<u64, StorageError> {
            let mut rows = self.rows.lock().unwrap();
            let mut added = 0;
            for s in snapshots {
                if !rows.iter().any(|r| r.coin == s.coin && r.observed_at == s.observed_at) {
                    rows.push(s.clone());
                    added += 1;
                }
            }
            Ok(added)
        }
    }

    impl ObjectStore for &Fakes {
        async fn put(&self, key: &str, _body: Bytes, _content_type: &str) -> Result<(), StorageError> {
            if self.fail_objects {
                return Err(StorageError::S3 {
                    op: "put",
                    bucket: "b".into(),
                    key: key.into(),
                    source: "down".into(),
                });
            }
            self.objects.lock().unwrap().push(key.to_owned());
            Ok(())
        }
    }

    const TWO: &[u8] = br#"[
        {"id":"bitcoin","symbol":"btc","name":"Bitcoin","current_price":29000.5,"last_updated":"2023-07-28T09:44:32.396Z"},
        {"id":"ethereum","symbol":"eth","name":"Ethereum","current_price":null,"last_updated":"2023-07-28T09:44:31.000Z"}]"#;

    fn ingest(fakes: &Fakes, source: FakeSource) -> Ingest<FakeSource, &Fakes, &Fakes> {
        Ingest {
            source,
            store: fakes,
            objects: fakes,
            coins: CoinId::parse_list("bitcoin,ethereum,solana").unwrap(),
            vs_currency: VsCurrency::usd(),
        }
    }

    fn event(payload: serde_json::Value) -> LambdaEvent<serde_json::Value> {
        LambdaEvent::new(payload, lambda_runtime::Context::default())
    }

    #[tokio::test]
    async fn stores_raw_body_and_rows_and_records_the_run() {
        let fakes = Fakes::default();
        let job = ingest(&fakes, FakeSource(Ok(TWO)));
        let report = handle(&job, event(serde_json::Value::Null)).await.unwrap();
        assert_eq!((report.rows_in, report.rows_out), (2, 2));
        assert_eq!(report.missing, vec![CoinId::parse("solana").unwrap()]);
        assert_eq!(*fakes.objects.lock().unwrap(), vec![report.raw_key.clone()]);
        let runs = fakes.runs.lock().unwrap();
        let outcome = runs[0].1.as_ref().unwrap();
        assert_eq!(outcome.status, storage::RunStatus::Succeeded);
        assert_eq!((outcome.rows_in, outcome.rows_out), (2, 2));
    }

    #[tokio::test]
    async fn an_eventbridge_scheduled_event_runs_a_default_ingest() {
        let fakes = Fakes::default();
        let job = ingest(&fakes, FakeSource(Ok(TWO)));
        let scheduled = serde_json::json!({
            "version": "0", "id": "x", "detail-type": "Scheduled Event", "source": "aws.events",
            "time": "2026-11-25T10:00:00Z", "region": "us-east-1", "resources": [], "detail": {}
        });
        assert!(handle(&job, event(scheduled)).await.is_ok());
    }

    #[tokio::test]
    async fn a_bad_coin_in_the_payload_is_a_bad_request() {
        let fakes = Fakes::default();
        let job = ingest(&fakes, FakeSource(Ok(TWO)));
        let err = handle(&job, event(serde_json::json!({"coins": ["BTC"]}))).await.unwrap_err();
        assert!(matches!(err, IngestError::BadRequest(_)), "{err}");
        assert!(fakes.runs.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_malformed_response_writes_nothing_and_fails_the_run() {
        let fakes = Fakes::default();
        let job = ingest(&fakes, FakeSource(Ok(br#"[{"id":"bitcoin","symbol":"btc""#)));
        let err = job.run(IngestRequest::default()).await.unwrap_err();
        assert!(err.to_string().contains("does not parse"), "{err}");
        assert!(fakes.objects.lock().unwrap().is_empty());
        assert!(fakes.rows.lock().unwrap().is_empty());
        let runs = fakes.runs.lock().unwrap();
        let outcome = runs[0].1.as_ref().unwrap();
        assert_eq!(outcome.status, storage::RunStatus::Failed);
        assert!(outcome.error.as_deref().unwrap().contains("does not parse"));
    }

    #[tokio::test]
    async fn rows_are_not_written_when_the_raw_object_cannot_be() {
        let fakes = Fakes { fail_objects: true, ..Fakes::default() };
        let job = ingest(&fakes, FakeSource(Ok(TWO)));
        let err = job.run(IngestRequest::default()).await.unwrap_err();
        assert!(err.is_retryable());
        assert!(fakes.rows.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn api_refusals_are_permanent() {
        let fakes = Fakes::default();
        let job = ingest(&fakes, FakeSource(Err(401)));
        let err = job.run(IngestRequest::default()).await.unwrap_err();
        assert!(!err.is_retryable());
        let diagnostic = lambda_runtime::Diagnostic::from(err);
        assert_eq!(diagnostic.error_type, "Ingest.Permanent");
    }

    #[test]
    fn raw_keys_are_partitioned_by_day() {
        let at = DateTime::parse_from_rfc3339("2026-11-25T09:05:07.250Z").unwrap().with_timezone(&Utc);
        let id = Uuid::nil();
        assert_eq!(
            raw_key(at, id),
            "coingecko/coins_markets/dt=2026-11-25/090507.250Z-00000000000000000000000000000000.json"
        );
    }
}
