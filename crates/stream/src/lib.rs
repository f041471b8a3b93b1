//! Kafka clients for the streaming half of the pipeline (topic `crypto_prices`
//! and its dead-letter topic), configured in one place.

use rdkafka::ClientConfig;
use rdkafka::consumer::StreamConsumer;
use rdkafka::producer::FutureProducer;
use settings::KafkaSettings;

/// A Kafka client that could not be created.
#[derive(Debug, thiserror::Error)]
#[error("cannot create the Kafka {role} for {brokers}: {source}")]
pub struct StreamError {
    pub role: &'static str,
    pub brokers: String,
    #[source]
    pub source: rdkafka::error::KafkaError,
}

/// A producer that neither loses nor duplicates records on retry:
/// idempotence on, `acks=all`.
pub fn producer(kafka: &KafkaSettings) -> Result<FutureProducer, StreamError> {
    ClientConfig::new()
        .set("bootstrap.servers", &kafka.brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("linger.ms", "5")
        .create()
        .map_err(|source| StreamError { role: "producer", brokers: kafka.brokers.clone(), source })
}

/// A consumer in `group` that commits offsets only when told to, so records are
/// acknowledged after they are stored, never before.
pub fn consumer(kafka: &KafkaSettings, group: &str) -> Result<StreamConsumer, StreamError> {
    ClientConfig::new()
        .set("bootstrap.servers", &kafka.brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .create()
        .map_err(|source| StreamError { role: "consumer", brokers: kafka.brokers.clone(), source })
}
