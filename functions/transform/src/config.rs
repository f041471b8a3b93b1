//! What the transform function reads from the environment, and only that.

use std::path::PathBuf;
use std::time::Duration;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use settings::{ConfigError, Env};
use storage::PgConfig;

/// The transform function's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub database: PgConfig,
    pub tuning: Tuning,
    /// `ALERT_SNS_TOPIC`, `ALERT_WEBHOOKS`: the transform queues one notification per
    /// new alert and channel (it sends nothing; the notify function does).
    pub channels: alerting::Channels,
}

/// The knobs of the transforms.
#[derive(Debug, Clone, Deserialize)]
pub struct Tuning {
    /// `ALERT_THRESHOLD_PCT`: an alert fires on a move strictly beyond this
    /// fraction (0.05 = 5 %).
    #[serde(
        rename = "alert_threshold_pct",
        default = "default_alert_threshold",
        deserialize_with = "settings::de::percent"
    )]
    pub alert_threshold: f64,
    /// `ALERT_WINDOW_HOURS`: alerts compare a close with the close this long
    /// before (whole hours, at most 24). With the threshold, the rule `default`
    /// when there is no rules file, and the default of a rule that leaves it out.
    #[serde(rename = "alert_window_hours", default = "one_hour", deserialize_with = "alert_window")]
    pub alert_window: Duration,
    /// `ALERT_RULES_FILE`: the alert rules (`alerts.toml`); unset: one rule, `default`,
    /// from `ALERT_THRESHOLD_PCT` and `ALERT_WINDOW_HOURS`.
    #[serde(rename = "alert_rules_file", default)]
    pub alert_rules_file: Option<PathBuf>,
    /// `ALERT_RULES`: the same rules as TOML text, for where a file is awkward (the
    /// Lambda's environment, from the template's AlertRules parameter: one line of
    /// inline tables, `rule = [{name = "default"}, …]`). At most one of the two.
    #[serde(rename = "alert_rules", default)]
    pub alert_rules: Option<String>,
    /// `ALERT_NOTIFY_MAX_AGE`: only alerts this recent when first seen are sent
    /// (`2h`, `90m`); older ones (a backfill, a replay, a rebuild) are recorded as
    /// "not sent: historical".
    #[serde(rename = "alert_notify_max_age", default = "two_hours", deserialize_with = "human_duration")]
    pub notify_max_age: Duration,
    /// `CLEAN_MAX_DEVIATION_PCT`: a price further than this fraction from its
    /// neighbourhood's median is aberrant.
    #[serde(
        rename = "clean_max_deviation_pct",
        default = "default_max_deviation",
        deserialize_with = "settings::de::percent"
    )]
    pub max_deviation: f64,
    /// `CLEAN_NEIGHBOURHOOD_HOURS`: the trailing window whose median a price is compared with.
    #[serde(
        rename = "clean_neighbourhood_hours",
        default = "six_hours",
        deserialize_with = "settings::de::positive_hours"
    )]
    pub neighbourhood: Duration,
    /// `TRANSFORM_WATERMARK_LAG_SECS`: rows ingested this recently wait for
    /// the next incremental run, unless no transaction in flight could still
    /// commit older ones (see `storage::inputs::watermarks`).
    #[serde(
        rename = "transform_watermark_lag_secs",
        default = "default_watermark_lag",
        deserialize_with = "settings::de::seconds"
    )]
    pub watermark_lag: Duration,
}

fn default_alert_threshold() -> f64 {
    0.05
}

fn default_max_deviation() -> f64 {
    0.5
}

fn one_hour() -> Duration {
    Duration::from_secs(3600)
}

fn two_hours() -> Duration {
    Duration::from_secs(2 * 3600)
}

/// A duration as people write it: `2h`, `90m`, `1h 30m`.
fn human_duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let raw = String::deserialize(deserializer)?;
    humantime::parse_duration(&raw).map_err(|e| D::Error::custom(format!("{raw:?}: {e} (e.g. 2h, 90m)")))
}

fn six_hours() -> Duration {
    Duration::from_secs(6 * 3600)
}

fn default_watermark_lag() -> Duration {
    Duration::from_secs(30)
}

/// Whole hours, 1 to 24: the alerts look back at most a day.
fn alert_window<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let window = settings::de::positive_hours(deserializer)?;
    if window > Duration::from_secs(24 * 3600) {
        return Err(D::Error::custom(format!("at most 24 (hours), not {}", window.as_secs() / 3600)));
    }
    Ok(window)
}

impl Config {
    /// Loads what the transform uses from `env`.
    pub fn load(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self { database: env.load()?, tuning: env.load()?, channels: env.load()? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::load(&Env::from_pairs(vars.iter().copied()))
    }

    #[test]
    fn the_defaults() {
        let t = load(&[]).unwrap().tuning;
        assert_eq!((t.alert_threshold, t.alert_window), (0.05, Duration::from_secs(3600)));
        assert_eq!((t.max_deviation, t.neighbourhood), (0.5, Duration::from_secs(6 * 3600)));
        assert_eq!(t.watermark_lag, Duration::from_secs(30));
        assert_eq!((t.alert_rules_file, t.notify_max_age), (None, Duration::from_secs(7200)));
        assert_eq!(
            load(&[("ALERT_NOTIFY_MAX_AGE", "1h 30m")]).unwrap().tuning.notify_max_age,
            Duration::from_secs(5400)
        );
        assert_eq!(
            load(&[("TRANSFORM_WATERMARK_LAG_SECS", "0")]).unwrap().tuning.watermark_lag,
            Duration::ZERO
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (name, bad) in [
            ("ALERT_THRESHOLD_PCT", "-1"),
            ("ALERT_THRESHOLD_PCT", "0"),
            ("ALERT_WINDOW_HOURS", "48"),
            ("ALERT_WINDOW_HOURS", "0"),
            ("CLEAN_MAX_DEVIATION_PCT", "half"),
            ("CLEAN_NEIGHBOURHOOD_HOURS", "0"),
            ("TRANSFORM_WATERMARK_LAG_SECS", "-5"),
            ("TRANSFORM_WATERMARK_LAG_SECS", " "),
            ("ALERT_NOTIFY_MAX_AGE", "two hours"),
            ("ALERT_WEBHOOKS", "team=slack:ftp://x"),
        ] {
            assert_eq!(load(&[(name, bad)]).unwrap_err().variable(), name, "{bad}");
        }
    }

    #[test]
    fn other_functions_variables_are_not_read() {
        assert!(load(&[("SITE_OUTPUT", ""), ("COINS", "BTC"), ("KAFKA_TOPIC_PARTITIONS", "abc")]).is_ok());
    }

    #[test]
    fn env_example_documents_every_variable_with_its_default() {
        settings::check_documented::<Tuning>(include_str!("../../../.env.example")).unwrap();
    }
}
