//! The input tables and how far the transform has read them: `price_ticks`,
//! `market_snapshots`, `market_history`, `sample_history`, `backfill_chunks` and
//! `transform_watermarks`. Every statement that touches them is here.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use domain::{CoinId, HistoryPoint, MarketSnapshot, VsCurrency};
use tracing::instrument;
use uuid::Uuid;

use crate::runs::RunOutcome;
use crate::{
    BatchRecord, Chunk, Conflict, HistoryPresence, HistoryStore, PgStore, SampleHistory, SnapshotStore,
    StorageError, StoredBatch, StoredTick, TickStore,
};

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
            .map_err(|e| StorageError::query("store market snapshots", e))?;
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
            .map_err(|e| StorageError::query("read completed backfill chunks", e))?;
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
        let tx = client.transaction().await.map_err(|e| StorageError::query("begin a transaction", e))?;
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
            .map_err(|e| StorageError::query("store history points", e))?;
        let count = i32::try_from(points.len()).unwrap_or(i32::MAX);
        tx.execute(
            "INSERT INTO backfill_chunks (coin_id, vs_currency, range_start, range_end, points)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (coin_id, vs_currency, range_start, range_end)
             DO UPDATE SET points = EXCLUDED.points, completed_at = now()",
            &[&coin.as_str(), &vs_currency.as_str(), &chunk.start, &chunk.end, &count],
        )
        .await
        .map_err(|e| StorageError::query("mark a backfill chunk done", e))?;
        tx.commit().await.map_err(|e| StorageError::query("commit history points", e))?;
        Ok(inserted)
    }
}

impl TickStore for PgStore {
    #[instrument(skip_all, fields(rows = ticks.len(), batch = %batch.run.id()))]
    async fn store_ticks(
        &self,
        ticks: &[StoredTick],
        batch: &BatchRecord,
    ) -> Result<StoredBatch, StorageError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| StorageError::query("begin a transaction", e))?;
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
        let (vwaps, trades) = bar_columns(ticks.iter().map(|t| &t.tick));
        let inserted = tx
            .execute(
                "INSERT INTO price_ticks (coin_id, event_time, source, price, volume, interval_secs, seq,
                                          kafka_partition, kafka_offset, vwap, trade_count)
                 SELECT * FROM UNNEST($1::text[], $2::timestamptz[], $3::text[], $4::float8[], $5::float8[],
                                      $6::int4[], $7::int8[], $8::int4[], $9::int8[], $10::float8[], $11::int4[])
                 ON CONFLICT (coin_id, event_time, source, interval_secs) DO NOTHING",
                &[
                    &coins, &times, &sources, &prices, &volumes, &intervals, &seqs, &partitions, &offsets, &vwaps,
                    &trades,
                ],
            )
            .await
            .map_err(|e| StorageError::query("store price ticks", e))?;
        // Only a batch with ticks not inserted can clash, so the common batch
        // pays nothing more. A tick inserted just now matches its own row; a
        // redelivery matches a row with the same values; what is left stored
        // other values under the same key (earlier, or earlier in this batch).
        let conflicts = if inserted < ticks.len() as u64 {
            let rows = tx
                .query(
                    "SELECT i.n::int8, p.price, p.volume
                       FROM UNNEST($1::text[], $2::timestamptz[], $3::text[], $4::float8[], $5::float8[],
                                   $6::int4[], $7::float8[], $8::int4[])
                            WITH ORDINALITY AS i(coin_id, event_time, source, price, volume, interval_secs,
                                                 vwap, trade_count, n)
                       JOIN price_ticks p USING (coin_id, event_time, source, interval_secs)
                      WHERE p.price <> i.price OR p.volume IS DISTINCT FROM i.volume
                         OR p.vwap IS DISTINCT FROM i.vwap OR p.trade_count IS DISTINCT FROM i.trade_count
                      ORDER BY i.n",
                    &[&coins, &times, &sources, &prices, &volumes, &intervals, &vwaps, &trades],
                )
                .await
                .map_err(|e| StorageError::query("compare duplicates with the stored ticks", e))?;
            rows.iter()
                .filter_map(|r| {
                    // ORDINALITY counts from 1.
                    let t = ticks.get(usize::try_from(r.get::<_, i64>(0)).ok()?.checked_sub(1)?)?;
                    Some(Conflict {
                        coin: t.tick.coin.clone(),
                        event_time: t.tick.event_time,
                        source: t.tick.source,
                        stored_price: r.get(1),
                        stored_volume: r.get(2),
                        price: t.tick.price,
                        volume: t.tick.volume,
                        partition: t.partition,
                        offset: t.offset,
                    })
                })
                .collect()
        } else {
            Vec::new()
        };
        let stored = StoredBatch { inserted, conflicts };
        let outcome =
            RunOutcome::succeeded(batch.records, inserted as i64, batch_details(ticks.len(), batch, &stored));
        crate::runs::close(&tx, &batch.run, &outcome).await?;
        tx.commit().await.map_err(|e| StorageError::query("commit price ticks", e))?;
        Ok(stored)
    }
}

/// A consumer batch's run details: dead letters, true duplicates, and the
/// conflicting ones with both values (the first few: a bad producer could send thousands).
fn batch_details(valid: usize, batch: &BatchRecord, stored: &StoredBatch) -> serde_json::Value {
    let conflicting = stored.conflicts.len() as u64;
    let sample: Vec<serde_json::Value> = stored
        .conflicts
        .iter()
        .take(20)
        .map(|c| {
            serde_json::json!({
                "coin": c.coin.as_str(), "event_time": c.event_time, "source": c.source.as_str(),
                "stored": { "price": c.stored_price, "volume": c.stored_volume },
                "received": { "price": c.price, "volume": c.volume },
                "partition": c.partition, "offset": c.offset,
            })
        })
        .collect();
    serde_json::json!({
        "dead_lettered": batch.dead_lettered,
        "duplicates": valid as u64 - stored.inserted - conflicting,
        "conflicting_duplicates": conflicting,
        "conflicts": sample,
    })
}

impl PgStore {
    /// Loads ticks that never went through Kafka (`just load-history`), in
    /// chunks, each in its own statement; already stored ticks are skipped.
    /// Returns how many were new.
    pub async fn load_ticks(&self, ticks: &[domain::Tick]) -> Result<u64, StorageError> {
        insert_loaded_ticks(&self.client().await?, ticks).await
    }

    /// Stores the shipped candles of one coin as stand-in history (source
    /// `sample`, already moved forward by `sample.shift_secs`) together with
    /// the record of what they really are, in one transaction: the dashboard
    /// never shows sample rows it cannot label. Returns how many were new.
    pub async fn load_sample_history(
        &self,
        sample: &SampleHistory,
        ticks: &[domain::Tick],
    ) -> Result<u64, StorageError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| StorageError::query("begin the sample load", e))?;
        let inserted = insert_loaded_ticks(&tx, ticks).await?;
        tx.execute(
            "INSERT INTO sample_history (coin_id, original_from, original_to, shift_secs, candles)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (coin_id) DO UPDATE SET original_from = EXCLUDED.original_from,
                 original_to = EXCLUDED.original_to, shift_secs = EXCLUDED.shift_secs,
                 candles = EXCLUDED.candles, loaded_at = now()",
            &[
                &sample.coin.as_str(),
                &sample.original_from,
                &sample.original_to,
                &sample.shift_secs,
                &sample.candles,
            ],
        )
        .await
        .map_err(|e| StorageError::query("record the sample history", e))?;
        tx.commit().await.map_err(|e| StorageError::query("commit the sample history", e))?;
        Ok(inserted)
    }

    /// Deletes every sample row and its record, in one transaction (real
    /// history has arrived). Returns how many ticks went.
    pub async fn remove_sample_history(&self) -> Result<u64, StorageError> {
        let mut client = self.client().await?;
        let tx =
            client.transaction().await.map_err(|e| StorageError::query("begin the sample removal", e))?;
        let removed = tx
            .execute("DELETE FROM price_ticks WHERE source = 'sample'", &[])
            .await
            .map_err(|e| StorageError::query("delete the sample ticks", e))?;
        tx.execute("DELETE FROM sample_history", &[])
            .await
            .map_err(|e| StorageError::query("delete the sample record", e))?;
        tx.commit().await.map_err(|e| StorageError::query("commit the sample removal", e))?;
        Ok(removed)
    }

    /// Which kinds of history the database already holds.
    pub async fn history_presence(&self) -> Result<HistoryPresence, StorageError> {
        let row = self
            .client()
            .await?
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM market_history),
                        (SELECT count(*) FROM sample_history)",
                &[],
            )
            .await
            .map_err(|e| StorageError::query("read which history is stored", e))?;
        Ok(HistoryPresence { coingecko: row.get(0), sample_coins: row.get(1) })
    }

    /// The latest known price of each coin, from stream ticks or USD batch
    /// snapshots, whichever is newer ([`latest_observations`], as the
    /// dashboard shows it); coins never seen are absent. Ticks are in USD, as
    /// the transform reads them.
    pub async fn latest_prices(&self, coins: &[CoinId]) -> Result<HashMap<CoinId, f64>, StorageError> {
        let ids: Vec<String> = coins.iter().map(|c| c.as_str().to_owned()).collect();
        let client = self.client().await?;
        let latest = latest_observations(&client, &ids, "usd").await?;
        Ok(latest.into_iter().filter_map(|(coin, o)| Some((CoinId::parse(&coin).ok()?, o.price))).collect())
    }
}

/// The `vwap` and `trade_count` columns of `ticks` (NULL where a tick is no bar of trades).
fn bar_columns<'a>(ticks: impl Iterator<Item = &'a domain::Tick>) -> (Vec<Option<f64>>, Vec<Option<i32>>) {
    ticks
        .map(|t| match t.bar {
            Some(bar) => (Some(bar.vwap), Some(i32::try_from(bar.trades).unwrap_or(i32::MAX))),
            None => (None, None),
        })
        .unzip()
}

/// Inserts ticks that never went through Kafka (no partition or offset), in
/// chunks of one statement each; already stored ticks are skipped.
async fn insert_loaded_ticks(
    client: &impl deadpool_postgres::GenericClient,
    ticks: &[domain::Tick],
) -> Result<u64, StorageError> {
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
                 ON CONFLICT (coin_id, event_time, source, interval_secs) DO NOTHING",
                &[&coins, &times, &sources, &prices, &volumes, &intervals, &seqs],
            )
            .await
            .map_err(|e| StorageError::query("load ticks", e))?;
    }
    Ok(inserted)
}

// The transform's reads.

/// An input table: its time column and which of its rows are observations
/// (the `usd` ones: the transforms work in USD).
struct Input {
    table: &'static str,
    time: &'static str,
    filter: &'static str,
}

/// The input tables, each with its own watermark. `OBSERVATIONS` reads the same rows.
const INPUTS: [Input; 3] = [
    Input { table: "price_ticks", time: "event_time", filter: "TRUE" },
    Input { table: "market_snapshots", time: "observed_at", filter: "vs_currency = 'usd'" },
    Input { table: "market_history", time: "ts", filter: "vs_currency = 'usd'" },
];

/// Every stored observation as one shape: the `transforms` crate's input frame.
const OBSERVATIONS: &str = "
    SELECT coin_id, event_time AS ts, price, volume AS volume_base, NULL::float8 AS volume_24h,
           NULL::float8 AS change_24h_pct, source, ingested_at, 'price_ticks' AS input
      FROM price_ticks
    UNION ALL
    SELECT coin_id, observed_at, current_price, NULL, total_volume, price_change_percentage_24h,
           'coingecko', ingested_at, 'market_snapshots'
      FROM market_snapshots WHERE vs_currency = 'usd'
    UNION ALL
    SELECT coin_id, ts, price, NULL, total_volume, NULL, 'history', ingested_at, 'market_history'
      FROM market_history WHERE vs_currency = 'usd'";

/// How far one input table has been transformed, and how far this run goes.
#[derive(Debug, Clone)]
pub struct Watermark {
    pub input: String,
    /// Rows ingested up to this instant were transformed by earlier runs.
    pub since: Option<DateTime<Utc>>,
    /// This run takes rows ingested up to here (none yet: `None`).
    pub until: Option<DateTime<Utc>>,
}

/// Per input: the watermark so far and the new one. Rows ingested in the last
/// `lag_secs` wait for the next run, so a transaction that started earlier but
/// commits late is never skipped; unless `settled` (`outputs::begin_run`) says
/// every row before a later instant is already in this run's snapshot: then up
/// to just before it (a row of a transaction still running may carry that very
/// instant). So a transform right after the ingest that stored a move sees it at
/// once, and a long transaction in flight never makes the wait longer than the lag.
pub async fn watermarks(
    db: &tokio_postgres::Client,
    lag_secs: f64,
    settled: Option<DateTime<Utc>>,
) -> Result<Vec<Watermark>, StorageError> {
    let mut marks = Vec::with_capacity(INPUTS.len());
    for Input { table, filter, .. } in &INPUTS {
        // One table at a time, so max(ingested_at) comes from its index, not a scan.
        let row = db
            .query_one(
                &format!(
                    "SELECT (SELECT ingested_until FROM transform_watermarks WHERE input = $1),
                            LEAST((SELECT max(ingested_at) FROM {table} WHERE {filter}),
                                  GREATEST(now() - make_interval(secs => $2), $3::timestamptz - interval '1 microsecond'))"
                ),
                &[table, &lag_secs, &settled],
            )
            .await
            .map_err(|e| StorageError::query("read the watermarks", e))?;
        marks.push(Watermark { input: (*table).to_owned(), since: row.get(0), until: row.get(1) });
    }
    Ok(marks)
}

/// UTC days of observations ingested in `(since, until]` of any input.
pub async fn affected_days(
    db: &tokio_postgres::Client,
    marks: &[Watermark],
) -> Result<BTreeSet<NaiveDate>, StorageError> {
    let mut days = BTreeSet::new();
    for (Input { table, time, filter }, mark) in INPUTS.iter().zip(marks) {
        let rows = db
            .query(
                &format!(
                    "SELECT DISTINCT ({time} AT TIME ZONE 'UTC')::date FROM {table}
                      WHERE {filter} AND ingested_at > coalesce($1, '-infinity'::timestamptz)
                        AND ingested_at <= $2"
                ),
                &[&mark.since, &mark.until],
            )
            .await
            .map_err(|e| StorageError::query("find the days new rows touch", e))?;
        days.extend(rows.iter().map(|r| r.get::<_, NaiveDate>(0)));
    }
    Ok(days)
}

/// Observations with `from <= ts < to` (all of them when unbounded), ingested
/// no later than each input's new watermark, column by column (the shape of
/// the `transforms` crate's input frame).
pub async fn load(
    db: &tokio_postgres::Client,
    marks: &[Watermark],
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<Observations, StorageError> {
    let inputs: Vec<&str> = marks.iter().map(|m| m.input.as_str()).collect();
    let until: Vec<Option<DateTime<Utc>>> = marks.iter().map(|m| m.until).collect();
    let rows = db
        .query(
            &format!(
                "SELECT o.coin_id, (extract(epoch FROM o.ts) * 1000000)::int8, o.price, o.volume_base,
                        o.volume_24h, o.change_24h_pct, o.source,
                        (extract(epoch FROM o.ingested_at) * 1000000)::int8
                   FROM ({OBSERVATIONS}) o
                   JOIN unnest($1::text[], $2::timestamptz[]) AS w(input, until) USING (input)
                  WHERE o.ingested_at <= w.until
                    AND ($3::timestamptz IS NULL OR o.ts >= $3) AND ($4::timestamptz IS NULL OR o.ts < $4)"
            ),
            &[&inputs, &until, &from, &to],
        )
        .await
        .map_err(|e| StorageError::query("read observations", e))?;
    let n = rows.len();
    let (mut coin, mut ts, mut price, mut vol_base, mut vol_24h, mut change, mut source, mut ingested) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for r in &rows {
        coin.push(r.get::<_, Option<String>>(0));
        ts.push(r.get::<_, Option<i64>>(1));
        price.push(r.get::<_, Option<f64>>(2));
        vol_base.push(r.get::<_, Option<f64>>(3));
        vol_24h.push(r.get::<_, Option<f64>>(4));
        change.push(r.get::<_, Option<f64>>(5));
        source.push(r.get::<_, String>(6));
        ingested.push(r.get::<_, i64>(7));
    }
    Ok(Observations { coin, ts, price, vol_base, vol_24h, change, source, ingested })
}

/// Observations, column by column; times in Unix microseconds. Values the
/// tables allow to be null are `None`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observations {
    pub coin: Vec<Option<String>>,
    pub ts: Vec<Option<i64>>,
    pub price: Vec<Option<f64>>,
    pub vol_base: Vec<Option<f64>>,
    pub vol_24h: Vec<Option<f64>>,
    pub change: Vec<Option<f64>>,
    pub source: Vec<String>,
    pub ingested: Vec<i64>,
}

/// Moves every watermark forward to its run's `until` (never backwards).
pub async fn write_watermarks(db: &tokio_postgres::Client, marks: &[Watermark]) -> Result<(), StorageError> {
    for mark in marks {
        if let Some(until) = &mark.until {
            db.execute(
                "INSERT INTO transform_watermarks (input, ingested_until) VALUES ($1, $2)
                 ON CONFLICT (input) DO UPDATE SET ingested_until = GREATEST(transform_watermarks.ingested_until, EXCLUDED.ingested_until),
                                                   updated_at = now()",
                &[&mark.input, until],
            )
            .await
            .map_err(|e| StorageError::query("move the watermark", e))?;
        }
    }
    Ok(())
}

// The dashboard's reads.

/// Shipped candles standing in for a coin's history, as recorded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleRecord {
    /// The candles' real open times, first and last.
    pub original_from: DateTime<Utc>,
    pub original_to: DateTime<Utc>,
    /// Shown instant = real instant + this.
    pub shift_secs: i64,
    pub loaded_at: DateTime<Utc>,
}

/// A price and when it was observed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    pub price: f64,
    pub at: DateTime<Utc>,
}

/// Each coin's latest name and symbol: (coin, name, symbol).
pub async fn coin_names(
    db: &tokio_postgres::Client,
    coins: &[String],
    vs_currency: &str,
) -> Result<Vec<(String, String, String)>, StorageError> {
    let rows = db
        .query(
            "SELECT c, s.name, s.symbol FROM unnest($1::text[]) c, LATERAL (
                 SELECT name, symbol FROM market_snapshots
                 WHERE coin_id = c AND vs_currency = $2 ORDER BY observed_at DESC LIMIT 1) s",
            &[&coins, &vs_currency],
        )
        .await
        .map_err(|e| StorageError::query("read coin names", e))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
}

/// Each coin's latest price, from the stream or the batch, whichever is newer.
pub async fn latest_observations(
    db: &tokio_postgres::Client,
    coins: &[String],
    vs_currency: &str,
) -> Result<Vec<(String, Observation)>, StorageError> {
    let rows = db
        .query(
            "SELECT c, o.price, o.at FROM unnest($1::text[]) c, LATERAL (
                 SELECT * FROM (
                     (SELECT price, event_time AS at FROM price_ticks
                      WHERE coin_id = c ORDER BY event_time DESC LIMIT 1)
                     UNION ALL
                     (SELECT current_price, observed_at FROM market_snapshots
                      WHERE coin_id = c AND vs_currency = $2 AND current_price > 0
                      ORDER BY observed_at DESC LIMIT 1)) latest
                 ORDER BY at DESC LIMIT 1) o",
            &[&coins, &vs_currency],
        )
        .await
        .map_err(|e| StorageError::query("read the latest prices", e))?;
    Ok(rows.iter().map(|r| (r.get(0), Observation { price: r.get(1), at: r.get(2) })).collect())
}

/// The coins whose history is the shipped sample.
pub async fn sample_records(
    db: &tokio_postgres::Client,
    coins: &[String],
) -> Result<Vec<(String, SampleRecord)>, StorageError> {
    let rows = db
        .query(
            "SELECT coin_id, original_from, original_to, shift_secs, loaded_at FROM sample_history
             WHERE coin_id = ANY($1)",
            &[&coins],
        )
        .await
        .map_err(|e| StorageError::query("read the sample history", e))?;
    Ok(rows
        .iter()
        .map(|r| {
            let sample = SampleRecord {
                original_from: r.get(1),
                original_to: r.get(2),
                shift_secs: r.get(3),
                loaded_at: r.get(4),
            };
            (r.get(0), sample)
        })
        .collect())
}

/// When each input last received a row: (batch, stream, history); `None` for
/// an empty table. Each max() reads one end of an `ingested_at` index.
pub async fn last_ingested(db: &tokio_postgres::Client) -> Result<[Option<DateTime<Utc>>; 3], StorageError> {
    let row = db
        .query_one(
            "SELECT (SELECT max(ingested_at) FROM market_snapshots),
                    (SELECT max(ingested_at) FROM price_ticks),
                    (SELECT max(ingested_at) FROM market_history)",
            &[],
        )
        .await
        .map_err(|e| StorageError::query("read freshness", e))?;
    Ok([row.get(0), row.get(1), row.get(2)])
}

#[cfg(test)]
mod tests {
    use domain::{Tick, TickSource};
    use secrecy::SecretString;

    use super::*;
    use crate::{Run, TickStore};

    fn stored(price: f64, volume: Option<f64>, second: i64, offset: i64) -> StoredTick {
        StoredTick {
            tick: Tick {
                coin: CoinId::parse("bitcoin").unwrap(),
                event_time: DateTime::from_timestamp(1_767_225_600 + second, 0).unwrap(),
                price,
                volume,
                interval_secs: 5,
                source: TickSource::Simulated,
                seq: offset as u64,
                bar: None,
            },
            partition: 0,
            offset,
        }
    }

    fn batch(records: i64) -> BatchRecord {
        BatchRecord { run: Run::begin("consumer"), records, dead_lettered: 0 }
    }

    #[tokio::test]
    async fn a_duplicate_with_other_values_is_a_conflict_and_the_first_write_wins() {
        let url = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| String::from("postgres://postgres@127.0.0.1:55432/crypto"));
        let admin = crate::PgConfig::from_url(SecretString::from(url));
        let name = format!("ticks_{}", Uuid::new_v4().simple());
        let (_, store) = crate::create_database(&admin, &name).await.unwrap();

        let first = [stored(100.0, Some(1.0), 0, 0), stored(101.0, Some(1.0), 5, 1)];
        let done = store.store_ticks(&first, &batch(2)).await.unwrap();
        assert_eq!(done, StoredBatch { inserted: 2, conflicts: vec![] });

        // Offset 0 again (a redelivery); tick 5 s with another price; a new tick
        // at 10 s, then the same key again in the same batch with another volume.
        let second = batch(4);
        let run_id = second.run.id();
        let ticks = [
            stored(100.0, Some(1.0), 0, 0),
            stored(999.0, Some(1.0), 5, 7),
            stored(102.0, Some(1.0), 10, 8),
            stored(102.0, None, 10, 9),
        ];
        let done = store.store_ticks(&ticks, &second).await.unwrap();
        assert_eq!(done.inserted, 1);
        let offsets: Vec<i64> = done.conflicts.iter().map(|c| c.offset).collect();
        assert_eq!(offsets, vec![7, 9]);
        let (price, volume) = (&done.conflicts[0], &done.conflicts[1]);
        assert_eq!((price.stored_price, price.price), (101.0, 999.0));
        assert_eq!((volume.stored_volume, volume.volume), (Some(1.0), None));

        let client = store.client().await.unwrap();
        let price: f64 = client
            .query_one("SELECT price FROM price_ticks WHERE event_time = $1", &[&ticks[1].tick.event_time])
            .await
            .unwrap()
            .get(0);
        assert_eq!(price, 101.0, "the first write wins");
        let details: serde_json::Value = client
            .query_one("SELECT details FROM pipeline_runs WHERE run_id = $1", &[&run_id])
            .await
            .unwrap()
            .get(0);
        assert_eq!(
            (details["duplicates"].as_u64(), details["conflicting_duplicates"].as_u64()),
            (Some(1), Some(2))
        );
        assert_eq!(details["conflicts"][0]["stored"]["price"], 101.0);
        assert_eq!(details["conflicts"][0]["received"]["price"], 999.0);
        drop(client);
        drop(store);
        crate::drop_database(&admin, &name).await.unwrap();
    }
}
