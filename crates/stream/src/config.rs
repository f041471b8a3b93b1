//! How to reach Kafka: `KAFKA_*`, read by the mains of the components that
//! produce or consume ticks, through crate `settings`.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

/// Brokers, topics and the local poller's consumer group.
#[derive(Debug, Clone, Deserialize)]
pub struct KafkaConfig {
    /// `KAFKA_BROKERS`: bootstrap servers, `host:port[,host:port…]`.
    #[serde(rename = "kafka_brokers", default = "default_brokers")]
    pub brokers: String,
    /// `KAFKA_TOPIC`: the price ticks.
    #[serde(rename = "kafka_topic", default = "default_topic")]
    pub topic: String,
    /// `KAFKA_DLQ_TOPIC`: records the consumer cannot store.
    #[serde(rename = "kafka_dlq_topic", default = "default_dlq_topic")]
    pub dlq_topic: String,
    /// `KAFKA_CONSUMER_GROUP`: consumer group of the local poller (on AWS, of
    /// the event source mapping, which template.yaml sets up).
    #[serde(rename = "kafka_consumer_group", default = "default_group")]
    pub group: String,
    /// `KAFKA_SECURITY_PROTOCOL`: `plaintext` (the local stack), `ssl`, or
    /// `sasl_ssl`. Certificates are always verified, host name included.
    #[serde(rename = "kafka_security_protocol", default)]
    pub security_protocol: SecurityProtocol,
    /// `KAFKA_SASL_MECHANISM`, with `sasl_ssl`: `SCRAM-SHA-512`,
    /// `SCRAM-SHA-256`, `PLAIN` (Confluent Cloud) or `AWS_MSK_IAM`.
    #[serde(rename = "kafka_sasl_mechanism", default)]
    pub sasl_mechanism: Option<SaslMechanism>,
    /// `KAFKA_SASL_USERNAME`, for SCRAM and PLAIN. On AWS it comes from the
    /// secret `KAFKA_SASL_SECRET_ARN` names (crate `secrets`, in the main).
    #[serde(rename = "kafka_sasl_username", default)]
    pub sasl_username: Option<String>,
    /// `KAFKA_SASL_PASSWORD`, for SCRAM and PLAIN (or from `KAFKA_SASL_SECRET_ARN`).
    #[serde(rename = "kafka_sasl_password", default, deserialize_with = "settings::de::optional_secret")]
    pub sasl_password: Option<SecretString>,
    /// `KAFKA_SSL_CA_LOCATION`: a PEM file of the CA certificates that signed
    /// the brokers'. Unset: the system's trust store (MSK and Confluent Cloud
    /// present publicly trusted certificates).
    #[serde(rename = "kafka_ssl_ca_location", default, deserialize_with = "settings::de::pem_file")]
    pub ssl_ca_location: Option<PathBuf>,
}

/// How clients talk to the brokers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum SecurityProtocol {
    #[default]
    #[serde(rename = "plaintext", alias = "PLAINTEXT")]
    Plaintext,
    #[serde(rename = "ssl", alias = "SSL")]
    Ssl,
    #[serde(rename = "sasl_ssl", alias = "SASL_SSL")]
    SaslSsl,
}

/// How clients authenticate over `sasl_ssl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SaslMechanism {
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    #[serde(rename = "PLAIN")]
    Plain,
    /// SASL/OAUTHBEARER with a token signed from the AWS credentials chain
    /// (`aws-msk-iam-sasl-signer`), as MSK's IAM access control expects.
    #[serde(rename = "AWS_MSK_IAM")]
    AwsMskIam,
}

impl SaslMechanism {
    /// The name as `KAFKA_SASL_MECHANISM` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::ScramSha512 => "SCRAM-SHA-512",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::Plain => "PLAIN",
            Self::AwsMskIam => "AWS_MSK_IAM",
        }
    }
}

fn default_brokers() -> String {
    String::from("127.0.0.1:19092")
}

fn default_topic() -> String {
    String::from("crypto_prices")
}

fn default_dlq_topic() -> String {
    String::from("crypto_prices_dlq")
}

fn default_group() -> String {
    String::from("crypto-consumer")
}

#[cfg(test)]
mod tests {
    use settings::Env;

    use super::*;

    #[test]
    fn the_defaults_are_the_local_stack() {
        let kafka: KafkaConfig = Env::default().load().unwrap();
        assert_eq!(kafka.brokers, "127.0.0.1:19092");
        assert_eq!((kafka.topic.as_str(), kafka.dlq_topic.as_str()), ("crypto_prices", "crypto_prices_dlq"));
        assert_eq!(kafka.group, "crypto-consumer");
        assert_eq!(kafka.security_protocol, SecurityProtocol::Plaintext);
        assert!(kafka.sasl_mechanism.is_none() && kafka.sasl_username.is_none());
        assert!(kafka.sasl_password.is_none() && kafka.ssl_ca_location.is_none());
    }

    #[test]
    fn security_settings_load_in_kafka_spelling_and_bad_ones_name_the_variable() {
        let kafka: KafkaConfig = Env::from_pairs([
            ("KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
            ("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
            ("KAFKA_SASL_USERNAME", "alice"),
            ("KAFKA_SASL_PASSWORD", "s3cret-value"),
        ])
        .load()
        .unwrap();
        assert_eq!(kafka.security_protocol, SecurityProtocol::SaslSsl);
        assert_eq!(kafka.sasl_mechanism, Some(SaslMechanism::ScramSha512));
        assert!(!format!("{kafka:?}").contains("s3cret-value"), "the password never shows in Debug");
        for (name, bad) in [
            ("KAFKA_SECURITY_PROTOCOL", "tls"),
            ("KAFKA_SASL_MECHANISM", "GSSAPI"),
            ("KAFKA_SSL_CA_LOCATION", "/nonexistent/ca.pem"),
        ] {
            let err = Env::from_pairs([(name, bad)]).load::<KafkaConfig>().unwrap_err();
            assert_eq!(err.variable(), name, "{bad}: {err}");
        }
    }

    #[test]
    fn a_topic_set_but_empty_is_an_error_naming_it() {
        let err = Env::from_pairs([("KAFKA_DLQ_TOPIC", "")]).load::<KafkaConfig>().unwrap_err();
        assert_eq!(err.variable(), "KAFKA_DLQ_TOPIC");
    }

    #[test]
    fn env_example_documents_every_variable_with_its_default() {
        settings::check_documented::<KafkaConfig>(include_str!("../../../.env.example")).unwrap();
    }
}
