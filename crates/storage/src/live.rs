//! The live feed's tables: the feed function's cursors (`feed_cursors`), and
//! what the dashboard reads of the exchanges' bars in `price_ticks`.

use std::future::Future;

use chrono::{DateTime, Utc};
use domain::{CoinId, TickSource};

use crate::{PgStore, StorageError};

/// How far the feed function has published each (exchange, coin)'s candles.
pub trait FeedCursors {
    /// The end of the last closed minute published; `None` before the first run.
    fn cursor(
        &self,
        source: TickSource,
        coin: &CoinId,
    ) -> impl Future<Output = Result<Option<DateTime<Utc>>, StorageError>> + Send;

    /// Records that everything up to `fetched_to` was published (acknowledged by Kafka).
    /// Never moves a cursor back.
    fn advance(
        &self,
        source: TickSource,
        coin: &CoinId,
        fetched_to: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
}

impl FeedCursors for PgStore {
    async fn cursor(&self, source: TickSource, coin: &CoinId) -> Result<Option<DateTime<Utc>>, StorageError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT fetched_to FROM feed_cursors WHERE exchange = $1 AND coin_id = $2",
                &[&source.as_str(), &coin.as_str()],
            )
            .await
            .map_err(|e| StorageError::query("read a feed cursor", e))?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn advance(
        &self,
        source: TickSource,
        coin: &CoinId,
        fetched_to: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        self.client()
            .await?
            .execute(
                "INSERT INTO feed_cursors (exchange, coin_id, fetched_to) VALUES ($1, $2, $3)
                 ON CONFLICT (exchange, coin_id) DO UPDATE
                    SET fetched_to = greatest(feed_cursors.fetched_to, EXCLUDED.fetched_to), updated_at = now()",
                &[&source.as_str(), &coin.as_str(), &fetched_to],
            )
            .await
            .map_err(|e| StorageError::query("advance a feed cursor", e))?;
        Ok(())
    }
}

/// One bar of real trades as the coin page lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveBar {
    pub source: TickSource,
    /// The bar's end.
    pub end: DateTime<Utc>,
    pub interval_secs: i32,
    /// Last trade price.
    pub price: f64,
    pub vwap: Option<f64>,
    /// Base volume (coin units).
    pub volume: Option<f64>,
    pub trades: Option<i32>,
}

/// The live sources: the exchanges' bars.
fn live_sources() -> Vec<&'static str> {
    TickSource::ALL.iter().filter(|s| s.is_live()).map(|s| s.as_str()).collect()
}

/// Each coin's exchange bars that ended after `since`, newest first, at most
/// `per_coin` per coin and exchange. Reads the `event_time` index backwards.
pub async fn live_bars(
    db: &tokio_postgres::Client,
    coins: &[String],
    since: DateTime<Utc>,
    per_coin: i64,
) -> Result<Vec<(String, LiveBar)>, StorageError> {
    let rows = db
        .query(
            "SELECT c, s, b.event_time, b.interval_secs, b.price, b.vwap, b.volume, b.trade_count
               FROM unnest($1::text[]) c, unnest($2::text[]) s, LATERAL (
                    SELECT event_time, interval_secs, price, vwap, volume, trade_count FROM price_ticks
                     WHERE coin_id = c AND source = s AND event_time > $3
                     ORDER BY event_time DESC LIMIT $4) b
              ORDER BY c, s, b.event_time DESC",
            &[&coins, &live_sources(), &since, &per_coin],
        )
        .await
        .map_err(|e| StorageError::query("read the live bars", e))?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let source = TickSource::ALL.into_iter().find(|s| s.as_str() == r.get::<_, &str>(1))?;
            let bar = LiveBar {
                source,
                end: r.get(2),
                interval_secs: r.get(3),
                price: r.get(4),
                vwap: r.get(5),
                volume: r.get(6),
                trades: r.get(7),
            };
            Some((r.get(0), bar))
        })
        .collect())
}

/// When each exchange's latest bar arrived, among bars that ended after
/// `since` (`None`: nothing since then), in [`TickSource::ALL`] order.
pub async fn live_freshness(
    db: &tokio_postgres::Client,
    since: DateTime<Utc>,
) -> Result<Vec<(TickSource, Option<DateTime<Utc>>)>, StorageError> {
    let sources = live_sources();
    let rows = db
        .query(
            // Bounded by event time, so the `event_time` index answers even for
            // an exchange that never delivered.
            "SELECT s, (SELECT max(ingested_at) FROM price_ticks WHERE source = s AND event_time > $2)
               FROM unnest($1::text[]) s",
            &[&sources, &since],
        )
        .await
        .map_err(|e| StorageError::query("read the live sources' freshness", e))?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let source = TickSource::ALL.into_iter().find(|s| s.as_str() == r.get::<_, &str>(0))?;
            Some((source, r.get(1)))
        })
        .collect())
}
