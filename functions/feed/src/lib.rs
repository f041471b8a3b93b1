//! The serverless form of the live feed: a long-lived websocket does not fit
//! Lambda, so every minute this function publishes the exchanges' closed
//! 1-minute candles since the last minute it published ([`exchanges::candles`]).

mod error;
mod handler;

pub use error::FeedError;
pub use handler::{Config, Feed, FeedReport, FeedRequest, handle};
