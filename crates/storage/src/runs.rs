//! Run records: the one way anything writes `pipeline_runs`.
//!
//! A [`Run`] is begun when a function or step starts and is finished with its
//! outcome. Long runs (ingest, backfill, transform, site, history) are also
//! written as `running` when they start, so the Runs page shows them in flight;
//! a consumer batch is written once, with its ticks, in their transaction. All
//! of them end in the same statement, [`CLOSE`].

use std::future::Future;

use chrono::{DateTime, Utc};
use telemetry::failure::Chain;
use uuid::Uuid;

use crate::{PgStore, StorageError};

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Succeeded,
    Failed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

/// The end of a run, as recorded in `pipeline_runs`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    pub status: RunStatus,
    pub rows_in: i64,
    pub rows_out: i64,
    /// The error with its causes, for a failed run.
    pub error: Option<String>,
    /// Anything else worth keeping (the raw object key, missing coins…).
    pub details: serde_json::Value,
}

impl RunOutcome {
    pub fn succeeded(rows_in: i64, rows_out: i64, details: serde_json::Value) -> Self {
        Self { status: RunStatus::Succeeded, rows_in, rows_out, error: None, details }
    }

    /// A failed run: the error is kept with all its causes.
    pub fn failed(err: &(dyn std::error::Error + 'static), details: serde_json::Value) -> Self {
        Self {
            status: RunStatus::Failed,
            rows_in: 0,
            rows_out: 0,
            error: Some(Chain(err).to_string()),
            details,
        }
    }
}

/// One run of a function or step.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    id: Uuid,
    function: &'static str,
    started_at: DateTime<Utc>,
}

impl Run {
    /// A run of `function` starting now; nothing is written yet.
    pub fn begin(function: &'static str) -> Self {
        Self { id: Uuid::new_v4(), function, started_at: Utc::now() }
    }

    /// Begins a run and records it as `running`.
    #[must_use = "a started run must be finished with its outcome"]
    pub async fn start(log: &impl RunLog, function: &'static str) -> Result<Self, StorageError> {
        let run = Self::begin(function);
        log.open(&run).await?;
        Ok(run)
    }

    pub fn id(&self) -> Uuid {
        self.id
    }

    pub fn function(&self) -> &'static str {
        self.function
    }

    pub fn started_at(&self) -> DateTime<Utc> {
        self.started_at
    }

    /// Records the outcome `outcome` makes of the run's result, and hands the
    /// result back. If the run worked but its record cannot be written, that
    /// is the run's error: a run without a record looks, to the Runs page and
    /// the scheduler, as if it never ran. If the run failed anyway, its own
    /// error is what the caller gets, and the failed record is only logged.
    pub async fn finish<T, E>(
        self,
        log: &impl RunLog,
        result: Result<T, E>,
        outcome: impl FnOnce(&Result<T, E>) -> RunOutcome,
    ) -> Result<T, E>
    where
        E: From<StorageError>,
    {
        let recorded = log.close(&self, &outcome(&result)).await;
        match (result, recorded) {
            (Ok(value), Ok(())) => Ok(value),
            (Ok(_), Err(e)) => Err(e.into()),
            (Err(e), recorded) => {
                if let Err(record) = recorded {
                    tracing::warn!(
                        function = self.function,
                        run_id = %self.id,
                        error = %Chain(&record),
                        "could not record the end of a failed run"
                    );
                }
                Err(e)
            }
        }
    }
}

/// The runs table.
pub trait RunLog {
    /// Records `run` as `running`.
    fn open(&self, run: &Run) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// Records how `run` ended, whether or not it was opened.
    fn close(&self, run: &Run, outcome: &RunOutcome)
    -> impl Future<Output = Result<(), StorageError>> + Send;
}

impl RunLog for PgStore {
    async fn open(&self, run: &Run) -> Result<(), StorageError> {
        self.client()
            .await?
            .execute(OPEN, &[&run.id, &run.function, &run.started_at])
            .await
            .map_err(|e| StorageError::query("record the start of a run", e))?;
        Ok(())
    }

    async fn close(&self, run: &Run, outcome: &RunOutcome) -> Result<(), StorageError> {
        crate::runs::close(&self.client().await?, run, outcome).await
    }
}

/// Records a run as `running`.
pub(crate) const OPEN: &str = "INSERT INTO pipeline_runs (run_id, function, started_at) VALUES ($1, $2, $3)";

/// Records how a run ended; inserts its row if it was never opened.
pub(crate) const CLOSE: &str =
    "INSERT INTO pipeline_runs (run_id, function, started_at, finished_at, status, rows_in, rows_out, error, details)
     VALUES ($1, $2, $3, now(), $4, $5, $6, $7, $8)
     ON CONFLICT (run_id) DO UPDATE
        SET finished_at = now(), status = EXCLUDED.status, rows_in = EXCLUDED.rows_in,
            rows_out = EXCLUDED.rows_out, error = EXCLUDED.error, details = EXCLUDED.details";

/// [`CLOSE`] on `client`, which may be a transaction.
pub(crate) async fn close(
    client: &impl deadpool_postgres::GenericClient,
    run: &Run,
    outcome: &RunOutcome,
) -> Result<(), StorageError> {
    client
        .execute(
            CLOSE,
            &[
                &run.id,
                &run.function,
                &run.started_at,
                &outcome.status.as_str(),
                &outcome.rows_in,
                &outcome.rows_out,
                &outcome.error,
                &outcome.details,
            ],
        )
        .await
        .map_err(|e| StorageError::query("record the end of a run", e))?;
    Ok(())
}

/// A run as the Runs page shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub function: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub status: String,
    pub rows_in: Option<i64>,
    pub rows_out: Option<i64>,
    pub error: Option<String>,
    /// What the run recorded besides its rows (the feed's reconnects and gaps…).
    pub details: serde_json::Value,
}

/// The last `per_function` runs of every function, newest first.
pub async fn recent(db: &tokio_postgres::Client, per_function: i64) -> Result<Vec<RunRecord>, StorageError> {
    let rows = db
        .query(
            "SELECT function, started_at, finished_at, status, rows_in, rows_out, error, details FROM (
                 SELECT *, row_number() OVER (PARTITION BY function ORDER BY started_at DESC) AS n
                 FROM pipeline_runs) r
             WHERE n <= $1 ORDER BY started_at DESC, function",
            &[&per_function],
        )
        .await
        .map_err(|e| StorageError::query("read pipeline runs", e))?;
    Ok(rows
        .iter()
        .map(|row| RunRecord {
            function: row.get(0),
            started_at: row.get(1),
            finished_at: row.get(2),
            status: row.get(3),
            rows_in: row.get(4),
            rows_out: row.get(5),
            error: row.get(6),
            details: row.get(7),
        })
        .collect())
}

/// When `function` last finished successfully (`None`: never).
pub async fn last_success(
    db: &tokio_postgres::Client,
    function: &str,
) -> Result<Option<DateTime<Utc>>, StorageError> {
    let row = db
        .query_one(
            "SELECT max(finished_at) FROM pipeline_runs WHERE function = $1 AND status = 'succeeded'",
            &[&function],
        )
        .await
        .map_err(|e| StorageError::query("read the last successful run", e))?;
    Ok(row.get(0))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use secrecy::SecretString;

    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum WorkError {
        #[error("the work failed")]
        Failed(#[source] std::io::Error),
        #[error(transparent)]
        Storage(#[from] StorageError),
    }

    /// Keeps outcomes in memory; `close` fails when told to.
    #[derive(Default)]
    struct Log {
        closed: Mutex<Vec<RunOutcome>>,
        close_fails: bool,
    }

    impl RunLog for Log {
        async fn open(&self, _run: &Run) -> Result<(), StorageError> {
            Ok(())
        }
        async fn close(&self, _run: &Run, outcome: &RunOutcome) -> Result<(), StorageError> {
            if self.close_fails {
                return Err(StorageError::Config(String::from("the runs table is gone")));
            }
            self.closed.lock().unwrap().push(outcome.clone());
            Ok(())
        }
    }

    fn outcome(result: &Result<u32, WorkError>) -> RunOutcome {
        match result {
            Ok(n) => RunOutcome::succeeded(i64::from(*n), i64::from(*n), serde_json::Value::Null),
            Err(e) => RunOutcome::failed(e, serde_json::json!({ "why": "test" })),
        }
    }

    #[tokio::test]
    async fn a_failed_run_is_recorded_with_every_cause() {
        let log = Log::default();
        let err = std::io::Error::other("disk on fire");
        let result = Run::begin("test").finish(&log, Err(WorkError::Failed(err)), outcome).await;
        assert!(matches!(result, Err(WorkError::Failed(_))));
        let closed = log.closed.lock().unwrap();
        assert_eq!(closed[0].status, RunStatus::Failed);
        assert_eq!(closed[0].error.as_deref(), Some("the work failed: disk on fire"));
    }

    #[tokio::test]
    async fn work_that_left_no_record_is_an_error_but_a_failure_keeps_its_own() {
        let log = Log { close_fails: true, ..Log::default() };
        let result = Run::begin("test").finish(&log, Ok(3), outcome).await;
        assert!(matches!(result, Err(WorkError::Storage(StorageError::Config(_)))), "{result:?}");
        let err = std::io::Error::other("disk on fire");
        let result = Run::begin("test").finish(&log, Err(WorkError::Failed(err)), outcome).await;
        assert!(matches!(result, Err(WorkError::Failed(_))), "{result:?}");
    }

    #[tokio::test]
    async fn postgres_keeps_opened_and_unopened_runs_alike() {
        let url = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| String::from("postgres://postgres@127.0.0.1:55432/crypto"));
        let name = format!("runs_{}", Uuid::new_v4().simple());
        let admin = crate::PgConfig::from_url(SecretString::from(url));
        let (_, store) = crate::create_database(&admin, &name).await.unwrap();
        let row = |id: Uuid| {
            let store = store.clone();
            async move {
                let r = store
                    .client()
                    .await
                    .unwrap()
                    .query_one(
                        "SELECT function, status, rows_out, error, finished_at IS NOT NULL FROM pipeline_runs WHERE run_id = $1",
                        &[&id],
                    )
                    .await
                    .unwrap();
                (
                    r.get::<_, String>(0),
                    r.get::<_, String>(1),
                    r.get::<_, Option<i64>>(2),
                    r.get::<_, Option<String>>(3),
                    r.get::<_, bool>(4),
                )
            }
        };

        let run = Run::start(&store, "transform").await.unwrap();
        let id = run.id();
        assert_eq!(row(id).await, (String::from("transform"), String::from("running"), None, None, false));
        run.finish(&store, Ok::<_, WorkError>(7), outcome).await.unwrap();
        assert_eq!(
            row(id).await,
            (String::from("transform"), String::from("succeeded"), Some(7), None, true)
        );

        // A consumer batch is never opened: closing writes the whole row.
        let run = Run::begin("consumer");
        let id = run.id();
        let err = std::io::Error::other("broker gone");
        let _ = run.finish(&store, Err(WorkError::Failed(err)), outcome).await;
        let (function, status, _, error, finished) = row(id).await;
        assert_eq!((function.as_str(), status.as_str(), finished), ("consumer", "failed", true));
        assert_eq!(error.as_deref(), Some("the work failed: broker gone"));

        drop(store);
        crate::drop_database(&admin, &name).await.unwrap();
    }
}
