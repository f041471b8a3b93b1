use std::collections::HashSet;
use std::future::Future;

use aws_lambda_events::event::kafka::{KafkaEvent, KafkaRecord};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Utc};
use domain::CoinId;
use lambda_runtime::LambdaEvent;
use serde::Serialize;
use storage::{BatchRecord, PgStore, Run, StoredTick, TickStore};
use stream::message::{Rejection, decode};
use stream::{Publisher, StreamError};
use tracing::{info, instrument, warn};
use uuid::Uuid;

use crate::{Config, ConsumerError};

/// A record that was not accepted, with what is needed to find and replay it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub key: Option<Vec<u8>>,
    /// The record's value exactly as received.
    pub value: Vec<u8>,
    pub reason: String,
    pub topic: String,
    pub partition: i64,
    pub offset: i64,
    /// The record's own headers, in order, kept on the dead letter.
    pub headers: Vec<(String, Vec<u8>)>,
}

/// Where records that cannot be stored go.
pub trait DeadLetterSink {
    fn send(&self, letters: &[DeadLetter]) -> impl Future<Output = Result<(), StreamError>> + Send;
}

impl DeadLetterSink for Publisher {
    async fn send(&self, letters: &[DeadLetter]) -> Result<(), StreamError> {
        // All of a batch's letters in flight together, acknowledged at once.
        self.publish_raw_all(letters.iter().map(DeadLetter::record)).await
    }
}

impl DeadLetter {
    /// The record parked on the dead-letter topic: the original key and value,
    /// with headers saying why and where from.
    fn record(&self) -> stream::RawRecord<'_> {
        let headers = stream::dead_letter_headers(
            &self.headers,
            &self.reason,
            &self.topic,
            self.partition,
            self.offset,
        );
        (self.key.as_deref(), self.value.as_slice(), Some(headers))
    }
}

/// What one batch came to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BatchReport {
    pub run_id: Uuid,
    pub records: usize,
    /// Valid ticks that were new.
    pub stored: u64,
    /// Valid ticks already stored with the same values (redelivery).
    pub duplicates: u64,
    /// Valid ticks whose key was stored with another price or volume: not
    /// written (the first write wins), counted and logged with both values.
    pub conflicts: u64,
    pub dead_lettered: usize,
}

/// The consumer function with its clients, built once per process.
#[derive(Debug)]
pub struct Consumer<S, D> {
    pub store: S,
    pub dead_letters: D,
    /// Coins the pipeline follows; ticks of any other coin are dead letters.
    pub coins: HashSet<CoinId>,
}

impl Consumer<PgStore, Publisher> {
    pub async fn from_config(config: &Config) -> Result<Self, ConsumerError> {
        Ok(Self {
            store: PgStore::connect(&config.database).await?,
            dead_letters: Publisher::connect_to(&config.kafka, &config.kafka.dlq_topic).await?,
            coins: config.coins.iter().cloned().collect(),
        })
    }
}

/// The Lambda handler.
pub async fn handle<S, D>(
    consumer: &Consumer<S, D>,
    event: LambdaEvent<KafkaEvent>,
) -> Result<BatchReport, ConsumerError>
where
    S: TickStore + Sync,
    D: DeadLetterSink + Sync,
{
    consumer.handle_batch(&event.payload).await
}

impl<S, D> Consumer<S, D>
where
    S: TickStore + Sync,
    D: DeadLetterSink + Sync,
{
    /// Decodes every record, stores the good ones and the run record in one
    /// transaction, then parks the bad ones on the dead-letter topic.
    ///
    /// The batch is acknowledged (its offsets committed, by the poller or the
    /// event source mapping) only when both are done, so every record has a
    /// home first. A failure anywhere fails the batch, which is then delivered
    /// again; storing is idempotent, so nothing doubles. Dead letters go last
    /// because a database outage is the common failure: the retried batch
    /// then parks each bad record once, not once per attempt.
    #[instrument(skip_all, fields(batch))]
    pub async fn handle_batch(&self, event: &KafkaEvent) -> Result<BatchReport, ConsumerError> {
        let run = Run::begin("consumer");
        let run_id = run.id();
        tracing::Span::current().record("batch", tracing::field::display(run_id));
        let (ticks, letters) = self.decode(event, run.started_at());
        let records = ticks.len() + letters.len();
        let batch = BatchRecord { run, records: records as i64, dead_lettered: letters.len() as i64 };
        let stored = self.store.store_ticks(&ticks, &batch).await?;
        if !letters.is_empty() {
            for letter in &letters {
                warn!(partition = letter.partition, offset = letter.offset, reason = %letter.reason, "dead letter");
            }
            self.dead_letters.send(&letters).await?;
        }
        for c in &stored.conflicts {
            warn!(
                coin = %c.coin,
                event_time = %c.event_time,
                source = c.source.as_str(),
                stored_price = c.stored_price,
                stored_volume = ?c.stored_volume,
                price = c.price,
                volume = ?c.volume,
                partition = c.partition,
                offset = c.offset,
                "conflicting duplicate: the key is stored with other values; kept the stored ones"
            );
        }
        let conflicts = stored.conflicts.len() as u64;
        let report = BatchReport {
            run_id,
            records,
            stored: stored.inserted,
            duplicates: ticks.len() as u64 - stored.inserted - conflicts,
            conflicts,
            dead_lettered: letters.len(),
        };
        info!(
            records,
            rows = stored.inserted,
            duplicates = report.duplicates,
            conflicts,
            dead_lettered = report.dead_lettered,
            "batch stored"
        );
        Ok(report)
    }

    fn decode(&self, event: &KafkaEvent, now: DateTime<Utc>) -> (Vec<StoredTick>, Vec<DeadLetter>) {
        let mut ticks = Vec::new();
        let mut letters = Vec::new();
        for record in event.records.values().flatten() {
            match decode_record(record, &self.coins, now) {
                Ok(tick) => ticks.push(StoredTick {
                    tick,
                    partition: i32::try_from(record.partition).unwrap_or(i32::MAX),
                    offset: record.offset,
                }),
                Err((value, reason)) => letters.push(DeadLetter {
                    key: record
                        .key
                        .as_deref()
                        .map(|k| B64.decode(k).unwrap_or_else(|_| k.as_bytes().to_vec())),
                    value,
                    reason: reason.to_string(),
                    topic: record.topic.clone().unwrap_or_default(),
                    partition: record.partition,
                    offset: record.offset,
                    headers: original_headers(record),
                }),
            }
        }
        (ticks, letters)
    }
}

/// One record to a tick, or its original bytes and why it was refused.
/// A record's headers as AWS's event carries them (one map per header, the
/// value as signed bytes), back to (key, bytes) in order.
fn original_headers(record: &KafkaRecord) -> Vec<(String, Vec<u8>)> {
    record
        .headers
        .iter()
        .flat_map(|h| h.iter().map(|(k, v)| (k.clone(), v.iter().map(|b| *b as u8).collect())))
        .collect()
}

fn decode_record(
    record: &KafkaRecord,
    coins: &HashSet<CoinId>,
    now: DateTime<Utc>,
) -> Result<domain::Tick, (Vec<u8>, Rejection)> {
    let raw = record.value.as_deref().unwrap_or_default();
    let value = B64.decode(raw).map_err(|_| (raw.as_bytes().to_vec(), Rejection::NotBase64))?;
    decode(&value, coins, now).map_err(|reason| (value, reason))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use aws_lambda_events::encodings::MillisecondTimestamp;
    use domain::{Tick, TickSource};
    use storage::{StorageError, StoredBatch};

    use super::*;

    #[derive(Default)]
    struct Fakes {
        rows: Mutex<Vec<StoredTick>>,
        letters: Mutex<Vec<DeadLetter>>,
        store_down: bool,
    }

    impl TickStore for &Fakes {
        async fn store_ticks(
            &self,
            ticks: &[StoredTick],
            _batch: &BatchRecord,
        ) -> Result<StoredBatch, StorageError> {
            if self.store_down {
                return Err(StorageError::Connect {
                    target: "db".into(),
                    hint: "(down)",
                    source: "connection refused".into(),
                });
            }
            let mut rows = self.rows.lock().unwrap();
            let mut stored = StoredBatch::default();
            for t in ticks {
                let key = (&t.tick.coin, t.tick.event_time, t.tick.source);
                match rows.iter().find(|r| (&r.tick.coin, r.tick.event_time, r.tick.source) == key) {
                    None => {
                        rows.push(t.clone());
                        stored.inserted += 1;
                    }
                    Some(r) if (r.tick.price, r.tick.volume) != (t.tick.price, t.tick.volume) => {
                        stored.conflicts.push(storage::Conflict {
                            coin: t.tick.coin.clone(),
                            event_time: t.tick.event_time,
                            source: t.tick.source,
                            stored_price: r.tick.price,
                            stored_volume: r.tick.volume,
                            price: t.tick.price,
                            volume: t.tick.volume,
                            partition: t.partition,
                            offset: t.offset,
                        })
                    }
                    Some(_) => {}
                }
            }
            Ok(stored)
        }
    }

    impl DeadLetterSink for &Fakes {
        async fn send(&self, letters: &[DeadLetter]) -> Result<(), StreamError> {
            self.letters.lock().unwrap().extend_from_slice(letters);
            Ok(())
        }
    }

    fn consumer(fakes: &Fakes) -> Consumer<&Fakes, &Fakes> {
        Consumer { store: fakes, dead_letters: fakes, coins: CoinId::defaults().into_iter().collect() }
    }

    fn record(partition: i64, offset: i64, value: &[u8]) -> KafkaRecord {
        let mut r = KafkaRecord::default();
        r.topic = Some("crypto_prices".into());
        r.partition = partition;
        r.offset = offset;
        r.timestamp = MillisecondTimestamp(Utc::now());
        r.key = Some(B64.encode("bitcoin"));
        r.value = Some(B64.encode(value));
        r
    }

    fn tick(seq: u64) -> Vec<u8> {
        stream::message::encode(&Tick {
            coin: CoinId::parse("bitcoin").unwrap(),
            event_time: DateTime::from_timestamp(1_700_000_000 + seq as i64 * 5, 0).unwrap(),
            price: 37_000.0 + seq as f64,
            volume: Some(0.5),
            interval_secs: 5,
            source: TickSource::Simulated,
            seq,
            bar: None,
        })
    }

    fn event(records: Vec<KafkaRecord>) -> KafkaEvent {
        let mut event = KafkaEvent::default();
        for r in records {
            event.records.entry(format!("crypto_prices-{}", r.partition)).or_default().push(r);
        }
        event
    }

    #[tokio::test]
    async fn valid_records_are_stored_and_poison_goes_to_the_dead_letter_topic() {
        let fakes = Fakes::default();
        let mut poison = record(1, 11, b"{not json");
        poison.value = Some(String::from("%%% not base64"));
        let batch = event(vec![
            record(0, 10, &tick(1)),
            poison,
            record(1, 12, b"{\"v\":1}"),
            record(0, 13, &tick(2)),
        ]);

        let report = consumer(&fakes).handle_batch(&batch).await.unwrap();

        assert_eq!((report.records, report.stored, report.dead_lettered), (4, 2, 2));
        let letters = fakes.letters.lock().unwrap();
        let mut reasons: Vec<(i64, &str)> = letters.iter().map(|l| (l.offset, l.reason.as_str())).collect();
        reasons.sort();
        assert_eq!(reasons[0], (11, "value is not base64"));
        assert!(reasons[1].1.starts_with("missing or mistyped field"), "{:?}", reasons[1]);
        let not_b64 = letters.iter().find(|l| l.offset == 11).unwrap();
        assert_eq!(not_b64.value, b"%%% not base64", "original bytes kept");
        assert_eq!(not_b64.key.as_deref(), Some(&b"bitcoin"[..]));
        assert_eq!((not_b64.topic.as_str(), not_b64.partition), ("crypto_prices", 1));
    }

    #[tokio::test]
    async fn the_same_batch_twice_stores_nothing_new() {
        let fakes = Fakes::default();
        let batch = event(vec![record(0, 1, &tick(1)), record(0, 2, &tick(2))]);
        let c = consumer(&fakes);
        assert_eq!(c.handle_batch(&batch).await.unwrap().stored, 2);
        let again = c.handle_batch(&batch).await.unwrap();
        assert_eq!((again.stored, again.duplicates), (0, 2));
        assert_eq!(fakes.rows.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_store_failure_fails_the_whole_batch() {
        let fakes = Fakes { store_down: true, ..Fakes::default() };
        let err = consumer(&fakes).handle_batch(&event(vec![record(0, 1, &tick(1))])).await.unwrap_err();
        assert!(matches!(err, ConsumerError::Storage(_)));
        assert_eq!(lambda_runtime::Diagnostic::from(err).error_type, "Consumer.Retryable");
    }

    #[tokio::test]
    async fn a_batch_failed_by_the_store_parks_no_dead_letter_so_its_retry_parks_each_once() {
        let batch = event(vec![record(0, 1, &tick(1)), record(0, 2, b"poison")]);
        let down = Fakes { store_down: true, ..Fakes::default() };
        consumer(&down).handle_batch(&batch).await.unwrap_err();
        assert!(down.letters.lock().unwrap().is_empty(), "nothing parked before the batch is stored");
        let up = Fakes::default();
        let report = consumer(&up).handle_batch(&batch).await.unwrap();
        assert_eq!((report.stored, report.dead_lettered, up.letters.lock().unwrap().len()), (1, 1, 1));
    }

    #[tokio::test]
    async fn the_aws_sample_event_shape_is_accepted() {
        // The shape AWS documents for self-managed Kafka and MSK event sources.
        let payload = serde_json::json!({
            "eventSource": "SelfManagedKafka",
            "bootstrapServers": "b-1:9092",
            "records": { "crypto_prices-0": [{
                "topic": "crypto_prices", "partition": 0, "offset": 15, "timestamp": 1545084650987u64,
                "timestampType": "CREATE_TIME", "key": B64.encode("bitcoin"), "value": B64.encode(tick(3)),
                "headers": [{"source": [116, 101, 115, 116]}]
            }]}
        });
        let event: KafkaEvent = serde_json::from_value(payload).unwrap();
        let fakes = Fakes::default();
        let report = handle(&consumer(&fakes), LambdaEvent::new(event, lambda_runtime::Context::default()))
            .await
            .unwrap();
        assert_eq!(report.stored, 1);
        assert_eq!(fakes.rows.lock().unwrap()[0].offset, 15);
    }
}
