//! What the ingest function reads from the environment, and only that.

use domain::{CoinId, VsCurrency};
use serde::Deserialize;
use settings::{ConfigError, Env};
use storage::{PgConfig, S3Config};

/// The bucket of raw API responses when `RAW_BUCKET` is unset (the local stack's).
pub const DEFAULT_RAW_BUCKET: &str = "crypto-raw";

/// The ingest function's configuration: its clients', and its own variables.
#[derive(Debug, Clone)]
pub struct Config {
    pub database: PgConfig,
    pub s3: S3Config,
    pub coingecko: coingecko::Config,
    /// `COINS`: what to fetch when the request names no coins.
    pub coins: Vec<CoinId>,
    /// `VS_CURRENCY`.
    pub vs_currency: VsCurrency,
    /// `RAW_BUCKET`: receives the raw API responses, as fetched.
    pub raw_bucket: String,
}

/// The variables only ingest reads.
#[derive(Debug, Deserialize)]
struct Own {
    #[serde(default = "CoinId::defaults", deserialize_with = "CoinId::deserialize_list")]
    coins: Vec<CoinId>,
    #[serde(default = "VsCurrency::usd")]
    vs_currency: VsCurrency,
    #[serde(default = "default_raw_bucket", deserialize_with = "storage::deserialize_bucket")]
    raw_bucket: String,
}

/// [`DEFAULT_RAW_BUCKET`], for `#[serde(default = …)]` (`cpctl setup` creates the bucket).
pub fn default_raw_bucket() -> String {
    String::from(DEFAULT_RAW_BUCKET)
}

impl Config {
    /// Loads what ingest uses from `env`.
    pub fn load(env: &Env) -> Result<Self, ConfigError> {
        let own: Own = env.load()?;
        Ok(Self {
            database: env.load()?,
            s3: env.load()?,
            coingecko: env.load()?,
            coins: own.coins,
            vs_currency: own.vs_currency,
            raw_bucket: own.raw_bucket,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::load(&Env::from_pairs(vars.iter().copied()))
    }

    #[test]
    fn the_defaults_match_the_local_stack() {
        let c = load(&[]).unwrap();
        assert_eq!(c.coins, CoinId::defaults());
        assert_eq!(c.vs_currency, VsCurrency::usd());
        assert_eq!(c.raw_bucket, "crypto-raw");
        assert_eq!(c.coingecko.base_url.as_str(), coingecko::DEFAULT_BASE_URL);
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (name, bad) in [
            ("COINS", "bitcoin,BTC"),
            ("COINS", ","),
            ("VS_CURRENCY", "us dollar"),
            ("RAW_BUCKET", "Bad_Bucket"),
            ("RAW_BUCKET", ""),
            ("COINGECKO_TIMEOUT_SECS", "soon"),
            ("DATABASE_URL", "mysql://u@h/db"),
        ] {
            assert_eq!(load(&[(name, bad)]).unwrap_err().variable(), name, "{bad}");
        }
    }

    #[test]
    fn other_functions_variables_are_not_read() {
        let c =
            load(&[("SITE_OUTPUT", "s3://Bad_Bucket"), ("ALERT_WINDOW_HOURS", "48"), ("KAFKA_TOPIC", "")]);
        assert!(c.is_ok(), "{c:?}");
    }

    #[test]
    fn env_example_documents_every_variable_with_its_default() {
        settings::check_documented::<Own>(include_str!("../../../.env.example")).unwrap();
    }
}
