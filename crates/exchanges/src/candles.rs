//! The serverless form of the live feed: every minute, the closed 1-minute
//! candles of each (exchange, coin) since the last minute published, fetched
//! over REST and published as ticks (`interval_secs` 60).
//!
//! A cursor per (exchange, coin) (`feed_cursors`) records the end of the last
//! minute fetched; it moves only after Kafka acknowledged the candles, so two
//! invocations never publish the same minute (a crash between the two
//! publishes it again with the same key and values, which the consumer's
//! idempotent insert absorbs). After downtime the catch-up reaches back at
//! most `FEED_CATCHUP_MINUTES`; older minutes are skipped and reported.

use std::future::Future;

use chrono::{DateTime, Duration, DurationRound, Utc};
use domain::Tick;
use serde::Serialize;
use storage::FeedCursors;
use tracing::{info, warn};
use url::Url;

use crate::{Exchange, ExchangeError, FeedConfig, Market, Markets, RestClient, binance, coinbase};

/// Where closed candles come from.
pub trait CandleSource {
    /// The candles of `market` opening in `[from, to)` that had trades, oldest first.
    fn candles(
        &self,
        exchange: Exchange,
        market: &Market,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<Tick>, ExchangeError>> + Send;
}

/// Where ticks go (the prices topic).
pub trait TickSink {
    fn publish(&self, ticks: &[Tick]) -> impl Future<Output = Result<u64, ExchangeError>> + Send;
}

impl TickSink for stream::Publisher {
    async fn publish(&self, ticks: &[Tick]) -> Result<u64, ExchangeError> {
        Ok(stream::Publisher::publish(self, ticks).await?)
    }
}

/// The exchanges' REST APIs.
#[derive(Debug, Clone)]
pub struct RestCandles {
    client: RestClient,
    binance: Url,
    coinbase: Url,
}

impl RestCandles {
    pub fn new(client: RestClient, config: &FeedConfig) -> Self {
        Self { client, binance: config.binance_rest_url.clone(), coinbase: config.coinbase_rest_url.clone() }
    }
}

fn malformed(exchange: Exchange, endpoint: &str, reason: String) -> ExchangeError {
    ExchangeError::Malformed {
        exchange: exchange.title(),
        endpoint: endpoint.to_owned(),
        reason,
        excerpt: String::new(),
    }
}

/// The rows of an answer that must be a JSON array.
fn rows(
    body: serde_json::Value,
    exchange: Exchange,
    endpoint: &str,
) -> Result<Vec<serde_json::Value>, ExchangeError> {
    match body {
        serde_json::Value::Array(rows) => Ok(rows),
        _ => Err(malformed(exchange, endpoint, String::from("the answer is not an array"))),
    }
}

impl CandleSource for RestCandles {
    async fn candles(
        &self,
        exchange: Exchange,
        market: &Market,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Tick>, ExchangeError> {
        let mut ticks = Vec::new();
        let mut cursor = from;
        while cursor < to {
            let (rows, next) = match exchange {
                Exchange::Binance => {
                    let query = binance::klines_query(market, cursor, to);
                    let body =
                        self.client.get_json(exchange, &self.binance, "/api/v3/klines", &query).await?;
                    let rows = rows(body, exchange, "/api/v3/klines")?;
                    // A full page may have more after it; a short one is the end.
                    let next = match rows.last().and_then(binance::kline_open) {
                        Some(last) if rows.len() >= binance::KLINES_LIMIT => last + Duration::minutes(1),
                        _ => to,
                    };
                    (rows, next)
                }
                Exchange::Coinbase => {
                    let end = (cursor + Duration::minutes(coinbase::CANDLES_LIMIT as i64)).min(to);
                    let path = format!("/products/{}/candles", market.symbol);
                    let query = coinbase::candles_query(cursor, end);
                    let body = self.client.get_json(exchange, &self.coinbase, &path, &query).await?;
                    let rows = rows(body, exchange, &path)?;
                    (rows, end)
                }
            };
            for row in &rows {
                let tick = match exchange {
                    Exchange::Binance => binance::kline_tick(row, market),
                    Exchange::Coinbase => coinbase::candle_tick(row, market),
                };
                let tick = tick.map_err(|reason| malformed(exchange, "candles", reason))?;
                // Only what was asked: the APIs' range edges are inclusive.
                if let Some(tick) = tick {
                    let open = tick.event_time - Duration::minutes(1);
                    if open >= cursor && open < next.min(to) {
                        ticks.push(tick);
                    }
                }
            }
            if next <= cursor {
                break;
            }
            cursor = next;
        }
        ticks.sort_by_key(|t| t.event_time);
        ticks.dedup_by_key(|t| t.event_time);
        Ok(ticks)
    }
}

/// What one (exchange, coin) came to in one invocation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MarketReport {
    pub exchange: Exchange,
    pub coin: String,
    pub symbol: String,
    /// The minutes asked for, `[from, to)`; `None` when nothing was due.
    pub from: Option<DateTime<Utc>>,
    pub to: DateTime<Utc>,
    /// Candles with trades, published.
    pub published: u64,
    /// Minutes beyond the catch-up bound, never fetched.
    pub skipped_minutes: i64,
    pub error: Option<String>,
}

/// Publishes the closed candles each market is due, as of `now`.
pub async fn poll<S: CandleSource, P: TickSink, C: FeedCursors>(
    source: &S,
    sink: &P,
    cursors: &C,
    markets: &Markets,
    now: DateTime<Utc>,
    catchup_minutes: u32,
) -> Vec<MarketReport> {
    // Every minute that ended at or before `now` is closed.
    let closed_to = now.duration_trunc(Duration::minutes(1)).unwrap_or(now);
    let earliest = closed_to - Duration::minutes(i64::from(catchup_minutes));
    let mut reports = Vec::new();
    for exchange in markets.exchanges().collect::<Vec<_>>() {
        for market in markets.markets(exchange) {
            let mut report = MarketReport {
                exchange,
                coin: market.coin.to_string(),
                symbol: market.symbol.clone(),
                from: None,
                to: closed_to,
                published: 0,
                skipped_minutes: 0,
                error: None,
            };
            if let Err(e) =
                poll_market(source, sink, cursors, exchange, market, closed_to, earliest, &mut report).await
            {
                let error = telemetry::failure::Chain(&e).to_string();
                warn!(%exchange, symbol = %market.symbol, %error, "candles not published; the next invocation tries again");
                report.error = Some(error);
            }
            reports.push(report);
        }
    }
    reports
}

#[allow(clippy::too_many_arguments)]
async fn poll_market<S: CandleSource, P: TickSink, C: FeedCursors>(
    source: &S,
    sink: &P,
    cursors: &C,
    exchange: Exchange,
    market: &Market,
    closed_to: DateTime<Utc>,
    earliest: DateTime<Utc>,
    report: &mut MarketReport,
) -> Result<(), ExchangeError> {
    // The first invocation starts with the last closed minute.
    let start =
        cursors.cursor(exchange.source(), &market.coin).await?.unwrap_or(closed_to - Duration::minutes(1));
    let from = start.max(earliest);
    if from >= closed_to {
        return Ok(());
    }
    report.from = Some(from);
    if from > start {
        report.skipped_minutes = (from - start).num_minutes();
        warn!(
            %exchange, symbol = %market.symbol, skipped_minutes = report.skipped_minutes, since = %start,
            "down longer than FEED_CATCHUP_MINUTES: the oldest minutes are skipped"
        );
    }
    let ticks = source.candles(exchange, market, from, closed_to).await?;
    report.published = sink.publish(&ticks).await?;
    cursors.advance(exchange.source(), &market.coin, closed_to).await?;
    info!(%exchange, symbol = %market.symbol, %from, to = %closed_to, published = report.published, "candles published");
    Ok(())
}
