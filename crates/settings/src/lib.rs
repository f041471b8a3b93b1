//! Loads configuration from environment variables, once, at start-up.
//!
//! Configuration belongs to the crate that uses it: `storage::PgConfig`,
//! `coingecko::Config`, `stream::KafkaConfig`, each function's `Config`. Each
//! is a flat serde struct whose field names are its variables' names in
//! lowercase (`kafka_topic` is `KAFKA_TOPIC`; `#[serde(rename)]` where the
//! Rust name differs), with its defaults as `#[serde(default = …)]`. A main
//! loads what it uses with [`Env::load`], which deserialises through envy and
//! adds what envy leaves out:
//!
//! - only the struct's own variables are read, so another component's bad
//!   value never stops this one;
//! - a variable that is set but empty (or blank) is an error naming it: it
//!   never becomes `""`, and never silently its default;
//! - every error names its variable ([`ConfigError`]), also when the value
//!   fails a domain type's own check (serde_path_to_error says which field);
//! - values are trimmed: stray spaces in a `.env` are not part of a value.
//!
//! [`de`] holds the value rules several crates share (durations, percentages,
//! URLs, secrets). Secret values (`*_SECRET_ARN`) are laid over the [`Env`] by
//! crate `secrets` in the mains, so no library reads Secrets Manager.

pub mod de;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::de::{DeserializeOwned, Visitor};
use serde::{Deserialize, Deserializer};

/// A variable that cannot be used. Never holds a value that may be secret:
/// the value rules of [`de`] quote a value only where it cannot be one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{variable} is set but empty: give it a value, or unset it")]
    Empty { variable: String },

    #[error("{variable} is not valid UTF-8")]
    NotUnicode { variable: String },

    /// Only for a variable without a default; the pipeline's all have one.
    #[error("{variable} is not set")]
    Missing { variable: String },

    #[error("invalid {variable}: {reason}")]
    Invalid { variable: String, reason: String },
}

impl ConfigError {
    /// The variable at fault (or, for a value that involves several, their names).
    pub fn variable(&self) -> &str {
        match self {
            Self::Empty { variable }
            | Self::NotUnicode { variable }
            | Self::Missing { variable }
            | Self::Invalid { variable, .. } => variable,
        }
    }
}

/// The variables configuration is read from: a snapshot of the process
/// environment (with values read from secrets laid over it, on AWS), or a test's.
#[derive(Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
    /// Variables whose value is not UTF-8: an error only for a configuration that reads one.
    not_unicode: BTreeSet<String>,
}

/// Names only: values may be secrets.
impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Env").field("names", &self.vars.keys().collect::<Vec<_>>()).finish_non_exhaustive()
    }
}

impl Env {
    /// The process environment, now.
    pub fn from_process() -> Self {
        let mut env = Self::default();
        for (name, value) in std::env::vars_os() {
            // A name that is not UTF-8 cannot be one of ours.
            let Ok(name) = name.into_string() else { continue };
            match value.into_string() {
                Ok(value) => {
                    env.vars.insert(name, value);
                }
                Err(_) => {
                    env.not_unicode.insert(name);
                }
            }
        }
        env
    }

    /// These variables and no others (tests, and the values of a dotenv file).
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self { vars: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect(), ..Self::default() }
    }

    /// The value of `name` as set, untrimmed; `None` when unset (or not UTF-8).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// Sets `name` (a value read from a secret takes its plain variable's place).
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        self.not_unicode.remove(&name);
        self.vars.insert(name, value.into());
    }

    /// Loads `T`, a flat struct of variables (see the crate's documentation),
    /// from its own variables alone.
    pub fn load<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        let mut present = Vec::new();
        for variable in variables::<T>() {
            if self.not_unicode.contains(&variable) {
                return Err(ConfigError::NotUnicode { variable });
            }
            let Some(value) = self.vars.get(&variable) else { continue };
            let value = value.trim();
            if value.is_empty() {
                return Err(ConfigError::Empty { variable });
            }
            present.push((variable, value.to_owned()));
        }
        match envy::from_iter::<_, Tracked<T>>(present) {
            Ok(Tracked(result)) => result,
            Err(envy::Error::MissingValue(field)) => {
                Err(ConfigError::Missing { variable: field.to_ascii_uppercase() })
            }
            // A check across fields: it cannot say which one is wrong.
            Err(envy::Error::Custom(reason)) => {
                Err(ConfigError::Invalid { variable: variables::<T>().join(", "), reason })
            }
        }
    }
}

/// The variables `T` reads: its serde field names, in upper case.
pub fn variables<T: DeserializeOwned>() -> Vec<String> {
    let mut fields: &'static [&'static str] = &[];
    // The probe always fails: it only records what the struct asked for.
    let _ = T::deserialize(FieldNames(&mut fields));
    fields.iter().map(|f| f.to_ascii_uppercase()).collect()
}

/// A deserializer that records the field names a struct asks for, and nothing else.
struct FieldNames<'a>(&'a mut &'static [&'static str]);

impl<'de> Deserializer<'de> for FieldNames<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(serde::de::Error::custom("a configuration is a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(serde::de::Error::custom("field names recorded"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

/// `T`, or the error of the field that failed, named after its variable.
struct Tracked<T>(Result<T, ConfigError>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Tracked<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match serde_path_to_error::deserialize(deserializer) {
            Ok(value) => Ok(Self(Ok(value))),
            Err(err) => match err.path().iter().next() {
                Some(serde_path_to_error::Segment::Map { key }) => Ok(Self(Err(ConfigError::Invalid {
                    variable: key.to_ascii_uppercase(),
                    reason: err.inner().to_string(),
                }))),
                _ => Err(err.into_inner()),
            },
        }
    }
}

/// The variables a dotenv file (`.env.example`, `schedule.env`) sets: its
/// uncommented `NAME=value` lines, a value's surrounding double quotes removed.
pub fn dotenv_values(text: &str) -> Env {
    Env::from_pairs(text.lines().map(str::trim).filter(|l| !l.starts_with('#')).filter_map(|line| {
        let (name, value) = line.split_once('=')?;
        let value = value.trim();
        let value = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value);
        Some((name.trim().to_owned(), value.to_owned()))
    }))
}

/// The variables of `T` that a dotenv file does not mention, set or commented
/// out (`#NAME=`): every variable is to be documented there.
pub fn undocumented<T: DeserializeOwned>(text: &str) -> Vec<String> {
    let mentioned: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.trim().trim_start_matches('#').trim().split_once('='))
        .map(|(name, _)| name.trim())
        .collect();
    variables::<T>().into_iter().filter(|v| !mentioned.contains(v.as_str())).collect()
}

/// Checks a crate's configuration against the dotenv file that documents it:
/// every variable is mentioned, and the values it sets are the defaults (`T`
/// loaded from them equals, by its `Debug` output, `T` loaded from nothing).
pub fn check_documented<T: DeserializeOwned + fmt::Debug>(text: &str) -> Result<(), String> {
    let missing = undocumented::<T>(text);
    if !missing.is_empty() {
        return Err(format!("not documented: {}", missing.join(", ")));
    }
    let shown: T =
        dotenv_values(text).load().map_err(|e| format!("the documented values do not load: {e}"))?;
    let defaults: T = Env::default().load().map_err(|e| format!("the defaults do not load: {e}"))?;
    let (shown, defaults) = (format!("{shown:#?}"), format!("{defaults:#?}"));
    if shown == defaults { Ok(()) } else { Err(format!("documented:\n{shown}\ndefaults:\n{defaults}")) }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Sample {
        #[serde(default = "default_topic")]
        kafka_topic: String,
        #[serde(
            rename = "sample_timeout_secs",
            default = "default_timeout",
            deserialize_with = "de::positive_seconds"
        )]
        timeout: Duration,
        #[serde(default)]
        sample_partitions: Option<i32>,
        #[serde(default, rename = "sample_mode")]
        mode: Option<Mode>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "kebab-case")]
    enum Mode {
        Fast,
        VerySlow,
    }

    fn default_topic() -> String {
        String::from("crypto_prices")
    }

    fn default_timeout() -> Duration {
        Duration::from_secs(15)
    }

    fn load(vars: &[(&str, &str)]) -> Result<Sample, ConfigError> {
        Env::from_pairs(vars.iter().copied()).load()
    }

    #[test]
    fn unset_variables_take_their_defaults() {
        let s = load(&[]).unwrap();
        assert_eq!(
            s,
            Sample {
                kafka_topic: default_topic(),
                timeout: default_timeout(),
                sample_partitions: None,
                mode: None
            }
        );
    }

    #[test]
    fn set_variables_are_read_and_trimmed() {
        let s = load(&[
            ("KAFKA_TOPIC", " ticks "),
            ("SAMPLE_TIMEOUT_SECS", "3"),
            ("SAMPLE_PARTITIONS", "6"),
            ("SAMPLE_MODE", "very-slow"),
        ])
        .unwrap();
        assert_eq!(s.kafka_topic, "ticks");
        assert_eq!(s.timeout, Duration::from_secs(3));
        assert_eq!(s.sample_partitions, Some(6));
        assert_eq!(s.mode, Some(Mode::VerySlow));
    }

    #[test]
    fn a_variable_set_but_empty_is_an_error_naming_it() {
        for blank in ["", "  "] {
            let err = load(&[("KAFKA_TOPIC", blank)]).unwrap_err();
            assert_eq!(err, ConfigError::Empty { variable: String::from("KAFKA_TOPIC") });
            assert!(err.to_string().starts_with("KAFKA_TOPIC is set but empty"), "{err}");
        }
        // An optional one too: empty is not "unset".
        assert_eq!(load(&[("SAMPLE_PARTITIONS", "")]).unwrap_err().variable(), "SAMPLE_PARTITIONS");
    }

    #[test]
    fn a_malformed_value_is_an_error_naming_its_variable() {
        let err = load(&[("SAMPLE_PARTITIONS", "abc")]).unwrap_err();
        assert_eq!(err.variable(), "SAMPLE_PARTITIONS");
        assert!(err.to_string().starts_with("invalid SAMPLE_PARTITIONS: "), "{err}");
        let err = load(&[("SAMPLE_TIMEOUT_SECS", "0")]).unwrap_err();
        assert_eq!(err.variable(), "SAMPLE_TIMEOUT_SECS");
        assert!(err.to_string().contains("≥ 1"), "{err}");
        let err = load(&[("SAMPLE_MODE", "slow")]).unwrap_err();
        assert_eq!(err.variable(), "SAMPLE_MODE");
        assert!(err.to_string().contains("very-slow"), "{err}");
    }

    #[test]
    fn other_variables_are_not_read() {
        let s = load(&[("SITE_OUTPUT", ""), ("KAFKA_TOPIC_PARTITIONS", "abc"), ("KAFKA", "x")]).unwrap();
        assert_eq!(s.kafka_topic, "crypto_prices");
        assert_eq!(
            variables::<Sample>(),
            ["KAFKA_TOPIC", "SAMPLE_TIMEOUT_SECS", "SAMPLE_PARTITIONS", "SAMPLE_MODE"]
        );
    }

    #[test]
    fn a_value_that_is_not_utf8_is_an_error_only_where_it_is_read() {
        let mut env = Env::default();
        env.not_unicode.insert(String::from("KAFKA_TOPIC"));
        env.not_unicode.insert(String::from("OTHER"));
        assert_eq!(env.load::<Sample>().unwrap_err().variable(), "KAFKA_TOPIC");
        env.set("KAFKA_TOPIC", "ticks");
        assert_eq!(env.load::<Sample>().unwrap().kafka_topic, "ticks");
    }

    #[test]
    fn debug_output_shows_names_not_values() {
        let env = Env::from_pairs([("DATABASE_URL", "postgres://u:hunter2@h/d")]);
        let debug = format!("{env:?}");
        assert!(debug.contains("DATABASE_URL") && !debug.contains("hunter2"), "{debug}");
    }

    #[test]
    fn dotenv_files_are_checked_for_every_variable_and_its_default() {
        let good = "# comment\nKAFKA_TOPIC=crypto_prices\nSAMPLE_TIMEOUT_SECS=\"15\"\n#SAMPLE_PARTITIONS=\n# SAMPLE_MODE=fast\n";
        assert_eq!(check_documented::<Sample>(good), Ok(()));
        let missing = "KAFKA_TOPIC=crypto_prices\nSAMPLE_TIMEOUT_SECS=15\n";
        assert_eq!(
            check_documented::<Sample>(missing).unwrap_err(),
            "not documented: SAMPLE_PARTITIONS, SAMPLE_MODE"
        );
        let wrong = good.replace("=\"15\"", "=20");
        assert!(check_documented::<Sample>(&wrong).unwrap_err().contains("defaults:"));
    }
}
