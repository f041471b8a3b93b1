//! `cpctl history` offline, as a process against the real Postgres: CoinGecko
//! unreachable and no history stored, the shipped candles become sample
//! history, labelled per coin, transformed and rendered with the sample banner;
//! run again, nothing is loaded twice. (Online, the backfill path: scripts/e2e.sh.)
#![allow(clippy::unwrap_used)] // tests panic on failure by design

use std::process::Command;

use secrecy::ExposeSecret;
use testkit::TestDb;

fn history(db: &TestDb, site: &std::path::Path) -> serde_json::Value {
    // A port that was just free: nothing answers there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = Command::new(env!("CARGO_BIN_EXE_cpctl"))
        .arg("history")
        .env("DATABASE_URL", db.url.expose_secret())
        .env("COINGECKO_BASE_URL", format!("http://127.0.0.1:{port}"))
        .env("SITE_OUTPUT", site)
        // A channel, so that the transform queues notifications (none answers: none may be sent).
        .env("ALERT_WEBHOOKS", "hook=json:http://127.0.0.1:9/hook")
        .env_remove("ALERT_SNS_TOPIC")
        .output()
        .unwrap();
    assert!(out.status.success(), "cpctl history failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The dashboard folder of the test, removed at the end.
struct Site(std::path::PathBuf);

impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_the_shipped_candles_become_labelled_sample_history_once() {
    let db = TestDb::new().await;
    let site = Site(std::env::temp_dir().join(format!("history-site-{}", uuid::Uuid::new_v4().simple())));
    let report = history(&db, &site.0);
    assert_eq!(report["source"], "sample", "{report}");
    assert_eq!(report["new_rows"], 5 * 31_973, "{report}");

    let client = db.client().await;
    let row = client
        .query_one(
            "SELECT count(*), count(DISTINCT coin_id), max(event_time) FROM price_ticks WHERE source = 'sample'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (5 * 31_973, 5));
    // Moved forward to end at the hour before the load.
    let last: chrono::DateTime<chrono::Utc> = row.get(2);
    let age = chrono::Utc::now() - last;
    assert!(
        age > chrono::Duration::minutes(59) && age < chrono::Duration::hours(3),
        "last sample hour {last}"
    );
    let labelled: i64 = client
        .query_one(
            "SELECT count(*) FROM sample_history WHERE original_from = '2020-10-23T08:00:00Z'
               AND original_to = '2024-06-16T12:00:00Z' AND candles = 31973",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(labelled, 5, "each coin says what its sample really is");
    // Transformed at once: the golden alert counts of the shipped candles.
    let alerts: i64 = client
        .query_one("SELECT count(*) FROM price_alerts WHERE window_secs = 3600", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(alerts, 28 + 83 + 363 + 268 + 122);
    // Their notifications are recorded, none to be sent: the sample is not today's market.
    let queued: Vec<(String, i64)> = client
        .query("SELECT state, count(*) FROM alert_outbox GROUP BY state", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let all: i64 = client.query_one("SELECT count(*) FROM price_alerts", &[]).await.unwrap().get(0);
    assert_eq!(queued, [(String::from("historical"), all)], "one row per alert, on the webhook");
    // Rendered at once, and labelled on every page.
    for page in ["index.html", "coins/bitcoin.html", "alerts.html", "runs.html"] {
        let html = std::fs::read_to_string(site.0.join(page)).unwrap();
        assert!(html.contains(r#"id="sample-banner""#), "{page} does not label the sample");
    }

    // Offline again, with history stored: nothing is loaded twice.
    let again = history(&db, &site.0);
    assert_eq!(again["source"], "already_stored", "{again}");
    assert_eq!(db.count("price_ticks").await, 5 * 31_973);
}
