//! The notify step on the real local services: Postgres (the outbox), LocalStack's
//! SNS with an SQS queue subscribed to the topic, and HTTP receivers on this
//! machine standing in for Slack, Discord and any JSON webhook. The alerts come
//! from the transform over CoinGecko snapshots whose 24 h change is known.
#![allow(clippy::unwrap_used)] // tests panic on failure by design

use std::time::{Duration, Instant};

use alerting::Sender;
use chrono::{DateTime, Utc};
use domain::{MarketSnapshot, VsCurrency};
use notify::{Delivery, Notify, NotifyReport};
use testkit::TestDb;
use transform::{Transform, TransformRequest};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn ago(minutes: i64) -> DateTime<Utc> {
    // Whole seconds: the instant round-trips through every format unchanged.
    let now = Utc::now().timestamp();
    DateTime::from_timestamp(now - minutes * 60, 0).unwrap()
}

fn snapshot(coin: &str, name: &str, at: DateTime<Utc>, change: f64) -> MarketSnapshot {
    testkit::snapshot(coin, name, at, change)
}

async fn ingest(db: &TestDb, snapshots: &[MarketSnapshot]) {
    testkit::ingest_snapshots(&db.store, snapshots).await;
}

fn transform(db: &TestDb, channels: &[&str]) -> Transform {
    Transform {
        channels: channels.iter().map(|c| (*c).to_owned()).collect(),
        watermark_lag_secs: 0.0,
        ..Transform::with_defaults(db.store.clone())
    }
}

async fn run_transform(job: &Transform, full: bool) -> transform::TransformReport {
    job.run(TransformRequest { full, ..Default::default() }).await.unwrap()
}

fn delivery() -> Delivery {
    Delivery {
        alert_delivery_attempts: 5,
        alert_retry_base_ms: Duration::from_millis(20),
        alert_retry_max_wait_secs: Duration::from_secs(5),
        alert_webhook_timeout_secs: Duration::from_secs(2),
        dashboard_url: Some(url::Url::parse("http://127.0.0.1:8080/").unwrap()),
        vs_currency: VsCurrency::usd(),
    }
}

/// A webhook sender for `spec` (`NAME=FORMAT:URL`).
fn webhook(spec: &str) -> Sender {
    let hook = alerting::channels::parse_webhooks(spec).unwrap().remove(0);
    Sender::webhook(hook, Duration::from_secs(2)).unwrap()
}

fn notifier(db: &TestDb, senders: Vec<Sender>) -> Notify {
    Notify { store: db.store.clone(), senders, delivery: delivery() }
}

/// (state, count) of the outbox rows of `channel`.
async fn states(db: &TestDb, channel: &str) -> Vec<(String, i64)> {
    db.client()
        .await
        .query(
            "SELECT state, count(*) FROM alert_outbox WHERE channel = $1 GROUP BY state ORDER BY state",
            &[&channel],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

fn pairs(p: &[(&str, i64)]) -> Vec<(String, i64)> {
    p.iter().map(|(s, n)| ((*s).to_owned(), *n)).collect()
}

/// Bitcoin +6 % 90 min ago, ethereum −7 % 30 min ago (both recent: sent), solana
/// +8 % three days ago (historical: recorded, never sent), ripple +4 % (no alert).
fn known_alerts() -> Vec<MarketSnapshot> {
    vec![
        snapshot("bitcoin", "Bitcoin", ago(90), 6.0),
        snapshot("ethereum", "Ethereum", ago(30), -7.0),
        snapshot("solana", "Solana", ago(3 * 24 * 60), 8.0),
        snapshot("ripple", "XRP", ago(20), 4.0),
    ]
}

async fn sqs_client() -> aws_sdk_sqs::Client {
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(testkit::s3_endpoint())
        .load()
        .await;
    aws_sdk_sqs::Client::new(&shared)
}

/// Every message the queue holds now (received and deleted).
async fn drain(sqs: &aws_sdk_sqs::Client, queue: &str) -> Vec<serde_json::Value> {
    let mut bodies = Vec::new();
    let mut empty = 0;
    while empty < 2 {
        let out = sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        let messages = out.messages();
        if messages.is_empty() {
            empty += 1;
        }
        for m in messages {
            bodies.push(serde_json::from_str(m.body().unwrap()).unwrap());
            sqs.delete_message()
                .queue_url(queue)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    bodies
}

#[tokio::test(flavor = "multi_thread")]
async fn sns_with_an_sqs_subscription_gets_one_message_per_new_alert_and_a_rerun_adds_none() {
    let db = TestDb::new().await;
    let name = format!("test-alerts-{}", uuid::Uuid::new_v4().simple());
    let sns = notify::sns_client(Some(&url::Url::parse(&testkit::s3_endpoint()).unwrap())).await;
    let topic = provision::sns_topic(&sns, &name).await.unwrap();
    let sqs = sqs_client().await;
    let queue = sqs.create_queue().queue_name(&name).send().await.unwrap().queue_url().unwrap().to_owned();
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(&queue_arn)
        .attributes("RawMessageDelivery", "true")
        .send()
        .await
        .unwrap();

    let data = known_alerts();
    ingest(&db, &data).await;
    let job = transform(&db, &["sns"]);
    let report = run_transform(&job, true).await;
    assert_eq!(report.alerts, 3);
    assert_eq!((report.notifications.pending, report.notifications.historical), (2, 1));
    // By name, as locally (`cpctl setup` made it); the sender finds its ARN.
    let notify = notifier(&db, vec![Sender::sns(sns.clone(), &name).await.unwrap()]);
    let sent = notify.run().await.unwrap();
    assert_eq!((sent.sent, sent.failed, sent.suppressed), (2, 0, 0));

    let mut messages = drain(&sqs, &queue).await;
    messages.sort_by_key(|m| m["coin"]["id"].as_str().unwrap().to_owned());
    assert_eq!(messages.len(), 2, "{messages:#?}");
    let btc = &messages[0];
    assert_eq!(btc["coin"]["id"], "bitcoin");
    assert_eq!(btc["coin"]["name"], "Bitcoin");
    assert_eq!(btc["window"], "24 h");
    assert_eq!(btc["change_pct"], 6.0);
    assert_eq!(btc["direction"], "up");
    assert_eq!(btc["price_after"], 100.0);
    assert!((btc["price_before"].as_f64().unwrap() - 100.0 / 1.06).abs() < 1e-9);
    assert_eq!(btc["at"], data[0].observed_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    assert_eq!(btc["dashboard_url"], "http://127.0.0.1:8080/coins/bitcoin.html");
    assert_eq!(messages[1]["coin"]["id"], "ethereum");
    assert_eq!(states(&db, "sns").await, pairs(&[("historical", 1), ("sent", 2)]));

    // A re-run, a rebuild and an incremental run with a new snapshot of an old
    // day: no alert is queued twice, and nothing more reaches the queue.
    run_transform(&job, true).await;
    run_transform(&job, false).await;
    ingest(&db, &[snapshot("bitcoin", "Bitcoin", ago(80), 1.0)]).await;
    let again = run_transform(&job, false).await;
    assert_eq!(again.notifications, Default::default());
    let second: NotifyReport = notify.run().await.unwrap();
    assert_eq!((second.pending, second.sent), (0, 0));
    assert!(drain(&sqs, &queue).await.is_empty());
    assert_eq!(states(&db, "sns").await, pairs(&[("historical", 1), ("sent", 2)]));

    sqs.delete_queue().queue_url(&queue).send().await.unwrap();
    sns.delete_topic().topic_arn(&topic).send().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_answering_500_twice_then_200_gets_each_alert_once_with_the_retries_recorded() {
    let db = TestDb::new().await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(500).set_body_string("try later"))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    ingest(&db, &[snapshot("bitcoin", "Bitcoin", ago(30), 9.0)]).await;
    run_transform(&transform(&db, &["webhook:team"]), true).await;

    let notify = notifier(&db, vec![webhook(&format!("team=slack:{}/hook", server.uri()))]);
    let report = notify.run().await.unwrap();
    assert_eq!((report.sent, report.retries, report.failed), (1, 2, 0));
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 3, "two refused, one accepted");
    // Slack's body: one `text` with the coin, move, prices, time and link.
    let body: serde_json::Value = serde_json::from_slice(&requests[2].body).unwrap();
    let text = body["text"].as_str().unwrap();
    for part in
        ["*Bitcoin (BIT)*", "up +9.00 % in 24 h", "USD", "UTC", "<http://127.0.0.1:8080/coins/bitcoin.html|"]
    {
        assert!(text.contains(part), "{part:?} not in {text}");
    }
    let row = db
        .client()
        .await
        .query_one("SELECT state, attempts, last_error, sent_at IS NOT NULL FROM alert_outbox", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "sent");
    assert_eq!(row.get::<_, i32>(1), 3, "three tries recorded");
    assert_eq!(row.get::<_, Option<String>>(2).as_deref(), Some("HTTP 500: try later"));
    assert!(row.get::<_, bool>(3));

    // The next run sends nothing again.
    assert_eq!(notify.run().await.unwrap().sent, 0);
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_after_is_honoured_and_a_channel_that_keeps_failing_ends_failed_on_the_runs_page() {
    let db = TestDb::new().await;
    let slow = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .mount(&slow)
        .await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(204)).mount(&slow).await;
    let down = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(503)).mount(&down).await;
    let gone = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(404).set_body_string("no_service"))
        .mount(&gone)
        .await;

    ingest(&db, &[snapshot("bitcoin", "Bitcoin", ago(30), 9.0)]).await;
    run_transform(&transform(&db, &["webhook:slow", "webhook:down", "webhook:gone"]), true).await;
    let notify = notifier(
        &db,
        vec![
            webhook(&format!("slow=json:{}/h", slow.uri())),
            webhook(&format!("down=discord:{}/h", down.uri())),
            webhook(&format!("gone=json:{}/h", gone.uri())),
        ],
    );
    let started = Instant::now();
    let report = notify.run().await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After: 1 was not waited for");
    assert_eq!(report.channels["webhook:slow"].sent, 1);
    assert_eq!(report.channels["webhook:down"].failed, 1);
    assert_eq!(report.channels["webhook:gone"].failed, 1);
    assert_eq!(slow.received_requests().await.unwrap().len(), 2);
    assert_eq!(down.received_requests().await.unwrap().len(), 5, "ALERT_DELIVERY_ATTEMPTS tries");
    assert_eq!(gone.received_requests().await.unwrap().len(), 1, "a 404 is not retried");

    let failed = storage::outbox::failed(&**db.client().await, 10).await.unwrap();
    let mut errors: Vec<(String, i32, String)> =
        failed.into_iter().map(|d| (d.channel, d.attempts, d.last_error.unwrap())).collect();
    errors.sort();
    assert_eq!(errors[0], ("webhook:down".into(), 5, "HTTP 503:  (after 5 tries)".into()));
    assert_eq!(errors[1], ("webhook:gone".into(), 1, "HTTP 404: no_service".into()));
    // The run's record says so too (the Runs page's details).
    let details: serde_json::Value = db
        .client()
        .await
        .query_one("SELECT details FROM pipeline_runs WHERE function = 'notify'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(details["failed"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn three_crossings_in_an_hour_make_one_message_saying_2_suppressed() {
    let db = TestDb::new().await;
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).mount(&server).await;
    // CoinGecko's 24 h change crosses +5 % three times within the hour (and back below it between).
    let swings = [(60, 5.5), (50, 4.0), (40, 5.6), (30, 4.1), (20, 5.7)];
    ingest(&db, &swings.map(|(m, c)| snapshot("solana", "Solana", ago(m), c))).await;
    let job = transform(&db, &["webhook:team"]);
    assert_eq!(run_transform(&job, true).await.notifications.pending, 3);
    let notify = notifier(&db, vec![webhook(&format!("team=json:{}/h", server.uri()))]);
    let report = notify.run().await.unwrap();
    assert_eq!((report.sent, report.suppressed), (1, 2));
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let body: serde_json::Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(body["suppressed"], 2);
    assert!(body["text"].as_str().unwrap().contains("2 suppressed"), "{body}");
    assert_eq!(body["change_pct"], 5.7, "the message is about the latest crossing");

    // Crossings after that message: recorded, not sent, until the cool-down (60 min) ends.
    ingest(&db, &[snapshot("solana", "Solana", ago(10), 5.8), snapshot("solana", "Solana", ago(5), 5.9)])
        .await;
    run_transform(&job, false).await;
    assert_eq!(notify.run().await.unwrap().suppressed, 2);
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    assert_eq!(states(&db, "webhook:team").await, pairs(&[("sent", 1), ("suppressed", 4)]));
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_cool_down_the_next_message_counts_what_was_suppressed() {
    let db = TestDb::new().await;
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).mount(&server).await;
    let job = transform(&db, &["webhook:team"]);
    let notify = notifier(&db, vec![webhook(&format!("team=json:{}/h", server.uri()))]);
    // One transform and notify per crossing, as the schedule runs them.
    for (minutes, change) in [(110, 5.5), (90, 5.6), (70, -5.7), (40, 6.0)] {
        ingest(&db, &[snapshot("ripple", "XRP", ago(minutes), change)]).await;
        run_transform(&job, false).await;
        notify.run().await.unwrap();
    }
    let bodies: Vec<serde_json::Value> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    // 110 min ago: sent; 90 and 70: within its hour, suppressed; 40: sent, saying 2.
    assert_eq!(bodies.len(), 2, "{bodies:#?}");
    assert_eq!((bodies[0]["suppressed"].clone(), bodies[1]["suppressed"].clone()), (0.into(), 2.into()));
    assert_eq!(bodies[1]["change_pct"], 6.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_names_are_json_encoded_in_every_webhook_format() {
    let db = TestDb::new().await;
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).mount(&server).await;
    let evil = "Evil\" <!channel> @everyone </script><b>\n{\"x\":1}";
    ingest(&db, &[snapshot("bitcoin", evil, ago(30), 9.0)]).await;
    run_transform(&transform(&db, &["webhook:a", "webhook:b", "webhook:c"]), true).await;
    let uri = server.uri();
    let notify = notifier(
        &db,
        vec![
            webhook(&format!("a=slack:{uri}/slack")),
            webhook(&format!("b=discord:{uri}/discord")),
            webhook(&format!("c=json:{uri}/json")),
        ],
    );
    assert_eq!(notify.run().await.unwrap().sent, 3);
    for request in server.received_requests().await.unwrap() {
        let raw = String::from_utf8(request.body.clone()).unwrap();
        let body: serde_json::Value = serde_json::from_str(&raw).unwrap();
        assert!(!raw.contains('\n'), "a raw line break in {raw}");
        match request.url.path() {
            "/slack" => {
                let text = body["text"].as_str().unwrap();
                assert!(text.contains("&lt;!channel&gt;") && !text.contains("<!channel>"), "{text}");
            }
            "/discord" => {
                assert_eq!(body["allowed_mentions"]["parse"], serde_json::json!([]));
                assert!(body["content"].as_str().unwrap().contains("\\@everyone"));
            }
            _ => assert_eq!(body["coin"]["name"], evil),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rebuild_records_old_alerts_as_historical_unless_asked_to_notify_history() {
    let db = TestDb::new().await;
    let old = [
        snapshot("bitcoin", "Bitcoin", ago(5 * 24 * 60), 9.0),
        snapshot("bitcoin", "Bitcoin", ago(3 * 60), 7.0),
    ];
    ingest(&db, &old).await;
    let job = transform(&db, &["webhook:team"]);
    let report = run_transform(&job, true).await;
    assert_eq!((report.notifications.pending, report.notifications.historical), (0, 2));
    assert_eq!(states(&db, "webhook:team").await, pairs(&[("historical", 2)]));

    // Asked for, a rebuild queues the alerts not seen before, however old.
    let other = TestDb::new().await;
    ingest(&other, &old).await;
    let history = transform(&other, &["webhook:team"])
        .run(TransformRequest { full: true, notify_history: true, ..Default::default() })
        .await
        .unwrap();
    assert_eq!((history.notifications.pending, history.notifications.historical), (2, 0));
}
