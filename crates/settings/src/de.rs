//! Value rules that several crates' configurations share, for
//! `#[serde(deserialize_with = "settings::de::…")]`. Each reads the value as
//! text and says what it expected; [`crate::Env::load`] adds the variable's
//! name. Numbers are quoted back in errors; secrets and URLs that may carry
//! credentials never are.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use url::Url;

fn number<'de, D: Deserializer<'de>>(deserializer: D, min: u64, unit: &str) -> Result<u64, D::Error> {
    let raw = String::deserialize(deserializer)?;
    match raw.parse::<u64>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(D::Error::custom(format!("expected a whole number{unit} ≥ {min}, not {raw:?}"))),
    }
}

fn fits<T: TryFrom<u64>, E: serde::de::Error>(n: u64) -> Result<T, E> {
    T::try_from(n).map_err(|_| E::custom(format!("{n} is too large")))
}

/// A whole number ≥ 0.
pub fn whole<'de, D: Deserializer<'de>, T: TryFrom<u64>>(deserializer: D) -> Result<T, D::Error> {
    fits(number(deserializer, 0, "")?)
}

/// A whole number ≥ 1.
pub fn positive<'de, D: Deserializer<'de>, T: TryFrom<u64>>(deserializer: D) -> Result<T, D::Error> {
    fits(number(deserializer, 1, "")?)
}

/// Whole seconds, 0 included.
pub fn seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    Ok(Duration::from_secs(number(deserializer, 0, " of seconds")?))
}

/// Whole seconds, at least one.
pub fn positive_seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    Ok(Duration::from_secs(number(deserializer, 1, " of seconds")?))
}

/// Whole milliseconds, at least one.
pub fn positive_millis<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    Ok(Duration::from_millis(number(deserializer, 1, " of milliseconds")?))
}

/// Whole hours, at least one.
pub fn positive_hours<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let hours = number(deserializer, 1, " of hours")?;
    hours
        .checked_mul(3600)
        .map(Duration::from_secs)
        .ok_or_else(|| D::Error::custom(format!("{hours} hours is too long")))
}

/// A positive percentage (`5`, `2.5`), as a fraction (0.05, 0.025).
pub fn percent<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    let raw = String::deserialize(deserializer)?;
    match raw.parse::<f64>() {
        Ok(pct) if pct.is_finite() && pct > 0.0 => Ok(pct / 100.0),
        _ => Err(D::Error::custom(format!("expected a positive percentage such as 5 or 2.5, not {raw:?}"))),
    }
}

/// An `http://` or `https://` URL, without a trailing `/`. Not quoted back:
/// a URL may carry a user and password.
pub fn http_url<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Url, D::Error> {
    let raw = String::deserialize(deserializer)?;
    Url::parse(raw.trim_end_matches('/'))
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
        .ok_or_else(|| D::Error::custom("expected an http:// or https:// URL"))
}

/// [`http_url`], for a variable without a default.
pub fn optional_http_url<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Url>, D::Error> {
    http_url(deserializer).map(Some)
}

/// A PEM file of CA certificates, for a variable without a default: it must
/// exist at start-up, so a typo fails before any connection (the file is
/// read when the client is built).
pub fn pem_file<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<PathBuf>, D::Error> {
    let path = PathBuf::from(String::deserialize(deserializer)?);
    if !path.is_file() {
        return Err(D::Error::custom(format!(
            "no such file {}: point it at a PEM file of CA certificates",
            path.display()
        )));
    }
    Ok(Some(path))
}

/// A value kept out of `Debug` output and logs.
pub fn secret<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SecretString, D::Error> {
    String::deserialize(deserializer).map(SecretString::from)
}

/// [`secret`], for a variable without a default.
pub fn optional_secret<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<SecretString>, D::Error> {
    secret(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;
    use serde::Deserialize;

    use super::*;
    use crate::{ConfigError, Env};

    #[derive(Debug, Deserialize)]
    struct Values {
        #[serde(default, deserialize_with = "super::whole")]
        retries: u32,
        #[serde(default, deserialize_with = "super::positive")]
        batch: usize,
        #[serde(default, deserialize_with = "super::seconds")]
        lag: Duration,
        #[serde(default, deserialize_with = "super::positive_millis")]
        wait: Duration,
        #[serde(default, deserialize_with = "super::positive_hours")]
        window: Duration,
        #[serde(default, deserialize_with = "super::percent")]
        threshold: f64,
        #[serde(default, deserialize_with = "optional_http_url")]
        endpoint: Option<Url>,
        #[serde(default, deserialize_with = "optional_secret")]
        key: Option<SecretString>,
    }

    fn load(name: &str, value: &str) -> Result<Values, ConfigError> {
        Env::from_pairs([(name, value)]).load()
    }

    fn reason(name: &str, value: &str) -> String {
        match load(name, value).unwrap_err() {
            ConfigError::Invalid { variable, reason } => {
                assert_eq!(variable, name);
                reason
            }
            other => panic!("{other}"),
        }
    }

    #[test]
    fn numbers_and_durations() {
        assert_eq!(load("RETRIES", "0").unwrap().retries, 0);
        assert_eq!(reason("RETRIES", "-1"), "expected a whole number ≥ 0, not \"-1\"");
        assert!(reason("RETRIES", "5000000000").contains("too large"));
        assert_eq!(load("BATCH", "500").unwrap().batch, 500);
        assert!(reason("BATCH", "0").contains("≥ 1"));
        assert_eq!(load("LAG", "0").unwrap().lag, Duration::ZERO);
        assert_eq!(reason("LAG", "soon"), "expected a whole number of seconds ≥ 0, not \"soon\"");
        assert_eq!(load("WAIT", "250").unwrap().wait, Duration::from_millis(250));
        assert_eq!(load("WINDOW", "2").unwrap().window, Duration::from_secs(7200));
        assert!(reason("WINDOW", "0").contains("of hours ≥ 1"));
    }

    #[test]
    fn percentages_are_positive_fractions() {
        assert_eq!(load("THRESHOLD", "5").unwrap().threshold, 0.05);
        assert_eq!(load("THRESHOLD", "2.5").unwrap().threshold, 0.025);
        for bad in ["0", "-1", "NaN", "inf", "five"] {
            assert!(reason("THRESHOLD", bad).contains("positive percentage"), "{bad}");
        }
    }

    #[test]
    fn urls_are_http_and_never_quoted_back() {
        let url = load("ENDPOINT", "http://127.0.0.1:4566/").unwrap().endpoint.unwrap();
        assert_eq!(url.as_str().trim_end_matches('/'), "http://127.0.0.1:4566");
        for bad in ["ftp://u:hunter2@h/x", "127.0.0.1:4566", "http://"] {
            let reason = reason("ENDPOINT", bad);
            assert!(!reason.contains("hunter2") && reason.contains("http"), "{bad}: {reason}");
        }
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let values = load("KEY", "CG-secret").unwrap();
        assert_eq!(values.key.as_ref().unwrap().expose_secret(), "CG-secret");
        assert!(!format!("{values:?}").contains("CG-secret"));
    }
}
