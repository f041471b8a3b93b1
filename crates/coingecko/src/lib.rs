//! Client of the CoinGecko API v3, for the two endpoints the pipeline uses:
//! `/coins/markets` (the batch snapshot) and `/coins/{id}/market_chart/range`
//! (history).
//!
//! The client keeps the raw body next to the parsed values, so the raw landing
//! zone stores exactly what CoinGecko sent. A response is parsed whole before
//! anything is returned: a truncated or malformed body is an error, never a
//! partial result.

mod client;
mod config;
mod error;
mod wire;

pub use client::{Client, Fetched, MAX_RANGE_DAYS_HOURLY, retry_after};
pub use config::{Config, DEFAULT_BASE_URL};
pub use error::CoinGeckoError;
pub use wire::{parse_market_chart, parse_markets};
