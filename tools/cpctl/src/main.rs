//! `cpctl`: the operator's command line. The jobs it runs are the same library
//! code the Lambda functions run; this is only another front door.

mod bench;
mod bench_notify;
mod config;
mod history;
mod schedule;
mod streaming;

use std::path::PathBuf;

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Parser, Subcommand};
use domain::CoinId;
use settings::Env;
use storage::PgConfig;
use stream::KafkaConfig;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "crypto-pipeline operator commands (configuration from the environment, see .env.example)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply the SQL migrations in migrations/ that are not applied yet.
    Migrate,
    /// Prepare a deployment: database (created if missing) and its migrations, Kafka topics, raw bucket,
    /// website bucket (all idempotent). The one place any of them is created; `just up` runs it.
    Setup,
    /// Run ingest → transform → notify → site-gen on every tick of INGEST_SCHEDULE (schedule.env), until stopped.
    Schedule {
        /// The ingest schedule, an EventBridge rate expression. Default: INGEST_SCHEDULE, else rate(10 minutes).
        #[arg(long)]
        schedule: Option<String>,
        /// Local testing: tick every N seconds instead of the schedule. Default: SCHEDULE_EVERY_SECS.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        every_secs: Option<u64>,
        /// Run one cycle now and exit with its outcome.
        #[arg(long)]
        once: bool,
        /// Check the expression (EventBridge's rate() or cron() grammar), say what it means, and exit.
        #[arg(long, conflicts_with_all = ["once", "status_file"])]
        check: bool,
        /// After each cycle, write its outcome to this file: one line, `succeeded` or `failed FUNCTION`.
        #[arg(long)]
        status_file: Option<PathBuf>,
    },
    /// Run one ingest of /coins/markets now, in-process.
    Ingest,
    /// Fetch history from /coins/{id}/market_chart/range; resumes where a previous run stopped.
    Backfill {
        /// First day (UTC, YYYY-MM-DD). Default: 364 days ago, within the Demo plan's limit.
        #[arg(long)]
        from: Option<NaiveDate>,
        /// Day after the last one (UTC, YYYY-MM-DD). Default: now.
        #[arg(long)]
        to: Option<NaiveDate>,
        /// Comma-separated coin ids. Default: COINS.
        #[arg(long)]
        coins: Option<String>,
    },
    /// Fill history once: a backfill when CoinGecko answers, otherwise the shipped candles as a labelled
    /// sample (only into a database without history); then transform and site. `just deploy-local` runs it.
    History,
    /// Publish simulated price ticks (a random walk per coin) to KAFKA_TOPIC until stopped.
    Produce {
        /// Seconds between ticks. Default: PRODUCER_INTERVAL_SECS (schedule.env), else 5.
        #[arg(long)]
        interval_secs: Option<u32>,
        /// Seed of the random walk, for reproducible runs. Default: PRODUCER_SEED, else random.
        #[arg(long)]
        seed: Option<u64>,
        /// Stop after this many ticks per coin. Default: run until Ctrl-C / SIGTERM.
        #[arg(long)]
        count: Option<u64>,
        /// Wait up to this many seconds for a stored price of every coin (from the first ingest or
        /// `cpctl history`) before the walk starts, so it continues the stored history instead of
        /// jumping from a default level. Default: start at once.
        #[arg(long)]
        wait_for_prices: Option<u64>,
    },
    /// Publish bars of the exchanges' live trades (Binance and Coinbase public websockets) to KAFKA_TOPIC
    /// until Ctrl-C / SIGTERM, which publishes the open bars first. Configuration: FEED_* (.env.example).
    Feed {
        /// Only ask each exchange's REST API whether it answers, say so, and exit: success if one does.
        #[arg(long)]
        probe: bool,
    },
    /// Publish real hourly candles (Binance CSVs) as ticks to KAFKA_TOPIC.
    Replay {
        /// CSV files (plain or .gz). Default: the shipped data/binance_1h (or $CRYPTO_DATA_DIR/binance_1h).
        files: Vec<PathBuf>,
        /// Replay N times faster than real time (3600 = one candle-hour per second). Default: as fast as possible.
        #[arg(long)]
        speed: Option<f64>,
        /// Only the first N candles of each file.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Run the local event-source poller: KAFKA_TOPIC → consumer function → Postgres, until Ctrl-C / SIGTERM.
    Consume,
    /// Run the transform once: incremental (what arrived since the last run), or --full.
    Transform {
        /// Rebuild every table from every observation.
        #[arg(long)]
        full: bool,
        /// Queue notifications for every new alert however old, not only those within
        /// ALERT_NOTIFY_MAX_AGE (older ones are otherwise recorded as "not sent: historical").
        #[arg(long)]
        notify_history: bool,
    },
    /// Load real hourly candles (Binance CSVs) as observations, straight into Postgres (no Kafka).
    LoadHistory {
        /// CSV files (plain or .gz). Default: the shipped data/binance_1h (or $CRYPTO_DATA_DIR/binance_1h).
        files: Vec<PathBuf>,
    },
    /// Create (if missing) or delete Kafka topics, e.g. for scratch runs.
    Topic {
        #[command(subcommand)]
        action: TopicAction,
    },
    /// Benchmark the streaming path on a scratch database and topic (both removed afterwards).
    BenchConsume(bench::Options),
    /// Send the alert notifications waiting in the outbox (SNS, webhooks: ALERT_SNS_TOPIC, ALERT_WEBHOOKS), once.
    Notify,
    /// Generate the dashboard once (SITE_OUTPUT: a folder or s3://BUCKET) from the transformed tables.
    Site,
    /// Benchmark the notify step on a scratch database: delivery rate to a local webhook, and the time from a
    /// stored crossing to the message through a transform and a notify run.
    BenchNotify(bench_notify::Options),
    /// Benchmark the transform on a scratch database (a full run over the five coins' candles, then one
    /// new hour), then site generation over the result.
    BenchTransform(bench::TransformOptions),
}

#[derive(Debug, Subcommand)]
enum TopicAction {
    Create {
        name: String,
        #[arg(long, default_value_t = 1)]
        partitions: i32,
    },
    Delete {
        name: String,
    },
    /// Print how many records were ever written to a topic (sum of its high watermarks).
    Records {
        name: String,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // Each job logs as the component it runs (`LOG_DIR` gives each its own file).
    let telemetry = telemetry::init(match &cli.command {
        Command::Ingest => "ingest",
        Command::Backfill { .. } => "backfill",
        Command::History => "history",
        Command::Produce { .. } => "producer",
        Command::Feed { .. } => "feed",
        Command::Replay { .. } => "replay",
        Command::Consume => "consumer",
        Command::Transform { .. } => "transform",
        Command::Site => "site",
        Command::Notify => "notify",
        Command::Schedule { .. } => "scheduler",
        _ => "cpctl",
    });
    if let Err(e) = telemetry {
        eprintln!("cpctl: {e}");
        return std::process::ExitCode::FAILURE;
    }
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            // One line with the whole chain of causes; no backtrace for users.
            // The one printer of an error with its causes, as the functions' logs use.
            let err: &(dyn std::error::Error + 'static) = err.as_ref();
            eprintln!("error: {}", telemetry::failure::Chain(err));
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs `cli`'s command; each loads the configuration it uses, and only that.
async fn run(cli: Cli) -> anyhow::Result<()> {
    let env = Env::from_process();
    match cli.command {
        Command::Migrate => {
            let store = storage::PgStore::connect(&env.load()?).await?;
            let applied = storage::migrate(&store).await?;
            println!("migrations: {applied} applied, database {} is up to date", store.target());
        }
        Command::Setup => setup(&env).await?,
        Command::Schedule { schedule, every_secs, once, check, status_file } => {
            let config: config::Schedule = env.load()?;
            let expression =
                schedule::Expression::parse(schedule.as_deref().unwrap_or(&config.ingest_schedule))?;
            if check {
                println!("INGEST_SCHEDULE={expression}");
                return Ok(());
            }
            let interval = match every_secs.or(config.schedule_every_secs) {
                Some(secs) => std::time::Duration::from_secs(secs),
                None => expression.interval()?,
            };
            schedule::run(interval, once, status_file.as_deref(), streaming::shutdown_on_signal()).await?;
        }
        Command::Ingest => {
            let ingest = ingest::Ingest::from_config(&ingest::Config::load(&env)?).await?;
            let report = ingest
                .run(ingest::IngestRequest::default())
                .await
                .with_context(|| format!("ingest from {} failed", ingest.source.base_url()))?;
            println!("{}", serde_json::to_string(&report)?);
        }
        Command::Backfill { from, to, coins } => {
            let now = Utc::now();
            let day = |d: NaiveDate| {
                DateTime::<Utc>::from_naive_utc_and_offset(d.and_time(Default::default()), Utc)
            };
            let request = ingest::backfill::BackfillRequest {
                coins: match coins {
                    Some(list) => CoinId::parse_list(&list)?,
                    None => env.load::<config::Coins>()?.coins,
                },
                vs_currency: env.load::<config::Currency>()?.vs_currency,
                from: from.map(day).unwrap_or(now - chrono::Duration::days(364)),
                to: to.map(day).unwrap_or(now).min(now),
            };
            let source = coingecko::Client::new(&env.load()?)?;
            let store = storage::PgStore::connect(&env.load()?).await?;
            let report = ingest::backfill::backfill(&source, &store, &request).await?;
            println!("{}", serde_json::to_string(&report)?);
        }
        Command::History => {
            let report = history::run(&history::Config::load(&env)?).await?;
            println!("{}", serde_json::to_string(&report)?);
        }
        Command::Produce { interval_secs, seed, count, wait_for_prices } => {
            let config: config::Producer = env.load()?;
            let interval_secs = interval_secs.unwrap_or(config.producer_interval_secs);
            let wait = wait_for_prices.map(std::time::Duration::from_secs);
            let coins = env.load::<config::Coins>()?.coins;
            let (database, kafka) = (env.load()?, env.load()?);
            let seed = seed.or(config.producer_seed);
            streaming::produce(&database, &kafka, &coins, interval_secs, seed, count, wait).await?;
        }
        Command::Feed { probe: true } => streaming::probe_exchanges(&env.load()?).await?,
        Command::Feed { probe: false } => streaming::feed(env.load()?, &env.load()?, &env.load()?).await?,
        Command::Replay { files, speed, limit } => {
            streaming::replay(&env.load()?, files, speed, limit).await?;
        }
        Command::Consume => streaming::consume(&consumer::Config::load(&env)?, env.load()?).await?,
        Command::Transform { full, notify_history } => {
            let job = transform::Transform::from_config(&transform::Config::load(&env)?).await?;
            let report =
                job.run(transform::TransformRequest { full, notify_history, ..Default::default() }).await?;
            println!("{}", serde_json::to_string(&report)?);
        }
        Command::Notify => {
            let job = notify::Notify::from_config(&notify::Config::load(&env)?).await?;
            let report = job.run().await?;
            println!("{}", serde_json::to_string(&report)?);
        }
        Command::Site => {
            let site = site_gen::SiteGen::from_config(&site_gen::Config::load(&env)?).await?;
            let report = site.run().await?;
            println!("{}", serde_json::to_string(&report)?);
            if let site_gen::Output::Dir(dir) = &site.output {
                eprintln!("site: {} (serve it with `just serve`)", dir.join("index.html").display());
            }
        }
        Command::LoadHistory { files } => {
            let store = storage::PgStore::connect(&env.load()?).await?;
            for file in if files.is_empty() { streaming::default_candle_files()? } else { files } {
                let coin = stream::replay::coin_of_file(&file).with_context(|| {
                    format!("cannot tell the coin of {}: name it like BTCUSDT_1h.csv", file.display())
                })?;
                let ticks = stream::replay::read_candles(&file, &coin)?;
                let added = store.load_ticks(&ticks).await?;
                println!("{}: {} candles, {added} new observations of {coin}", file.display(), ticks.len());
            }
        }
        Command::Topic { action } => {
            let kafka: KafkaConfig = env.load()?;
            match action {
                TopicAction::Create { name, partitions } => {
                    provision::topics(&kafka, &[(&name, partitions)]).await?
                }
                TopicAction::Delete { name } => provision::delete_topics(&kafka, &[&name]).await?,
                TopicAction::Records { name } => {
                    println!("{}", stream::topic_records(&kafka, &name).await?)
                }
            }
        }
        Command::BenchConsume(options) => bench::consume(&env.load()?, &env.load()?, options).await?,
        Command::BenchTransform(options) => bench::transform(&env.load()?, &env.load()?, options).await?,
        Command::BenchNotify(options) => bench_notify::run(&env.load()?, options).await?,
    }
    Ok(())
}

/// Everything a deployment needs before its first run; safe to repeat.
async fn setup(env: &Env) -> anyhow::Result<()> {
    let (database, kafka): (PgConfig, KafkaConfig) = (env.load()?, env.load()?);
    let config: config::Setup = env.load()?;
    let s3 = storage::s3_client(&env.load()?).await;
    // A database of its own on a shared server: created on first deploy.
    let db = provision::database(&database).await?;
    if db.created {
        println!("setup: database {} created", db.store.target());
    }
    println!("setup: database {} migrated ({} new migrations)", db.store.target(), db.migrations_applied);
    let partitions = config.kafka_topic_partitions;
    provision::topics(&kafka, &[(&kafka.topic, partitions), (&kafka.dlq_topic, 1)]).await?;
    println!("setup: topics {} ({partitions} partitions) and {} exist", kafka.topic, kafka.dlq_topic);
    provision::bucket(&s3, &config.raw_bucket).await?;
    println!("setup: bucket {} exists", config.raw_bucket);
    let mut websites: Vec<String> = config.site_bucket.into_iter().collect();
    if let site_gen::Output::S3 { bucket, .. } = &config.site_output
        && !websites.contains(bucket)
    {
        websites.push(bucket.clone());
    }
    for bucket in websites {
        provision::website(&s3, &bucket).await?;
        println!("setup: bucket {bucket} serves the dashboard as a website");
    }
    // The alerts' topic by name (LocalStack); a topic given by ARN is the template's, on AWS.
    let channels: alerting::Channels = env.load()?;
    if let Some(topic) = channels.sns.filter(|t| !t.starts_with("arn:")) {
        let sns = notify::sns_client(env.load::<storage::S3Config>()?.endpoint_url.as_ref()).await;
        let arn = provision::sns_topic(&sns, &topic).await?;
        println!("setup: SNS topic {arn} exists (the alerts' channel)");
    }
    Ok(())
}
