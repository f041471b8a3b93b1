//! The transform function: reads stored observations (stream ticks, batch
//! snapshots, backfilled history), runs the pure Polars transforms of the
//! `transforms` crate, and writes hourly candles, daily rankings, alerts,
//! daily volume and data-quality counts.
//!
//! Incremental by default: it reads what arrived since its last successful run
//! (a watermark per input table), recomputes the UTC days those rows touch plus
//! one day either side (whose rankings, alerts and cleaning windows depend on
//! them), reading one more day of context around that, and replaces those
//! days' results in one transaction. `full` rebuilds everything. Both give the
//! same tables.

pub mod config;
mod error;
mod handler;
mod io;
pub mod store;

pub use config::Config;
pub use error::TransformError;
pub use handler::{Outputs, Transform, TransformReport, TransformRequest, compute, handle};
pub use io::ticks_frame;
pub use store::{Snapshot, TransformStore};
