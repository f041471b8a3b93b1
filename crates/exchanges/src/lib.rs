//! Live market data from the exchanges' public (keyless) market-data APIs:
//!
//! - [`feed`]: the long-running websocket feed (`cpctl feed`): Binance's
//!   combined `<symbol>@trade` streams and Coinbase Exchange's `matches`
//!   channel (with `heartbeat`), aggregated into bars ([`bars`]) and published
//!   as tick v1 messages; reconnects with backoff on close, error or stall,
//!   counts trade-id gaps, writes its figures to the runs table.
//! - [`candles`]: the serverless form (the `feed` function, every minute): the
//!   closed 1-minute klines/candles since the last minute published, over REST.
//!
//! Both normalise through [`binance`] and [`coinbase`] (wire formats) into
//! [`Trade`]s and bar [`domain::Tick`]s, with the coin ↔ symbol mapping of
//! [`Markets`].

pub mod bars;
pub mod binance;
pub mod candles;
pub mod coinbase;
mod config;
mod error;
pub mod feed;
mod markets;
mod rest;
mod tls;

use std::fmt;

use chrono::{DateTime, Utc};
use domain::TickSource;

pub use config::{ExchangeEndpoints, FeedConfig};
pub use error::ExchangeError;
pub use markets::{Market, Markets};
pub use rest::RestClient;

/// An exchange the feed reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Exchange {
    Binance,
    Coinbase,
}

impl Exchange {
    pub const ALL: [Self; 2] = [Self::Binance, Self::Coinbase];

    pub fn as_str(self) -> &'static str {
        self.source().as_str()
    }

    /// The exchange a tick source stands for.
    pub fn of(source: TickSource) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.source() == source)
    }

    /// The source its ticks carry.
    pub fn source(self) -> TickSource {
        match self {
            Self::Binance => TickSource::Binance,
            Self::Coinbase => TickSource::Coinbase,
        }
    }

    /// The currency its prices are quoted in: spot USDT pairs on Binance (it
    /// lists no USD pairs for most coins), USD on Coinbase.
    pub fn quote(self) -> &'static str {
        match self {
            Self::Binance => "USDT",
            Self::Coinbase => "USD",
        }
    }

    /// As the dashboard and logs name it.
    pub fn title(self) -> &'static str {
        match self {
            Self::Binance => "Binance",
            Self::Coinbase => "Coinbase",
        }
    }
}

impl fmt::Display for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One trade, normalised: which market, at what price, how much, when.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trade {
    pub exchange: Exchange,
    /// Index of the coin in the feed's [`Markets`] (cheap to copy and hash).
    pub market: usize,
    pub price: f64,
    /// Base quantity (coin units), positive.
    pub size: f64,
    /// The exchange's trade time.
    pub time: DateTime<Utc>,
    /// The exchange's trade id: consecutive per market on both exchanges.
    pub id: u64,
}

/// The sequence number of a bar or candle ending at `end`: its index on the
/// grid of `secs`-long intervals, so the same interval published again is the
/// same message, byte for byte.
pub(crate) fn grid_seq(end: DateTime<Utc>, secs: u32) -> u64 {
    u64::try_from(end.timestamp() / i64::from(secs.max(1))).unwrap_or_default()
}

/// A closed 1-minute candle that had trades, as a tick: its close, at the minute's end.
pub(crate) fn minute_tick(
    exchange: Exchange,
    market: &Market,
    open: DateTime<Utc>,
    close: f64,
    volume: f64,
    bar: Option<domain::BarStats>,
) -> domain::Tick {
    let end = open + chrono::Duration::minutes(1);
    domain::Tick {
        coin: market.coin.clone(),
        event_time: end,
        price: close,
        volume: Some(volume),
        interval_secs: 60,
        source: exchange.source(),
        seq: grid_seq(end, 60),
        bar,
    }
}

/// A number the exchanges send as a decimal string (`"66577.01000000"`):
/// finite and positive, or `None`.
pub(crate) fn positive_decimal(raw: &str) -> Option<f64> {
    raw.parse::<f64>().ok().filter(|v| v.is_finite() && *v > 0.0)
}
