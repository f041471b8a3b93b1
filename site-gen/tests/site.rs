#![allow(clippy::unwrap_used)]
//! The site generator on the real local Postgres and S3 endpoint: an empty
//! database, real data, only-changed uploads, and the S3 website endpoint
//! serving what was published with the right headers.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{COINS, TempDir, options, populated, to_dir};
use site_gen::{Output, S3SiteStore, SiteFile, SiteGen, SiteStore};
use testkit::{TcpGate, TestBucket, TestDb};

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_database_gives_a_site_that_says_no_data_yet() {
    let db = TestDb::new().await;
    let (site, dir) = to_dir(&db).await;
    let report = site.run().await.unwrap();
    assert!(dir.read("index.html").contains("No data yet."));
    assert!(dir.read("coins/bitcoin.html").contains("No data yet for bitcoin"));
    let row = db
        .client()
        .await
        .query_one("SELECT status, rows_out FROM pipeline_runs WHERE run_id = $1", &[&report.run_id])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "succeeded");
    assert_eq!(row.get::<_, i64>(1), report.files as i64);
}

#[tokio::test(flavor = "multi_thread")]
async fn real_data_fills_every_page_and_a_rerun_rewrites_only_pages() {
    let db = populated(24 * 40).await;
    let (site, dir) = to_dir(&db).await;
    let first = site.run().await.unwrap();
    assert_eq!(first.published.uploaded, first.files);
    assert!(first.rows_read >= 5 * 24 * 40, "{first:?}");

    let index = dir.read("index.html");
    for name in ["Bitcoin", "Ethereum", "Solana", "XRP", "BNB"] {
        assert!(index.contains(name), "{name} on the overview");
    }
    assert!(!index.contains("No data yet."));
    assert_eq!(index.matches("<polyline").count(), 5, "a sparkline per coin");
    // The newest observation is the last candle's close.
    let client = db.client().await;
    let close: f64 = client
        .query_one(
            "SELECT price FROM price_ticks WHERE coin_id = 'bitcoin' ORDER BY event_time DESC LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(index.contains(&site_gen::format::price(close, "usd")), "latest bitcoin price {close}");
    let hours: i64 = client
        .query_one("SELECT count(*) FROM price_hourly WHERE coin_id = 'solana'", &[])
        .await
        .unwrap()
        .get(0);
    let solana = dir.read("coins/solana.html");
    assert!(solana.contains(&format!("{hours} hours,")), "the coin page covers every hour");
    // Forty days: the page holds the last thirty by the hour, its data file every hour.
    assert!(solana.contains("data-hourly=\"..&#x2F;data&#x2F;coins&#x2F;solana.hourly.json\""));
    let file: serde_json::Value = serde_json::from_str(&dir.read("data/coins/solana.hourly.json")).unwrap();
    assert_eq!(file["t"].as_array().unwrap().len() as i64, hours, "every hour in the data file");
    let alerts: i64 = client
        .query_one("SELECT count(*) FROM price_alerts WHERE coin_id = ANY($1)", &[&options().coins])
        .await
        .unwrap()
        .get(0);
    assert!(alerts > 0, "forty days of real candles hold alerts");
    let page = dir.read("alerts.html");
    assert!(page.contains(&format!("{} in all", site_gen::format::count(alerts))), "{alerts} alerts");
    assert!(dir.read("runs.html").contains("transform"));
    assert!(dir.read("quality.html").contains("succeeded"));

    // No new data: the assets stay; the runs page changes (it lists the first
    // site-gen run), and other pages only if the clock moved to another second.
    let again = site.run().await.unwrap();
    let assets = std::fs::read_dir(dir.0.join("assets")).unwrap().count();
    assert!(again.published.unchanged >= assets, "{again:?}");
    assert!(again.published.uploaded >= 1, "{again:?}");
    assert_eq!(again.published.uploaded + again.published.unchanged, again.files);
    assert_eq!(again.published.deleted, 0);
    assert!(dir.read("runs.html").contains("site-gen"));

    // A coin no longer followed loses its page, its alerts feed and its hourly data.
    let mut fewer = options();
    fewer.coins.retain(|c| c != "ripple");
    let site = SiteGen::new(db.store.clone(), fewer, Output::Dir(dir.0.clone()), None).await;
    let third = site.run().await.unwrap();
    assert_eq!(third.published.deleted, 3);
    assert!(!dir.0.join("coins/ripple.html").exists());
    assert!(!dir.0.join("coins/ripple.xml").exists());
    assert!(!dir.0.join("data/coins/ripple.hourly.json").exists());
}

/// `http://BUCKET.s3-website.localhost` on the local endpoint's port: LocalStack
/// picks the website of the bucket the Host header names.
async fn website_get(bucket: &str, path: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}/{path}", testkit::s3_endpoint()))
        .header(reqwest::header::HOST, format!("{bucket}.s3-website.localhost"))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_s3_website_serves_the_published_site_with_its_headers() {
    // Thirty-five days: the coin pages have hourly data files.
    let db = populated(24 * 35).await;
    let bucket = TestBucket::new().await;
    let client = bucket.store.client().clone();
    let website = aws_sdk_s3::types::WebsiteConfiguration::builder()
        .index_document(aws_sdk_s3::types::IndexDocument::builder().suffix("index.html").build().unwrap())
        .error_document(aws_sdk_s3::types::ErrorDocument::builder().key("404.html").build().unwrap())
        .build();
    client.put_bucket_website().bucket(bucket.name()).website_configuration(website).send().await.unwrap();

    let output = Output::parse(&format!("s3://{}", bucket.name())).unwrap();
    let site = SiteGen::new(db.store.clone(), options(), output, Some(client.clone())).await;
    let first = site.run().await.unwrap();
    assert_eq!(first.published.uploaded, first.files);
    assert_eq!(bucket.keys().await.len(), first.files);

    let index = website_get(bucket.name(), "").await;
    assert_eq!(index.status(), 200);
    assert_eq!(index.headers()["content-type"], "text/html; charset=utf-8");
    let html = index.text().await.unwrap();
    assert!(html.contains("Bitcoin"));

    let (_, built) = site.build().await.unwrap();
    for (ext, content_type) in [("js", "text/javascript; charset=utf-8"), ("css", "text/css; charset=utf-8")]
    {
        for asset in built.files.iter().filter(|f| f.path.starts_with("assets/") && f.path.ends_with(ext)) {
            let response = website_get(bucket.name(), &asset.path).await;
            assert_eq!(response.status(), 200, "{}", asset.path);
            assert_eq!(response.headers()["content-type"], content_type, "{}", asset.path);
            assert_eq!(response.bytes().await.unwrap(), asset.body, "{}", asset.path);
        }
    }
    // LocalStack's website endpoint leaves Cache-Control out (AWS's sends the
    // object's); the object itself must carry it.
    for (key, cache) in [
        ("index.html", "no-cache"),
        ("data/coins/bitcoin.hourly.json", "no-cache"),
        (built.files[0].path.as_str(), "public, max-age=31536000, immutable"),
    ] {
        let head = client.head_object().bucket(bucket.name()).key(key).send().await.unwrap();
        assert_eq!(head.cache_control(), Some(cache), "{key}");
    }
    let coin = website_get(bucket.name(), "coins/bitcoin.html").await;
    assert_eq!(coin.status(), 200);
    assert!(coin.text().await.unwrap().contains("data-chart="));
    let hourly = website_get(bucket.name(), "data/coins/bitcoin.hourly.json").await;
    assert_eq!(hourly.status(), 200);
    assert_eq!(hourly.headers()["content-type"], "application/json");
    let file: serde_json::Value = hourly.json().await.unwrap();
    let hours: i64 = db
        .client()
        .await
        .query_one("SELECT count(*) FROM price_hourly WHERE coin_id = 'bitcoin'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(file["t"].as_array().unwrap().len() as i64, hours);
    // The alerts feed, as a feed reader fetches it.
    let feed = website_get(bucket.name(), "alerts.xml").await;
    assert_eq!(feed.status(), 200);
    assert_eq!(feed.headers()["content-type"], "application/atom+xml; charset=utf-8");
    assert!(feed.text().await.unwrap().contains(r#"<feed xmlns="http://www.w3.org/2005/Atom">"#));
    let missing = website_get(bucket.name(), "no/such/page.html").await;
    assert_eq!(missing.status(), 404);
    assert!(missing.text().await.unwrap().contains("There is no such page"), "the error document");

    // Only what changed goes up again: every asset is still there, byte for byte.
    let again = site.run().await.unwrap();
    assert!(
        again.published.unchanged >= built.files.iter().filter(|f| f.path.starts_with("assets/")).count()
    );
    assert_eq!(again.published.uploaded + again.published.unchanged, again.files);
    assert_eq!(bucket.keys().await.len(), again.files);
    // A page and an alerts feed per coin.
    assert_eq!(2 * COINS.len(), bucket.keys().await.iter().filter(|k| k.starts_with("coins/")).count());
}

/// Cuts the S3 endpoint off before the `after`-th upload, then passes calls on.
struct CutAfter<'a> {
    inner: S3SiteStore,
    gate: &'a TcpGate,
    puts: AtomicUsize,
    after: usize,
}

impl SiteStore for CutAfter<'_> {
    async fn list(&self) -> Result<HashMap<String, Option<String>>, site_gen::SiteError> {
        self.inner.list().await
    }
    async fn put(&self, file: &SiteFile) -> Result<(), site_gen::SiteError> {
        if self.puts.fetch_add(1, Ordering::SeqCst) == self.after {
            self.gate.cut();
        }
        self.inner.put(file).await
    }
    async fn delete(&self, paths: &[String]) -> Result<(), site_gen::SiteError> {
        self.inner.delete(paths).await
    }
}

/// The site's own files a page names (in any attribute: `href`, `src`, `data-*`),
/// as paths from the site's root.
fn references(page: &str, html: &str, site: &HashSet<&str>) -> Vec<String> {
    let base = page.rsplit_once('/').map_or("", |(dir, _)| dir);
    html.split('"')
        .skip(1)
        .step_by(2)
        .map(|v| v.replace("&#x2F;", "/"))
        .filter_map(|v| {
            let mut parts: Vec<&str> = if base.is_empty() { vec![] } else { base.split('/').collect() };
            for segment in v.split(['#', '?']).next()?.split('/') {
                match segment {
                    ".." => {
                        parts.pop()?;
                    }
                    "." | "" => {}
                    s => parts.push(s),
                }
            }
            let path = parts.join("/");
            site.contains(path.as_str()).then_some(path)
        })
        .collect()
}

/// S3 going away mid-publish. It is cut at the TCP level (`TcpGate`), which
/// is what the uploader sees when LocalStack stops, without losing what the
/// bucket holds (LocalStack runs without persistence here). Wherever the cut
/// falls (among the assets, among the pages), the publish fails with an
/// error, no page already uploaded names a file that is not, and the next
/// publish completes the site.
#[tokio::test(flavor = "multi_thread")]
async fn s3_going_away_mid_publish_leaves_no_page_naming_a_missing_file() {
    let db = populated(24 * 35).await;
    let (generator, _dir) = to_dir(&db).await;
    let (_, site) = generator.build().await.unwrap();
    let all: HashSet<&str> = site.files.iter().map(|f| f.path.as_str()).collect();
    let assets = site.files.iter().filter(|f| f.path.starts_with("assets/")).count();
    let endpoint = url::Url::parse(&testkit::s3_endpoint()).unwrap();
    let target = endpoint.socket_addrs(|| None).unwrap()[0];

    let mut checked = 0;
    for after in [0, assets / 2, assets, assets + 3, site.files.len() - 1] {
        let bucket = TestBucket::new().await;
        let gate = TcpGate::new(target).await;
        let client = testkit::s3_client_at(&format!("http://127.0.0.1:{}", gate.port())).await;
        let store = CutAfter {
            inner: S3SiteStore::new(client.clone(), bucket.name(), ""),
            gate: &gate,
            puts: AtomicUsize::new(0),
            after,
        };
        let err = site_gen::publish(&site, &store).await.unwrap_err();
        assert!(err.to_string().contains(bucket.name()), "the error names the bucket: {err}");

        let uploaded = bucket.keys().await;
        assert!(uploaded.len() < site.files.len(), "cut after {after}: not everything went up");
        let present: HashSet<&str> = uploaded.iter().map(String::as_str).collect();
        for page in uploaded.iter().filter(|k| k.ends_with(".html")) {
            let html = String::from_utf8(bucket.get(page).await).unwrap();
            // Links to other pages are navigation (the overview goes up last, on
            // purpose); what a page needs to render are its assets and data files.
            for file in references(page, &html, &all).into_iter().filter(|f| !f.ends_with(".html")) {
                checked += 1;
                assert!(
                    present.contains(file.as_str()),
                    "cut after {after}: {page} names {file}, not uploaded"
                );
            }
        }

        gate.restore();
        let done = site_gen::publish(&site, &S3SiteStore::new(client, bucket.name(), "")).await.unwrap();
        assert_eq!(done.uploaded + done.unchanged, site.files.len());
        assert_eq!(
            bucket.keys().await.len(),
            site.files.len(),
            "cut after {after}: the next publish completes"
        );
    }
    assert!(checked > 20, "uploaded pages named {checked} assets and data files: the check saw them");
}

#[test]
fn outputs_parse() {
    assert_eq!(
        Output::parse("s3://crypto-dashboard/site/").unwrap(),
        Output::S3 { bucket: "crypto-dashboard".into(), prefix: "site/".into() }
    );
    assert_eq!(
        Output::parse("s3://crypto-dashboard").unwrap(),
        Output::S3 { bucket: "crypto-dashboard".into(), prefix: String::new() }
    );
    assert_eq!(Output::parse(".state/site").unwrap(), Output::Dir(".state/site".into()));
    assert!(Output::parse("s3://").is_err());
    assert!(Output::parse("https://example.com/site").is_err());
    let _ = TempDir::new();
}
