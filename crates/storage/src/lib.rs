//! Where the pipeline keeps things: Postgres for tables, S3 for raw objects.
//!
//! Functions talk to storage through the narrow traits below, so their handlers
//! can be unit-tested with in-memory fakes; the real implementations are tested
//! against the real local Postgres and S3 endpoint.

mod config;
mod error;
pub mod inputs;
pub mod live;
mod objects;
pub mod outbox;
pub mod outputs;
mod pg;
pub mod runs;
mod scratch;
pub mod tls;

use std::future::Future;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use domain::{CoinId, HistoryPoint, MarketSnapshot, Tick, VsCurrency};
use uuid::Uuid;

pub use config::{
    DEFAULT_DATABASE_URL, PgConfig, PgSslMode, S3Config, check_bucket_name, deserialize_bucket,
};
pub use deadpool_postgres::Object as PgClient;
pub use error::{BoxError, StorageError, pg_is_retryable};
pub use live::{FeedCursors, LiveBar};
pub use objects::{S3Store, s3_client};
pub use pg::{PgStore, migrate};
pub use runs::{Run, RunLog, RunOutcome, RunStatus};
pub use scratch::{create_database, drop_database, ensure_database};

/// Closes a pooled connection instead of returning it to the pool: for one
/// whose session state (a lock, a setting) could not be reset.
pub fn discard(client: PgClient) {
    drop(deadpool_postgres::Object::take(client));
}

/// One coin's shipped candles loaded as stand-in history (`sample_history`).
#[derive(Debug, Clone, PartialEq)]
pub struct SampleHistory {
    pub coin: CoinId,
    /// The candles' real open times, first and last.
    pub original_from: DateTime<Utc>,
    pub original_to: DateTime<Utc>,
    /// Stored instant = real instant + this.
    pub shift_secs: i64,
    pub candles: i32,
}

/// Which kinds of history a database holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryPresence {
    /// Any CoinGecko history (`market_history`).
    pub coingecko: bool,
    /// Coins whose history is the shipped sample.
    pub sample_coins: i64,
}

/// Batch snapshots of `/coins/markets`.
pub trait SnapshotStore {
    /// Inserts the snapshots not stored yet, in one transaction; returns how
    /// many were new. Storing the same snapshots again inserts nothing.
    fn upsert_snapshots(
        &self,
        run_id: Uuid,
        snapshots: &[MarketSnapshot],
    ) -> impl Future<Output = Result<u64, StorageError>> + Send;
}

/// A time range of one coin's history, `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Chunk {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// Backfilled history and the record of which chunks are done.
pub trait HistoryStore {
    fn completed_chunks(
        &self,
        coin: &CoinId,
        vs_currency: &VsCurrency,
    ) -> impl Future<Output = Result<Vec<Chunk>, StorageError>> + Send;

    /// Stores a chunk's points and marks the chunk done, atomically; returns
    /// how many points were new.
    fn store_chunk(
        &self,
        coin: &CoinId,
        vs_currency: &VsCurrency,
        chunk: Chunk,
        points: &[HistoryPoint],
    ) -> impl Future<Output = Result<u64, StorageError>> + Send;
}

/// A tick and the Kafka position it was read from.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTick {
    pub tick: Tick,
    pub partition: i32,
    pub offset: i64,
}

/// The run of one consumed batch, recorded with its ticks.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchRecord {
    pub run: Run,
    /// Records in the batch, valid or not.
    pub records: i64,
    pub dead_lettered: i64,
}

/// A tick whose key (coin, event time, source) was already stored with a
/// different price or volume: not a redelivery. The first write wins.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    pub coin: CoinId,
    pub event_time: DateTime<Utc>,
    pub source: domain::TickSource,
    /// What is stored (and stays).
    pub stored_price: f64,
    pub stored_volume: Option<f64>,
    /// What this tick said.
    pub price: f64,
    pub volume: Option<f64>,
    pub partition: i32,
    pub offset: i64,
}

/// What storing a batch did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoredBatch {
    /// Ticks that were new.
    pub inserted: u64,
    /// Ticks whose key was stored with other values (see [`Conflict`]); the
    /// other ticks not inserted are true duplicates (redeliveries).
    pub conflicts: Vec<Conflict>,
}

/// Stream ticks.
pub trait TickStore {
    /// Stores the ticks not stored yet and the batch's run record, in one
    /// transaction: either all of it is written or none. Redelivered ticks are
    /// absorbed; ticks that clash with a stored one are reported, not written.
    fn store_ticks(
        &self,
        ticks: &[StoredTick],
        batch: &BatchRecord,
    ) -> impl Future<Output = Result<StoredBatch, StorageError>> + Send;
}

/// A bucket of immutable objects.
pub trait ObjectStore {
    fn put(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
}
