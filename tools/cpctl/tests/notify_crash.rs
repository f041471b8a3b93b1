//! A notify step killed between "the channel accepted the message" and "the row
//! is marked sent" (`cpctl notify` SIGKILLed by the webhook receiver as it takes
//! the request, before it answers): the next run sends that one message again,
//! and nothing is lost. Measured for a kill at each of three rows.
#![allow(clippy::unwrap_used)] // tests panic on failure by design

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use testkit::TestDb;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const COINS: [&str; 3] = ["bitcoin", "ethereum", "solana"];

/// Answers 200, except that the `kill_at`-th request (1-based) first SIGKILLs the notifier.
struct Killer {
    seen: AtomicUsize,
    kill_at: usize,
    pid: Arc<Mutex<Option<u32>>>,
}

impl Respond for Killer {
    fn respond(&self, _request: &Request) -> ResponseTemplate {
        if self.seen.fetch_add(1, Ordering::SeqCst) + 1 == self.kill_at
            && let Some(pid) = *self.pid.lock().unwrap()
        {
            // The message is in: as far as the channel knows, it was delivered.
            assert!(Command::new("kill").args(["-KILL", &pid.to_string()]).status().unwrap().success());
        }
        ResponseTemplate::new(200)
    }
}

fn notify(db: &TestDb, server: &MockServer) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cpctl"));
    cmd.arg("notify")
        .env("DATABASE_URL", db.url.expose_secret())
        .env("ALERT_WEBHOOKS", format!("hook=json:{}/hook", server.uri()))
        .env("DASHBOARD_URL", "http://127.0.0.1:8080/")
        .env("ALERT_RETRY_BASE_MS", "10")
        // Only the webhook: the stack's SNS topic is not this test's.
        .env_remove("ALERT_SNS_TOPIC")
        .env_remove("LOG_DIR");
    cmd
}

/// Kills the notifier at request `kill_at`, runs it again; returns how many
/// messages each coin's alert got in all.
async fn crash_at(kill_at: usize) -> BTreeMap<String, usize> {
    let db = TestDb::new().await;
    let at = DateTime::from_timestamp(Utc::now().timestamp() - 600, 0).unwrap();
    testkit::ingest_snapshots(&db.store, &COINS.map(|c| testkit::snapshot(c, c, at, 9.0))).await;
    let job = transform::Transform {
        channels: vec![String::from("webhook:hook")],
        watermark_lag_secs: 0.0,
        ..transform::Transform::with_defaults(db.store.clone())
    };
    let report = job.run(transform::TransformRequest { full: true, ..Default::default() }).await.unwrap();
    assert_eq!(report.notifications.pending, 3);

    let server = MockServer::start().await;
    let pid = Arc::new(Mutex::new(None));
    Mock::given(wiremock::matchers::method("POST"))
        .respond_with(Killer { seen: AtomicUsize::new(0), kill_at, pid: pid.clone() })
        .mount(&server)
        .await;
    let mut child = notify(&db, &server).spawn().unwrap();
    *pid.lock().unwrap() = Some(child.id());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert!(!status.success(), "the notifier was to be killed at request {kill_at}: {status}");
    let sent: i64 = db
        .client()
        .await
        .query_one("SELECT count(*) FROM alert_outbox WHERE state = 'sent'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(sent, kill_at as i64 - 1, "the rows before the killed one were marked sent");

    let out = notify(&db, &server).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let states: Vec<String> = db
        .client()
        .await
        .query("SELECT state FROM alert_outbox", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(states, ["sent"; 3]);
    let mut received = BTreeMap::new();
    for request in server.received_requests().await.unwrap() {
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        *received.entry(body["coin"]["id"].as_str().unwrap().to_owned()).or_insert(0) += 1;
    }
    received
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_between_sent_and_marked_sent_duplicates_at_most_that_one_message_and_loses_none() {
    for kill_at in 1..=COINS.len() {
        let received = crash_at(kill_at).await;
        assert_eq!(received.len(), COINS.len(), "every alert delivered: {received:?}");
        let duplicates: usize = received.values().map(|n| n - 1).sum();
        // Rows go out in coin order: the killed request is that coin's.
        assert_eq!(received[COINS[kill_at - 1]], 2, "{received:?}");
        assert_eq!(duplicates, 1, "{received:?}");
        println!("killed at message {kill_at} of 3: {duplicates} duplicate, 0 lost ({received:?})");
    }
}
