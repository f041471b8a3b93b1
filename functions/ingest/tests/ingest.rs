//! The ingest function against the real local Postgres and S3 endpoint, with a
//! fake CoinGecko: happy path, retries, refusals, malformed bodies, re-runs.
#![allow(clippy::unwrap_used)] // tests panic on failure by design

mod common;

use std::time::{Duration, Instant};
use telemetry::failure::Classify;

use ingest::{Ingest, IngestError, IngestRequest};
use storage::{PgStore, S3Store};
use testkit::{TestBucket, TestDb};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

struct Harness {
    server: MockServer,
    db: TestDb,
    bucket: TestBucket,
}

impl Harness {
    async fn new() -> Self {
        Self { server: MockServer::start().await, db: TestDb::new().await, bucket: TestBucket::new().await }
    }

    fn ingest(&self, api_key: Option<&str>) -> Ingest<coingecko::Client, PgStore, S3Store> {
        Ingest {
            source: common::client(&self.server, api_key),
            store: self.db.store.clone(),
            objects: self.bucket.store.clone(),
            coins: common::coins(),
            vs_currency: common::usd(),
        }
    }

    async fn mount(&self, status: u16, body: &str, times: Option<u64>, extra: Option<(&str, &str)>) {
        let mut response = ResponseTemplate::new(status).set_body_string(body);
        if let Some((name, value)) = extra {
            response = response.insert_header(name, value);
        }
        let mock = Mock::given(method("GET")).and(path("/coins/markets")).respond_with(response);
        match times {
            Some(n) => mock.up_to_n_times(n).mount(&self.server).await,
            None => mock.mount(&self.server).await,
        }
    }

    async fn requests(&self) -> usize {
        self.server.received_requests().await.unwrap().len()
    }

    async fn last_run(&self) -> (String, Option<i64>, Option<i64>, Option<String>) {
        let row = self
            .db
            .client()
            .await
            .query_one(
                "SELECT status, rows_in, rows_out, error FROM pipeline_runs WHERE function = 'ingest'
                 ORDER BY started_at DESC LIMIT 1",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1), row.get(2), row.get(3))
    }

    async fn assert_nothing_written(&self) {
        assert_eq!(self.db.count("market_snapshots").await, 0, "no rows");
        assert!(self.bucket.keys().await.is_empty(), "no raw object");
    }
}

#[tokio::test]
async fn happy_path_stores_raw_body_and_rows_and_records_the_run() {
    let h = Harness::new().await;
    let body = common::markets_body();
    Mock::given(method("GET"))
        .and(path("/coins/markets"))
        .and(query_param("vs_currency", "usd"))
        .and(query_param("ids", "bitcoin,ethereum,solana,ripple,binancecoin"))
        .and(header("x-cg-demo-api-key", "CG-test-key"))
        .respond_with(ResponseTemplate::new(200).set_body_string(&body))
        .expect(1)
        .mount(&h.server)
        .await;

    let report = h.ingest(Some("CG-test-key")).run(IngestRequest::default()).await.unwrap();

    assert_eq!((report.rows_in, report.rows_out), (5, 5));
    assert!(report.missing.is_empty());
    assert_eq!(h.bucket.keys().await, vec![report.raw_key.clone()]);
    assert_eq!(h.bucket.get(&report.raw_key).await, body.as_bytes(), "raw object is the body as fetched");

    let rows =
        h.db.client()
            .await
            .query(
                "SELECT coin_id, current_price, max_supply, run_id FROM market_snapshots ORDER BY coin_id",
                &[],
            )
            .await
            .unwrap();
    let coins: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(coins, ["binancecoin", "bitcoin", "ethereum", "ripple", "solana"]);
    let items: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    for row in &rows {
        let coin: String = row.get(0);
        let item = items.iter().find(|i| i["id"] == coin.as_str()).unwrap();
        assert_eq!(row.get::<_, Option<f64>>(1), item["current_price"].as_f64(), "{coin} price");
        assert_eq!(
            row.get::<_, Option<f64>>(2),
            item["max_supply"].as_f64(),
            "{coin} max_supply (null kept)"
        );
        assert_eq!(row.get::<_, uuid::Uuid>(3), report.run_id);
    }
    assert_eq!(h.last_run().await, (String::from("succeeded"), Some(5), Some(5), None));
}

#[tokio::test]
async fn a_429_waits_for_retry_after_then_succeeds() {
    let h = Harness::new().await;
    // Rate-limit pages are often HTML, not JSON.
    h.mount(429, "<html><title>429 Too Many Requests</title></html>", Some(1), Some(("retry-after", "1")))
        .await;
    h.mount(200, &common::markets_body(), None, None).await;

    let started = Instant::now();
    let report = h.ingest(None).run(IngestRequest::default()).await.unwrap();

    assert!(started.elapsed() >= Duration::from_secs(1), "waited for Retry-After: {:?}", started.elapsed());
    assert_eq!(h.requests().await, 2);
    assert_eq!(report.rows_out, 5);
    assert_eq!(h.db.count("market_snapshots").await, 5);
}

#[tokio::test]
async fn two_server_errors_then_success() {
    let h = Harness::new().await;
    h.mount(500, r#"{"error":"internal"}"#, Some(2), None).await;
    h.mount(200, &common::markets_body(), None, None).await;

    let report = h.ingest(None).run(IngestRequest::default()).await.unwrap();

    assert_eq!(h.requests().await, 3);
    assert_eq!(report.rows_out, 5);
    assert_eq!(h.bucket.keys().await.len(), 1);
}

#[tokio::test]
async fn server_errors_past_the_retry_budget_fail_retryably_and_write_nothing() {
    let h = Harness::new().await;
    h.mount(503, "Service Unavailable", None, None).await;

    let err = h.ingest(None).run(IngestRequest::default()).await.unwrap_err();

    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains("after 4 attempts"), "{err}");
    assert_eq!(h.requests().await, 4, "first try + COINGECKO_MAX_RETRIES (3)");
    h.assert_nothing_written().await;
    assert_eq!(h.last_run().await.0, "failed");
}

#[tokio::test]
async fn an_html_error_page_fails_fast_with_a_clear_message() {
    let h = Harness::new().await;
    let page = "<!DOCTYPE html><html><head><title>Attention Required! | Cloudflare</title></head><body>blocked</body></html>";
    h.mount(403, page, None, None).await;

    let err = h.ingest(None).run(IngestRequest::default()).await.unwrap_err();

    let msg = err.to_string();
    assert!(msg.contains("HTTP 403") && msg.contains("Attention Required! | Cloudflare"), "{msg}");
    assert!(!err.is_retryable());
    assert_eq!(h.requests().await, 1, "a 4xx is not retried");
    h.assert_nothing_written().await;
    let (status, _, _, error) = h.last_run().await;
    assert_eq!(status, "failed");
    assert!(error.unwrap().contains("HTTP 403"));
}

#[tokio::test]
async fn an_api_refusal_carries_the_apis_own_message() {
    let h = Harness::new().await;
    h.mount(401, r#"{"status":{"error_code":10002,"error_message":"API Key Missing"}}"#, None, None).await;

    let err = h.ingest(None).run(IngestRequest::default()).await.unwrap_err();

    assert!(matches!(
        err,
        IngestError::Source(coingecko::CoinGeckoError::Api { status: 401, code: Some(10002), .. })
    ));
    assert!(err.to_string().contains("API Key Missing"), "{err}");
    assert_eq!(h.requests().await, 1);
    h.assert_nothing_written().await;
}

#[tokio::test]
async fn truncated_json_writes_nothing_anywhere() {
    let h = Harness::new().await;
    let body = common::markets_body();
    h.mount(200, &body[..body.len() / 2], None, None).await;

    let err = h.ingest(None).run(IngestRequest::default()).await.unwrap_err();

    assert!(err.to_string().contains("does not parse"), "{err}");
    assert!(!err.is_retryable());
    h.assert_nothing_written().await;
    assert_eq!(h.last_run().await.0, "failed");
}

#[tokio::test]
async fn ingesting_the_same_response_twice_adds_no_rows() {
    let h = Harness::new().await;
    h.mount(200, &common::markets_body(), None, None).await;
    let job = h.ingest(None);

    let first = job.run(IngestRequest::default()).await.unwrap();
    let second = job.run(IngestRequest::default()).await.unwrap();

    assert_eq!((first.rows_out, second.rows_out), (5, 0));
    assert_eq!(h.db.count("market_snapshots").await, 5);
    // The raw zone is the audit log of fetches: one object per run, same bytes.
    let keys = h.bucket.keys().await;
    assert_eq!(keys.len(), 2);
    assert_eq!(h.bucket.get(&keys[0]).await, h.bucket.get(&keys[1]).await);
    assert_eq!(h.db.count("pipeline_runs").await, 2);
}

#[tokio::test]
async fn unknown_coins_are_reported_missing_not_failed() {
    let h = Harness::new().await;
    h.mount(200, &common::markets_body(), None, None).await;
    let request = IngestRequest {
        coins: Some(domain::CoinId::parse_list("bitcoin,no-such-coin").unwrap()),
        vs_currency: None,
    };

    let report = h.ingest(None).run(request).await.unwrap();

    assert_eq!(report.missing, domain::CoinId::parse_list("no-such-coin").unwrap());
}
