//! The transform's I/O, behind the narrow traits its handler uses: a store
//! that begins a run, and the run's snapshot that reads observations and
//! writes results. On Postgres (below) the SQL is storage's; the handler's
//! tests run its logic in-process on an in-memory fake.

use std::collections::BTreeSet;
use std::future::Future;

use chrono::{DateTime, NaiveDate, Utc};
use storage::inputs::{self, Observations, Watermark};
use storage::outbox::{self, Enqueued, RuleCooldown};
use storage::outputs::{self, Column};
use storage::{PgClient, PgStore, RunLog};
use uuid::Uuid;

use crate::TransformError;
use crate::handler::Outputs;
use crate::io::{
    self, Kind,
    Kind::{Date, Float8, Int4, Int8, Text, Timestamptz},
};

/// Where a transform run reads and writes.
pub trait TransformStore: RunLog + Sync {
    type Snapshot: Snapshot + Send;
    /// Begins a run: one at a time per store, and one snapshot for its reads
    /// and writes.
    fn begin(&self) -> impl Future<Output = Result<Self::Snapshot, TransformError>> + Send;
}

/// One run's view of the store. Nothing it writes is visible before `commit`;
/// dropped without it, nothing is written.
pub trait Snapshot {
    /// Per input: how far earlier runs read, and how far this one reads (rows
    /// ingested in the last `lag_secs` wait for the next run).
    fn watermarks(
        &mut self,
        lag_secs: f64,
    ) -> impl Future<Output = Result<Vec<Watermark>, TransformError>> + Send;
    /// UTC days of the rows ingested between each input's two watermarks.
    fn affected_days(
        &mut self,
        marks: &[Watermark],
    ) -> impl Future<Output = Result<BTreeSet<NaiveDate>, TransformError>> + Send;
    /// Observations with `from <= ts < to` (unbounded: `None`), ingested up to each new watermark.
    fn load(
        &mut self,
        marks: &[Watermark],
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> impl Future<Output = Result<Observations, TransformError>> + Send;
    /// Replaces the results of `days` (all of them: `None`) with `outputs`.
    fn write(
        &mut self,
        run_id: Uuid,
        days: Option<&BTreeSet<NaiveDate>>,
        outputs: &Outputs,
    ) -> impl Future<Output = Result<(), TransformError>> + Send;
    /// Queues a notification per channel for each alert this run wrote that
    /// has none yet: pending from `send_from` on (every one: `None`), older
    /// ones recorded as historical.
    fn enqueue(
        &mut self,
        run_id: Uuid,
        channels: &[String],
        rules: &[RuleCooldown],
        send_from: Option<DateTime<Utc>>,
    ) -> impl Future<Output = Result<Enqueued, TransformError>> + Send;
    /// Moves the watermarks to this run's.
    fn write_watermarks(
        &mut self,
        marks: &[Watermark],
    ) -> impl Future<Output = Result<(), TransformError>> + Send;
    fn commit(self) -> impl Future<Output = Result<(), TransformError>> + Send;
}

/// An output table's columns: (table column, frame column, kind).
type Columns = &'static [(&'static str, &'static str, Kind)];

const HOURLY: Columns = &[
    ("coin_id", "coin", Text),
    ("hour", "hour", Timestamptz),
    ("avg_price", "avg_price", Float8),
    ("open", "open", Float8),
    ("high", "high", Float8),
    ("low", "low", Float8),
    ("close", "close", Float8),
    ("observations", "observations", Int4),
];
const RANKING: Columns = &[
    ("day", "day", Date),
    ("coin_id", "coin", Text),
    ("last_price", "last_price", Float8),
    ("prev_last_price", "prev_last_price", Float8),
    ("performance", "performance", Float8),
    ("rank", "rank", Int4),
];
const VOLUME: Columns = &[
    ("coin_id", "coin", Text),
    ("day", "day", Date),
    ("method", "method", Text),
    ("volume_usd", "volume_usd", Float8),
];
const ALERTS: Columns = &[
    ("coin_id", "coin", Text),
    ("at", "at", Timestamptz),
    ("window_secs", "window_secs", Int4),
    ("change_pct", "change_pct", Float8),
    ("direction", "direction", Text),
    ("price_before", "price_before", Float8),
    ("price_after", "price_after", Float8),
    ("rule", "rule", Text),
];
const QUALITY: Columns = &[("reason", "reason", Text), ("rows", "rows", Int8)];

/// A run on Postgres: a pooled connection holding the run's lock and transaction.
pub struct PgSnapshot {
    /// `None` once committed.
    client: Option<PgClient>,
    /// Every row ingested before this is in the snapshot (`outputs::begin_run`).
    settled: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for PgSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgSnapshot").field("open", &self.client.is_some()).finish()
    }
}

impl PgSnapshot {
    fn client(&self) -> Result<&tokio_postgres::Client, TransformError> {
        // Only `commit` takes the client, and it consumes the snapshot.
        self.client.as_deref().map(|c| &**c).ok_or(TransformError::Ended)
    }
}

impl Drop for PgSnapshot {
    fn drop(&mut self) {
        // Not committed (an error on the way): closing the connection rolls the
        // transaction back and releases the lock; a pooled one would keep both.
        if let Some(client) = self.client.take() {
            storage::discard(client);
        }
    }
}

impl TransformStore for PgStore {
    type Snapshot = PgSnapshot;

    async fn begin(&self) -> Result<PgSnapshot, TransformError> {
        let client = self.client().await?;
        let mut snapshot = PgSnapshot { client: Some(client), settled: None };
        snapshot.settled = outputs::begin_run(snapshot.client()?).await?;
        Ok(snapshot)
    }
}

impl Snapshot for PgSnapshot {
    async fn watermarks(&mut self, lag_secs: f64) -> Result<Vec<Watermark>, TransformError> {
        Ok(inputs::watermarks(self.client()?, lag_secs, self.settled).await?)
    }

    async fn affected_days(&mut self, marks: &[Watermark]) -> Result<BTreeSet<NaiveDate>, TransformError> {
        Ok(inputs::affected_days(self.client()?, marks).await?)
    }

    async fn load(
        &mut self,
        marks: &[Watermark],
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Observations, TransformError> {
        Ok(inputs::load(self.client()?, marks, from, to).await?)
    }

    async fn write(
        &mut self,
        run_id: Uuid,
        days: Option<&BTreeSet<NaiveDate>>,
        out: &Outputs,
    ) -> Result<(), TransformError> {
        let db = self.client()?;
        outputs::clear_days(db, days).await?;
        // Each output table from its frame; the alerts and the data-quality
        // counts also carry the run that wrote them.
        for (table, frame, columns, tagged) in [
            ("price_hourly", &out.hourly, HOURLY, false),
            ("daily_ranking", &out.ranking, RANKING, false),
            ("daily_volume", &out.volume, VOLUME, false),
            ("price_alerts", &out.alerts, ALERTS, true),
            ("data_quality", &out.dropped, QUALITY, true),
        ] {
            let mut columns = io::columns(frame, columns)?;
            if tagged {
                columns.push(("run_id", Column::Uuid(vec![Some(run_id); frame.height()])));
            }
            outputs::copy_into(db, table, &columns).await?;
        }
        Ok(())
    }

    async fn enqueue(
        &mut self,
        run_id: Uuid,
        channels: &[String],
        rules: &[RuleCooldown],
        send_from: Option<DateTime<Utc>>,
    ) -> Result<Enqueued, TransformError> {
        Ok(outbox::enqueue(self.client()?, run_id, channels, rules, send_from).await?)
    }

    async fn write_watermarks(&mut self, marks: &[Watermark]) -> Result<(), TransformError> {
        Ok(inputs::write_watermarks(self.client()?, marks).await?)
    }

    async fn commit(mut self) -> Result<(), TransformError> {
        let client = self.client.take().ok_or(TransformError::Ended)?;
        match outputs::end_run(&client).await {
            Ok(()) => Ok(()),
            Err(e) => {
                // Committed or not, the connection must not go back to the pool
                // holding the lock or a transaction.
                storage::discard(client);
                Err(e.into())
            }
        }
    }
}
