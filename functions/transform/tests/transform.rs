//! The transform function on the real local Postgres with real market data:
//! incremental runs over data arriving in random pieces equal one full run,
//! re-runs change nothing, and every run is recorded.
#![allow(clippy::unwrap_used)] // tests panic on failure by design

use domain::Tick;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use testkit::TestDb;
use transform::{Transform, TransformRequest};

/// The first `hours` candles of two coins, as replayed ticks.
fn candles(hours: usize) -> Vec<Tick> {
    ["BTCUSDT_1h.csv", "SOLUSDT_1h.csv"]
        .iter()
        .flat_map(|file| {
            let path = testkit::candle_file(file);
            let coin = stream::replay::coin_of_file(&path).unwrap();
            let mut ticks = stream::replay::read_candles(&path, &coin).unwrap();
            ticks.truncate(hours);
            ticks
        })
        .collect()
}

fn transform(db: &TestDb) -> Transform {
    Transform { watermark_lag_secs: 0.0, ..Transform::with_defaults(db.store.clone()) }
}

/// Every output table as text, floats rounded to 1e-6, in a fixed order.
async fn tables(db: &TestDb) -> Vec<(String, Vec<String>)> {
    let queries = [
        (
            "price_hourly",
            "SELECT coin_id, hour, round(avg_price::numeric, 6), round(open::numeric, 6), round(high::numeric, 6), round(low::numeric, 6), round(close::numeric, 6), observations FROM price_hourly ORDER BY 1, 2",
        ),
        (
            "daily_ranking",
            "SELECT day, coin_id, round(last_price::numeric, 6), round(prev_last_price::numeric, 6), round(performance::numeric, 9), rank FROM daily_ranking ORDER BY 1, 2",
        ),
        (
            "price_alerts",
            "SELECT coin_id, at, window_secs, round(change_pct::numeric, 6), direction, round(price_before::numeric, 6), round(price_after::numeric, 6) FROM price_alerts ORDER BY 1, 2, 3",
        ),
        (
            "daily_volume",
            "SELECT coin_id, day, method, round(volume_usd::numeric, 3) FROM daily_volume ORDER BY 1, 2, 3",
        ),
    ];
    let client = db.client().await;
    let mut out = Vec::new();
    for (name, sql) in queries {
        let rows = client.query(&format!("SELECT t::text FROM ({sql}) t"), &[]).await.unwrap();
        out.push((name.to_owned(), rows.iter().map(|r| r.get::<_, String>(0)).collect()));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_runs_over_random_pieces_equal_one_full_run() {
    let db = TestDb::new().await;
    let job = transform(&db);
    let mut ticks = candles(24 * 40);
    ticks.shuffle(&mut rand::rngs::StdRng::seed_from_u64(11));
    // Pieces of random sizes, each a random scatter of hours across the 40 days.
    let cuts = [0, 37, 300, 301, 900, 1400, ticks.len()];
    for window in cuts.windows(2) {
        db.store.load_ticks(&ticks[window[0]..window[1]]).await.unwrap();
        let report = job.run(TransformRequest::default()).await.unwrap();
        assert!(report.days > 0, "each piece touches some days");
    }
    let incremental = tables(&db).await;

    let report = job.run(TransformRequest { full: true, ..Default::default() }).await.unwrap();
    let full = tables(&db).await;

    assert_eq!(report.hourly_rows, 2 * 24 * 40);
    for ((name, inc), (_, all)) in incremental.iter().zip(&full) {
        assert!(!all.is_empty(), "{name} has rows");
        assert_eq!(inc.len(), all.len(), "{name}: row count");
        for (a, b) in inc.iter().zip(all) {
            assert_eq!(a, b, "{name}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_again_changes_nothing_and_every_run_is_recorded() {
    let db = TestDb::new().await;
    let job = transform(&db);
    db.store.load_ticks(&candles(24 * 10)).await.unwrap();

    let first = job.run(TransformRequest::default()).await.unwrap();
    let before = tables(&db).await;
    let idle = job.run(TransformRequest::default()).await.unwrap();
    let full = job.run(TransformRequest { full: true, ..Default::default() }).await.unwrap();

    assert_eq!(first.hourly_rows, 2 * 24 * 10);
    assert_eq!((idle.days, idle.observations), (0, 0), "nothing new, nothing read");
    assert_eq!(full.hourly_rows, first.hourly_rows);
    assert_eq!(tables(&db).await, before, "a re-run never duplicates or changes a row");
    let statuses = db
        .client()
        .await
        .query("SELECT status FROM pipeline_runs WHERE function = 'transform' ORDER BY started_at", &[])
        .await
        .unwrap();
    assert_eq!(statuses.len(), 3);
    assert!(statuses.iter().all(|r| r.get::<_, String>(0) == "succeeded"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_rows_are_counted_by_reason_in_data_quality() {
    let db = TestDb::new().await;
    let job = transform(&db);
    let mut ticks = candles(24 * 3);
    ticks.truncate(24 * 3); // bitcoin only
    let steady = ticks[30].price;
    let mut spike = ticks[30].clone();
    spike.price = steady * 3.0;
    spike.source = domain::TickSource::Simulated; // another source at the same instant
    db.store.load_ticks(&ticks).await.unwrap();
    db.store.load_ticks(&[spike]).await.unwrap();

    let report = job.run(TransformRequest::default()).await.unwrap();

    assert_eq!(report.dropped.get("aberrant_price"), Some(&1), "{:?}", report.dropped);
    let row = db
        .client()
        .await
        .query_one(
            "SELECT rows FROM data_quality WHERE run_id = $1 AND reason = 'aberrant_price'",
            &[&report.run_id],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 1);
    let hour = db
        .client()
        .await
        .query_one(
            "SELECT high FROM price_hourly WHERE coin_id = 'bitcoin' AND hour = $1",
            &[&ticks[30].event_time],
        )
        .await
        .unwrap();
    assert_eq!(hour.get::<_, f64>(0), steady, "the spike did not reach the hourly candle");
}

/// With the default watermark lag (30 s), a run right after an ingest sees its
/// rows at once when no other transaction is in flight; a transaction in flight
/// during a run is never skipped: its rows come with the next run.
#[tokio::test(flavor = "multi_thread")]
async fn rows_just_stored_are_seen_at_once_and_a_transaction_in_flight_is_never_skipped() {
    let db = TestDb::new().await;
    let job = Transform::with_defaults(db.store.clone());
    assert_eq!(job.watermark_lag_secs, 30.0, "the default lag");
    db.store.load_ticks(&candles(3)).await.unwrap();
    let first = job.run(TransformRequest::default()).await.unwrap();
    assert_eq!(first.observations, 6, "seen at once, not a lag later");

    // Begun before the next run, committed after it.
    let writer = db.client().await;
    writer
        .batch_execute(
            "BEGIN; INSERT INTO price_ticks (coin_id, event_time, source, price, volume, interval_secs, seq)
             VALUES ('bitcoin', '2020-10-25T00:30:00Z', 'replay', 13000, 1, 3600, 99)",
        )
        .await
        .unwrap();
    job.run(TransformRequest::default()).await.unwrap();
    writer.batch_execute("COMMIT").await.unwrap();
    job.run(TransformRequest::default()).await.unwrap();
    let hour: i64 = db
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM price_hourly WHERE coin_id = 'bitcoin' AND hour = '2020-10-25T00:00:00Z'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(hour, 1, "the row of the transaction in flight was skipped");
}

/// A bad rules file stops the transform before it starts, naming the line.
#[tokio::test(flavor = "multi_thread")]
async fn a_bad_rules_file_stops_the_transform_at_start_naming_the_line() {
    let db = TestDb::new().await;
    let dir = std::env::temp_dir().join(format!("rules-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("alerts.toml");
    std::fs::write(&file, "[[rule]]\nname = \"default\"\n\nthreshold_pct = \"five\"\n").unwrap();
    let env = settings::Env::from_pairs([("ALERT_RULES_FILE", file.to_str().unwrap())]);
    let config = transform::Config::load(&env).unwrap();
    let err = Transform::with_store(&config, db.store.clone()).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("alerts.toml, line 4: threshold_pct"), "{message}");
    assert_eq!(lambda_runtime::Diagnostic::from(err).error_type, "Transform.Permanent");
    std::fs::remove_dir_all(&dir).unwrap();
}
