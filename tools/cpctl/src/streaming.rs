//! The long-running streaming jobs: producer, replay, and the local poller.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::Utc;
use domain::CoinId;
use storage::PgConfig;
use stream::replay::{coin_of_file, read_candles};
use stream::simulate::Simulator;
use stream::{KafkaConfig, Publisher};
use tokio_util::sync::CancellationToken;
use tracing::info;

/// A token cancelled on Ctrl-C or SIGTERM, so jobs finish what is in flight.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    cancel.cancel();
                    return;
                }
            };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        info!("stop requested; finishing the work in flight");
        cancel.cancel();
    });
    token
}

pub async fn produce(
    database: &PgConfig,
    kafka: &KafkaConfig,
    coins: &[CoinId],
    interval_secs: u32,
    seed: Option<u64>,
    count: Option<u64>,
    wait_for_prices: Option<Duration>,
) -> anyhow::Result<()> {
    if interval_secs == 0 {
        bail!("--interval-secs (PRODUCER_INTERVAL_SECS) must be at least 1");
    }
    let store = storage::PgStore::connect(database).await?;
    let shutdown = shutdown_on_signal();
    let mut start = store.latest_prices(coins).await?;
    if let Some(wait) = wait_for_prices {
        // deploy-local starts the producer beside the first ingest and the
        // history job: a walk from default levels would meet the stored
        // history with a jump, and the jump would raise alerts.
        let deadline = tokio::time::Instant::now() + wait;
        while start.len() < coins.len() && tokio::time::Instant::now() < deadline {
            info!(stored = start.len(), coins = coins.len(), "waiting for stored prices");
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                () = shutdown.cancelled() => return Ok(()),
            }
            start = store.latest_prices(coins).await?;
        }
    }
    let seed = seed.unwrap_or_else(rand_seed);
    info!(seed, coins = coins.len(), stored_prices = start.len(), interval_secs, "producer starting");
    let mut simulator = Simulator::new(coins, &start, interval_secs, seed);
    let publisher = Publisher::connect(kafka).await?;
    let mut timer = tokio::time::interval(Duration::from_secs(u64::from(interval_secs)));
    let mut sent = 0u64;
    while count.is_none_or(|c| sent < c) {
        tokio::select! {
            _ = timer.tick() => {}
            () = shutdown.cancelled() => break,
        }
        let ticks = simulator.step(Utc::now());
        let prices: Vec<String> = ticks.iter().map(|t| format!("{}={:.4}", t.coin, t.price)).collect();
        publisher.publish(ticks).await?;
        sent += 1;
        info!(seq = sent, prices = %prices.join(" "), topic = publisher.topic(), "ticks published");
    }
    Ok(())
}

fn rand_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // A random seed without another dependency: std's hasher keys are random.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(Utc::now().timestamp_nanos_opt().unwrap_or_default() as u128);
    hasher.finish()
}

/// Says which exchanges answer their public REST API; fails if none does.
pub async fn probe_exchanges(config: &exchanges::FeedConfig) -> anyhow::Result<()> {
    let client = exchanges::RestClient::new(config)?;
    // Together, so an offline machine knows within one timeout.
    let answers = futures::future::join_all(config.exchanges.iter().map(|&exchange| {
        let (client, rest) = (&client, config.endpoints(exchange).rest);
        async move { (exchange, client.probe(exchange, &rest).await) }
    }))
    .await;
    let mut reachable = 0;
    for (exchange, answer) in answers {
        match answer {
            Ok(()) => {
                println!("{exchange}: reachable");
                reachable += 1;
            }
            Err(reason) => println!("{exchange}: unreachable ({reason})"),
        }
    }
    if reachable == 0 {
        bail!("no exchange answers: the live feed cannot run here (the simulator can: `just produce`)");
    }
    Ok(())
}

/// The live feed until Ctrl-C / SIGTERM.
pub async fn feed(
    config: exchanges::FeedConfig,
    database: &PgConfig,
    kafka: &KafkaConfig,
) -> anyhow::Result<()> {
    let store = storage::PgStore::connect(database).await?;
    let publisher = Publisher::connect(kafka).await?;
    let feed = exchanges::feed::Feed::new(config);
    feed.run(publisher, &store, shutdown_on_signal()).await?;
    for (exchange, figures) in feed.figures().total() {
        info!(%exchange, trades = figures.trades, bars = figures.bars_published, reconnects = figures.reconnects, gaps = figures.gap_count(), "feed stopped");
    }
    Ok(())
}

pub async fn replay(
    kafka: &KafkaConfig,
    files: Vec<PathBuf>,
    speed: Option<f64>,
    limit: Option<usize>,
) -> anyhow::Result<()> {
    let files = if files.is_empty() { default_candle_files()? } else { files };
    let mut ticks = Vec::new();
    for file in &files {
        let coin = coin_of_file(file).with_context(|| {
            format!("cannot tell the coin of {}: name it like BTCUSDT_1h.csv", file.display())
        })?;
        let mut candles = read_candles(file, &coin)?;
        candles.truncate(limit.unwrap_or(usize::MAX));
        info!(file = %file.display(), %coin, rows = candles.len(), "candles read");
        ticks.extend(candles);
    }
    // Interleave coins in event-time order, as a live feed would.
    ticks.sort_by(|a, b| a.event_time.cmp(&b.event_time).then_with(|| a.coin.cmp(&b.coin)));
    let publisher = Publisher::connect(kafka).await?;
    let shutdown = shutdown_on_signal();
    let started = std::time::Instant::now();
    let total = ticks.len();
    match speed {
        None => {
            let mut sent = 0;
            for chunk in ticks.chunks(50_000) {
                if shutdown.is_cancelled() {
                    break;
                }
                publisher.publish(chunk).await?;
                sent += chunk.len();
                info!(progress = format!("{sent}/{total}"), "replaying");
            }
        }
        Some(speed) if speed > 0.0 => {
            let mut sent = 0;
            for group in ticks.chunk_by(|a, b| a.event_time == b.event_time) {
                if sent > 0 {
                    let gap = (group[0].event_time - ticks[sent - 1].event_time).to_std().unwrap_or_default();
                    tokio::select! {
                        () = tokio::time::sleep(gap.div_f64(speed)) => {}
                        () = shutdown.cancelled() => break,
                    }
                }
                publisher.publish(group).await?;
                sent += group.len();
                info!(progress = format!("{sent}/{total}"), at = %group[0].event_time, "replaying");
            }
        }
        Some(_) => bail!("--speed must be positive"),
    }
    let secs = started.elapsed().as_secs_f64();
    println!("replayed {total} ticks in {secs:.1} s ({:.0} ticks/s)", total as f64 / secs.max(1e-9));
    Ok(())
}

/// The shipped candle files (`data/binance_1h`, or `$CRYPTO_DATA_DIR/binance_1h`).
pub fn default_candle_files() -> anyhow::Result<Vec<PathBuf>> {
    let data = dataset::DataDir::locate()?;
    let files = data.candle_files()?;
    if files.is_empty() {
        bail!(
            "no candle files in {}/binance_1h: pass CSV files or set CRYPTO_DATA_DIR",
            data.root().display()
        );
    }
    Ok(files)
}

pub async fn consume(
    config: &consumer::Config,
    poller: consumer::poller::PollerConfig,
) -> anyhow::Result<()> {
    let consumer = consumer::Consumer::from_config(config).await?;
    let kafka = &config.kafka;
    // Wrong credentials or an untrusted certificate fail here, not as a silent wait for records.
    kafka.check(&[&kafka.topic]).await?;
    let poller = consumer::poller::Poller::new(kafka, &kafka.group, &kafka.topic, poller)?;
    info!(group = %kafka.group, topic = %kafka.topic, "poller starting");
    let stats = poller.run(&consumer, shutdown_on_signal()).await;
    println!("{stats:?}");
    Ok(())
}
