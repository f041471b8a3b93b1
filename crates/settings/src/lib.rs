//! Configuration of the pipeline, read once from environment variables at start-up.
//!
//! Every variable has a default that works with the local stack (`just up`), so a
//! fresh clone runs without a `.env`. A malformed value fails start-up with an
//! error naming the variable. `.env.example` and the README list the same
//! variables; `settings_doc_matches_env_example` keeps them in step.
//!
//! On AWS, `DATABASE_URL` and `COINGECKO_API_KEY` come from Secrets Manager
//! instead: [`Settings::from_env_with_secrets`] reads the secrets that
//! `DATABASE_SECRET_ARN` and `COINGECKO_API_KEY_SECRET_ARN` name (crate `secrets`).

use std::path::PathBuf;
use std::time::Duration;

use domain::{CoinId, VsCurrency};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

/// Every variable this crate reads, with its default (`None`: unset by default).
/// The single source for `.env.example` and the README's table.
pub const VARIABLES: &[(&str, Option<&str>)] = &[
    ("DATABASE_URL", Some(DEFAULT_DATABASE_URL)),
    ("DATABASE_SECRET_ARN", None),
    ("DATABASE_HOST", None),
    ("DATABASE_PORT", Some("5432")),
    ("DATABASE_NAME", None),
    ("COINS", Some("bitcoin,ethereum,solana,ripple,binancecoin")),
    ("VS_CURRENCY", Some("usd")),
    ("COINGECKO_BASE_URL", Some(DEFAULT_COINGECKO_BASE_URL)),
    ("COINGECKO_API_KEY", None),
    ("COINGECKO_API_KEY_SECRET_ARN", None),
    ("COINGECKO_CA_BUNDLE", None),
    ("COINGECKO_TIMEOUT_SECS", Some("15")),
    ("COINGECKO_MAX_RETRIES", Some("5")),
    ("COINGECKO_RETRY_BASE_MS", Some("500")),
    ("COINGECKO_MAX_RETRY_AFTER_SECS", Some("120")),
    ("RAW_BUCKET", Some("crypto-raw")),
    ("KAFKA_BROKERS", Some("127.0.0.1:19092")),
    ("KAFKA_TOPIC", Some("crypto_prices")),
    ("KAFKA_DLQ_TOPIC", Some("crypto_prices_dlq")),
    ("KAFKA_CONSUMER_GROUP", Some("crypto-consumer")),
    ("CONSUMER_MAX_RECORDS", Some("500")),
    ("CONSUMER_MAX_WAIT_MS", Some("1000")),
    ("ALERT_THRESHOLD_PCT", Some("5")),
    ("ALERT_WINDOW_HOURS", Some("1")),
    ("CLEAN_MAX_DEVIATION_PCT", Some("50")),
    ("CLEAN_NEIGHBOURHOOD_HOURS", Some("6")),
    ("TRANSFORM_WATERMARK_LAG_SECS", Some("30")),
    ("SITE_OUTPUT", Some(".state/site")),
    ("SITE_STALE_BATCH_SECS", Some("1500")),
    ("SITE_STALE_STREAM_SECS", Some("60")),
];

const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:55432/crypto";
const DEFAULT_COINGECKO_BASE_URL: &str = "https://api.coingecko.com/api/v3";

/// A variable that is set but cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid {name}={value:?}: {reason}")]
pub struct SettingsError {
    pub name: &'static str,
    pub value: String,
    pub reason: String,
}

/// Everything a component may need; each takes the parts it uses.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Postgres connection URL; may hold a password, so it is kept secret.
    pub database_url: SecretString,
    pub coins: Vec<CoinId>,
    pub vs_currency: VsCurrency,
    pub coingecko: CoinGeckoSettings,
    /// Bucket that receives raw API responses, as fetched.
    pub raw_bucket: String,
    pub kafka: KafkaSettings,
    pub transform: TransformSettings,
    pub site: SiteSettings,
}

/// Where the dashboard goes and when its sources count as stale.
#[derive(Debug, Clone)]
pub struct SiteSettings {
    /// `s3://BUCKET[/PREFIX]` (a website bucket) or a local folder.
    pub output: String,
    /// Batch data older than this is flagged stale (the batch runs every 10 min:
    /// the default allows one missed run and some slack).
    pub stale_batch: Duration,
    /// Stream data older than this is flagged stale (ticks come every 5 s).
    pub stale_stream: Duration,
}

/// Knobs of the transforms.
#[derive(Debug, Clone)]
pub struct TransformSettings {
    /// An alert fires on a move strictly beyond this fraction (0.05 = 5 %).
    pub alert_threshold: f64,
    /// Alerts compare a close with the close this long before (whole hours, ≤ 24 h).
    pub alert_window: Duration,
    /// A price further than this fraction from its neighbourhood's median is aberrant.
    pub max_deviation: f64,
    /// The trailing window whose median a price is compared with.
    pub neighbourhood: Duration,
    /// Rows ingested this recently wait for the next incremental run.
    pub watermark_lag: Duration,
}

/// How to reach CoinGecko.
#[derive(Debug, Clone)]
pub struct CoinGeckoSettings {
    pub base_url: Url,
    pub api_key: Option<SecretString>,
    /// Extra PEM roots to trust, for networks behind a TLS-intercepting proxy.
    /// Verification itself is never turned off.
    pub ca_bundle: Option<PathBuf>,
    pub timeout: Duration,
    /// Retries after the first attempt, for 429, 5xx and transport errors.
    pub max_retries: u32,
    /// First backoff delay; doubles on each retry (with jitter), capped at 30 s.
    pub retry_base: Duration,
    /// A `Retry-After` longer than this fails the call instead of sleeping.
    pub max_retry_after: Duration,
}

/// How to reach Kafka.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    pub brokers: String,
    pub topic: String,
    pub dlq_topic: String,
    /// Consumer group of the local poller.
    pub group: String,
    /// Largest batch the poller hands to the consumer function.
    pub max_records: usize,
    /// How long the poller waits to fill a batch once it has a first record.
    pub max_wait: Duration,
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the process environment, taking `DATABASE_URL` and
    /// `COINGECKO_API_KEY`, when unset, from the Secrets Manager secrets named by
    /// `DATABASE_SECRET_ARN` and `COINGECKO_API_KEY_SECRET_ARN` (as the Lambda
    /// functions get them on AWS). Without such an ARN this is
    /// [`Settings::from_env`], and no AWS client is built.
    pub async fn from_env_with_secrets() -> Result<Self, SettingsError> {
        let env = |name: &str| std::env::var(name).ok();
        if !secrets::needed(&env) {
            return Self::from_env();
        }
        let source = secrets::SecretsManager::from_env().await;
        Self::from_lookup_with_secrets(env, &source).await
    }

    /// [`Settings::from_lookup`], with the secrets the ARN variables name read
    /// from `source` first; a plain variable that is set wins over its secret.
    pub async fn from_lookup_with_secrets(
        lookup: impl Fn(&str) -> Option<String>,
        source: &impl secrets::SecretSource,
    ) -> Result<Self, SettingsError> {
        let resolved = secrets::resolve(&lookup, source).await.map_err(|e| SettingsError {
            name: e.variable,
            value: e.arn,
            reason: telemetry::failure::Chain(&e.problem).to_string(),
        })?;
        Self::from_lookup(|name| {
            resolved.get(name).map(|v| v.expose_secret().to_owned()).or_else(|| lookup(name))
        })
    }

    /// Reads settings through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let get = |name: &'static str| -> String {
            lookup(name)
                .filter(|v| !v.trim().is_empty())
                .or_else(|| default_of(name).map(str::to_owned))
                .unwrap_or_default()
        };
        let opt = |name: &'static str| lookup(name).filter(|v| !v.trim().is_empty());

        let database_url = get("DATABASE_URL");
        Url::parse(&database_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "postgres" | "postgresql"))
            .ok_or_else(|| SettingsError {
                name: "DATABASE_URL",
                // Never echo a URL that may carry a password.
                value: String::from("<hidden>"),
                reason: String::from("expected postgres://USER[:PASSWORD]@HOST:PORT/DATABASE"),
            })?;

        let coins_raw = get("COINS");
        let coins = CoinId::parse_list(&coins_raw).map_err(|e| invalid("COINS", &coins_raw, e))?;
        if coins.is_empty() {
            return Err(invalid("COINS", &coins_raw, "name at least one coin"));
        }
        let vs_raw = get("VS_CURRENCY");
        let vs_currency = VsCurrency::parse(&vs_raw).map_err(|e| invalid("VS_CURRENCY", &vs_raw, e))?;

        let base_raw = get("COINGECKO_BASE_URL");
        let base_url = Url::parse(base_raw.trim_end_matches('/'))
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| invalid("COINGECKO_BASE_URL", &base_raw, "expected an http(s) URL"))?;

        let ca_bundle = opt("COINGECKO_CA_BUNDLE").map(PathBuf::from);
        if let Some(path) = ca_bundle.as_ref().filter(|p| !p.is_file()) {
            return Err(invalid(
                "COINGECKO_CA_BUNDLE",
                &path.display().to_string(),
                "no such file: point it at a PEM file of extra CA certificates",
            ));
        }

        let window_hours = number(&get, "ALERT_WINDOW_HOURS", 1)?;
        if window_hours > 24 {
            return Err(invalid("ALERT_WINDOW_HOURS", &window_hours.to_string(), "at most 24 (hours)"));
        }
        let transform = TransformSettings {
            alert_threshold: fraction(&get, "ALERT_THRESHOLD_PCT")?,
            alert_window: Duration::from_secs(window_hours * 3600),
            max_deviation: fraction(&get, "CLEAN_MAX_DEVIATION_PCT")?,
            neighbourhood: Duration::from_secs(number(&get, "CLEAN_NEIGHBOURHOOD_HOURS", 1)? * 3600),
            watermark_lag: Duration::from_secs(number(&get, "TRANSFORM_WATERMARK_LAG_SECS", 0)?),
        };

        let output = get("SITE_OUTPUT");
        if let Some(rest) = output.strip_prefix("s3://") {
            bucket(rest.split('/').next().unwrap_or_default().to_owned(), "SITE_OUTPUT")?;
        }
        let site = SiteSettings {
            output,
            stale_batch: Duration::from_secs(number(&get, "SITE_STALE_BATCH_SECS", 1)?),
            stale_stream: Duration::from_secs(number(&get, "SITE_STALE_STREAM_SECS", 1)?),
        };

        Ok(Self {
            transform,
            site,
            database_url: SecretString::from(database_url),
            coins,
            vs_currency,
            coingecko: CoinGeckoSettings {
                base_url,
                api_key: opt("COINGECKO_API_KEY").map(SecretString::from),
                ca_bundle,
                timeout: Duration::from_secs(number(&get, "COINGECKO_TIMEOUT_SECS", 1)?),
                max_retries: u32::try_from(number(&get, "COINGECKO_MAX_RETRIES", 0)?)
                    .map_err(|e| invalid("COINGECKO_MAX_RETRIES", "", e))?,
                retry_base: Duration::from_millis(number(&get, "COINGECKO_RETRY_BASE_MS", 1)?),
                max_retry_after: Duration::from_secs(number(&get, "COINGECKO_MAX_RETRY_AFTER_SECS", 0)?),
            },
            raw_bucket: bucket(get("RAW_BUCKET"), "RAW_BUCKET")?,
            kafka: KafkaSettings {
                brokers: get("KAFKA_BROKERS"),
                topic: get("KAFKA_TOPIC"),
                dlq_topic: get("KAFKA_DLQ_TOPIC"),
                group: get("KAFKA_CONSUMER_GROUP"),
                max_records: usize::try_from(number(&get, "CONSUMER_MAX_RECORDS", 1)?)
                    .map_err(|e| invalid("CONSUMER_MAX_RECORDS", "", e))?,
                max_wait: Duration::from_millis(number(&get, "CONSUMER_MAX_WAIT_MS", 1)?),
            },
        })
    }
}

fn default_of(name: &str) -> Option<&'static str> {
    VARIABLES.iter().find(|(n, _)| *n == name).and_then(|(_, d)| *d)
}

fn invalid(name: &'static str, value: &str, reason: impl ToString) -> SettingsError {
    SettingsError { name, value: value.to_owned(), reason: reason.to_string() }
}

fn number(get: &impl Fn(&'static str) -> String, name: &'static str, min: u64) -> Result<u64, SettingsError> {
    let raw = get(name);
    match raw.trim().parse::<u64>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(invalid(name, &raw, format!("expected a whole number ≥ {min}"))),
    }
}

/// A positive percentage, as a fraction.
fn fraction(get: &impl Fn(&'static str) -> String, name: &'static str) -> Result<f64, SettingsError> {
    let raw = get(name);
    match raw.trim().parse::<f64>() {
        Ok(pct) if pct.is_finite() && pct > 0.0 => Ok(pct / 100.0),
        _ => Err(invalid(name, &raw, "expected a positive percentage such as 5 or 2.5")),
    }
}

/// S3 bucket naming rules, checked here so a typo fails at start-up, not at the first upload.
fn bucket(raw: String, name: &'static str) -> Result<String, SettingsError> {
    let ok = (3..=63).contains(&raw.len())
        && raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && raw.as_bytes()[0].is_ascii_alphanumeric();
    if ok { Ok(raw) } else { Err(invalid(name, &raw, "not a valid S3 bucket name")) }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use secrecy::ExposeSecret;

    use super::*;

    fn with(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_match_the_local_stack() {
        let s = with(&[]).unwrap();
        assert_eq!(s.database_url.expose_secret(), DEFAULT_DATABASE_URL);
        assert_eq!(s.coins.len(), 5);
        assert_eq!(s.vs_currency.as_str(), "usd");
        assert_eq!(s.coingecko.base_url.as_str(), "https://api.coingecko.com/api/v3");
        assert!(s.coingecko.api_key.is_none());
        assert_eq!(s.raw_bucket, "crypto-raw");
        assert_eq!(s.kafka.topic, "crypto_prices");
        assert_eq!(s.transform.alert_threshold, 0.05);
        assert_eq!(s.transform.alert_window, Duration::from_secs(3600));
        assert_eq!(s.transform.max_deviation, 0.5);
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = with(&[("COINS", "bitcoin,BTC")]).unwrap_err();
        assert_eq!(err.name, "COINS");
        let err = with(&[("COINGECKO_TIMEOUT_SECS", "soon")]).unwrap_err();
        assert!(err.to_string().contains("COINGECKO_TIMEOUT_SECS"), "{err}");
        let err = with(&[("ALERT_THRESHOLD_PCT", "-1")]).unwrap_err();
        assert_eq!(err.name, "ALERT_THRESHOLD_PCT");
        let err = with(&[("ALERT_WINDOW_HOURS", "48")]).unwrap_err();
        assert_eq!(err.name, "ALERT_WINDOW_HOURS");
        let err = with(&[("SITE_OUTPUT", "s3://Bad_Bucket/site")]).unwrap_err();
        assert_eq!(err.name, "SITE_OUTPUT");
        let err = with(&[("RAW_BUCKET", "Bad_Bucket")]).unwrap_err();
        assert_eq!(err.name, "RAW_BUCKET");
        let err = with(&[("COINGECKO_CA_BUNDLE", "/nonexistent/ca.pem")]).unwrap_err();
        assert_eq!(err.name, "COINGECKO_CA_BUNDLE");
    }

    #[test]
    fn a_bad_database_url_is_reported_without_its_password() {
        let err = with(&[("DATABASE_URL", "mysql://u:hunter2@h/db")]).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert_eq!(err.name, "DATABASE_URL");
    }

    #[test]
    fn the_api_key_never_shows_in_debug_output() {
        let s = with(&[("COINGECKO_API_KEY", "CG-secret-key")]).unwrap();
        assert!(!format!("{s:?}").contains("CG-secret-key"));
    }

    /// Secrets by ARN; fails the test if asked for any other.
    struct FakeSecrets(HashMap<&'static str, &'static str>);

    impl secrets::SecretSource for FakeSecrets {
        async fn secret_string(&self, arn: &str) -> Result<SecretString, secrets::Problem> {
            match self.0.get(arn) {
                Some(v) => Ok(SecretString::from(v.to_string())),
                None => Err(secrets::Problem::Fetch {
                    hint: "",
                    source: "AccessDeniedException: not allowed".into(),
                }),
            }
        }
    }

    const DB_ARN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:crypto/db-AbCdEf";
    const KEY_ARN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:crypto/cg-GhIjKl";

    async fn with_secrets(vars: &[(&str, &str)], secrets: FakeSecrets) -> Result<Settings, SettingsError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup_with_secrets(|k| map.get(k).cloned(), &secrets).await
    }

    #[tokio::test]
    async fn secrets_stand_in_for_unset_variables() {
        let secrets = FakeSecrets(HashMap::from([
            (
                DB_ARN,
                r#"{"username":"app","password":"s3cr:t@","host":"db.example.com","port":5432,"dbname":"crypto"}"#,
            ),
            (KEY_ARN, r#"{"api_key":"CG-secret-key"}"#),
        ]));
        let s = with_secrets(
            &[("DATABASE_SECRET_ARN", DB_ARN), ("COINGECKO_API_KEY_SECRET_ARN", KEY_ARN)],
            secrets,
        )
        .await
        .unwrap();
        assert_eq!(s.database_url.expose_secret(), "postgres://app:s3cr%3At%40@db.example.com:5432/crypto");
        assert_eq!(s.coingecko.api_key.as_ref().unwrap().expose_secret(), "CG-secret-key");
        assert!(!format!("{s:?}").contains("s3cr") && !format!("{s:?}").contains("CG-secret-key"));
    }

    #[tokio::test]
    async fn without_arns_nothing_changes() {
        // An empty fake fails every fetch: none may happen.
        let s = with_secrets(&[], FakeSecrets(HashMap::new())).await.unwrap();
        assert_eq!(s.database_url.expose_secret(), DEFAULT_DATABASE_URL);
        let local = "postgres://postgres@127.0.0.1:55432/other";
        let s = with_secrets(
            &[("DATABASE_URL", local), ("DATABASE_SECRET_ARN", DB_ARN)],
            FakeSecrets(HashMap::new()),
        )
        .await
        .unwrap();
        assert_eq!(s.database_url.expose_secret(), local);
        assert!(!secrets::needed(&|k: &str| (k == "DATABASE_URL").then(|| local.to_owned())));
    }

    #[tokio::test]
    async fn a_secret_that_fails_names_its_variable_and_arn() {
        let err = with_secrets(&[("COINGECKO_API_KEY_SECRET_ARN", KEY_ARN)], FakeSecrets(HashMap::new()))
            .await
            .unwrap_err();
        assert_eq!(err.name, "COINGECKO_API_KEY_SECRET_ARN");
        assert_eq!(err.value, KEY_ARN);
        assert!(err.to_string().contains("AccessDeniedException"), "{err}");

        let secrets = FakeSecrets(HashMap::from([(DB_ARN, r#"{"username":"app","password":"hunter2"}"#)]));
        let err = with_secrets(&[("DATABASE_SECRET_ARN", DB_ARN)], secrets).await.unwrap_err();
        assert_eq!(err.name, "DATABASE_SECRET_ARN");
        let text = err.to_string();
        assert!(text.contains("DATABASE_HOST") && !text.contains("hunter2"), "{text}");
    }

    #[test]
    fn settings_doc_matches_env_example() {
        let example = include_str!("../../../.env.example");
        for (name, default) in VARIABLES {
            let line = example
                .lines()
                .map(|l| l.trim_start_matches('#').trim())
                .find(|l| l.starts_with(&format!("{name}=")))
                .unwrap_or_else(|| panic!(".env.example lacks {name}"));
            assert_eq!(&line[name.len() + 1..], default.unwrap_or(""), "default of {name} in .env.example");
        }
    }
}
