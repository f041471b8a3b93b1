//! The streaming half of the pipeline around topic `crypto_prices`: the tick
//! message format, simulated and replayed ticks, the Kafka clients configured
//! one way for every component, publishing, and dead letters.

mod config;
pub mod message;
pub mod replay;
mod security;
pub mod simulate;

use std::borrow::Borrow;
use std::time::Duration;

use domain::Tick;
use futures::future::try_join_all;
use rdkafka::consumer::StreamConsumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

pub use config::{KafkaConfig, SaslMechanism, SecurityProtocol};
pub use security::KafkaContext;

/// A Kafka client that could not be created or used.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("cannot create the Kafka {role} for {brokers}: {source}")]
    Client {
        role: &'static str,
        brokers: String,
        #[source]
        source: KafkaError,
    },
    /// Security settings that cannot work together.
    #[error("{variable} {problem}")]
    Config { variable: &'static str, problem: String },
    #[error(
        "Kafka at {} refused the credentials{} ({}): {}; check KAFKA_SASL_PASSWORD, or the secret \
         KAFKA_SASL_SECRET_ARN names",
        .0.brokers,
        .0.username.as_ref().map(|u| format!(" of KAFKA_SASL_USERNAME={u}")).unwrap_or_default(),
        .0.mechanism,
        .0.reason
    )]
    Authentication(Box<AuthenticationFailure>),
    #[error(
        "TLS with Kafka at {} failed: {}; the brokers' certificate must be signed by a CA in \
         KAFKA_SSL_CA_LOCATION ({}) and name the host the client connects to",
        .0.brokers,
        .0.reason,
        .0.ca
    )]
    Tls(Box<TlsFailure>),
    #[error("Kafka at {brokers} did not answer within 20 s: {source}")]
    Unreachable {
        brokers: String,
        #[source]
        source: KafkaError,
    },
    #[error("Kafka at {brokers} has no topic {topic}: create it (`cpctl setup`) or fix the topic variable")]
    NoTopic { topic: String, brokers: String },
    #[error("Kafka did not take a record for {topic}: {source}")]
    Produce {
        topic: String,
        #[source]
        source: KafkaError,
    },
}

/// The brokers refused the credentials.
#[derive(Debug)]
pub struct AuthenticationFailure {
    pub brokers: String,
    pub mechanism: &'static str,
    pub username: Option<String>,
    /// librdkafka's words, naming the broker (`sasl_ssl://host:port/…`).
    pub reason: String,
}

/// The TLS handshake failed.
#[derive(Debug)]
pub struct TlsFailure {
    pub brokers: String,
    /// The CA file the certificate was checked against, or "the system's trust store".
    pub ca: String,
    /// librdkafka's words, naming the broker (`ssl://host:port/…`).
    pub reason: String,
}

/// A producer that neither loses nor duplicates records on retry:
/// idempotence on, `acks=all`.
pub fn producer(kafka: &KafkaConfig) -> Result<FutureProducer<KafkaContext>, StreamError> {
    producer_with_context(kafka).map(|(producer, _)| producer)
}

/// [`producer`], with a handle on its context (what librdkafka reported).
fn producer_with_context(
    kafka: &KafkaConfig,
) -> Result<(FutureProducer<KafkaContext>, KafkaContext), StreamError> {
    let (mut config, context) = kafka.client_config()?;
    config
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "120000")
        .create_with_context(context.clone())
        .map(|producer| (producer, context))
        .map_err(|source| StreamError::Client { role: "producer", brokers: kafka.brokers.clone(), source })
}

/// A consumer in `group` that commits offsets only when told to, so records are
/// acknowledged after they are stored, never before.
pub fn consumer(kafka: &KafkaConfig, group: &str) -> Result<StreamConsumer<KafkaContext>, StreamError> {
    let (mut config, context) = kafka.client_config()?;
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        // A batch retried while Postgres is away must not cost the partitions.
        .set("max.poll.interval.ms", "900000")
        .create_with_context(context)
        .map_err(|source| StreamError::Client { role: "consumer", brokers: kafka.brokers.clone(), source })
}

/// A record as raw bytes: key, value, headers.
pub type RawRecord<'a> = (Option<&'a [u8]>, &'a [u8], Option<OwnedHeaders>);

/// Records in flight before the publisher waits for their acknowledgements.
const WINDOW: usize = 20_000;

/// Publishes ticks to the prices topic, keyed by coin.
#[derive(Clone)]
pub struct Publisher {
    producer: FutureProducer<KafkaContext>,
    topic: String,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher").field("topic", &self.topic).finish_non_exhaustive()
    }
}

impl Publisher {
    /// A publisher to the prices topic, once the brokers answered for it ([`KafkaConfig::check`]).
    pub async fn connect(kafka: &KafkaConfig) -> Result<Self, StreamError> {
        Self::connect_to(kafka, &kafka.topic).await
    }

    /// A publisher to another topic (dead letters, tests, benchmarks), checked as [`Publisher::connect`].
    pub async fn connect_to(kafka: &KafkaConfig, topic: &str) -> Result<Self, StreamError> {
        let (producer, context) = producer_with_context(kafka)?;
        let publisher = Self { producer, topic: topic.to_owned() };
        kafka.check_with(publisher.producer.clone(), context, &[topic]).await?;
        Ok(publisher)
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Publishes every tick (owned or borrowed) and returns once the broker
    /// acknowledged them all.
    pub async fn publish<I>(&self, ticks: I) -> Result<u64, StreamError>
    where
        I: IntoIterator,
        I::Item: Borrow<Tick>,
    {
        let mut count = 0;
        let mut pending = Vec::new();
        for tick in ticks {
            let tick = tick.borrow();
            self.enqueue(tick.coin.as_str(), &message::encode(tick), None, &mut pending).await?;
            count += 1;
        }
        self.drain(&mut pending).await?;
        Ok(count)
    }

    /// Publishes raw bytes with optional headers (dead letters, poison records in tests).
    pub async fn publish_raw(
        &self,
        key: Option<&[u8]>,
        payload: &[u8],
        headers: Option<OwnedHeaders>,
    ) -> Result<(), StreamError> {
        self.publish_raw_all([(key, payload, headers)]).await
    }

    /// Publishes several raw records and waits for all their acknowledgements at once.
    pub async fn publish_raw_all<'a, I>(&self, records: I) -> Result<(), StreamError>
    where
        I: IntoIterator<Item = RawRecord<'a>>,
    {
        let mut pending = Vec::new();
        for (key, payload, headers) in records {
            self.enqueue(key.unwrap_or_default(), payload, headers, &mut pending).await?;
        }
        self.drain(&mut pending).await
    }

    async fn enqueue<K: rdkafka::message::ToBytes + ?Sized>(
        &self,
        key: &K,
        payload: &[u8],
        headers: Option<OwnedHeaders>,
        pending: &mut Vec<DeliveryFuture>,
    ) -> Result<(), StreamError> {
        let mut record = FutureRecord::to(&self.topic).key(key).payload(payload);
        if let Some(headers) = headers {
            record = record.headers(headers);
        }
        loop {
            match self.producer.send_result(record) {
                Ok(delivery) => {
                    pending.push(delivery);
                    if pending.len() >= WINDOW {
                        self.drain(pending).await?;
                    }
                    return Ok(());
                }
                // A full queue hands the record back: make room, then send it again.
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    record = returned;
                    if pending.is_empty() {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    } else {
                        self.drain(pending).await?;
                    }
                }
                Err((source, _)) => return Err(StreamError::Produce { topic: self.topic.clone(), source }),
            }
        }
    }

    async fn drain(&self, pending: &mut Vec<DeliveryFuture>) -> Result<(), StreamError> {
        let results = try_join_all(pending.drain(..))
            .await
            .map_err(|_| StreamError::Produce { topic: self.topic.clone(), source: KafkaError::Canceled })?;
        for result in results {
            result.map_err(|(source, _)| StreamError::Produce { topic: self.topic.clone(), source })?;
        }
        Ok(())
    }
}

/// Records ever written to `topic`: the sum of its partitions' high
/// watermarks (the pipeline's topics are never compacted or truncated).
pub async fn topic_records(kafka: &KafkaConfig, topic: &str) -> Result<i64, StreamError> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    kafka.check(&[topic]).await?;
    let (config, context) = kafka.client_config()?;
    let (topic, brokers) = (topic.to_owned(), kafka.brokers.clone());
    let unreachable = move |source| StreamError::Unreachable { brokers: brokers.clone(), source };
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer<KafkaContext> =
            config.create_with_context(context).map_err(&unreachable)?;
        let timeout = Duration::from_secs(10);
        let metadata = consumer.fetch_metadata(Some(&topic), timeout).map_err(&unreachable)?;
        let mut total = 0;
        for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
            total += consumer.fetch_watermarks(&topic, partition.id(), timeout).map_err(&unreachable)?.1;
        }
        Ok(total)
    })
    .await
    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

/// Headers of a dead letter: the original record's, in their order (as Kafka
/// Connect's dead-letter queue keeps them, so tracing ids and content types
/// survive), then why it was parked and where it came from.
pub fn dead_letter_headers(
    original: &[(String, Vec<u8>)],
    reason: &str,
    topic: &str,
    partition: i64,
    offset: i64,
) -> OwnedHeaders {
    let (partition, offset) = (partition.to_string(), offset.to_string());
    original
        .iter()
        .fold(OwnedHeaders::new(), |headers, (key, value)| {
            headers.insert(Header { key: key.as_str(), value: Some(value.as_slice()) })
        })
        .insert(Header { key: "dlq.reason", value: Some(reason) })
        .insert(Header { key: "dlq.source.topic", value: Some(topic) })
        .insert(Header { key: "dlq.source.partition", value: Some(&partition) })
        .insert(Header { key: "dlq.source.offset", value: Some(&offset) })
}
