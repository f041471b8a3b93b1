use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use domain::{CoinId, HistoryPoint, MarketSnapshot, VsCurrency};
use secrecy::{ExposeSecret, SecretString};
use tokio_postgres::NoTls;
use tracing::{info, instrument};
use uuid::Uuid;

use crate::error::pg_message;
use std::collections::HashMap;

use crate::{
    BatchRecord, Chunk, HistoryStore, RunLog, RunOutcome, SnapshotStore, StorageError, StoredTick, TickStore,
};

mod embedded {
    refinery::embed_migrations!("../../migrations");
}

/// Arbitrary constant for `pg_advisory_lock`: two processes starting at once
/// (a test run and `just deploy-local`) must not apply migrations concurrently.
const MIGRATION_LOCK: i64 = 0x6372_7970_746f; // "crypto"

/// The Postgres side of storage: a connection pool and the queries.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    target: String,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").field("target", &self.target).finish_non_exhaustive()
    }
}

impl PgStore {
    /// Builds the pool and checks one connection, so a wrong URL or a stopped
    /// database fails here with a clear message instead of at the first query.
    pub async fn connect(url: &SecretString) -> Result<Self, StorageError> {
        let config: tokio_postgres::Config =
            url.expose_secret().parse().map_err(|e: tokio_postgres::Error| StorageError::Connect {
                target: String::from("DATABASE_URL"),
                message: pg_message(&e),
            })?;
        let target = describe(&config);
        let manager =
            Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(8)
            .build()
            .map_err(|e| StorageError::Connect { target: target.clone(), message: e.to_string() })?;
        let store = Self { pool, target };
        drop(store.client().await?);
        Ok(store)
    }

    /// The pool, for crates that run their own queries (transforms, site-gen).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// `host:port/database`, never the credentials.
    pub fn target(&self) -> &str {
        &self.target
    }

    pub async fn client(&self) -> Result<Object, StorageError> {
        self.pool.get().await.map_err(|e| StorageError::Connect {
            target: self.target.clone(),
            message: match &e {
                deadpool_postgres::PoolError::Backend(pg) => pg_message(pg),
                other => other.to_string(),
            },
        })
    }
}

fn describe(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => String::from("localhost"),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}/{}", config.get_dbname().unwrap_or("postgres"))
}

/// Applies the migrations in `migrations/` that are not applied yet. Safe to
/// call from several processes at once and on every start.
#[instrument(skip_all, fields(target = store.target()))]
pub async fn migrate(store: &PgStore) -> Result<usize, StorageError> {
    let mut client = store.client().await?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(|e| StorageError::query("take the migration lock", &e))?;
    let result = embedded::migrations::runner().run_async(&mut **client).await;
    // Unlock whatever happened; the session ends with the connection anyway.
    let _ = client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]).await;
    let report = result.map_err(|e| StorageError::Migrate(e.to_string()))?;
    let applied = report.applied_migrations().len();
    info!(applied, "migrations up to date");
    Ok(applied)
}

impl RunLog for PgStore {
    async fn start_run(&self, function: &str) -> Result<Uuid, StorageError> {
        let run_id = Uuid::new_v4();
        self.client()
            .await?
            .execute("INSERT INTO pipeline_runs (run_id, function) VALUES ($1, $2)", &[&run_id, &function])
            .await
            .map_err(|e| StorageError::query("record the start of a run", &e))?;
        Ok(run_id)
    }

    async fn finish_run(&self, run_id: Uuid, outcome: &RunOutcome) -> Result<(), StorageError> {
        self.client()
            .await?
            .execute(
                "UPDATE pipeline_runs
                    SET finished_at = now(), status = $2, rows_in = $3, rows_out = $4, error = $5, details = $6
                  WHERE run_id = $1",
                &[
                    &run_id,
                    &outcome.status.as_str(),
                    &outcome.rows_in,
                    &outcome.rows_out,
                    &outcome.error,
                    &outcome.details,
                ],
            )
            .await
            .map_err(|e| StorageError::query("record the end of a run", &e))?;
        Ok(())
    }
}

impl SnapshotStore for PgStore {
    #[instrument(skip_all, fields(rows = snapshots.len()))]
    async fn upsert_snapshots(
        &self,
        run_id: Uuid,
        snapshots: &[MarketSnapshot],
    ) -> Result<u64, StorageError> {
        // One multi-row statement over arrays: one round trip, parameterised.
        let col = |f: fn(&MarketSnapshot) -> Option<f64>| snapshots.iter().map(f).collect::<Vec<_>>();
        let coins: Vec<&str> = snapshots.iter().map(|s| s.coin.as_str()).collect();
        let currencies: Vec<&str> = snapshots.iter().map(|s| s.vs_currency.as_str()).collect();
        let observed: Vec<_> = snapshots.iter().map(|s| s.observed_at).collect();
        let symbols: Vec<&str> = snapshots.iter().map(|s| s.symbol.as_str()).collect();
        let names: Vec<&str> = snapshots.iter().map(|s| s.name.as_str()).collect();
        let ranks: Vec<Option<i32>> = snapshots.iter().map(|s| s.market_cap_rank).collect();
        let inserted = self
            .client()
            .await?
            .execute(
                "INSERT INTO market_snapshots (
                     coin_id, vs_currency, observed_at, symbol, name, current_price, market_cap,
                     market_cap_rank, fully_diluted_valuation, total_volume, high_24h, low_24h,
                     price_change_24h, price_change_percentage_24h, circulating_supply,
                     total_supply, max_supply, run_id)
                 SELECT u.*, $18::uuid FROM UNNEST(
                     $1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[],
                     $6::float8[], $7::float8[], $8::int4[], $9::float8[], $10::float8[],
                     $11::float8[], $12::float8[], $13::float8[], $14::float8[], $15::float8[],
                     $16::float8[], $17::float8[]) AS u
                 ON CONFLICT (coin_id, vs_currency, observed_at) DO NOTHING",
                &[
                    &coins,
                    &currencies,
                    &observed,
                    &symbols,
                    &names,
                    &col(|s| s.current_price),
                    &col(|s| s.market_cap),
                    &ranks,
                    &col(|s| s.fully_diluted_valuation),
                    &col(|s| s.total_volume),
                    &col(|s| s.high_24h),
                    &col(|s| s.low_24h),
                    &col(|s| s.price_change_24h),
                    &col(|s| s.price_change_percentage_24h),
                    &col(|s| s.circulating_supply),
                    &col(|s| s.total_supply),
                    &col(|s| s.max_supply),
                    &run_id,
                ],
            )
            .await
            .map_err(|e| StorageError::query("store market snapshots", &e))?;
        Ok(inserted)
    }
}

impl HistoryStore for PgStore {
    async fn completed_chunks(
        &self,
        coin: &CoinId,
        vs_currency: &VsCurrency,
    ) -> Result<Vec<Chunk>, StorageError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT range_start, range_end FROM backfill_chunks
                  WHERE coin_id = $1 AND vs_currency = $2 ORDER BY range_start",
                &[&coin.as_str(), &vs_currency.as_str()],
            )
            .await
            .map_err(|e| StorageError::query("read completed backfill chunks", &e))?;
        Ok(rows.iter().map(|r| Chunk { start: r.get(0), end: r.get(1) }).collect())
    }

    #[instrument(skip_all, fields(coin = %coin, rows = points.len()))]
    async fn store_chunk(
        &self,
        coin: &CoinId,
        vs_currency: &VsCurrency,
        chunk: Chunk,
        points: &[HistoryPoint],
    ) -> Result<u64, StorageError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| StorageError::query("begin a transaction", &e))?;
        let ts: Vec<_> = points.iter().map(|p| p.ts).collect();
        let prices: Vec<_> = points.iter().map(|p| p.price).collect();
        let caps: Vec<_> = points.iter().map(|p| p.market_cap).collect();
        let vols: Vec<_> = points.iter().map(|p| p.total_volume).collect();
        let inserted = tx
            .execute(
                "INSERT INTO market_history (coin_id, vs_currency, ts, price, market_cap, total_volume)
                 SELECT $1, $2, u.* FROM UNNEST($3::timestamptz[], $4::float8[], $5::float8[], $6::float8[]) AS u
                 ON CONFLICT (coin_id, vs_currency, ts) DO NOTHING",
                &[&coin.as_str(), &vs_currency.as_str(), &ts, &prices, &caps, &vols],
            )
            .await
            .map_err(|e| StorageError::query("store history points", &e))?;
        let count = i32::try_from(points.len()).unwrap_or(i32::MAX);
        tx.execute(
            "INSERT INTO backfill_chunks (coin_id, vs_currency, range_start, range_end, points)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (coin_id, vs_currency, range_start, range_end)
             DO UPDATE SET points = EXCLUDED.points, completed_at = now()",
            &[&coin.as_str(), &vs_currency.as_str(), &chunk.start, &chunk.end, &count],
        )
        .await
        .map_err(|e| StorageError::query("mark a backfill chunk done", &e))?;
        tx.commit().await.map_err(|e| StorageError::query("commit history points", &e))?;
        Ok(inserted)
    }
}

impl TickStore for PgStore {
    #[instrument(skip_all, fields(rows = ticks.len(), batch = %batch.run_id))]
    async fn store_ticks(&self, ticks: &[StoredTick], batch: &BatchRecord) -> Result<u64, StorageError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| StorageError::query("begin a transaction", &e))?;
        let coins: Vec<&str> = ticks.iter().map(|t| t.tick.coin.as_str()).collect();
        let times: Vec<_> = ticks.iter().map(|t| t.tick.event_time).collect();
        let sources: Vec<&str> = ticks.iter().map(|t| t.tick.source.as_str()).collect();
        let prices: Vec<f64> = ticks.iter().map(|t| t.tick.price).collect();
        let volumes: Vec<Option<f64>> = ticks.iter().map(|t| t.tick.volume).collect();
        let intervals: Vec<i32> =
            ticks.iter().map(|t| i32::try_from(t.tick.interval_secs).unwrap_or(i32::MAX)).collect();
        let seqs: Vec<i64> = ticks.iter().map(|t| i64::try_from(t.tick.seq).unwrap_or(i64::MAX)).collect();
        let partitions: Vec<i32> = ticks.iter().map(|t| t.partition).collect();
        let offsets: Vec<i64> = ticks.iter().map(|t| t.offset).collect();
        let inserted = tx
            .execute(
                "INSERT INTO price_ticks (coin_id, event_time, source, price, volume, interval_secs, seq,
                                          kafka_partition, kafka_offset)
                 SELECT * FROM UNNEST($1::text[], $2::timestamptz[], $3::text[], $4::float8[], $5::float8[],
                                      $6::int4[], $7::int8[], $8::int4[], $9::int8[])
                 ON CONFLICT (coin_id, event_time, source) DO NOTHING",
                &[&coins, &times, &sources, &prices, &volumes, &intervals, &seqs, &partitions, &offsets],
            )
            .await
            .map_err(|e| StorageError::query("store price ticks", &e))?;
        let details = serde_json::json!({
            "dead_lettered": batch.dead_lettered,
            "duplicates": ticks.len() as u64 - inserted,
        });
        tx.execute(
            "INSERT INTO pipeline_runs (run_id, function, started_at, finished_at, status, rows_in, rows_out, details)
             VALUES ($1, 'consumer', $2, now(), 'succeeded', $3, $4, $5)",
            &[&batch.run_id, &batch.started_at, &batch.records, &(inserted as i64), &details],
        )
        .await
        .map_err(|e| StorageError::query("record the batch", &e))?;
        tx.commit().await.map_err(|e| StorageError::query("commit price ticks", &e))?;
        Ok(inserted)
    }
}

impl PgStore {
    /// Loads ticks that never went through Kafka (`just load-history`), in
    /// chunks, each in its own statement; already stored ticks are skipped.
    /// Returns how many were new.
    pub async fn load_ticks(&self, ticks: &[domain::Tick]) -> Result<u64, StorageError> {
        let client = self.client().await?;
        let mut inserted = 0;
        for chunk in ticks.chunks(20_000) {
            let coins: Vec<&str> = chunk.iter().map(|t| t.coin.as_str()).collect();
            let times: Vec<_> = chunk.iter().map(|t| t.event_time).collect();
            let sources: Vec<&str> = chunk.iter().map(|t| t.source.as_str()).collect();
            let prices: Vec<f64> = chunk.iter().map(|t| t.price).collect();
            let volumes: Vec<Option<f64>> = chunk.iter().map(|t| t.volume).collect();
            let intervals: Vec<i32> =
                chunk.iter().map(|t| i32::try_from(t.interval_secs).unwrap_or(i32::MAX)).collect();
            let seqs: Vec<i64> = chunk.iter().map(|t| i64::try_from(t.seq).unwrap_or(i64::MAX)).collect();
            inserted += client
                .execute(
                    "INSERT INTO price_ticks (coin_id, event_time, source, price, volume, interval_secs, seq)
                     SELECT * FROM UNNEST($1::text[], $2::timestamptz[], $3::text[], $4::float8[], $5::float8[],
                                          $6::int4[], $7::int8[])
                     ON CONFLICT (coin_id, event_time, source) DO NOTHING",
                    &[&coins, &times, &sources, &prices, &volumes, &intervals, &seqs],
                )
                .await
                .map_err(|e| StorageError::query("load ticks", &e))?;
        }
        Ok(inserted)
    }

    /// The latest known price of each coin, from stream ticks or batch
    /// snapshots, whichever is newer; coins never seen are absent.
    pub async fn latest_prices(&self, coins: &[CoinId]) -> Result<HashMap<CoinId, f64>, StorageError> {
        let ids: Vec<&str> = coins.iter().map(CoinId::as_str).collect();
        let rows = self
            .client()
            .await?
            .query(
                "SELECT DISTINCT ON (coin_id) coin_id, price FROM (
                     SELECT coin_id, price, event_time AS at FROM price_ticks WHERE coin_id = ANY($1)
                     UNION ALL
                     SELECT coin_id, current_price, observed_at FROM market_snapshots
                      WHERE coin_id = ANY($1) AND current_price > 0
                 ) latest ORDER BY coin_id, at DESC",
                &[&ids],
            )
            .await
            .map_err(|e| StorageError::query("read the latest prices", &e))?;
        Ok(rows
            .iter()
            .filter_map(|r| Some((CoinId::parse(r.get::<_, &str>(0)).ok()?, r.get::<_, f64>(1))))
            .collect())
    }
}
