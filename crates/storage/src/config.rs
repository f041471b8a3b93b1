//! How storage is reached: Postgres ([`PgConfig`]) and S3 ([`S3Config`]).
//! Read from the environment by the mains, through crate `settings`; the
//! clients take them as they are and read no variable themselves.

use secrecy::{ExposeSecret, SecretString};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use url::Url;

/// The local stack's database (`just up`).
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:55432/crypto";

/// How to reach Postgres: `DATABASE_URL`, and the TLS to use when the URL
/// does not say (libpq's `PGSSLMODE` and `PGSSLROOTCERT`; see `PgStore::connect`).
#[derive(Debug, Clone, Deserialize)]
pub struct PgConfig {
    /// `DATABASE_URL`; may hold a password, so it is kept secret.
    #[serde(default = "default_database_url", deserialize_with = "database_url")]
    pub database_url: SecretString,
    /// `PGSSLMODE`: TLS when the URL has no `sslmode`; unset means `prefer`.
    #[serde(rename = "pgsslmode", default)]
    pub ssl_mode: Option<PgSslMode>,
    /// `PGSSLROOTCERT`: a PEM file of extra CA certificates (RDS:
    /// `global-bundle.pem`) when the URL has no `sslrootcert`; `system`: the
    /// system's roots only.
    #[serde(rename = "pgsslrootcert", default)]
    pub ssl_root_cert: Option<String>,
}

impl PgConfig {
    /// A URL alone: TLS only as the URL says (tests, tools).
    pub fn from_url(url: SecretString) -> Self {
        Self { database_url: url, ssl_mode: None, ssl_root_cert: None }
    }

    /// Another database URL with this one's TLS fallbacks (a scratch database
    /// on the same server).
    pub fn with_url(&self, url: SecretString) -> Self {
        Self { database_url: url, ..self.clone() }
    }
}

fn default_database_url() -> SecretString {
    SecretString::from(DEFAULT_DATABASE_URL)
}

/// A `postgres://` URL. Never quoted back: it may carry a password.
fn database_url<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SecretString, D::Error> {
    let raw = SecretString::from(String::deserialize(deserializer)?);
    Url::parse(raw.expose_secret())
        .ok()
        .filter(|u| matches!(u.scheme(), "postgres" | "postgresql"))
        .map(|_| raw)
        .ok_or_else(|| D::Error::custom("expected postgres://USER[:PASSWORD]@HOST:PORT/DATABASE"))
}

/// libpq's `sslmode` values. Every TLS mode verifies the certificate chain and
/// the host name: `require` and `verify-ca` do not weaken that here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PgSslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl PgSslMode {
    /// The mode a URL's `sslmode` names, if it is one.
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            _ => return None,
        })
    }
}

/// How to reach S3. Region and credentials come from the AWS SDK's standard
/// chain (`AWS_REGION`, the function's role…); only the endpoint of a local
/// stand-in is ours to know, because such an endpoint needs path-style requests.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct S3Config {
    /// `AWS_ENDPOINT_URL`: LocalStack or moto; unset on AWS.
    #[serde(rename = "aws_endpoint_url", default, deserialize_with = "settings::de::optional_http_url")]
    pub endpoint_url: Option<Url>,
    /// `AWS_ENDPOINT_URL_S3`: the same for S3 alone; wins over `AWS_ENDPOINT_URL`.
    #[serde(rename = "aws_endpoint_url_s3", default, deserialize_with = "settings::de::optional_http_url")]
    pub s3_endpoint_url: Option<Url>,
}

impl S3Config {
    /// The endpoint S3 requests go to instead of AWS's, if any.
    pub fn endpoint(&self) -> Option<&Url> {
        self.s3_endpoint_url.as_ref().or(self.endpoint_url.as_ref())
    }
}

/// S3's bucket naming rules, checked at start-up so that a typo fails there,
/// not at the first upload.
pub fn check_bucket_name(name: &str) -> Result<(), String> {
    let ok = (3..=63).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok { Ok(()) } else { Err(format!("{name:?} is not a valid S3 bucket name")) }
}

/// A bucket name ([`check_bucket_name`]), for `#[serde(deserialize_with = …)]`.
pub fn deserialize_bucket<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let name = String::deserialize(deserializer)?;
    check_bucket_name(&name).map_err(D::Error::custom)?;
    Ok(name)
}

#[cfg(test)]
mod tests {
    use settings::Env;

    use super::*;

    fn pg(vars: &[(&str, &str)]) -> Result<PgConfig, settings::ConfigError> {
        Env::from_pairs(vars.iter().copied()).load()
    }

    #[test]
    fn the_defaults_are_the_local_stack() {
        let config = pg(&[]).unwrap();
        assert_eq!(config.database_url.expose_secret(), DEFAULT_DATABASE_URL);
        assert_eq!((config.ssl_mode, config.ssl_root_cert), (None, None));
        assert!(Env::default().load::<S3Config>().unwrap().endpoint().is_none());
    }

    #[test]
    fn a_bad_database_url_is_reported_without_its_password() {
        let err = pg(&[("DATABASE_URL", "mysql://u:hunter2@h/db")]).unwrap_err();
        assert_eq!(err.variable(), "DATABASE_URL");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(
            !format!("{:?}", pg(&[("DATABASE_URL", "postgres://u:hunter2@h/db")]).unwrap())
                .contains("hunter2")
        );
    }

    #[test]
    fn the_tls_fallbacks_are_read_once_here() {
        let config =
            pg(&[("PGSSLMODE", "verify-full"), ("PGSSLROOTCERT", "/opt/rds/global-bundle.pem")]).unwrap();
        assert_eq!(config.ssl_mode, Some(PgSslMode::VerifyFull));
        assert_eq!(config.ssl_root_cert.as_deref(), Some("/opt/rds/global-bundle.pem"));
        let err = pg(&[("PGSSLMODE", "verify_full")]).unwrap_err();
        assert_eq!(err.variable(), "PGSSLMODE");
        assert!(err.to_string().contains("verify-full"), "{err}");
        assert_eq!(pg(&[("PGSSLROOTCERT", " ")]).unwrap_err().variable(), "PGSSLROOTCERT");
    }

    #[test]
    fn the_s3_endpoint_is_checked_and_the_s3_one_wins() {
        let env = Env::from_pairs([("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")]);
        let config: S3Config = env.load().unwrap();
        assert_eq!(config.endpoint().map(Url::as_str), Some("http://127.0.0.1:4566/"));
        let env =
            Env::from_pairs([("AWS_ENDPOINT_URL", "http://a:1"), ("AWS_ENDPOINT_URL_S3", "http://b:2")]);
        assert_eq!(env.load::<S3Config>().unwrap().endpoint().and_then(Url::host_str), Some("b"));
        let err = Env::from_pairs([("AWS_ENDPOINT_URL", "localhost:4566")]).load::<S3Config>().unwrap_err();
        assert_eq!(err.variable(), "AWS_ENDPOINT_URL");
    }

    #[test]
    fn bucket_names_follow_s3s_rules() {
        for ok in ["crypto-raw", "a.b-c", "abc"] {
            assert!(check_bucket_name(ok).is_ok(), "{ok}");
        }
        for bad in ["Bad_Bucket", "ab", "-abc", &"a".repeat(64)] {
            assert!(check_bucket_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn env_example_documents_the_database_variables_with_their_defaults() {
        let example = include_str!("../../../.env.example");
        settings::check_documented::<PgConfig>(example).unwrap();
        // AWS_ENDPOINT_URL there is the local stack's, not a default: documented only.
        assert_eq!(settings::undocumented::<S3Config>(example), Vec::<String>::new());
    }
}
