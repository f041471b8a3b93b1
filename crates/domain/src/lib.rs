//! Typed values that every part of the pipeline shares.
//!
//! Values are parsed once, where data enters the system (an API response, a
//! Kafka record, a configuration variable); the rest of the code takes the typed
//! values and never re-checks them.

mod coin;
mod error;
mod market;
mod tick;
mod window;

pub use coin::{CoinId, DEFAULT_COINS, VsCurrency};
pub use error::DomainError;
pub use market::{HistoryPoint, MarketSnapshot};
pub use tick::{BarStats, Tick, TickSource};
pub use window::window_label;
