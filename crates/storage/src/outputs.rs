//! The transform's output tables: `price_hourly`, `daily_ranking`,
//! `price_alerts`, `daily_volume` and `data_quality`. Every statement that
//! touches them is here: the transform's writes and the dashboard's reads.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use tokio_postgres::types::{ToSql, Type};
use uuid::Uuid;

use crate::StorageError;

/// One column of rows to write. Nulls stay nulls, never "", NaN, 0 or
/// 1970-01-01: the tables' NOT NULL constraints reject them loudly.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    Text(Vec<Option<String>>),
    Float8(Vec<Option<f64>>),
    Int4(Vec<Option<i32>>),
    Int8(Vec<Option<i64>>),
    Timestamptz(Vec<Option<DateTime<Utc>>>),
    Date(Vec<Option<NaiveDate>>),
    Uuid(Vec<Option<Uuid>>),
}

impl Column {
    fn len(&self) -> usize {
        match self {
            Self::Text(v) => v.len(),
            Self::Float8(v) => v.len(),
            Self::Int4(v) => v.len(),
            Self::Int8(v) => v.len(),
            Self::Timestamptz(v) => v.len(),
            Self::Date(v) => v.len(),
            Self::Uuid(v) => v.len(),
        }
    }

    fn pg_type(&self) -> Type {
        match self {
            Self::Text(_) => Type::TEXT,
            Self::Float8(_) => Type::FLOAT8,
            Self::Int4(_) => Type::INT4,
            Self::Int8(_) => Type::INT8,
            Self::Timestamptz(_) => Type::TIMESTAMPTZ,
            Self::Date(_) => Type::DATE,
            Self::Uuid(_) => Type::UUID,
        }
    }

    fn at(&self, row: usize) -> &(dyn ToSql + Sync) {
        match self {
            Self::Text(v) => &v[row],
            Self::Float8(v) => &v[row],
            Self::Int4(v) => &v[row],
            Self::Int8(v) => &v[row],
            Self::Timestamptz(v) => &v[row],
            Self::Date(v) => &v[row],
            Self::Uuid(v) => &v[row],
        }
    }
}

/// The session lock one transform run holds while it rewrites the output tables.
const TRANSFORM_LOCK: i64 = 0x7472_616e_7366; // "transf"

/// Starts a transform run's session on `client`: waits for any other run to
/// finish (a session lock: the scheduler's cycle and a history load may both
/// transform at once, and two runs over the same days would fail each other's
/// writes), then opens one repeatable-read transaction, taken after the lock
/// so this run sees the previous run's results. Its reads are one snapshot and
/// its writes appear whole or not at all. End it with [`end_run`]; a client
/// whose session cannot be ended must be discarded (`storage::discard`).
///
/// Returns the instant before which every row is committed and in the run's
/// snapshot, when the server can tell: the start of the oldest transaction
/// running in the database (rows carry their transaction's `now()` as
/// `ingested_at`), or now when none runs, read before the snapshot is taken.
/// `None` when some session is hidden from this role (no `pg_read_all_stats`):
/// the watermark lag alone then decides (`inputs::watermarks`).
pub async fn begin_run(client: &tokio_postgres::Client) -> Result<Option<DateTime<Utc>>, StorageError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&TRANSFORM_LOCK])
        .await
        .map_err(|e| StorageError::query("wait for another transform run to finish", e))?;
    // Its own statement, before BEGIN, at t0. A transaction that ended before
    // t0 is in the snapshot taken after; one running at t0 started at or after
    // the instant returned, and so did its rows; one begun after t0 too.
    let settled: Option<DateTime<Utc>> = client
        .query_one(
            "SELECT CASE WHEN bool_and(state IS NOT NULL) IS FALSE THEN NULL
                         ELSE least(clock_timestamp(), min(xact_start)) END
             FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()
               AND backend_type = 'client backend'",
            &[],
        )
        .await
        .map_err(|e| StorageError::query("read the transactions in flight", e))?
        .get(0);
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        .await
        .map_err(|e| StorageError::query("begin the transform's transaction", e))?;
    Ok(settled)
}

/// Commits a transform run's transaction and releases its lock.
pub async fn end_run(client: &tokio_postgres::Client) -> Result<(), StorageError> {
    client.batch_execute("COMMIT").await.map_err(|e| StorageError::query("commit the transform", e))?;
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&TRANSFORM_LOCK])
        .await
        .map_err(|e| StorageError::query("release the transform lock", e))?;
    Ok(())
}

/// The output tables and their day column, for clearing recomputed days.
const DAYS: [(&str, &str); 4] = [
    ("price_hourly", "(hour AT TIME ZONE 'UTC')::date"),
    ("daily_ranking", "day"),
    ("price_alerts", "(at AT TIME ZONE 'UTC')::date"),
    ("daily_volume", "day"),
];

/// Deletes the rows of `days` (every row when `None`) from every output table
/// that has days, inside the run's transaction.
pub async fn clear_days(
    db: &tokio_postgres::Client,
    days: Option<&BTreeSet<NaiveDate>>,
) -> Result<(), StorageError> {
    let day_list: Vec<NaiveDate> = days.map(|d| d.iter().copied().collect()).unwrap_or_default();
    let all = days.is_none();
    for (table, day_expr) in DAYS {
        db.execute(&format!("DELETE FROM {table} WHERE $1 OR {day_expr} = ANY($2)"), &[&all, &day_list])
            .await
            .map_err(|e| StorageError::query("clear recomputed days", e))?;
    }
    Ok(())
}

/// Appends rows to `table` with binary `COPY`: each of `columns` names a
/// column of the table and holds its values, all of the same length. The one
/// write path of the output tables (their recomputed days cleared first by
/// [`clear_days`]; `data_quality` rows belong to the run writing them).
pub async fn copy_into(
    db: &tokio_postgres::Client,
    table: &str,
    columns: &[(&str, Column)],
) -> Result<u64, StorageError> {
    let rows = columns.first().map_or(0, |(_, c)| c.len());
    if let Some((name, _)) = columns.iter().find(|(_, c)| c.len() != rows) {
        return Err(StorageError::Config(format!(
            "{table}.{name} has a different number of rows from the other columns"
        )));
    }
    let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    let types: Vec<Type> = columns.iter().map(|(_, c)| c.pg_type()).collect();
    let sink = db
        .copy_in(&format!("COPY {table} ({}) FROM STDIN (FORMAT binary)", names.join(", ")))
        .await
        .map_err(|e| StorageError::query("store the transform's output", e))?;
    let mut writer = std::pin::pin!(tokio_postgres::binary_copy::BinaryCopyInWriter::new(sink, &types));
    let mut row: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(columns.len());
    for i in 0..rows {
        row.clear();
        row.extend(columns.iter().map(|(_, c)| c.at(i)));
        writer
            .as_mut()
            .write(&row)
            .await
            .map_err(|e| StorageError::query("store the transform's output", e))?;
    }
    writer.finish().await.map_err(|e| StorageError::query("store the transform's output", e))
}

// The dashboard's reads.

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
    /// The alerts.toml rule that raised it.
    pub rule: String,
    /// In percent, as the transforms store it (5.2 = +5.2 %).
    pub change_pct: f64,
    /// `up` or `down`.
    pub direction: String,
    pub price_before: f64,
    pub price_after: f64,
}

/// A transform run and what its cleaning dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct QualityRun {
    pub run_id: Uuid,
    pub started_at: DateTime<Utc>,
    pub status: String,
    pub rows_in: Option<i64>,
    /// Rows dropped by reason (missing, duplicate, invalid, aberrant…).
    pub dropped: BTreeMap<String, i64>,
}

/// Hourly candles of `coins`, per coin in time order.
pub async fn hourly(
    db: &tokio_postgres::Client,
    coins: &[String],
) -> Result<Vec<(String, Hourly)>, StorageError> {
    let rows = db
        .query(
            "SELECT coin_id, hour, open, high, low, close, avg_price FROM price_hourly
             WHERE coin_id = ANY($1) ORDER BY coin_id, hour",
            &[&coins],
        )
        .await
        .map_err(|e| StorageError::query("read hourly prices", e))?;
    Ok(rows
        .iter()
        .map(|r| {
            let h = Hourly {
                hour: r.get(1),
                open: r.get(2),
                high: r.get(3),
                low: r.get(4),
                close: r.get(5),
                avg: r.get(6),
            };
            (r.get(0), h)
        })
        .collect())
}

/// One traded volume per coin and day: the interval sum where there is one.
pub async fn volumes(
    db: &tokio_postgres::Client,
    coins: &[String],
) -> Result<Vec<(String, DailyVolume)>, StorageError> {
    let rows = db
        .query(
            "SELECT DISTINCT ON (coin_id, day) coin_id, day, volume_usd, method FROM daily_volume
             WHERE coin_id = ANY($1) ORDER BY coin_id, day, method = 'interval_sum' DESC",
            &[&coins],
        )
        .await
        .map_err(|e| StorageError::query("read daily volumes", e))?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), DailyVolume { day: r.get(1), volume: r.get(2), method: r.get(3) }))
        .collect())
}

pub async fn ranks(
    db: &tokio_postgres::Client,
    coins: &[String],
) -> Result<Vec<(String, DailyRank)>, StorageError> {
    let rows = db
        .query(
            "SELECT coin_id, day, rank, performance FROM daily_ranking WHERE coin_id = ANY($1) ORDER BY coin_id, day",
            &[&coins],
        )
        .await
        .map_err(|e| StorageError::query("read daily rankings", e))?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), DailyRank { day: r.get(1), rank: r.get(2), performance: r.get(3) }))
        .collect())
}

/// Alerts of `coins`, oldest first.
pub async fn alerts(db: &tokio_postgres::Client, coins: &[String]) -> Result<Vec<Alert>, StorageError> {
    let rows = db
        .query(
            "SELECT coin_id, at, window_secs, change_pct, direction, price_before, price_after, rule
             FROM price_alerts WHERE coin_id = ANY($1) ORDER BY at, coin_id, window_secs, rule",
            &[&coins],
        )
        .await
        .map_err(|e| StorageError::query("read alerts", e))?;
    Ok(rows
        .iter()
        .map(|r| Alert {
            coin_id: r.get(0),
            at: r.get(1),
            window_secs: r.get(2),
            change_pct: r.get(3),
            direction: r.get(4),
            price_before: r.get(5),
            price_after: r.get(6),
            rule: r.get(7),
        })
        .collect())
}

/// The last `limit` transform runs (from `pipeline_runs`) and what each dropped, newest first.
pub async fn quality(db: &tokio_postgres::Client, limit: i64) -> Result<Vec<QualityRun>, StorageError> {
    let rows = db
        .query(
            "WITH recent AS (
                 SELECT run_id, started_at, status, rows_in FROM pipeline_runs
                 WHERE function = 'transform' ORDER BY started_at DESC LIMIT $1)
             SELECT r.run_id, r.started_at, r.status, r.rows_in, q.reason, q.rows
             FROM recent r LEFT JOIN data_quality q USING (run_id)
             ORDER BY r.started_at DESC, r.run_id, q.reason",
            &[&limit],
        )
        .await
        .map_err(|e| StorageError::query("read data quality", e))?;
    let mut runs: Vec<QualityRun> = Vec::new();
    for row in rows {
        let run_id: Uuid = row.get(0);
        if runs.last().is_none_or(|r| r.run_id != run_id) {
            runs.push(QualityRun {
                run_id,
                started_at: row.get(1),
                status: row.get(2),
                rows_in: row.get(3),
                dropped: BTreeMap::new(),
            });
        }
        if let (Some(reason), Some(n), Some(run)) =
            (row.get::<_, Option<String>>(4), row.get::<_, Option<i64>>(5), runs.last_mut())
        {
            run.dropped.insert(reason, n);
        }
    }
    Ok(runs)
}
