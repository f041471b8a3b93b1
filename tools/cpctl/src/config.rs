//! The variables cpctl's own commands read. Each command loads these and the
//! configuration types of the jobs it runs (`storage::PgConfig`,
//! `ingest::Config`…), and nothing more: a bad value matters only to the
//! commands that use it.

use domain::{CoinId, VsCurrency};
use serde::Deserialize;

/// `cpctl setup`: what it creates besides the database.
#[derive(Debug, Deserialize)]
pub struct Setup {
    /// `KAFKA_TOPIC_PARTITIONS`: partitions of `KAFKA_TOPIC` (stack.env sets the local stack's).
    #[serde(default = "default_partitions", deserialize_with = "settings::de::positive")]
    pub kafka_topic_partitions: i32,
    /// `RAW_BUCKET`, ingest's.
    #[serde(
        default = "ingest::config::default_raw_bucket",
        deserialize_with = "storage::deserialize_bucket"
    )]
    pub raw_bucket: String,
    /// `SITE_OUTPUT`, site-gen's: a bucket there is made a website.
    #[serde(
        default = "site_gen::config::default_output",
        deserialize_with = "site_gen::config::deserialize_output"
    )]
    pub site_output: site_gen::Output,
    /// `SITE_BUCKET`: another bucket to serve the dashboard as a website,
    /// besides `SITE_OUTPUT`'s (the local stack's, stack.env).
    #[serde(default, deserialize_with = "optional_bucket")]
    pub site_bucket: Option<String>,
}

fn optional_bucket<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    storage::deserialize_bucket(deserializer).map(Some)
}

fn default_partitions() -> i32 {
    6
}

/// `COINS`: the coins a command fetches, simulates or loads.
#[derive(Debug, Deserialize)]
pub struct Coins {
    #[serde(default = "CoinId::defaults", deserialize_with = "CoinId::deserialize_list")]
    pub coins: Vec<CoinId>,
}

/// `VS_CURRENCY`: the currency history is fetched in.
#[derive(Debug, Deserialize)]
pub struct Currency {
    #[serde(default = "VsCurrency::usd")]
    pub vs_currency: VsCurrency,
}

/// `cpctl schedule`, unless its flags say otherwise.
#[derive(Debug, Deserialize)]
pub struct Schedule {
    /// `INGEST_SCHEDULE`: its one definition is schedule.env (which `just` reads).
    #[serde(default = "default_schedule")]
    pub ingest_schedule: String,
    /// `SCHEDULE_EVERY_SECS`: local testing, a tick every N seconds instead.
    #[serde(default, deserialize_with = "positive_secs")]
    pub schedule_every_secs: Option<u64>,
}

fn default_schedule() -> String {
    String::from("rate(10 minutes)")
}

fn positive_secs<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    settings::de::positive(deserializer).map(Some)
}

/// `cpctl produce`, unless its flags say otherwise.
#[derive(Debug, Deserialize)]
pub struct Producer {
    /// `PRODUCER_INTERVAL_SECS`: its one definition is schedule.env (which `just` reads).
    #[serde(default = "default_interval", deserialize_with = "settings::de::positive")]
    pub producer_interval_secs: u32,
    /// `PRODUCER_SEED`: of the random walk, for reproducible runs; unset: random.
    #[serde(default)]
    pub producer_seed: Option<u64>,
}

fn default_interval() -> u32 {
    5
}

#[cfg(test)]
mod tests {
    use settings::{ConfigError, Env};

    use super::*;

    fn setup(vars: &[(&str, &str)]) -> Result<Setup, ConfigError> {
        Env::from_pairs(vars.iter().copied()).load()
    }

    #[test]
    fn topic_partitions_default_to_six_and_a_malformed_value_is_an_error_naming_it() {
        assert_eq!(setup(&[]).unwrap().kafka_topic_partitions, 6);
        assert_eq!(setup(&[("KAFKA_TOPIC_PARTITIONS", "3")]).unwrap().kafka_topic_partitions, 3);
        for bad in ["abc", "0", "-1", "2.5", "99999999999"] {
            let err = setup(&[("KAFKA_TOPIC_PARTITIONS", bad)]).unwrap_err();
            assert_eq!(err.variable(), "KAFKA_TOPIC_PARTITIONS", "{bad}");
            assert!(err.to_string().starts_with("invalid KAFKA_TOPIC_PARTITIONS: "), "{err}");
        }
        let err = setup(&[("KAFKA_TOPIC_PARTITIONS", "")]).unwrap_err();
        assert_eq!(err, ConfigError::Empty { variable: String::from("KAFKA_TOPIC_PARTITIONS") });
    }

    #[test]
    fn setup_checks_the_buckets_it_creates() {
        assert_eq!(setup(&[("RAW_BUCKET", "Bad_Bucket")]).unwrap_err().variable(), "RAW_BUCKET");
        assert_eq!(setup(&[("SITE_OUTPUT", "s3://Bad_Bucket")]).unwrap_err().variable(), "SITE_OUTPUT");
        let s = setup(&[("SITE_OUTPUT", "s3://crypto-dashboard")]).unwrap();
        assert_eq!(
            s.site_output,
            site_gen::Output::S3 { bucket: "crypto-dashboard".into(), prefix: String::new() }
        );
    }

    #[test]
    fn schedule_and_producer_defaults_and_errors() {
        let schedule: Schedule = Env::default().load().unwrap();
        assert_eq!(
            (schedule.ingest_schedule.as_str(), schedule.schedule_every_secs),
            ("rate(10 minutes)", None)
        );
        let producer: Producer = Env::default().load().unwrap();
        assert_eq!((producer.producer_interval_secs, producer.producer_seed), (5, None));
        let env = Env::from_pairs([("PRODUCER_INTERVAL_SECS", "0"), ("SCHEDULE_EVERY_SECS", "0")]);
        assert_eq!(env.load::<Producer>().unwrap_err().variable(), "PRODUCER_INTERVAL_SECS");
        assert_eq!(env.load::<Schedule>().unwrap_err().variable(), "SCHEDULE_EVERY_SECS");
        let env = Env::from_pairs([("PRODUCER_SEED", "")]);
        assert_eq!(env.load::<Producer>().unwrap_err().variable(), "PRODUCER_SEED");
    }

    /// The dotenv files that document these variables: `.env.example`, and
    /// schedule.env and stack.env for what they define.
    #[test]
    fn every_variable_is_documented_with_its_default() {
        let docs = [
            include_str!("../../../.env.example"),
            include_str!("../../../schedule.env"),
            include_str!("../../../stack.env"),
        ]
        .join("\n");
        // stack.env's SITE_BUCKET is the local stack's bucket, not a default.
        let example = include_str!("../../../.env.example");
        settings::check_documented::<Setup>(example).unwrap();
        settings::check_documented::<Coins>(&docs).unwrap();
        settings::check_documented::<Currency>(&docs).unwrap();
        settings::check_documented::<Schedule>(&docs).unwrap();
        settings::check_documented::<Producer>(&docs).unwrap();
    }
}
