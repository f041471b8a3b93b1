//! The batch half of the pipeline: one ingest of CoinGecko `/coins/markets`
//! per invocation ([`handle`]), and the history backfill ([`backfill`]).

pub mod backfill;
mod error;
mod handler;

pub use error::IngestError;
pub use handler::{Ingest, IngestReport, IngestRequest, MarketSource, handle};
