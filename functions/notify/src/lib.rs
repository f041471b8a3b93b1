//! The notify function: after each transform, sends the alert outbox's
//! pending rows (`storage::outbox`) to their channels (SNS, webhooks).
//!
//! Delivery is at least once, made exactly once per channel by the outbox: a
//! row becomes `sent` only after its channel accepted the message, so a crash
//! between the two sends that one message again on the next run, and nothing
//! else twice; one run at a time (an advisory lock). Failures worth retrying
//! (5xx, 429 with its `Retry-After`, timeouts) are retried with backoff; after
//! `ALERT_DELIVERY_ATTEMPTS` tries, or an answer no retry can change, the row
//! is `failed` with its last error, and the dashboard's Runs page shows it.
//! Cool-downs: `alerting::plan`.

pub mod config;
mod error;
mod handler;

pub use config::{Config, Delivery};
pub use error::NotifyError;
pub use handler::{ChannelReport, Notify, NotifyReport, handle, sns_client};
