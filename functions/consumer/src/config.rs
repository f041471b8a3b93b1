//! What the consumer function reads from the environment, and only that: a
//! bad `SITE_OUTPUT` or `COINGECKO_*` is the business of the functions that use them.

use domain::CoinId;
use serde::Deserialize;
use settings::{ConfigError, Env};
use storage::PgConfig;
use stream::KafkaConfig;

/// The consumer function's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub database: PgConfig,
    /// Brokers and the dead-letter topic (on AWS the event source mapping reads the prices topic).
    pub kafka: KafkaConfig,
    /// `COINS`: ticks of any other coin are dead letters.
    pub coins: Vec<CoinId>,
}

/// The variables only the consumer reads.
#[derive(Debug, Deserialize)]
struct Own {
    #[serde(default = "CoinId::defaults", deserialize_with = "CoinId::deserialize_list")]
    coins: Vec<CoinId>,
}

impl Config {
    /// Loads what the consumer uses from `env`.
    pub fn load(env: &Env) -> Result<Self, ConfigError> {
        let own: Own = env.load()?;
        Ok(Self { database: env.load()?, kafka: env.load()?, coins: own.coins })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::load(&Env::from_pairs(vars.iter().copied()))
    }

    #[test]
    fn loads_with_a_bad_site_output_it_does_not_read() {
        let config = load(&[
            ("SITE_OUTPUT", "s3://Bad_Bucket/site"),
            ("COINGECKO_BASE_URL", "not a url"),
            ("ALERT_WINDOW_HOURS", "48"),
            ("RAW_BUCKET", ""),
            ("COINS", "bitcoin,ethereum"),
        ])
        .unwrap();
        assert_eq!(config.coins, CoinId::parse_list("bitcoin,ethereum").unwrap());
        assert_eq!(config.kafka.dlq_topic, "crypto_prices_dlq");
    }

    #[test]
    fn its_own_variables_set_but_empty_are_errors_naming_them() {
        for name in ["KAFKA_DLQ_TOPIC", "KAFKA_BROKERS", "COINS", "DATABASE_URL", "PGSSLMODE"] {
            let err = load(&[(name, "")]).unwrap_err();
            assert_eq!(err, ConfigError::Empty { variable: name.to_owned() });
            assert!(err.to_string().starts_with(&format!("{name} is set but empty")), "{err}");
        }
    }

    #[test]
    fn env_example_documents_every_variable_with_its_default() {
        settings::check_documented::<Own>(include_str!("../../../.env.example")).unwrap();
    }
}
