//! How to reach CoinGecko: `COINGECKO_*`, read by the mains of the jobs that
//! call it (ingest, `cpctl backfill` and `history`), through crate `settings`.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

/// The public API; the pro host (`https://pro-api.coingecko.com/api/v3`) for paid plans.
pub const DEFAULT_BASE_URL: &str = "https://api.coingecko.com/api/v3";

/// The client's configuration.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// `COINGECKO_BASE_URL`.
    #[serde(
        rename = "coingecko_base_url",
        default = "default_base_url",
        deserialize_with = "settings::de::http_url"
    )]
    pub base_url: Url,
    /// `COINGECKO_API_KEY`: sent as `x-cg-pro-api-key` to the pro host, as
    /// `x-cg-demo-api-key` elsewhere. On AWS it comes from the secret
    /// `COINGECKO_API_KEY_SECRET_ARN` names (crate `secrets`, in the main).
    #[serde(rename = "coingecko_api_key", default, deserialize_with = "settings::de::optional_secret")]
    pub api_key: Option<SecretString>,
    /// `COINGECKO_CA_BUNDLE`: extra PEM roots to trust, for networks behind a
    /// TLS-intercepting proxy. Verification itself is never turned off.
    #[serde(rename = "coingecko_ca_bundle", default, deserialize_with = "settings::de::pem_file")]
    pub ca_bundle: Option<PathBuf>,
    /// `COINGECKO_TIMEOUT_SECS`: per request.
    #[serde(
        rename = "coingecko_timeout_secs",
        default = "default_timeout",
        deserialize_with = "settings::de::positive_seconds"
    )]
    pub timeout: Duration,
    /// `COINGECKO_MAX_RETRIES`: retries after the first attempt, for 429, 5xx and transport errors.
    #[serde(
        rename = "coingecko_max_retries",
        default = "default_max_retries",
        deserialize_with = "settings::de::whole"
    )]
    pub max_retries: u32,
    /// `COINGECKO_RETRY_BASE_MS`: the first backoff delay; doubles on each
    /// retry (with jitter), capped at 30 s.
    #[serde(
        rename = "coingecko_retry_base_ms",
        default = "default_retry_base",
        deserialize_with = "settings::de::positive_millis"
    )]
    pub retry_base: Duration,
    /// `COINGECKO_MAX_RETRY_AFTER_SECS`: a `Retry-After` longer than this fails
    /// the call instead of sleeping.
    #[serde(
        rename = "coingecko_max_retry_after_secs",
        default = "default_max_retry_after",
        deserialize_with = "settings::de::seconds"
    )]
    pub max_retry_after: Duration,
}

fn default_base_url() -> Url {
    Url::parse(DEFAULT_BASE_URL).expect("DEFAULT_BASE_URL is a URL")
}

fn default_timeout() -> Duration {
    Duration::from_secs(15)
}

fn default_max_retries() -> u32 {
    5
}

fn default_retry_base() -> Duration {
    Duration::from_millis(500)
}

fn default_max_retry_after() -> Duration {
    Duration::from_secs(120)
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;
    use settings::{ConfigError, Env};

    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Env::from_pairs(vars.iter().copied()).load()
    }

    #[test]
    fn the_defaults_are_the_public_api() {
        let c = load(&[]).unwrap();
        assert_eq!(c.base_url.as_str(), "https://api.coingecko.com/api/v3");
        assert!(c.api_key.is_none() && c.ca_bundle.is_none());
        assert_eq!((c.timeout, c.max_retries), (Duration::from_secs(15), 5));
        assert_eq!((c.retry_base, c.max_retry_after), (Duration::from_millis(500), Duration::from_secs(120)));
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (name, bad) in [
            ("COINGECKO_TIMEOUT_SECS", "soon"),
            ("COINGECKO_TIMEOUT_SECS", "0"),
            ("COINGECKO_MAX_RETRIES", "-1"),
            ("COINGECKO_RETRY_BASE_MS", "0"),
            ("COINGECKO_MAX_RETRY_AFTER_SECS", "2m"),
            ("COINGECKO_BASE_URL", "api.coingecko.com"),
            ("COINGECKO_CA_BUNDLE", "/nonexistent/ca.pem"),
            ("COINGECKO_API_KEY", " "),
        ] {
            let err = load(&[(name, bad)]).unwrap_err();
            assert_eq!(err.variable(), name, "{bad}: {err}");
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn the_api_key_never_shows_in_debug_output() {
        let c = load(&[("COINGECKO_API_KEY", "CG-secret-key")]).unwrap();
        assert_eq!(c.api_key.as_ref().map(ExposeSecret::expose_secret), Some("CG-secret-key"));
        assert!(!format!("{c:?}").contains("CG-secret-key"));
    }

    #[test]
    fn a_base_url_keeps_its_path_without_a_trailing_slash() {
        let c = load(&[("COINGECKO_BASE_URL", "https://pro-api.coingecko.com/api/v3/")]).unwrap();
        assert_eq!(c.base_url.as_str(), "https://pro-api.coingecko.com/api/v3");
    }

    #[test]
    fn env_example_documents_every_variable_with_its_default() {
        settings::check_documented::<Config>(include_str!("../../../.env.example")).unwrap();
    }
}
