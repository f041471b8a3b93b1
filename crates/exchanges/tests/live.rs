//! The websocket feed against the fake exchange (testkit::exchange), with
//! the real local Kafka and Postgres: bars, reconnects, stalls, gaps, bad
//! frames, TLS, and exactly-once end to end (Kafka → consumer → price_ticks).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use consumer::Consumer;
use consumer::poller::{Poller, PollerConfig};
use domain::CoinId;
use exchanges::feed::{ExchangeFigures, Feed, Gaps};
use exchanges::{Exchange, FeedConfig};
use stream::{KafkaConfig, Publisher};
use testkit::exchange::{FakeExchange, Session, binance, coinbase};
use testkit::{TestDb, TestTopic};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(60);

/// Two-second bars published a second after they end, quick reconnects, bitcoin and ethereum.
fn config(binance: Option<&FakeExchange>, coinbase: Option<&FakeExchange>, stall_secs: u64) -> FeedConfig {
    let stall = stall_secs.to_string();
    let mut config: FeedConfig = settings::Env::from_pairs([
        ("COINS", "bitcoin,ethereum"),
        ("FEED_BAR_SECS", "2"),
        ("FEED_BAR_GRACE_MS", "1000"),
        ("FEED_STALL_SECS", stall.as_str()),
        ("FEED_RECONNECT_BASE_MS", "50"),
        ("FEED_RECONNECT_MAX_SECS", "1"),
        ("FEED_RUN_RECORD_SECS", "3600"),
    ])
    .load()
    .unwrap();
    config.exchanges = Vec::new();
    if let Some(b) = binance {
        config.exchanges.push(Exchange::Binance);
        config.binance_ws_url = b.ws_url();
    }
    if let Some(c) = coinbase {
        config.exchanges.push(Exchange::Coinbase);
        config.coinbase_ws_url = c.ws_url();
    }
    config
}

struct Running {
    feed: Feed,
    stop: CancellationToken,
    task: Option<JoinHandle<Result<(), exchanges::ExchangeError>>>,
    kafka: KafkaConfig,
    _topic: TestTopic,
    db: Arc<TestDb>,
}

impl Running {
    async fn start(config: FeedConfig) -> Self {
        let mut kafka: KafkaConfig = testkit::config();
        let topic = TestTopic::create(&kafka, 3).await;
        kafka.topic = topic.name().to_owned();
        let db = Arc::new(TestDb::new().await);
        let feed = Feed::new(config);
        let stop = CancellationToken::new();
        let publisher = Publisher::connect(&kafka).await.unwrap();
        let (runner, token, log) = (feed.clone(), stop.clone(), db.clone());
        let task = tokio::spawn(async move { runner.run(publisher, &log.store, token).await });
        Self { feed, stop, task: Some(task), kafka, _topic: topic, db }
    }

    fn figures(&self, exchange: Exchange) -> ExchangeFigures {
        self.feed.figures().total().get(&exchange).cloned().unwrap_or_default()
    }

    async fn wait_until(&self, what: &str, ok: impl Fn(&Self) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !ok(self) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what} after {WAIT:?}: {:?}",
                self.feed.figures().total()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the feed (as SIGTERM does) and waits for it.
    async fn stop(mut self) -> Self {
        self.stop.cancel();
        let task = self.task.take().unwrap();
        tokio::time::timeout(WAIT, task).await.unwrap().unwrap().unwrap();
        self
    }

    /// Records ever written to the feed's topic.
    async fn records(&self) -> i64 {
        stream::topic_records(&self.kafka, &self.kafka.topic).await.unwrap()
    }

    /// Runs the consumer over the topic into the test database until `price_ticks` has `n` rows.
    async fn consume(&self, n: i64) {
        let group = format!("feed-test-{}", uuid::Uuid::new_v4().simple());
        let poller_config = PollerConfig {
            max_records: 500,
            max_wait: Duration::from_millis(200),
            retry_base: Duration::from_millis(100),
            retry_max: Duration::from_secs(1),
        };
        let poller = Poller::new(&self.kafka, &group, &self.kafka.topic, poller_config).unwrap();
        let dlq = TestTopic::create(&self.kafka, 1).await;
        let consumer = Consumer {
            store: self.db.store.clone(),
            dead_letters: Publisher::connect_to(&self.kafka, dlq.name()).await.unwrap(),
            coins: CoinId::defaults().into_iter().collect(),
        };
        let stop = CancellationToken::new();
        let (token, db) = (stop.clone(), self.db.clone());
        let waiting = async move {
            db.wait_for_count("price_ticks", n, WAIT).await;
            // Long enough for a duplicate to show up, had one been published.
            tokio::time::sleep(Duration::from_secs(1)).await;
            token.cancel();
        };
        tokio::join!(poller.run(&consumer, stop), waiting);
    }
}

/// The start of a bar of `secs` seconds at least a second from now (waited for), so a test's trades all fit in it.
async fn next_bar(secs: i64) -> DateTime<Utc> {
    let ms = secs * 1000;
    let start = (Utc::now().timestamp_millis() + 1000).div_euclid(ms) * ms + ms;
    let start = DateTime::from_timestamp_millis(start).unwrap();
    tokio::time::sleep((start - Utc::now()).to_std().unwrap_or_default()).await;
    start
}

fn ms(t: DateTime<Utc>, offset: i64) -> DateTime<Utc> {
    t + chrono::Duration::milliseconds(offset)
}

async fn ack(session: &mut Session) -> serde_json::Value {
    let request = session.expect_subscribe().await;
    session.send(binance::subscribed(&request["id"])).await;
    request
}

#[tokio::test]
async fn bars_cut_by_a_dropped_connection_are_published_once_end_to_end() {
    let bar = Arc::new(tokio::sync::OnceCell::<DateTime<Utc>>::new());
    let shared = bar.clone();
    let exchange = FakeExchange::start(move |mut s: Session| {
        let bar = shared.clone();
        async move {
            ack(&mut s).await;
            let start = *bar.get_or_init(|| next_bar(2)).await;
            if s.index == 0 {
                // Half of the bar, then the network fails.
                s.send(binance::trade("BTCUSDT", 1, 100.0, 1.0, ms(start, 100))).await;
                s.send(binance::trade("ETHUSDT", 50, 10.0, 1.0, ms(start, 150))).await;
                s.send(binance::trade("BTCUSDT", 2, 101.0, 2.0, ms(start, 200))).await;
                s.send(binance::trade("BTCUSDT", 3, 102.0, 3.0, ms(start, 300))).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
                s.drop_connection();
            } else {
                // The rest of the bar on the new connection; trades 6 and 7 were lost.
                s.send(binance::trade("BTCUSDT", 4, 103.0, 1.0, ms(start, 600))).await;
                s.send(binance::trade("BTCUSDT", 5, 104.0, 2.0, ms(start, 700))).await;
                s.send(binance::trade("BTCUSDT", 8, 105.0, 1.0, ms(start, 2_100))).await;
                s.hold(Duration::from_secs(60)).await;
            }
        }
    })
    .await;
    let running = Running::start(config(Some(&exchange), None, 30)).await;
    running.wait_until("three bars published", |r| r.figures(Exchange::Binance).bars_published == 3).await;
    let running = running.stop().await;

    assert_eq!(exchange.connections(), 2);
    let subscriptions = exchange.subscriptions();
    assert_eq!(subscriptions[0]["method"], "SUBSCRIBE");
    assert_eq!(subscriptions[0]["params"], serde_json::json!(["btcusdt@trade", "ethusdt@trade"]));
    assert_eq!(subscriptions[1]["params"], subscriptions[0]["params"], "resubscribed after reconnecting");
    let figures = running.figures(Exchange::Binance);
    assert_eq!((figures.connections, figures.reconnects, figures.trades), (2, 1, 7));
    assert_eq!(figures.gaps.get("BTCUSDT"), Some(&Gaps { gaps: 1, missed_trades: 2 }));

    // Exactly once: three records on the topic, three rows stored.
    assert_eq!(running.records().await, 3);
    running.consume(3).await;
    assert_eq!(running.db.count("price_ticks").await, 3);
    let start = *bar.get().unwrap();
    let rows = running
        .db
        .client()
        .await
        .query(
            "SELECT coin_id, event_time, source, price, vwap, volume, trade_count, interval_secs
               FROM price_ticks ORDER BY event_time, coin_id",
            &[],
        )
        .await
        .unwrap();
    type Row = (String, DateTime<Utc>, String, f64, f64, f64, i32, i32);
    let got: Vec<Row> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5), r.get(6), r.get(7)))
        .collect();
    // By hand: bitcoin's first bar holds trades 1-5, 9 units for 100 + 202 + 306 + 103 + 208 = 919;
    // its last trade (by time) is #5 at 104.
    let want = [
        ("bitcoin", ms(start, 2_000), 104.0, 919.0 / 9.0, 9.0, 5),
        ("ethereum", ms(start, 2_000), 10.0, 10.0, 1.0, 1),
        ("bitcoin", ms(start, 4_000), 105.0, 105.0, 1.0, 1),
    ];
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert_eq!((g.0.as_str(), g.1, g.2.as_str(), g.7), (w.0, w.1, "binance", 2), "{g:?}");
        assert_eq!((g.3, g.5, g.6), (w.2, w.4, w.5), "{g:?}");
        assert!((g.4 - w.3).abs() < 1e-9, "vwap {g:?}");
    }

    // The stop wrote the run's figures to the runs table.
    let details: serde_json::Value = running
        .db
        .client()
        .await
        .query_one(
            "SELECT details FROM pipeline_runs WHERE function = 'feed' ORDER BY finished_at DESC LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        details["exchanges"]["binance"]["gaps"]["BTCUSDT"],
        serde_json::json!({ "gaps": 1, "missed_trades": 2 })
    );
    assert_eq!(details["exchanges"]["binance"]["reconnects"], 1);
}

#[tokio::test]
async fn a_stalled_connection_is_replaced_within_feed_stall_secs() {
    let exchange = FakeExchange::start(|mut s: Session| async move {
        ack(&mut s).await;
        let id = if s.index == 0 { 1 } else { 2 };
        s.send(binance::trade("BTCUSDT", id, 100.0, 1.0, Utc::now())).await;
        // Open, answering pings, silent.
        s.hold(Duration::from_secs(60)).await;
    })
    .await;
    let running = Running::start(config(Some(&exchange), None, 2)).await;
    exchange.wait_for_connections(1, WAIT).await;
    let first = tokio::time::Instant::now();
    exchange.wait_for_connections(2, WAIT).await;
    let replaced = first.elapsed();
    assert!(replaced >= Duration::from_millis(1900), "replaced after {replaced:?}, before the stall limit");
    assert!(replaced < Duration::from_secs(5), "replaced after {replaced:?}");
    running.wait_until("the new connection's trade", |r| r.figures(Exchange::Binance).trades == 2).await;
    let figures = running.figures(Exchange::Binance);
    assert_eq!((figures.stalls, figures.reconnects), (1, 1));
    running.stop().await;
}

#[tokio::test]
async fn pings_are_answered_with_their_payload() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = Arc::new(std::sync::Mutex::new(Some(tx)));
    let exchange = FakeExchange::start(move |mut s: Session| {
        let tx = tx.clone();
        async move {
            ack(&mut s).await;
            let answered = s.ping(b"binance-keepalive-1764703200000", Duration::from_secs(5)).await;
            if let Some(tx) = tx.lock().unwrap().take() {
                let _ = tx.send(answered);
            }
            s.hold(Duration::from_secs(60)).await;
        }
    })
    .await;
    let running = Running::start(config(Some(&exchange), None, 30)).await;
    let answered = tokio::time::timeout(WAIT, rx).await.unwrap().unwrap();
    assert!(answered.is_some(), "no pong with the ping's payload within 5 s");
    running.stop().await;
}

#[tokio::test]
async fn coinbase_gaps_are_counted_from_trade_ids_and_heartbeats_and_recorded() {
    let exchange = FakeExchange::start(|mut s: Session| async move {
        let request = s.expect_subscribe().await;
        assert_eq!(request["type"], "subscribe");
        assert_eq!(request["channels"], serde_json::json!(["matches", "heartbeat"]));
        s.send(coinbase::subscriptions(&["BTC-USD", "ETH-USD"])).await;
        let now = Utc::now();
        s.send(coinbase::last_match("BTC-USD", 100, 5_000, 90_000.0, 0.1, now)).await;
        s.send(coinbase::matched("BTC-USD", 101, 5_010, 90_001.0, 0.1, now)).await;
        s.send(coinbase::matched("BTC-USD", 102, 5_020, 90_002.0, 0.1, now)).await;
        // 103 and 104 never arrive.
        s.send(coinbase::matched("BTC-USD", 105, 5_050, 90_005.0, 0.1, now)).await;
        // The sequence jumps by design on the matches channel: not a gap.
        s.send(coinbase::heartbeat("BTC-USD", 9_999, 105, now)).await;
        // The heartbeat says trades up to 110 happened: 106-110 were missed.
        s.send(coinbase::heartbeat("BTC-USD", 10_100, 110, now)).await;
        // A trade seen before is dropped, not counted twice.
        s.send(coinbase::matched("BTC-USD", 102, 5_020, 90_002.0, 0.1, now)).await;
        s.send(coinbase::matched("BTC-USD", 111, 10_110, 90_011.0, 0.1, now)).await;
        s.hold(Duration::from_secs(60)).await;
    })
    .await;
    let running = Running::start(config(None, Some(&exchange), 30)).await;
    running.wait_until("four trades", |r| r.figures(Exchange::Coinbase).trades == 4).await;
    let running = running.stop().await;
    let figures = running.figures(Exchange::Coinbase);
    assert_eq!(figures.gaps.get("BTC-USD"), Some(&Gaps { gaps: 2, missed_trades: 7 }));
    assert_eq!(figures.duplicate_trades, 1);
    let details: serde_json::Value = running
        .db
        .client()
        .await
        .query_one("SELECT details FROM pipeline_runs WHERE function = 'feed'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(details["exchanges"]["coinbase"]["gaps"]["BTC-USD"]["missed_trades"], 7);
    // Stopping flushed the open bar: the trades are on the topic.
    assert_eq!(running.records().await, 1);
}

#[tokio::test]
async fn malformed_frames_unknown_messages_and_refused_subscriptions_never_stop_the_feed() {
    let exchange = FakeExchange::start(|mut s: Session| async move {
        let request = s.expect_subscribe().await;
        let products = request["product_ids"].clone();
        if s.index == 0 {
            assert_eq!(products, serde_json::json!(["BTC-USD", "ETH-USD"]));
            s.send(coinbase::error("Failed to subscribe", "ETH-USD is not available for trading")).await;
            s.close("refused").await;
            return;
        }
        assert_eq!(products, serde_json::json!(["BTC-USD"]), "subscribed again without the refused product");
        s.send(coinbase::subscriptions(&["BTC-USD"])).await;
        let now = Utc::now();
        s.send("{not json").await;
        s.send(r#"{"type":"match","trade_id":1,"product_id":"BTC-USD","price":"-5","size":"1","time":"2026-01-01T00:00:00Z"}"#).await;
        s.send(r#"{"type":"ticker","product_id":"BTC-USD","price":"1"}"#).await;
        s.send(r#"{"type":"match","trade_id":9,"product_id":"DOGE-USD","price":"1","size":"1","time":"2026-01-01T00:00:00Z"}"#).await;
        s.send_binary(vec![0, 1, 2]).await;
        s.send(coinbase::matched("BTC-USD", 2, 10, 90_000.0, 0.5, now)).await;
        s.hold(Duration::from_secs(60)).await;
    })
    .await;
    let running = Running::start(config(None, Some(&exchange), 30)).await;
    running
        .wait_until("the good trade after the bad frames", |r| r.figures(Exchange::Coinbase).trades == 1)
        .await;
    let running = running.stop().await;
    let figures = running.figures(Exchange::Coinbase);
    assert_eq!(figures.subscription_errors, 1);
    assert_eq!(figures.malformed_frames, 2);
    assert_eq!(figures.unknown_messages, 3);
    assert_eq!(running.records().await, 1, "the good trade's bar was published");
}

#[tokio::test]
async fn wss_is_verified_an_untrusted_exchange_is_refused_and_feed_ca_bundle_trusts_one() {
    let exchange = FakeExchange::start_tls(|mut s: Session| async move {
        ack(&mut s).await;
        s.send(binance::trade("BTCUSDT", 1, 100.0, 1.0, Utc::now())).await;
        s.hold(Duration::from_secs(60)).await;
    })
    .await;
    // Without the test CA: the handshake fails, nothing is read, the feed keeps trying.
    let untrusting = Running::start(config(Some(&exchange), None, 30)).await;
    untrusting.wait_until("failed attempts", |r| r.figures(Exchange::Binance).reconnects >= 2).await;
    let figures = untrusting.figures(Exchange::Binance);
    assert_eq!((figures.connections, figures.trades), (0, 0));
    assert_eq!(exchange.connections(), 0, "no websocket was opened over an unverified certificate");
    untrusting.stop().await;

    let mut trusting = config(Some(&exchange), None, 30);
    trusting.ca_bundle = exchange.ca_file().map(std::path::Path::to_path_buf);
    let running = Running::start(trusting).await;
    running.wait_until("a trade over wss", |r| r.figures(Exchange::Binance).trades == 1).await;
    running.stop().await;
}

#[tokio::test]
async fn the_connection_is_replaced_at_its_age_limit_and_on_binance_server_shutdown() {
    let exchange = FakeExchange::start(|mut s: Session| async move {
        ack(&mut s).await;
        s.send(binance::trade("BTCUSDT", 1 + s.index as u64, 100.0, 1.0, Utc::now())).await;
        if s.index == 1 {
            // Binance announces a restart: the feed moves to a new connection at once.
            s.send(binance::server_shutdown()).await;
        }
        s.hold(Duration::from_secs(60)).await;
    })
    .await;
    // Binance's 24-hour limit, scaled down: the feed replaces the connection itself, without a stall.
    let mut aged = config(Some(&exchange), None, 30);
    aged.max_connection_age = Duration::from_secs(2);
    let started = tokio::time::Instant::now();
    let running = Running::start(aged).await;
    exchange.wait_for_connections(3, WAIT).await;
    // The first connection lived its 2 s; the second ended at serverShutdown, well before its own limit.
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(4), "{took:?}");
    running.wait_until("a trade per connection", |r| r.figures(Exchange::Binance).trades >= 3).await;
    let figures = running.figures(Exchange::Binance);
    assert_eq!(figures.stalls, 0);
    assert!(figures.gaps.is_empty(), "consecutive ids across connections: {:?}", figures.gaps);
    running.stop().await;
}
