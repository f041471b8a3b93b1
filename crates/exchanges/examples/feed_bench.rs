//! `just bench` (live feed part): how many trades per second the feed
//! aggregates into bars on this machine, and how long a reconnect takes,
//! against the fake exchange (crates/testkit), with the real local Kafka and
//! Postgres, on the feed's default settings (FEED_RECONNECT_BASE_MS, …).
//!
//! 1. In process: Binance and Coinbase trade frames parsed and aggregated,
//!    no I/O: the ceiling of the feed's own code.
//! 2. Over a websocket: the fake exchange sends frames as fast as its socket
//!    takes them; the running feed reads, parses, checks ids, aggregates and
//!    publishes the bars to Kafka.
//! 3. Reconnects: the fake exchange drops the connection N times; the time
//!    from the drop to the feed's subscription on the next connection.
//!
//! Usage: cargo run --example feed_bench -p exchanges -- [TRADES] [RECONNECTS]
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use exchanges::bars::Aggregator;
use exchanges::feed::{Feed, Frame, parse};
use exchanges::{Exchange, FeedConfig, Markets};
use stream::{KafkaConfig, Publisher};
use testkit::exchange::{FakeExchange, Session, binance, coinbase};
use testkit::{TestDb, TestTopic};
use tokio_util::sync::CancellationToken;

const BINANCE: [&str; 5] = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "BNBUSDT"];
const COINBASE: [&str; 4] = ["BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD"];

/// `n` trade frames over the markets, `step_us` microseconds of exchange time apart from `start`.
fn frames(exchange: Exchange, n: u64, start: DateTime<Utc>, step_us: i64) -> Vec<String> {
    (0..n)
        .map(|i| {
            let time = start + chrono::Duration::microseconds(i as i64 * step_us);
            let price = 100.0 + (i % 997) as f64 / 100.0;
            match exchange {
                Exchange::Binance => {
                    let k = (i % 5) as usize;
                    binance::trade(BINANCE[k], 1_000_000 + i / 5, price, 0.01 + (i % 7) as f64 / 100.0, time)
                }
                Exchange::Coinbase => {
                    let k = (i % 4) as usize;
                    coinbase::matched(COINBASE[k], 1_000_000 + i / 4, 5_000_000 + i, price, 0.02, time)
                }
            }
        })
        .collect()
}

/// Parse and aggregate `n` frames `step_us` apart: 50 µs is 20,000 trades a
/// second (a busy market), 1 s makes nearly every trade close a bar.
fn in_process(exchange: Exchange, n: u64, step_us: i64) {
    let config: FeedConfig = settings::Env::default().load().unwrap();
    let markets = Markets::from_config(&config);
    let start = DateTime::from_timestamp(1_767_225_600, 0).unwrap();
    let frames = frames(exchange, n, start, step_us);
    let mut aggregator = Aggregator::new(config.bar_secs, config.bar_grace);
    let mut bars = 0usize;
    let began = Instant::now();
    for (i, frame) in frames.iter().enumerate() {
        let Ok(Frame::Trade(trade)) = parse(exchange, frame, &markets) else { panic!("{frame}") };
        aggregator.add(&trade);
        if i % 1_000 == 999 {
            // The feed's clock, as exchange time advances.
            bars += aggregator.close_due(trade.time).len();
        }
    }
    bars += aggregator.flush().len();
    let secs = began.elapsed().as_secs_f64();
    println!(
        "feed in process, {exchange}, a trade every {step_us} µs of exchange time: {n} trades in {secs:.3} s: {:.0} trades/s aggregated into {bars} bars ({:.0} bars/s)",
        n as f64 / secs,
        bars as f64 / secs
    );
}

async fn running(
    config: FeedConfig,
) -> (Feed, CancellationToken, tokio::task::JoinHandle<()>, TestTopic, Arc<TestDb>) {
    let mut kafka: KafkaConfig = testkit::config();
    let topic = TestTopic::create(&kafka, 3).await;
    kafka.topic = topic.name().to_owned();
    let db = Arc::new(TestDb::new().await);
    let feed = Feed::new(config);
    let stop = CancellationToken::new();
    let publisher = Publisher::connect(&kafka).await.unwrap();
    let (runner, token, log) = (feed.clone(), stop.clone(), db.clone());
    let task = tokio::spawn(async move { runner.run(publisher, &log.store, token).await.unwrap() });
    (feed, stop, task, topic, db)
}

async fn over_websocket(n: u64) {
    // Exchange time from a few seconds ahead, 10 µs apart: no trade is late
    // if the feed keeps up with 100,000 trades a second.
    let start = Utc::now() + chrono::Duration::seconds(3);
    let frames = Arc::new(frames(Exchange::Binance, n, start, 10));
    let sent_at = Arc::new(Mutex::new(None));
    let (shared, when) = (frames.clone(), sent_at.clone());
    let exchange = FakeExchange::start(move |mut s: Session| {
        let (frames, when) = (shared.clone(), when.clone());
        async move {
            let request = s.expect_subscribe().await;
            s.send(binance::subscribed(&request["id"])).await;
            *when.lock().unwrap() = Some(Instant::now());
            s.send_many(frames.iter().cloned()).await;
            s.hold(Duration::from_secs(600)).await;
        }
    })
    .await;
    let mut config: FeedConfig = settings::Env::default().load().unwrap();
    config.exchanges = vec![Exchange::Binance];
    config.binance_ws_url = exchange.ws_url();
    let (feed, stop, task, _topic, _db) = running(config).await;
    let deadline = Instant::now() + Duration::from_secs(600);
    let read = |feed: &Feed| {
        let f = feed.figures().total().remove(&Exchange::Binance).unwrap_or_default();
        f.trades + f.late_trades + f.duplicate_trades
    };
    while read(&feed) < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let secs = sent_at.lock().unwrap().map(|t| t.elapsed().as_secs_f64()).unwrap_or(f64::NAN);
    stop.cancel();
    task.await.unwrap();
    let figures = feed.figures().total().remove(&Exchange::Binance).unwrap_or_default();
    println!(
        "feed over a websocket (read, parse, id check, aggregate; bars to Kafka): {} trades in {secs:.2} s: {:.0} trades/s; {} late; {} bars published",
        figures.trades,
        (figures.trades + figures.late_trades) as f64 / secs,
        figures.late_trades,
        figures.bars_published
    );
}

async fn reconnects(n: usize) {
    let drops: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let subscribed: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let (d, s) = (drops.clone(), subscribed.clone());
    let exchange = FakeExchange::start(move |mut session: Session| {
        let (drops, subscribed) = (d.clone(), s.clone());
        async move {
            let request = session.expect_subscribe().await;
            subscribed.lock().unwrap().push(Instant::now());
            session.send(binance::subscribed(&request["id"])).await;
            let id = 1 + session.index as u64;
            session.send(binance::trade("BTCUSDT", id, 100.0, 1.0, Utc::now())).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            drops.lock().unwrap().push(Instant::now());
            session.drop_connection();
        }
    })
    .await;
    let mut config: FeedConfig = settings::Env::default().load().unwrap();
    config.exchanges = vec![Exchange::Binance];
    config.binance_ws_url = exchange.ws_url();
    let (feed, stop, task, _topic, _db) = running(config.clone()).await;
    exchange.wait_for_connections(n + 1, Duration::from_secs(120)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.cancel();
    task.await.unwrap();
    let (drops, subscribed) = (drops.lock().unwrap().clone(), subscribed.lock().unwrap().clone());
    let mut times: Vec<f64> = drops
        .iter()
        .zip(subscribed.iter().skip(1))
        .map(|(d, s)| s.duration_since(*d).as_secs_f64() * 1000.0)
        .collect();
    times.sort_by(f64::total_cmp);
    let reconnects = feed.figures().total().get(&Exchange::Binance).map(|f| f.reconnects).unwrap_or_default();
    println!(
        "feed reconnect (drop to resubscribed, FEED_RECONNECT_BASE_MS={} with jitter): {} reconnects, min {:.0} ms, median {:.0} ms, max {:.0} ms",
        config.reconnect_base.as_millis(),
        reconnects,
        times.first().copied().unwrap_or(f64::NAN),
        times.get(times.len() / 2).copied().unwrap_or(f64::NAN),
        times.last().copied().unwrap_or(f64::NAN)
    );
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let trades: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let reconnect_count: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    in_process(Exchange::Binance, trades, 50);
    in_process(Exchange::Coinbase, trades, 50);
    in_process(Exchange::Binance, trades / 5, 1_000_000);
    over_websocket(trades / 2).await;
    reconnects(reconnect_count).await;
}
