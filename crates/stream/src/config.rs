//! How to reach Kafka: `KAFKA_*`, read by the mains of the components that
//! produce or consume ticks, through crate `settings`.

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
