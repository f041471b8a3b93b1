//! What the site generator reads from the environment, and only that.

use std::path::PathBuf;
use std::time::Duration;

use domain::{CoinId, VsCurrency};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use settings::{ConfigError, Env};
use storage::{PgConfig, S3Config};

use crate::Output;

/// Where the dashboard goes when `SITE_OUTPUT` is unset: a folder `just serve` serves.
pub const DEFAULT_OUTPUT: &str = ".state/site";

/// The site generator's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub database: PgConfig,
    /// For an `s3://` output.
    pub s3: S3Config,
    /// `COINS`: the coins the dashboard shows.
    pub coins: Vec<CoinId>,
    /// `VS_CURRENCY`.
    pub vs_currency: VsCurrency,
    /// `SITE_OUTPUT`: `s3://BUCKET[/PREFIX]` (a website bucket) or a local folder.
    pub output: Output,
    /// `SITE_STALE_BATCH_SECS`: batch data older than this is flagged stale
    /// (the batch runs every 10 min: the default allows one missed run and some slack).
    pub stale_batch: Duration,
    /// `SITE_STALE_STREAM_SECS`: stream data older than this is flagged stale (ticks come every 5 s).
    pub stale_stream: Duration,
}

/// The variables only the site generator reads.
#[derive(Debug, Deserialize)]
struct Own {
    #[serde(default = "CoinId::defaults", deserialize_with = "CoinId::deserialize_list")]
    coins: Vec<CoinId>,
    #[serde(default = "VsCurrency::usd")]
    vs_currency: VsCurrency,
    #[serde(default = "default_output", deserialize_with = "deserialize_output")]
    site_output: Output,
    #[serde(default = "default_stale_batch", deserialize_with = "settings::de::positive_seconds")]
    site_stale_batch_secs: Duration,
    #[serde(default = "default_stale_stream", deserialize_with = "settings::de::positive_seconds")]
    site_stale_stream_secs: Duration,
}

/// [`DEFAULT_OUTPUT`], for `#[serde(default = …)]` (`cpctl setup` reads `SITE_OUTPUT` too).
pub fn default_output() -> Output {
    Output::Dir(PathBuf::from(DEFAULT_OUTPUT))
}

/// `SITE_OUTPUT`: [`Output::parse`], and a bucket that S3 would accept.
pub fn deserialize_output<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Output, D::Error> {
    let raw = String::deserialize(deserializer)?;
    let output =
        Output::parse(&raw).map_err(|_| D::Error::custom("expected s3://BUCKET[/PREFIX] or a folder"))?;
    if let Output::S3 { bucket, .. } = &output {
        storage::check_bucket_name(bucket).map_err(D::Error::custom)?;
    }
    Ok(output)
}

fn default_stale_batch() -> Duration {
    Duration::from_secs(1500)
}

fn default_stale_stream() -> Duration {
    Duration::from_secs(60)
}

impl Config {
    /// Loads what the site generator uses from `env`.
    pub fn load(env: &Env) -> Result<Self, ConfigError> {
        let own: Own = env.load()?;
        Ok(Self {
            database: env.load()?,
            s3: env.load()?,
            coins: own.coins,
            vs_currency: own.vs_currency,
            output: own.site_output,
            stale_batch: own.site_stale_batch_secs,
            stale_stream: own.site_stale_stream_secs,
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
    fn the_defaults() {
        let c = load(&[]).unwrap();
        assert_eq!(c.output, Output::Dir(PathBuf::from(".state/site")));
        assert_eq!((c.stale_batch, c.stale_stream), (Duration::from_secs(1500), Duration::from_secs(60)));
        assert_eq!(c.coins.len(), 5);
    }

    #[test]
    fn the_output_is_a_folder_or_a_valid_bucket() {
        let c = load(&[("SITE_OUTPUT", "s3://crypto-dashboard/site/")]).unwrap();
        assert_eq!(c.output, Output::S3 { bucket: "crypto-dashboard".into(), prefix: "site/".into() });
        for bad in ["s3://Bad_Bucket/site", "s3://", "https://example.com/site", " "] {
            assert_eq!(load(&[("SITE_OUTPUT", bad)]).unwrap_err().variable(), "SITE_OUTPUT", "{bad}");
        }
        assert_eq!(
            load(&[("SITE_STALE_STREAM_SECS", "0")]).unwrap_err().variable(),
            "SITE_STALE_STREAM_SECS"
        );
    }

    #[test]
    fn other_functions_variables_are_not_read() {
        assert!(load(&[("RAW_BUCKET", "Bad_Bucket"), ("COINGECKO_TIMEOUT_SECS", "soon")]).is_ok());
    }

    #[test]
    fn env_example_documents_every_variable_with_its_default() {
        settings::check_documented::<Own>(include_str!("../../.env.example")).unwrap();
    }
}
