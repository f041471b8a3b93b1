//! What the notify function reads from the environment, and only that.

use std::time::Duration;

use alerting::Channels;
use domain::VsCurrency;
use serde::Deserialize;
use settings::{ConfigError, Env};
use storage::{PgConfig, S3Config};
use url::Url;

/// The notify function's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub database: PgConfig,
    pub channels: Channels,
    pub delivery: Delivery,
    /// `AWS_ENDPOINT_URL`: LocalStack's SNS, as for S3.
    pub aws: S3Config,
}

/// How messages are sent and retried.
#[derive(Debug, Clone, Deserialize)]
pub struct Delivery {
    /// `ALERT_DELIVERY_ATTEMPTS`: tries of one message before its row is failed.
    #[serde(default = "five", deserialize_with = "settings::de::positive")]
    pub alert_delivery_attempts: u32,
    /// `ALERT_RETRY_BASE_MS`: the first retry's delay, doubled (with jitter) at each next one.
    #[serde(default = "one_second", deserialize_with = "settings::de::positive_millis")]
    pub alert_retry_base_ms: Duration,
    /// `ALERT_RETRY_MAX_WAIT_SECS`: the longest one run waits before a retry; a
    /// channel that asks for longer (`Retry-After`) gets the row at a later run.
    #[serde(default = "one_minute", deserialize_with = "settings::de::positive_seconds")]
    pub alert_retry_max_wait_secs: Duration,
    /// `ALERT_WEBHOOK_TIMEOUT_SECS`: a webhook that has not answered by then has failed this try.
    #[serde(default = "ten_seconds", deserialize_with = "settings::de::positive_seconds")]
    pub alert_webhook_timeout_secs: Duration,
    /// `DASHBOARD_URL`: the dashboard's address; messages link to `coins/{id}.html` under it.
    #[serde(default, deserialize_with = "settings::de::optional_http_url")]
    pub dashboard_url: Option<Url>,
    /// `VS_CURRENCY`: the currency of the prices in messages.
    #[serde(default = "VsCurrency::usd")]
    pub vs_currency: VsCurrency,
}

fn five() -> u32 {
    5
}

fn one_second() -> Duration {
    Duration::from_secs(1)
}

fn one_minute() -> Duration {
    Duration::from_secs(60)
}

fn ten_seconds() -> Duration {
    Duration::from_secs(10)
}

impl Config {
    pub fn load(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self { database: env.load()?, channels: env.load()?, delivery: env.load()?, aws: env.load()? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors_naming_the_variable() {
        let d = Config::load(&Env::from_pairs([("X", "y")])).unwrap().delivery;
        assert_eq!((d.alert_delivery_attempts, d.alert_retry_base_ms), (5, Duration::from_secs(1)));
        assert_eq!(d.dashboard_url, None);
        for (name, bad) in [
            ("ALERT_DELIVERY_ATTEMPTS", "0"),
            ("ALERT_RETRY_BASE_MS", "soon"),
            ("DASHBOARD_URL", "dashboard"),
            ("ALERT_WEBHOOKS", "x"),
        ] {
            assert_eq!(Config::load(&Env::from_pairs([(name, bad)])).unwrap_err().variable(), name);
        }
    }

    #[test]
    fn env_example_documents_every_variable_with_its_default() {
        settings::check_documented::<Delivery>(include_str!("../../../.env.example")).unwrap();
    }
}
