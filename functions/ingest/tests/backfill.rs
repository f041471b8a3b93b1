//! The history backfill against the real local Postgres and a fake CoinGecko
//! that answers `/market_chart/range` with hourly points for the asked range.
#![allow(clippy::unwrap_used)] // tests panic on failure by design

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Duration, Utc};
use ingest::IngestError;
use ingest::backfill::{BackfillRequest, backfill, plan_chunks};
use testkit::TestDb;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Serves hourly points for `[from, to]`; fails the `fail_on`-th request
/// (1-based) with a permanent 400, and refuses ranges starting before
/// `refuse_before` the way the Demo plan does.
#[derive(Clone, Default)]
struct FakeHistory {
    calls: Arc<AtomicUsize>,
    fail_on: Option<usize>,
    refuse_before: Option<DateTime<Utc>>,
}

fn query(request: &Request, name: &str) -> i64 {
    request.url.query_pairs().find(|(k, _)| k == name).and_then(|(_, v)| v.parse().ok()).unwrap()
}

impl Respond for FakeHistory {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if self.fail_on == Some(call) {
            return ResponseTemplate::new(400).set_body_string(r#"{"error":"simulated interruption"}"#);
        }
        let (from, to) = (query(request, "from"), query(request, "to"));
        if self.refuse_before.is_some_and(|limit| from < limit.timestamp()) {
            return ResponseTemplate::new(401).set_body_string(
                r#"{"error":{"status":{"timestamp":"2026-11-25T00:00:00.000+00:00","error_code":10012,"error_message":"Your request exceeds the allowed time range. Public API users are limited to querying historical data within the past 365 days."}}}"#,
            );
        }
        // Hourly instants on the hour within [from, to], as CoinGecko sends for ≤ 90 days.
        let first = (from + 3599).div_euclid(3600) * 3600;
        let hours: Vec<i64> = (first..=to).step_by(3600).collect();
        let series =
            |f: fn(i64) -> f64| -> Vec<(i64, f64)> { hours.iter().map(|h| (h * 1000, f(*h))).collect() };
        ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "prices": series(|h| 100.0 + (h / 3600 % 50) as f64),
            "market_caps": series(|h| 1e9 + h as f64),
            "total_volumes": series(|_| 5e6),
        }))
    }
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

async fn serve(fake: FakeHistory) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path_regex(r"^/coins/[a-z]+/market_chart/range$"))
        .respond_with(fake)
        .mount(&server)
        .await;
    server
}

fn request(coins: &str, from: &str, to: &str) -> BackfillRequest {
    BackfillRequest {
        coins: domain::CoinId::parse_list(coins).unwrap(),
        vs_currency: common::usd(),
        from: at(from),
        to: at(to),
    }
}

async fn history_rows(db: &TestDb) -> Vec<(String, DateTime<Utc>)> {
    let rows = db
        .client()
        .await
        .query("SELECT coin_id, ts FROM market_history ORDER BY coin_id, ts", &[])
        .await
        .unwrap();
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

#[tokio::test]
async fn an_interrupted_backfill_resumes_where_it_stopped() {
    let db = TestDb::new().await;
    let req = request("bitcoin,ethereum", "2024-01-01T00:00:00Z", "2024-07-01T00:00:00Z");
    let per_coin = plan_chunks(req.from, req.to).len();
    assert!(per_coin >= 3, "the range spans several chunks");
    let hours = (req.to - req.from).num_hours() as usize;

    // First run: the third request fails; two chunks are stored.
    let broken = FakeHistory { fail_on: Some(3), ..Default::default() };
    let server = serve(broken.clone()).await;
    let err = backfill(&common::client(&server, None), &db.store, &req).await.unwrap_err();
    assert!(err.to_string().contains("simulated interruption"), "{err}");
    assert_eq!(broken.calls.load(Ordering::SeqCst), 3);
    assert_eq!(db.count("backfill_chunks").await, 2);
    let partial = history_rows(&db).await.len();
    assert!(partial > 0);

    // Second run: only the missing chunks are asked for.
    let healthy = FakeHistory::default();
    let server = serve(healthy.clone()).await;
    let report = backfill(&common::client(&server, None), &db.store, &req).await.unwrap();
    assert_eq!(report.chunks_skipped, 2);
    assert_eq!(report.chunks_fetched, 2 * per_coin - 2);
    assert_eq!(healthy.calls.load(Ordering::SeqCst), 2 * per_coin - 2);

    // Every hour of the range, once per coin, nothing doubled.
    let rows = history_rows(&db).await;
    assert_eq!(rows.len(), 2 * hours);
    let mut unique = rows.clone();
    unique.dedup();
    assert_eq!(unique.len(), rows.len());
    assert!(rows.iter().all(|(_, ts)| *ts >= req.from && *ts < req.to));
    assert_eq!(report.points_stored as usize + partial, rows.len());

    // A third run finds everything done and asks for nothing.
    let idle = FakeHistory::default();
    let server = serve(idle.clone()).await;
    let report = backfill(&common::client(&server, None), &db.store, &req).await.unwrap();
    assert_eq!((report.chunks_fetched, report.chunks_skipped), (0, 2 * per_coin));
    assert_eq!(idle.calls.load(Ordering::SeqCst), 0);
    let runs = db
        .client()
        .await
        .query("SELECT status FROM pipeline_runs WHERE function = 'backfill' ORDER BY started_at", &[])
        .await
        .unwrap();
    let statuses: Vec<String> = runs.iter().map(|r| r.get(0)).collect();
    assert_eq!(statuses, ["failed", "succeeded", "succeeded"]);
}

#[tokio::test]
async fn the_demo_plan_limit_is_reported_clearly_and_the_allowed_part_is_stored() {
    let db = TestDb::new().await;
    let req = request("solana", "2024-01-01T00:00:00Z", "2024-07-01T00:00:00Z");
    let limit = at("2024-03-15T00:00:00Z");
    let server = serve(FakeHistory { refuse_before: Some(limit), ..Default::default() }).await;

    let err = backfill(&common::client(&server, None), &db.store, &req).await.unwrap_err();

    assert!(matches!(err, IngestError::HistoryRefused { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("365 days") && msg.contains("COINGECKO_API_KEY"), "{msg}");
    let rows = history_rows(&db).await;
    assert!(!rows.is_empty(), "chunks after the limit are stored");
    let allowed = plan_chunks(req.from, req.to).into_iter().filter(|c| c.start >= limit).count();
    assert_eq!(db.count("backfill_chunks").await as usize, allowed);
    assert!(rows.iter().all(|(_, ts)| *ts >= limit));
    assert!(rows.iter().all(|(_, ts)| *ts < req.to && *ts - req.from < Duration::days(200)));
}
