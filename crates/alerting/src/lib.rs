//! Alerts that reach people: the rules that raise them ([`rules`]), the
//! channels they go to ([`channels`]), the message ([`message`]), sending it
//! ([`deliver`]) and the cool-down ([`plan`]).
//!
//! The transform reads the rules and the channels' names and writes one
//! outbox row per new alert and channel (`storage::outbox`) in the transaction
//! that writes the alert; the notify function sends the rows.

pub mod channels;
pub mod deliver;
pub mod message;
pub mod plan;
pub mod rules;

pub use channels::{Channels, Format, Webhook};
pub use deliver::{Failure, Sender};
pub use message::Notice;
pub use plan::{Step, plan};
pub use rules::{Rule, RuleDefaults, Rules, RulesError};

/// Why the channels could not be made ready.
#[derive(Debug, thiserror::Error)]
pub enum AlertingError {
    #[error("cannot {action} on SNS: {message}")]
    Sns { action: &'static str, message: String },

    #[error("no SNS topic named {0:?} (ALERT_SNS_TOPIC): `cpctl setup` creates it, or give its ARN")]
    NoTopic(String),

    #[error("cannot build the webhooks' HTTP client: {0}")]
    Http(String),
}
