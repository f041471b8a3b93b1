//! The streaming sink: Kafka price ticks into Postgres.
//!
//! [`handle`] is the Lambda handler AWS calls with a batch from the Kafka event
//! source mapping. [`poller`] plays the event source mapping's part locally,
//! where AWS is not there: it gathers batches with a consumer group, calls the
//! same handler in-process and commits offsets only after it succeeded.

mod config;
mod error;
mod handler;
pub mod poller;

pub use config::Config;
pub use error::ConsumerError;
pub use handler::{BatchReport, Consumer, DeadLetter, DeadLetterSink, handle};
