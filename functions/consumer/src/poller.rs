//! The local stand-in for AWS's Kafka event source mapping.
//!
//! A consumer-group member gathers records into batches (at most
//! `max_records`, or whatever arrived within `max_wait` of the first), hands
//! each batch to the consumer function as the same [`KafkaEvent`] AWS would
//! send, and commits the batch's offsets only after the function succeeded. A
//! failed batch is retried, with backoff, until it succeeds or the poller is
//! told to stop; uncommitted records are delivered again after a restart, and
//! the function's idempotent writes absorb them. Two pollers in one group split
//! the partitions between them.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::encodings::MillisecondTimestamp;
use aws_lambda_events::event::kafka::{KafkaEvent, KafkaRecord};
use backon::{BackoffBuilder, ExponentialBuilder};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Utc};
use rdkafka::consumer::{CommitMode, Consumer as _, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};
use serde::Deserialize;
use storage::TickStore;
use stream::{KafkaConfig, KafkaContext, StreamError};
use telemetry::failure::Classify;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{BatchReport, Consumer, ConsumerError, DeadLetterSink};

/// Anything that takes a batch the way the consumer function does.
pub trait BatchHandler {
    fn handle(&self, event: &KafkaEvent) -> impl Future<Output = Result<BatchReport, ConsumerError>> + Send;
}

impl<S, D> BatchHandler for Consumer<S, D>
where
    S: TickStore + Sync,
    D: DeadLetterSink + Sync,
{
    async fn handle(&self, event: &KafkaEvent) -> Result<BatchReport, ConsumerError> {
        self.handle_batch(event).await
    }
}

/// Batching (from the environment: `CONSUMER_MAX_RECORDS`, `CONSUMER_MAX_WAIT_MS`) and retries.
#[derive(Debug, Clone, Deserialize)]
pub struct PollerConfig {
    /// `CONSUMER_MAX_RECORDS`: the largest batch handed to the consumer function.
    #[serde(
        rename = "consumer_max_records",
        default = "default_max_records",
        deserialize_with = "settings::de::positive"
    )]
    pub max_records: usize,
    /// `CONSUMER_MAX_WAIT_MS`: how long a batch fills once it has a first record.
    #[serde(
        rename = "consumer_max_wait_ms",
        default = "default_max_wait",
        deserialize_with = "settings::de::positive_millis"
    )]
    pub max_wait: Duration,
    /// The first wait after a failed batch; each next one doubles (with jitter)…
    #[serde(skip, default = "default_retry_base")]
    pub retry_base: Duration,
    /// …up to this.
    #[serde(skip, default = "default_retry_max")]
    pub retry_max: Duration,
}

fn default_max_records() -> usize {
    500
}

fn default_max_wait() -> Duration {
    Duration::from_millis(1000)
}

fn default_retry_base() -> Duration {
    Duration::from_millis(200)
}

fn default_retry_max() -> Duration {
    Duration::from_secs(30)
}

impl PollerConfig {
    /// The waits between the attempts at a failing batch: `retry_base`, then
    /// doubling up to `retry_max`, each with jitter, never running out.
    fn backoff(&self) -> impl Iterator<Item = Duration> + use<> {
        let max = self.retry_max;
        ExponentialBuilder::default()
            .with_min_delay(self.retry_base)
            .with_max_delay(max)
            .without_max_times()
            // Two pollers of one group failing on the same database retry apart.
            .with_jitter()
            .build()
            // backon's jitter adds up to the delay again: capped, `retry_max` stays the longest wait.
            .map(move |delay| delay.min(max))
    }
}

/// What a poller did before it stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollerStats {
    pub batches: u64,
    pub records: u64,
    pub stored: u64,
    pub dead_lettered: u64,
    pub failed_attempts: u64,
}

/// One member of the consumer group.
pub struct Poller {
    /// Shared with the blocking pool, where offset commits wait for the broker.
    consumer: Arc<StreamConsumer<KafkaContext>>,
    brokers: String,
    config: PollerConfig,
}

impl std::fmt::Debug for Poller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poller")
            .field("brokers", &self.brokers)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Poller {
    /// Joins `group` and subscribes to `topic`.
    pub fn new(
        kafka: &KafkaConfig,
        group: &str,
        topic: &str,
        config: PollerConfig,
    ) -> Result<Self, StreamError> {
        let consumer = stream::consumer(kafka, group)?;
        consumer.subscribe(&[topic]).map_err(|source| StreamError::Client {
            role: "consumer",
            brokers: kafka.brokers.clone(),
            source,
        })?;
        Ok(Self { consumer: Arc::new(consumer), brokers: kafka.brokers.clone(), config })
    }

    /// How many partitions this member owns now (0 before the group settled).
    pub fn assigned_partitions(&self) -> usize {
        self.consumer.assignment().map(|a| a.count()).unwrap_or(0)
    }

    /// Waits for a first record (or `shutdown`), then gathers more until the
    /// batch is full or `max_wait` has passed.
    pub async fn next_batch(&self, shutdown: &CancellationToken) -> Vec<OwnedMessage> {
        let mut batch = Vec::new();
        let first = tokio::select! {
            message = self.consumer.recv() => message,
            () = shutdown.cancelled() => return batch,
        };
        match first {
            Ok(message) => batch.push(message.detach()),
            Err(err) => {
                warn!(error = %telemetry::failure::Chain(&err), "Kafka consumer error");
                return batch;
            }
        }
        let deadline = tokio::time::Instant::now() + self.config.max_wait;
        while batch.len() < self.config.max_records {
            match tokio::time::timeout_at(deadline, self.consumer.recv()).await {
                Ok(Ok(message)) => batch.push(message.detach()),
                Ok(Err(err)) => {
                    warn!(error = %telemetry::failure::Chain(&err), "Kafka consumer error");
                    break;
                }
                Err(_elapsed) => break,
            }
        }
        batch
    }

    /// The batch as the event AWS's event source mapping sends: records
    /// grouped by `topic-partition`, keys and values base64-encoded.
    pub fn event(&self, batch: &[OwnedMessage]) -> KafkaEvent {
        to_event(batch, &self.brokers)
    }

    /// Commits, per partition, the offset after the batch's last record, and
    /// returns once the broker has it.
    pub async fn commit(&self, batch: &[OwnedMessage]) -> Result<(), KafkaError> {
        let mut next: BTreeMap<(&str, i32), i64> = BTreeMap::new();
        for m in batch {
            let entry = next.entry((m.topic(), m.partition())).or_insert(0);
            *entry = (*entry).max(m.offset() + 1);
        }
        let mut list = TopicPartitionList::new();
        for ((topic, partition), offset) in next {
            list.add_partition_offset(topic, partition, Offset::Offset(offset))?;
        }
        // librdkafka's synchronous commit blocks its thread until the group
        // coordinator answers, which takes as long as the broker is away: on
        // a runtime worker it would stall the runtime (timers included) for as
        // long, so it waits on the blocking pool.
        let consumer = Arc::clone(&self.consumer);
        tokio::task::spawn_blocking(move || consumer.commit(&list, CommitMode::Sync))
            .await
            .unwrap_or(Err(KafkaError::Canceled))
    }

    /// Polls, handles and commits until `shutdown` is cancelled. On shutdown
    /// the batch in flight is finished (or, if it keeps failing, left
    /// uncommitted for the next run) before returning.
    pub async fn run<H: BatchHandler + Sync>(&self, handler: &H, shutdown: CancellationToken) -> PollerStats {
        let mut stats = PollerStats::default();
        while !shutdown.is_cancelled() {
            let batch = self.next_batch(&shutdown).await;
            if batch.is_empty() {
                continue;
            }
            let event = self.event(&batch);
            let Some(report) = self.handle_with_retry(handler, &event, &shutdown, &mut stats).await else {
                warn!(
                    records = batch.len(),
                    "stopping with a failed batch uncommitted; it will be delivered again"
                );
                break;
            };
            if let Err(err) = self.commit(&batch).await {
                // The batch is stored; the records come back to whoever owns the
                // partitions now and are absorbed as duplicates.
                warn!(
                    error = %telemetry::failure::Chain(&err),
                    "offset commit failed (rebalance?); records will be redelivered"
                );
            }
            stats.batches += 1;
            stats.records += report.records as u64;
            stats.stored += report.stored;
            stats.dead_lettered += report.dead_lettered as u64;
        }
        info!(batches = stats.batches, records = stats.records, rows = stats.stored, "poller stopped");
        stats
    }

    async fn handle_with_retry<H: BatchHandler + Sync>(
        &self,
        handler: &H,
        event: &KafkaEvent,
        shutdown: &CancellationToken,
        stats: &mut PollerStats,
    ) -> Option<BatchReport> {
        let mut backoff = self.config.backoff();
        loop {
            let err = match handler.handle(event).await {
                Ok(report) => return Some(report),
                Err(err) => err,
            };
            stats.failed_attempts += 1;
            // Without a maximum of attempts the backoff never runs out; were it to, waits stay at the cap.
            let delay = backoff.next().unwrap_or(self.config.retry_max);
            warn!(error = %telemetry::failure::Chain(&err), disposition = err.disposition().as_str(), retry_in_ms = delay.as_millis() as u64, "batch failed, retrying");
            // Shutdown cuts the wait short; an attempt in flight is finished first.
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = shutdown.cancelled() => return None,
            }
        }
    }
}

fn to_event(batch: &[OwnedMessage], brokers: &str) -> KafkaEvent {
    // Grouped by (topic, partition) first, so the `topic-partition` key is
    // formatted once per partition rather than once per record.
    let mut partitions: BTreeMap<(&str, i32), Vec<KafkaRecord>> = BTreeMap::new();
    for m in batch {
        partitions.entry((m.topic(), m.partition())).or_default().push(to_record(m));
    }
    let mut event = KafkaEvent::default();
    event.event_source = Some(String::from("SelfManagedKafka"));
    event.bootstrap_servers = Some(brokers.to_owned());
    event.records = partitions
        .into_iter()
        .map(|((topic, partition), records)| (format!("{topic}-{partition}"), records))
        .collect();
    event
}

fn to_record(m: &OwnedMessage) -> KafkaRecord {
    let mut record = KafkaRecord::default();
    record.topic = Some(m.topic().to_owned());
    record.partition = i64::from(m.partition());
    record.offset = m.offset();
    let millis = m.timestamp().to_millis().unwrap_or_default();
    record.timestamp =
        MillisecondTimestamp(DateTime::<Utc>::from_timestamp_millis(millis).unwrap_or_default());
    record.timestamp_type = Some(String::from("CREATE_TIME"));
    record.key = m.key().map(|k| B64.encode(k));
    record.value = m.payload().map(|v| B64.encode(v));
    record.headers = m
        .headers()
        .map(|headers| {
            headers
                .iter()
                .map(|h| {
                    // AWS sends header values as arrays of signed bytes.
                    let bytes = h.value.unwrap_or_default().iter().map(|b| *b as i8).collect();
                    HashMap::from([(h.key.to_owned(), bytes)])
                })
                .collect()
        })
        .unwrap_or_default();
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_from_the_base_to_the_cap_with_jitter_and_never_run_out() {
        let config = PollerConfig {
            max_records: 1,
            max_wait: Duration::ZERO,
            retry_base: Duration::from_millis(200),
            retry_max: Duration::from_secs(30),
        };
        let waits: Vec<Duration> = config.backoff().take(1000).collect();
        assert_eq!(waits.len(), 1000);
        // The n-th wait is 200 ms × 2^n plus up to as much again, until the cap.
        for (n, wait) in waits.iter().take(7).enumerate() {
            let floor = config.retry_base * 2u32.pow(n as u32);
            assert!(*wait >= floor && *wait <= floor * 2, "wait {n}: {wait:?}");
        }
        assert!(waits.iter().all(|w| *w <= config.retry_max));
        assert!(waits[10..].iter().all(|w| *w == config.retry_max), "{:?}", &waits[..12]);
    }

    #[test]
    fn batching_comes_from_the_environment_and_retries_do_not() {
        let config: PollerConfig = settings::Env::default().load().unwrap();
        assert_eq!((config.max_records, config.max_wait), (500, Duration::from_secs(1)));
        assert_eq!(
            (config.retry_base, config.retry_max),
            (Duration::from_millis(200), Duration::from_secs(30))
        );
        let env = settings::Env::from_pairs([("CONSUMER_MAX_RECORDS", "0")]);
        assert_eq!(env.load::<PollerConfig>().unwrap_err().variable(), "CONSUMER_MAX_RECORDS");
        settings::check_documented::<PollerConfig>(include_str!("../../../.env.example")).unwrap();
    }
}
