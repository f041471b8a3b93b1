//! The batch half of the pipeline: one ingest of CoinGecko `/coins/markets`
//! per invocation ([`handle`]), and the history backfill ([`backfill`]).

pub mod backfill;
pub mod config;
mod error;
mod handler;

pub use config::Config;
pub use error::IngestError;
pub use handler::{Ingest, IngestReport, IngestRequest, MarketSource, handle};
