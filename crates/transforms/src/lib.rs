//! Pure Polars transforms for the crypto price pipeline.
//!
//! Every public function takes a [`LazyFrame`](polars::prelude::LazyFrame) and returns one:
//! no I/O, no clock, no global state. Errors (a missing column, a wrong dtype) surface when
//! the caller runs `.collect()`.
//!
//! The flow is:
//!
//! 1. [`classify`] / [`clean`] / [`drop_counts`]: tag and remove unusable observations
//!    (missing fields, duplicates, invalid or aberrant prices).
//! 2. [`hourly`]: one OHLC candle per coin and UTC hour.
//! 3. [`daily_ranking`]: day-over-day performance ranking per UTC day.
//! 4. [`alerts`] (from hourly candles) and [`snapshot_alerts`] (from CoinGecko's own 24 h
//!    change): price moves beyond a threshold.
//! 5. [`daily_volume`]: USD volume per coin, UTC day and estimation method.
//!
//! # Input: the observations frame
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `coin` | String, nullable | CoinGecko coin id |
//! | `ts` | Datetime(µs, "UTC"), nullable | observation time |
//! | `price` | Float64, nullable | price in USD |
//! | `volume_base` | Float64, nullable | coin units traded during the tick/candle interval |
//! | `volume_24h` | Float64, nullable | rolling 24 h USD volume (CoinGecko) |
//! | `change_24h_pct` | Float64, nullable | CoinGecko's 24 h price change, in percent |
//! | `source` | String | `simulated`, `replay`, `coingecko` or `history` |
//! | `ingested_at` | Datetime(µs, "UTC") | when the row was stored |
//!
//! All hour and day boundaries are UTC; every timestamp column, in and out, has the dtype
//! [`utc_datetime`].

mod alerts;
mod clean;
mod error;
mod expr;
mod hourly;
mod ranking;
mod volume;

#[cfg(test)]
mod test_support;

pub use alerts::{AlertConfig, alerts, snapshot_alerts};
pub use clean::{CleanConfig, DropReason, classify, clean, drop_counts, kept};
pub use error::TransformError;
pub use expr::utc_datetime;
pub use hourly::hourly;
pub use ranking::daily_ranking;
pub use volume::daily_volume;
