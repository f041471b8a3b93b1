#![allow(clippy::unwrap_used)]
//! The generated site in a real browser: Debian's headless Chromium, driven by
//! playwright-core (site-gen/web/check-pages.mjs), loads the pages from the
//! same local file server as `just serve`, on a desktop and on a phone-sized
//! screen in dark mode. No console error, no failed request, charts drawn, no
//! sideways scrolling, no hourly data file on a coin page's first view but its
//! hours loaded on zoom; the screenshots are kept in .state/artefacts/screenshots
//! (or $ARTEFACTS_DIR).

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::{populated, to_dir};

/// `python3 -m http.server` on 127.0.0.1 and a free port, killed when dropped.
struct FileServer {
    child: Child,
    url: String,
}

impl FileServer {
    fn start(dir: &Path) -> Self {
        let mut child = Command::new("python3")
            .args(["-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory"])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs the local file server (as `just serve` does)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        // "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
        let url = line.split('(').nth(1).and_then(|s| s.split(')').next()).unwrap_or_default().to_owned();
        assert!(url.starts_with("http://127.0.0.1:"), "unexpected file server banner: {line:?}");
        Self { child, url }
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn artefacts() -> PathBuf {
    std::env::var_os("ARTEFACTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.state/artefacts"))
        .join("screenshots")
}

#[tokio::test(flavor = "multi_thread")]
async fn overview_and_coin_pages_load_cleanly_with_their_charts_drawn() {
    let db = populated(24 * 90).await;
    let (site, dir) = to_dir(&db).await;
    site.run().await.unwrap();
    let server = FileServer::start(&dir.0);

    let pages = ["index.html", "coins/bitcoin.html", "coins/ripple.html", "alerts.html", "runs.html"];
    let out = artefacts();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("web/check-pages.mjs");
    let output = Command::new("node")
        .arg(&script)
        .args(["--base", &server.url, "--out"])
        .arg(&out)
        .args(pages)
        .output()
        .expect("node runs the browser check (install Node.js; scripts/bootstrap.sh installs chromium)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "browser check failed to run: {stderr}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("browser check printed no report ({e}): {stderr}"));
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), pages.len() * 2, "every page on desktop and phone");

    for r in results {
        let (page, viewport) = (r["page"].as_str().unwrap(), r["viewport"].as_str().unwrap());
        let at = format!("{page} on {viewport}");
        assert_eq!(r["status"], 200, "{at}");
        assert_eq!(r["errors"].as_array().unwrap().len(), 0, "{at}: {}", r["errors"]);
        assert!(r["overflow"].as_i64().unwrap() <= 1, "{at} scrolls sideways by {}px", r["overflow"]);
        assert!(Path::new(r["screenshot"].as_str().unwrap()).is_file(), "{at}: screenshot kept");
        let drawn = |tag: &str, id: &str| {
            r["charts"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["tag"] == tag && (id.is_empty() || c["id"] == id))
                .filter(|c| c["width"].as_i64().unwrap() > 0 && c["height"].as_i64().unwrap() > 0)
                .count()
        };
        if page == "index.html" {
            assert!(drawn("svg", "") >= 5, "{at}: a sparkline per coin: {}", r["charts"]);
        }
        if page.starts_with("coins/") {
            for chart in ["price-chart", "volume-chart", "rank-chart"] {
                assert!(drawn("canvas", chart) >= 1, "{at}: {chart} drawn: {}", r["charts"]);
            }
            // Ninety days of history: the first view is the page alone (and the shared assets);
            // zooming into the older sixty days loads their hours.
            let first = &r["firstView"];
            let resources = first["resources"].as_array().unwrap();
            assert!(
                resources.iter().all(|f| f["path"].as_str().unwrap().contains("/assets/")),
                "{at}: the first view loads only the page and its assets: {first}"
            );
            let zoom = &r["zoom"];
            let id = page.trim_start_matches("coins/").trim_end_matches(".html");
            let file = format!("/data/coins/{id}.hourly.json");
            assert_eq!(zoom["state"], "loaded", "{at}: hours loaded on zoom: {zoom}");
            assert_eq!(zoom["fetched"], serde_json::json!([{ "path": file, "status": 200 }]), "{at}");
            eprintln!(
                "{at}: first view {} B of HTML ({} B with assets), {} B of hourly data on zoom",
                first["html"],
                first["html"].as_i64().unwrap()
                    + resources.iter().map(|f| f["bytes"].as_i64().unwrap()).sum::<i64>(),
                zoom["bytes"]
            );
        }
    }
    eprintln!("screenshots ({}) in {}", report["chromium"], out.display());
}
