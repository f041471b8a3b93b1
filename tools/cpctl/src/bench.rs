//! `just bench` (streaming part): end-to-end throughput of Kafka → poller →
//! consumer function → Postgres, plain `COPY` of the same rows for scale, and
//! produce-to-commit latency at a fixed rate. Runs on a scratch database and
//! scratch topics, removed afterwards, so it never touches the pipeline's data.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use aws_lambda_events::event::kafka::KafkaEvent;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Utc};
use consumer::poller::{BatchHandler, Poller, PollerConfig};
use consumer::{BatchReport, Consumer, ConsumerError};
use domain::{CoinId, Tick, TickSource};
use futures::pin_mut;
use storage::{PgConfig, PgStore};
use stream::{KafkaConfig, Publisher};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;
use tokio_util::sync::CancellationToken;

#[derive(Debug, clap::Args)]
pub struct Options {
    /// Ticks for the throughput run.
    #[arg(long, default_value_t = 1_000_000)]
    ticks: u64,
    /// Largest batch in the throughput run.
    #[arg(long, default_value_t = 5_000)]
    batch: usize,
    /// Ticks per second in the latency run.
    #[arg(long, default_value_t = 1_000)]
    rate: u64,
    /// Length of the latency run, in seconds.
    #[arg(long, default_value_t = 20)]
    latency_secs: u64,
    /// Batching window of the poller in the latency run, in milliseconds.
    #[arg(long, default_value_t = 100)]
    max_wait_ms: u64,
    /// Ticks for each run of the write-path study.
    #[arg(long, default_value_t = 200_000)]
    write_path_ticks: usize,
    /// Only the end-to-end throughput run (`just bench` runs it again over the
    /// broker's SASL_SSL listener, to set TLS and SCRAM beside plaintext).
    #[arg(long)]
    throughput_only: bool,
    /// The reference consumer (scripts/bench/reference_consumer.py) to run on
    /// the same topic into the same, emptied table, with this Python.
    #[arg(long, requires = "python")]
    reference_consumer: Option<PathBuf>,
    /// The Python that runs the reference consumer (scripts/bench/venv.sh --which).
    #[arg(long)]
    python: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct TransformOptions {
    /// The pandas reference's JSON report (scripts/bench/reference_transforms.py) on the
    /// same candles: printed beside ours, as ratios, with its alert counts checked.
    #[arg(long)]
    reference: Option<PathBuf>,
    /// Compute-only runs; the best is reported.
    #[arg(long, default_value_t = 5)]
    repeat: u32,
}

/// What the pandas reference reports (the fields the bench reads).
#[derive(Debug, serde::Deserialize)]
struct Reference {
    pandas: String,
    observations: usize,
    compute_s: f64,
    /// Best time of each transform, in seconds.
    transforms_s: BTreeMap<String, f64>,
    alerts_per_coin: BTreeMap<String, usize>,
}

/// `just bench` (transform and site part): a full run over every candle of the
/// five coins, phase by phase, an incremental run after one new hour, the pure
/// compute alone (against pandas's when given), then site generation.
pub async fn transform(
    database: &PgConfig,
    kafka: &KafkaConfig,
    options: TransformOptions,
) -> anyhow::Result<()> {
    let reference: Option<Reference> = match &options.reference {
        Some(path) => Some(
            serde_json::from_slice(
                &std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?,
            )
            .with_context(|| format!("{} is not the pandas reference's JSON report", path.display()))?,
        ),
        None => None,
    };
    let scratch = Scratch::create(database, kafka).await?;
    let result = run_transform(&scratch, &options, reference.as_ref()).await;
    scratch.remove().await;
    result
}

async fn run_transform(
    scratch: &Scratch,
    options: &TransformOptions,
    reference: Option<&Reference>,
) -> anyhow::Result<()> {
    let mut ticks = Vec::new();
    for file in crate::streaming::default_candle_files()? {
        let coin = stream::replay::coin_of_file(&file).context("unknown candle file")?;
        ticks.extend(stream::replay::read_candles(&file, &coin)?);
    }
    scratch.store.load_ticks(&ticks).await?;
    let job = transform::Transform {
        watermark_lag_secs: 0.0,
        ..transform::Transform::with_defaults(scratch.store.clone())
    };
    let full = job.run(transform::TransformRequest { full: true, ..Default::default() }).await?;
    println!(
        "bench: transform full run     {:>7} ms for {} observations ({} hourly rows, {} alerts): \
         load {} ms, compute {} ms, write {} ms",
        full.elapsed_ms,
        full.observations,
        full.hourly_rows,
        full.alerts,
        full.load_ms,
        full.compute_ms,
        full.write_ms
    );
    // One new hour for every coin, after the last stored one.
    let last = ticks.iter().map(|t| t.event_time).max().context("no candles")?;
    let next: Vec<Tick> = ticks
        .iter()
        .filter(|t| t.event_time == last)
        .map(|t| Tick { event_time: last + chrono::Duration::hours(1), seq: t.seq + 1, ..t.clone() })
        .collect();
    scratch.store.load_ticks(&next).await?;
    let incremental = job.run(transform::TransformRequest::default()).await?;
    println!(
        "bench: transform incremental  {:>7} ms after one new hour ({} days recomputed, {} observations read)",
        incremental.elapsed_ms, incremental.days, incremental.observations
    );
    let (compute, alerts, steps) = compute_only(&job, &ticks, options.repeat)?;
    let steps: Vec<String> =
        steps.iter().map(|(step, took)| format!("{step} {:.0} ms", took.as_secs_f64() * 1e3)).collect();
    println!(
        "bench: compute only (Polars)  {:>7.0} ms best of {}, {} observations in memory, {} alerts ({})",
        compute.as_secs_f64() * 1e3,
        options.repeat,
        ticks.len(),
        alerts.values().sum::<usize>(),
        steps.join(", ")
    );
    if let Some(reference) = reference {
        anyhow::ensure!(
            reference.observations == ticks.len() && reference.alerts_per_coin == alerts,
            "the pandas reference disagrees: {} observations and alerts {:?}, against {} and {:?}",
            reference.observations,
            reference.alerts_per_coin,
            ticks.len(),
            alerts
        );
        let pandas_ms = reference.compute_s * 1e3;
        let steps: Vec<String> =
            reference.transforms_s.iter().map(|(step, s)| format!("{step} {:.0} ms", s * 1e3)).collect();
        println!(
            "bench: compute only (pandas)  {pandas_ms:>7.0} ms best of its runs, same input, same alerts (pandas {}; {})",
            reference.pandas,
            steps.join(", ")
        );
        println!(
            "bench: ratio Polars compute / pandas compute   {:.2} (target <= 0.33)",
            compute.as_secs_f64() * 1e3 / pandas_ms
        );
        println!(
            "bench: ratio full run with I/O / pandas compute {:.2} (target <= 2)",
            full.elapsed_ms as f64 / pandas_ms
        );
    }
    site(scratch, &ticks).await
}

/// What a compute-only run found: its time, the alerts per coin, and the
/// time of each transform.
type ComputeOnly = (Duration, BTreeMap<String, usize>, Vec<(&'static str, Duration)>);

/// The five transforms alone, on the candles as an in-memory frame: the
/// fastest of `runs`; its alerts per coin must match pandas's.
fn compute_only(job: &transform::Transform, ticks: &[Tick], runs: u32) -> anyhow::Result<ComputeOnly> {
    let frame = transform::ticks_frame(ticks)?;
    let mut best: Option<ComputeOnly> = None;
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        let outputs = transform::compute(frame.clone(), &job.clean, &job.rules, None)?;
        let took = started.elapsed();
        if best.as_ref().is_none_or(|(fastest, ..)| took < *fastest) {
            best = Some((took, outputs.alert_counts()?, outputs.steps));
        }
    }
    best.context("no compute run")
}

/// Site generation over what the transform produced: the five coins' hourly
/// candles (3.5 years each) into a temporary folder, then again with nothing changed.
async fn site(scratch: &Scratch, ticks: &[Tick]) -> anyhow::Result<()> {
    let mut coins: Vec<String> = ticks.iter().map(|t| t.coin.as_str().to_owned()).collect();
    coins.sort();
    coins.dedup();
    let dir = std::env::temp_dir().join(format!("crypto-bench-site-{}", uuid::Uuid::new_v4()));
    let options = site_gen::LoadOptions {
        coins,
        vs_currency: String::from("usd"),
        stale_batch: Duration::from_secs(1500),
        stale_stream: Duration::from_secs(60),
    };
    let generator =
        site_gen::SiteGen::new(scratch.store.clone(), options, site_gen::Output::Dir(dir.clone()), None)
            .await;
    let result = async {
        let started = Instant::now();
        let first = generator.run().await?;
        let first_ms = started.elapsed().as_millis();
        let started = Instant::now();
        let again = generator.run().await?;
        let again_ms = started.elapsed().as_millis();
        let (_, built) = generator.build().await?;
        let hours: usize = first.rows_read as usize;
        println!(
            "bench: site generation        {first_ms:>7} ms for {} files, {:.1} MB from {hours} rows \
             (load {} ms, render {} ms, write {} ms)",
            first.files,
            first.bytes as f64 / 1e6,
            first.load_ms,
            first.render_ms,
            first.publish_ms
        );
        println!(
            "bench: site regeneration      {again_ms:>7} ms, same data: {} files rewritten (pages carry their time), {} unchanged",
            again.published.uploaded, again.published.unchanged
        );
        for (page, label) in [("index.html", "overview"), ("coins/bitcoin.html", "bitcoin page")] {
            if let Some(weight) = page_weight(&built, page) {
                println!(
                    "bench: site {label:<18} {:>7.1} kB on first view, with its scripts and styles",
                    weight as f64 / 1e3
                );
            }
        }
        anyhow::Ok(())
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Bytes a first visit downloads: the page and the assets it links to.
fn page_weight(site: &site_gen::Site, page: &str) -> Option<usize> {
    let html = site.page(page)?;
    // Tera escapes the '/' of the asset paths in the page's attributes.
    let paths = html.replace("&#x2F;", "/");
    let assets: usize = site
        .files
        .iter()
        .filter(|f| f.path.starts_with("assets/") && paths.contains(&f.path))
        .map(|f| f.body.len())
        .sum();
    Some(html.len() + assets)
}

pub async fn consume(database: &PgConfig, kafka: &KafkaConfig, options: Options) -> anyhow::Result<()> {
    let scratch = Scratch::create(database, kafka).await?;
    let result = run(kafka, &scratch, &options).await;
    scratch.remove().await;
    result
}

async fn run(kafka: &KafkaConfig, scratch: &Scratch, o: &Options) -> anyhow::Result<()> {
    let coins = CoinId::defaults();
    let publisher = Publisher::connect_to(kafka, &scratch.topic).await?;
    let consumer = Consumer {
        store: scratch.store.clone(),
        dead_letters: Publisher::connect_to(kafka, &scratch.dlq).await?,
        coins: coins.iter().cloned().collect(),
    };
    println!(
        "bench: {} ticks, 5 coins, topic with 6 partitions, batches of up to {}, Kafka over {:?}{}",
        o.ticks,
        o.batch,
        kafka.security_protocol,
        kafka.sasl_mechanism.map(|m| format!(" ({})", m.name())).unwrap_or_default()
    );

    // 1. Throughput, end to end: publish everything, consume everything.
    let ticks = synthetic(&coins, o.ticks);
    let started = Instant::now();
    publisher.publish(&ticks).await?;
    let produced = started.elapsed();
    let config = PollerConfig {
        max_records: o.batch,
        max_wait: Duration::from_millis(200),
        retry_base: Duration::from_millis(200),
        retry_max: Duration::from_secs(5),
    };
    let poller =
        Poller::new(kafka, &format!("bench-{}", uuid::Uuid::new_v4()), &scratch.topic, config.clone())?;
    let consume_started = Instant::now();
    let stop = CancellationToken::new();
    // The run stops on the consumer's own count of stored rows: polling the
    // table with count(*) would put a scan of it beside the writes being timed.
    let counted =
        Counted { inner: &consumer, stored: AtomicU64::new(0), target: o.ticks, stop: stop.clone() };
    let stats = poller.run(&counted, stop).await;
    let total = started.elapsed();
    let consumed = consume_started.elapsed();
    let stored = scratch.count("price_ticks").await?;
    anyhow::ensure!(stored == i64::try_from(o.ticks)?, "the consumer stored {stored} of {} ticks", o.ticks);
    let rate = |n: u64, d: Duration| n as f64 / d.as_secs_f64();
    println!(
        "bench: produce               {:>10.0} ticks/s ({:.1} s)",
        rate(o.ticks, produced),
        produced.as_secs_f64()
    );
    println!(
        "bench: consume into Postgres {:>10.0} ticks/s ({:.1} s, {} batches)",
        rate(o.ticks, consumed),
        consumed.as_secs_f64(),
        stats.batches
    );
    println!(
        "bench: end to end            {:>10.0} ticks/s ({:.1} s)",
        rate(o.ticks, total),
        total.as_secs_f64()
    );
    if o.throughput_only {
        return Ok(());
    }

    // 2. For scale: plain binary COPY of the same rows into the same table shape.
    let copy = scratch.copy(&ticks).await?;
    println!(
        "bench: plain COPY            {:>10.0} ticks/s ({:.1} s)",
        rate(o.ticks, copy),
        copy.as_secs_f64()
    );
    println!(
        "bench: ratio consume / COPY  {:>10.2} (target >= 0.5)",
        copy.as_secs_f64() / consumed.as_secs_f64()
    );
    // 3. Where consume's time goes: the consumer's own write (one committed
    // INSERT ... ON CONFLICT per batch, as in the function) without Kafka or
    // decoding, with every index of price_ticks and without each secondary one.
    let sample = &ticks[..ticks.len().min(o.write_path_ticks)];
    let indexes = scratch.secondary_indexes().await?;
    let mut variants: Vec<(String, Vec<&str>)> = vec![(String::from("all indexes"), Vec::new())];
    for (name, _) in &indexes {
        variants.push((format!("without {name}"), vec![name.as_str()]));
    }
    variants.push((String::from("primary key only"), indexes.iter().map(|(n, _)| n.as_str()).collect()));
    for (label, dropped) in &variants {
        let took = scratch.write_path(sample, o.batch, dropped, &indexes).await?;
        println!(
            "bench: write path, {label:<28} {:>8.0} ticks/s ({} ticks, batches of {}, each committed)",
            rate(sample.len() as u64, took),
            sample.len(),
            o.batch
        );
    }
    if let (Some(script), Some(python)) = (&o.reference_consumer, &o.python) {
        let python_secs = scratch.reference_consumer(python, script, o.ticks).await?;
        println!(
            "bench: Python consumer       {:>10.0} ticks/s ({:.1} s; confluent-kafka + psycopg executemany, \
             same topic, same table)",
            o.ticks as f64 / python_secs,
            python_secs
        );
        println!("bench: ratio ours / Python   {:>10.2} (target >= 4)", python_secs / consumed.as_secs_f64());
    }

    // 4. Latency, produce to commit, at a fixed rate.
    let timed = Timed { inner: &consumer, latencies: Mutex::new(Vec::new()) };
    let poller = Poller::new(
        kafka,
        &format!("bench-latency-{}", uuid::Uuid::new_v4()),
        &scratch.latency_topic,
        PollerConfig { max_records: 500, max_wait: Duration::from_millis(o.max_wait_ms), ..config },
    )?;
    let stop = CancellationToken::new();
    let latency_publisher = Publisher::connect_to(kafka, &scratch.latency_topic).await?;
    let mut sent = None;
    {
        let run = poller.run(&timed, stop.clone());
        pin_mut!(run);
        let sender = paced(&latency_publisher, &coins, o.rate, Duration::from_secs(o.latency_secs), o.ticks);
        pin_mut!(sender);
        loop {
            tokio::select! {
                _ = &mut run => break,
                s = &mut sender, if sent.is_none() => {
                    sent = Some(s?);
                    let drain = stop.clone();
                    tokio::spawn(async move { tokio::time::sleep(Duration::from_secs(3)).await; drain.cancel(); });
                }
            }
        }
    }
    let mut latencies = timed.latencies.into_inner().unwrap_or_default();
    latencies.sort_by(f64::total_cmp);
    let pct =
        |p: f64| latencies.get(((latencies.len() as f64 - 1.0) * p) as usize).copied().unwrap_or(f64::NAN);
    println!(
        "bench: latency at {} ticks/s over {} s (window {} ms): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({} of {} ticks measured)",
        o.rate,
        o.latency_secs,
        o.max_wait_ms,
        pct(0.5),
        pct(0.99),
        latencies.last().copied().unwrap_or(f64::NAN),
        latencies.len(),
        sent.unwrap_or(0)
    );
    Ok(())
}

/// `n` ticks over the five coins, distinct keys, prices on a gentle wave.
fn synthetic(coins: &[CoinId], n: u64) -> Vec<Tick> {
    let start = DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default();
    (0..n)
        .map(|i| {
            let coin = &coins[(i % coins.len() as u64) as usize];
            let step = i / coins.len() as u64;
            Tick {
                coin: coin.clone(),
                event_time: start + chrono::Duration::seconds(step as i64 * 5),
                price: 100.0 + (step as f64 / 100.0).sin(),
                volume: Some(1.0),
                interval_secs: 5,
                source: TickSource::Simulated,
                seq: step,
                bar: None,
            }
        })
        .collect()
}

/// Publishes `rate` ticks a second for `length`, stamped with the send time;
/// event times start after the throughput run's so none collides.
async fn paced(
    publisher: &Publisher,
    coins: &[CoinId],
    rate: u64,
    length: Duration,
    offset: u64,
) -> anyhow::Result<u64> {
    let per_slice = (rate / 100).max(1);
    let mut timer = tokio::time::interval(Duration::from_millis(10));
    let started = Instant::now();
    let mut seq = offset;
    while started.elapsed() < length {
        timer.tick().await;
        let now = Utc::now();
        let slice: Vec<Tick> = (0..per_slice)
            .map(|k| {
                seq += 1;
                Tick {
                    coin: coins[(seq % coins.len() as u64) as usize].clone(),
                    // Unique per tick, but the send time is what latency is measured from:
                    // the sub-millisecond part carries the sequence.
                    event_time: now + chrono::Duration::microseconds((k % 1000) as i64),
                    price: 100.0,
                    volume: Some(1.0),
                    interval_secs: 5,
                    source: TickSource::Simulated,
                    seq,
                    bar: None,
                }
            })
            .collect();
        publisher.publish(slice).await?;
    }
    Ok(seq - offset)
}

/// Wraps the consumer function: counts the rows it stored and stops the
/// poller once `target` are.
struct Counted<'a, H> {
    inner: &'a H,
    stored: AtomicU64,
    target: u64,
    stop: CancellationToken,
}

impl<H: BatchHandler + Sync> BatchHandler for Counted<'_, H> {
    async fn handle(&self, event: &KafkaEvent) -> Result<BatchReport, ConsumerError> {
        let report = self.inner.handle(event).await?;
        if self.stored.fetch_add(report.stored, Ordering::Relaxed) + report.stored >= self.target {
            self.stop.cancel();
        }
        Ok(report)
    }
}

/// Wraps the consumer function: after a batch is committed, records how long
/// ago each of its ticks was sent.
struct Timed<'a, H> {
    inner: &'a H,
    latencies: Mutex<Vec<f64>>,
}

impl<H: BatchHandler + Sync> BatchHandler for Timed<'_, H> {
    async fn handle(&self, event: &KafkaEvent) -> Result<BatchReport, ConsumerError> {
        let report = self.inner.handle(event).await?;
        let now = Utc::now();
        let mut out = Vec::new();
        for record in event.records.values().flatten() {
            let sent = record
                .value
                .as_deref()
                .and_then(|v| B64.decode(v).ok())
                .and_then(|v| serde_json::from_slice::<serde_json::Value>(&v).ok())
                .and_then(|v| v["event_time"].as_str().and_then(|t| DateTime::parse_from_rfc3339(t).ok()));
            if let Some(sent) = sent {
                out.push(
                    (now - sent.with_timezone(&Utc)).num_microseconds().unwrap_or_default() as f64 / 1000.0,
                );
            }
        }
        if let Ok(mut latencies) = self.latencies.lock() {
            latencies.extend(out);
        }
        Ok(report)
    }
}

/// A scratch database and topics, removed by [`Scratch::remove`].
struct Scratch {
    db: String,
    /// The scratch database's URL (for the reference consumer).
    url: secrecy::SecretString,
    store: PgStore,
    /// The server the scratch database is on, to drop it.
    admin: PgConfig,
    kafka: KafkaConfig,
    topic: String,
    dlq: String,
    /// A topic of its own for the latency run, so it does not re-read phase 1.
    latency_topic: String,
}

impl Scratch {
    async fn create(admin: &PgConfig, kafka: &KafkaConfig) -> anyhow::Result<Self> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let db = format!("bench_{id}");
        let (scratch, store) = storage::create_database(admin, &db).await?;
        let (topic, dlq, latency_topic) =
            (format!("bench-{id}"), format!("bench-dlq-{id}"), format!("bench-lat-{id}"));
        provision::topics(kafka, &[(&topic, 6), (&dlq, 1), (&latency_topic, 6)]).await?;
        Ok(Self {
            db,
            url: scratch.database_url,
            store,
            admin: admin.clone(),
            kafka: kafka.clone(),
            topic,
            dlq,
            latency_topic,
        })
    }

    /// Runs the Python reference consumer over the throughput topic into the
    /// emptied `price_ticks`; its own measure of the time from its start to
    /// the last commit, checked against the table.
    async fn reference_consumer(&self, python: &Path, script: &Path, ticks: u64) -> anyhow::Result<f64> {
        self.store.client().await?.batch_execute("TRUNCATE price_ticks").await?;
        let output = tokio::process::Command::new(python)
            .arg(script)
            .args(["--brokers", &self.kafka.brokers, "--topic", &self.topic])
            .args(["--group", &format!("bench-python-{}", uuid::Uuid::new_v4())])
            .args(["--expect", &ticks.to_string()])
            // In the environment, not on the command line where `ps` shows it.
            .env("DATABASE_URL", secrecy::ExposeSecret::expose_secret(&self.url))
            .output()
            .await
            .with_context(|| format!("cannot run {} {}", python.display(), script.display()))?;
        anyhow::ensure!(
            output.status.success(),
            "the reference consumer failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        #[derive(serde::Deserialize)]
        struct Report {
            seconds: f64,
        }
        let report: Report =
            serde_json::from_slice(&output.stdout).context("the reference consumer's report")?;
        let stored = self.count("price_ticks").await?;
        anyhow::ensure!(stored == i64::try_from(ticks)?, "the reference consumer stored {stored} of {ticks}");
        Ok(report.seconds)
    }

    /// The indexes of `price_ticks` other than its primary key: name and definition.
    async fn secondary_indexes(&self) -> anyhow::Result<Vec<(String, String)>> {
        let rows = self
            .store
            .client()
            .await?
            .query(
                "SELECT indexname::text, indexdef FROM pg_indexes
                  WHERE tablename = 'price_ticks' AND indexname <> 'price_ticks_pkey' ORDER BY 1",
                &[],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// The consumer's write alone, `batch` rows at a time, into the emptied
    /// `price_ticks` without the `dropped` indexes; every index is back afterwards.
    async fn write_path(
        &self,
        ticks: &[Tick],
        batch: usize,
        dropped: &[&str],
        indexes: &[(String, String)],
    ) -> anyhow::Result<Duration> {
        let client = self.store.client().await?;
        client.batch_execute("TRUNCATE price_ticks").await?;
        for name in dropped {
            client.batch_execute(&format!("DROP INDEX {name}")).await?;
        }
        let stored: Vec<storage::StoredTick> = ticks
            .iter()
            .enumerate()
            .map(|(i, t)| storage::StoredTick {
                tick: t.clone(),
                partition: (i % 6) as i32,
                offset: i as i64,
            })
            .collect();
        let started = Instant::now();
        for chunk in stored.chunks(batch.max(1)) {
            let record = storage::BatchRecord {
                run: storage::Run::begin("consumer"),
                records: chunk.len() as i64,
                dead_lettered: 0,
            };
            storage::TickStore::store_ticks(&self.store, chunk, &record).await?;
        }
        let took = started.elapsed();
        client.batch_execute("TRUNCATE price_ticks").await?;
        for (name, definition) in indexes {
            if dropped.contains(&name.as_str()) {
                client.batch_execute(definition).await?;
            }
        }
        Ok(took)
    }

    async fn count(&self, table: &str) -> anyhow::Result<i64> {
        let row = self.store.client().await?.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await?;
        Ok(row.get(0))
    }

    async fn copy(&self, ticks: &[Tick]) -> anyhow::Result<Duration> {
        let mut client = self.store.client().await?;
        client.batch_execute("CREATE TABLE copy_ticks (LIKE price_ticks INCLUDING ALL)").await?;
        let started = Instant::now();
        let tx = client.transaction().await?;
        let sink = tx
            .copy_in(
                "COPY copy_ticks (coin_id, event_time, source, price, volume, interval_secs, seq, kafka_partition, kafka_offset) FROM STDIN BINARY",
            )
            .await?;
        let types = [
            Type::TEXT,
            Type::TIMESTAMPTZ,
            Type::TEXT,
            Type::FLOAT8,
            Type::FLOAT8,
            Type::INT4,
            Type::INT8,
            Type::INT4,
            Type::INT8,
        ];
        let writer = BinaryCopyInWriter::new(sink, &types);
        pin_mut!(writer);
        for (i, t) in ticks.iter().enumerate() {
            let (seq, offset, partition) = (t.seq as i64, i as i64, 0i32);
            writer
                .as_mut()
                .write(&[
                    &t.coin.as_str(),
                    &t.event_time,
                    &t.source.as_str(),
                    &t.price,
                    &t.volume,
                    &(t.interval_secs as i32),
                    &seq,
                    &partition,
                    &offset,
                ])
                .await?;
        }
        writer.finish().await?;
        tx.commit().await?;
        Ok(started.elapsed())
    }

    async fn remove(self) {
        drop(self.store);
        let _ = storage::drop_database(&self.admin, &self.db).await;
        let topics = [self.topic.as_str(), &self.dlq, &self.latency_topic];
        let _ = provision::delete_topics(&self.kafka, &topics).await;
    }
}
