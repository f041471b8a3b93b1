//! The feed function against the fake exchange's REST APIs (testkit's
//! CandleServer, speaking Binance's klines and Coinbase's candles with their
//! documented parameters and limits), the real local Kafka and Postgres.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::{DateTime, Utc};
use consumer::Consumer;
use consumer::poller::{Poller, PollerConfig};
use domain::CoinId;
use exchanges::candles::RestCandles;
use exchanges::{FeedConfig, Markets, RestClient};
use feed::{Feed, FeedRequest};
use lambda_runtime::{Context, LambdaEvent};
use storage::PgStore;
use stream::{KafkaConfig, Publisher};
use testkit::exchange::{Candle, CandleServer};
use testkit::{TestDb, TestTopic};
use tokio_util::sync::CancellationToken;

const SYMBOLS: [&str; 4] = ["BTCUSDT", "ETHUSDT", "BTC-USD", "ETH-USD"];

struct Setup {
    server: CandleServer,
    kafka: KafkaConfig,
    _topic: TestTopic,
    db: TestDb,
    feed: Feed<RestCandles, Publisher, PgStore>,
}

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap().with_timezone(&Utc)
}

impl Setup {
    async fn new(catchup_minutes: u32) -> Self {
        let server = CandleServer::start(None).await;
        let mut config: FeedConfig =
            settings::Env::from_pairs([("COINS", "bitcoin,ethereum")]).load().unwrap();
        config.binance_rest_url = server.url();
        config.coinbase_rest_url = server.url();
        config.catchup_minutes = catchup_minutes;
        let mut kafka: KafkaConfig = testkit::config();
        let topic = TestTopic::create(&kafka, 3).await;
        kafka.topic = topic.name().to_owned();
        let db = TestDb::new().await;
        let client = RestClient::new(&config).unwrap().with_retry_base(Duration::from_millis(50));
        let feed = Feed {
            source: RestCandles::new(client, &config),
            sink: Publisher::connect(&kafka).await.unwrap(),
            store: db.store.clone(),
            markets: Markets::from_config(&config),
            catchup_minutes,
        };
        Self { server, kafka, _topic: topic, db, feed }
    }

    /// Invokes the function as EventBridge does, with a scheduled event for `time`.
    async fn invoke(&self, time: DateTime<Utc>) -> feed::FeedReport {
        self.server.set_until(time);
        let event = serde_json::json!({
            "version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event",
            "source": "aws.events", "account": "123456789012", "time": time.to_rfc3339(),
            "region": "us-east-1", "resources": ["arn:aws:events:us-east-1:123456789012:rule/feed"], "detail": {}
        });
        feed::handle(&self.feed, LambdaEvent::new(event, Context::default())).await.unwrap()
    }

    async fn records(&self) -> i64 {
        stream::topic_records(&self.kafka, &self.kafka.topic).await.unwrap()
    }

    /// Consumes the whole topic (a group of its own) into the test database; returns the rows stored.
    async fn consume_all(&self) -> i64 {
        let group = format!("feed-fn-test-{}", uuid::Uuid::new_v4().simple());
        let config = PollerConfig {
            max_records: 500,
            max_wait: Duration::from_millis(200),
            retry_base: Duration::from_millis(100),
            retry_max: Duration::from_secs(1),
        };
        let poller = Poller::new(&self.kafka, &group, &self.kafka.topic, config).unwrap();
        let dlq = TestTopic::create(&self.kafka, 1).await;
        let consumer = Consumer {
            store: self.db.store.clone(),
            dead_letters: Publisher::connect_to(&self.kafka, dlq.name()).await.unwrap(),
            coins: CoinId::defaults().into_iter().collect(),
        };
        let stop = CancellationToken::new();
        let token = stop.clone();
        let records = self.records().await;
        let db = &self.db;
        let waiting = async move {
            // Every record read: the consumer's batches together saw them all.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            loop {
                let seen: i64 = db
                    .client()
                    .await
                    .query_one("SELECT coalesce(sum(rows_in), 0)::int8 FROM pipeline_runs WHERE function = 'consumer'", &[])
                    .await
                    .unwrap()
                    .get(0);
                if seen >= records || tokio::time::Instant::now() > deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            token.cancel();
        };
        tokio::join!(poller.run(&consumer, stop), waiting);
        self.db.count("price_ticks").await
    }
}

/// Candles with trades the fake exchange has for every symbol, over the minutes opening in `[from, to)`.
fn expected(from: DateTime<Utc>, to: DateTime<Utc>) -> u64 {
    let mut n = 0;
    let mut open = from;
    while open < to {
        n += SYMBOLS.iter().filter(|s| Candle::synthetic(s, open).is_some()).count() as u64;
        open += chrono::Duration::minutes(1);
    }
    n
}

#[tokio::test]
async fn catches_up_a_gap_once_and_a_rerun_of_the_same_minute_publishes_nothing() {
    let setup = Setup::new(1440).await;
    // First invocation: the last closed minute only.
    let first = setup.invoke(at("2026-11-30T10:00:20Z")).await;
    assert_eq!(first.published, expected(at("2026-11-30T09:59:00Z"), at("2026-11-30T10:00:00Z")));
    assert_eq!(first.markets.len(), 4);

    // Down for 37 minutes: the next invocation publishes each of them, once.
    let second = setup.invoke(at("2026-11-30T10:37:05Z")).await;
    let gap = expected(at("2026-11-30T10:00:00Z"), at("2026-11-30T10:37:00Z"));
    assert!(gap > 100, "{gap}");
    assert_eq!(second.published, gap);
    assert!(second.markets.iter().all(|m| m.skipped_minutes == 0 && m.error.is_none()));
    let total = i64::try_from(first.published + gap).unwrap();
    assert_eq!(setup.records().await, total);

    // The same scheduled minute again (EventBridge retries): nothing new.
    let again = setup.invoke(at("2026-11-30T10:37:05Z")).await;
    assert_eq!(again.published, 0);
    assert_eq!(setup.records().await, total, "nothing published twice across invocations");
    assert_eq!(setup.consume_all().await, total);

    // A crash after Kafka took the candles but before the cursor moved: the
    // minutes go out again, with the same keys and values; nothing new is stored.
    setup
        .db
        .client()
        .await
        .execute("UPDATE feed_cursors SET fetched_to = $1", &[&at("2026-11-30T10:00:00Z")])
        .await
        .unwrap();
    let replayed = setup.invoke(at("2026-11-30T10:37:05Z")).await;
    assert_eq!(replayed.published, gap);
    assert_eq!(setup.consume_all().await, total, "the consumer's idempotent insert absorbed the re-run");

    // Binance candles carry VWAP and trade count, Coinbase's do not; all are 60-second ticks at the minute's end.
    let row = setup
        .db
        .client()
        .await
        .query_one(
            "SELECT count(*) FILTER (WHERE source = 'binance' AND vwap IS NOT NULL AND trade_count > 0),
                    count(*) FILTER (WHERE source = 'coinbase' AND vwap IS NULL),
                    count(*) FILTER (WHERE interval_secs <> 60 OR extract(second FROM event_time) <> 0)
               FROM price_ticks",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0) + row.get::<_, i64>(1), total);
    assert_eq!(row.get::<_, i64>(2), 0);
    // Each invocation left a run record.
    let runs: i64 = setup
        .db
        .client()
        .await
        .query_one("SELECT count(*) FROM pipeline_runs WHERE function = 'feed' AND status = 'succeeded'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(runs, 4);
}

#[tokio::test]
async fn catch_up_is_bounded_and_pages_through_both_exchanges_limits() {
    let setup = Setup::new(1200).await;
    setup.invoke(at("2026-11-29T00:00:10Z")).await;
    let requests = setup.server.candle_requests().await;
    // 1100 minutes: Binance pages by 1000 klines, Coinbase by 300 candles.
    let report = setup.invoke(at("2026-11-29T18:20:10Z")).await;
    assert_eq!(report.published, expected(at("2026-11-29T00:00:00Z"), at("2026-11-29T18:20:00Z")));
    assert_eq!(setup.server.candle_requests().await - requests, 2 * 2 + 2 * 4);

    // Down for two days: only FEED_CATCHUP_MINUTES are fetched, and the rest is reported as skipped.
    let report = setup.invoke(at("2026-12-01T18:20:10Z")).await;
    assert_eq!(
        report.published,
        expected(at("2026-12-01T18:20:00Z") - chrono::Duration::minutes(1200), at("2026-12-01T18:20:00Z"))
    );
    assert!(report.markets.iter().all(|m| m.skipped_minutes == 48 * 60 - 1200), "{:?}", report.markets);
    let details: serde_json::Value = setup
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
    assert_eq!(details["markets"][0]["skipped_minutes"], 48 * 60 - 1200);
}

#[tokio::test]
async fn exchange_errors_are_retried_and_a_failed_market_is_caught_up_next_time() {
    let setup = Setup::new(1440).await;
    setup.invoke(at("2026-11-30T08:00:10Z")).await;
    // Two 503s: retried with backoff, nothing lost.
    setup.server.fail_next(2);
    let report = setup.invoke(at("2026-11-30T08:10:10Z")).await;
    assert_eq!(report.published, expected(at("2026-11-30T08:00:00Z"), at("2026-11-30T08:10:00Z")));

    // More failures than retries: that market fails, the run says so, its cursor stays.
    setup.server.fail_next(5);
    setup.server.set_until(at("2026-11-30T08:20:10Z"));
    let err = setup.feed.run(FeedRequest { time: Some(at("2026-11-30T08:20:10Z")) }).await.unwrap_err();
    assert!(err.to_string().contains("1 of 4 markets not published"), "{err}");
    let failed: i64 = setup
        .db
        .client()
        .await
        .query_one("SELECT count(*) FROM pipeline_runs WHERE function = 'feed' AND status = 'failed'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(failed, 1);
    // The next minute catches the failed market up from where it stood.
    let report = setup.invoke(at("2026-11-30T08:21:10Z")).await;
    let caught_up = report
        .markets
        .iter()
        .find(|m| m.from == Some(at("2026-11-30T08:10:00Z")))
        .expect("the failed market");
    assert_eq!(caught_up.to, at("2026-11-30T08:21:00Z"));
    assert_eq!(setup.records().await, {
        let all = expected(at("2026-11-30T07:59:00Z"), at("2026-11-30T08:21:00Z"));
        i64::try_from(all).unwrap()
    });
}
