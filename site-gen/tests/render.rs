#![allow(clippy::unwrap_used)]
//! Rendering on fixed data: snapshots of every page (reviewed, in
//! tests/snapshots), hostile text escaped everywhere, an empty site that says so.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use domain::TickSource;
use site_gen::model::AlertKey;
use site_gen::model::{
    Alert, Coin, DailyRank, DailyVolume, Delivery, Freshness, Hourly, LiveBar, Observation, QualityRun, Run,
    SiteData,
};
use site_gen::render;

const HOSTILE: &str = "<script>alert(1)</script>";

fn at(h: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).unwrap() + Duration::hours(h)
}

fn hourly(hours: i64, base: f64, step: f64) -> Vec<Hourly> {
    (0..hours)
        .map(|h| {
            let close = base + step * h as f64 + if h % 5 == 0 { step * 3.0 } else { 0.0 };
            Hourly {
                hour: at(h),
                open: close - step,
                high: close + step,
                low: close - 2.0 * step,
                close,
                avg: close,
            }
        })
        .collect()
}

fn alert(coin: &str, h: i64, change: f64, before: f64) -> Alert {
    Alert {
        coin_id: coin.to_owned(),
        at: at(h),
        window_secs: 3600,
        change_pct: change * 100.0,
        direction: if change > 0.0 { "up" } else { "down" }.to_owned(),
        price_before: before,
        price_after: before * (1.0 + change),
        rule: "default".into(),
    }
}

/// A notification of `alert` on `channel`.
fn delivery(alert: &Alert, channel: &str, state: &str, attempts: i32, error: Option<&str>) -> Delivery {
    Delivery {
        key: AlertKey {
            coin_id: alert.coin_id.clone(),
            at: alert.at,
            window_secs: alert.window_secs,
            rule: alert.rule.clone(),
        },
        channel: channel.into(),
        state: state.into(),
        attempts,
        last_error: error.map(str::to_owned),
        sent_at: (state == "sent").then_some(alert.at + Duration::minutes(1)),
        suppressed: (state == "sent").then_some(2),
        updated_at: alert.at + Duration::minutes(1),
    }
}

/// Two coins over 48 hours, one of them named by an attacker; runs, quality, freshness.
fn fixed() -> SiteData {
    let day = |d: u32| NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
    let generated_at = at(48) + Duration::minutes(3);
    let btc_alerts = vec![alert("bitcoin", 10, 0.061, 90_000.0), alert("bitcoin", 30, -0.072, 91_000.0)];
    let bitcoin = Coin {
        id: "bitcoin".into(),
        name: Some("Bitcoin".into()),
        symbol: Some("btc".into()),
        latest: Some(Observation { price: 91_234.567_8, at: generated_at - Duration::seconds(5) }),
        hourly: hourly(48, 90_000.0, 25.0),
        volume: vec![
            DailyVolume { day: day(20), volume: 31_240_000_000.0, method: "interval_sum".into() },
            DailyVolume { day: day(21), volume: 29_870_000_000.0, method: "interval_sum".into() },
        ],
        ranks: vec![
            DailyRank { day: day(20), rank: 1, performance: 0.021 },
            DailyRank { day: day(21), rank: 2, performance: -0.004 },
        ],
        alerts: btc_alerts.clone(),
        sample: None,
        live: vec![
            LiveBar {
                source: TickSource::Binance,
                end: generated_at - Duration::seconds(10),
                interval_secs: 5,
                price: 91_240.12,
                vwap: Some(91_238.5),
                volume: Some(1.234_567_89),
                trades: Some(1_342),
            },
            LiveBar {
                source: TickSource::Coinbase,
                end: generated_at - Duration::minutes(1),
                interval_secs: 60,
                price: 91_251.0,
                vwap: None,
                volume: Some(3.5),
                trades: None,
            },
        ],
    };
    let hostile_alerts = vec![alert("evil-coin", 20, 0.25, 0.5)];
    let hostile = Coin {
        id: "evil-coin".into(),
        name: Some(HOSTILE.into()),
        symbol: Some("\"><img src=x onerror=alert(2)>".into()),
        latest: Some(Observation { price: 0.62347, at: generated_at - Duration::minutes(40) }),
        hourly: hourly(30, 0.5, 0.001),
        volume: vec![DailyVolume { day: day(21), volume: 512_300_000.0, method: "rolling_24h".into() }],
        ranks: vec![
            DailyRank { day: day(20), rank: 2, performance: -0.01 },
            DailyRank { day: day(21), rank: 1, performance: 0.03 },
        ],
        alerts: hostile_alerts.clone(),
        sample: None,
        live: Vec::new(),
    };
    let deliveries = vec![
        delivery(&btc_alerts[1], "sns", "sent", 1, None),
        delivery(&btc_alerts[1], "webhook:team", "sent", 3, Some("HTTP 500: busy")),
        delivery(&hostile_alerts[0], "sns", "suppressed", 0, None),
        delivery(&hostile_alerts[0], "webhook:team", "failed", 5, Some(&format!("HTTP 400: {HOSTILE}"))),
    ];
    let failed_deliveries = vec![deliveries[3].clone()];
    let mut alerts: Vec<Alert> = btc_alerts.into_iter().chain(hostile_alerts).collect();
    alerts.sort_by_key(|a| std::cmp::Reverse(a.at));
    let run = |function: &str, h: i64, ms: i64, status: &str, error: Option<&str>| Run {
        function: function.into(),
        started_at: at(h),
        finished_at: Some(at(h) + Duration::milliseconds(ms)),
        status: status.into(),
        rows_in: Some(5),
        rows_out: Some(if status == "failed" { 0 } else { 5 }),
        error: error.map(str::to_owned),
        details: serde_json::Value::Null,
    };
    SiteData {
        generated_at,
        vs_currency: "usd".into(),
        alerts_total: alerts.len() as i64,
        alerts,
        coins: vec![bitcoin, hostile],
        quality: vec![QualityRun {
            run_id: uuid::Uuid::from_u128(7),
            started_at: at(47),
            status: "succeeded".into(),
            rows_in: Some(1200),
            dropped: BTreeMap::from([("aberrant_price".into(), 3), ("duplicate".into(), 12)]),
        }],
        runs: vec![
            run("ingest", 47, 850, "succeeded", None),
            run("ingest", 46, 15_200, "failed", Some(&format!("CoinGecko said {HOSTILE}"))),
            run("transform", 47, 1_240, "succeeded", None),
            Run {
                details: serde_json::json!({ "form": "websocket", "exchanges": { "binance": {
                    "reconnects": 2, "stalls": 1, "late_trades": 3,
                    "gaps": { "BTCUSDT": { "gaps": 1, "missed_trades": 7 }, "ETHUSDT": { "gaps": 2, "missed_trades": 3 } }
                }}}),
                ..run("feed", 47, 300_000, "succeeded", None)
            },
        ],
        freshness: vec![
            Freshness {
                source: "batch".into(),
                last: Some(generated_at - Duration::minutes(40)),
                stale_after_secs: Some(1500),
            },
            Freshness {
                source: "stream".into(),
                last: Some(generated_at - Duration::seconds(5)),
                stale_after_secs: Some(60),
            },
            Freshness {
                source: "binance".into(),
                last: Some(generated_at - Duration::seconds(8)),
                stale_after_secs: Some(60),
            },
            Freshness { source: "history".into(), last: None, stale_after_secs: None },
            Freshness {
                source: "transform".into(),
                last: Some(generated_at - Duration::minutes(3)),
                stale_after_secs: Some(1500),
            },
        ],
        deliveries: deliveries.into_iter().fold(BTreeMap::new(), |mut by_alert, d| {
            by_alert.entry(d.key.clone()).or_insert_with(Vec::new).push(d);
            by_alert
        }),
        failed_deliveries,
    }
}

fn pages(site: &site_gen::Site) -> Vec<(&str, &str)> {
    site.files
        .iter()
        .filter(|f| f.path.ends_with(".html"))
        .map(|f| (f.path.as_str(), std::str::from_utf8(&f.body).unwrap()))
        .collect()
}

#[test]
fn pages_match_their_reviewed_snapshots() {
    let site = render(&fixed()).unwrap();
    let paths: Vec<&str> = site.files.iter().map(|f| f.path.as_str()).collect();
    insta::assert_debug_snapshot!("files", paths);
    for (path, html) in pages(&site) {
        insta::assert_snapshot!(path.replace('/', "_"), html);
    }
}

#[test]
fn the_overview_shows_each_coin_and_flags_the_stale_batch() {
    let site = render(&fixed()).unwrap();
    let index = site.page("index.html").unwrap();
    assert!(index.contains("$91,234.57"), "latest price");
    assert!(index.contains("$0.6235"), "sub-dollar price with four significant digits");
    assert!(index.contains("$29.87B"), "latest daily volume");
    assert!(index.contains("#2"), "rank");
    assert!(index.contains("<polyline points=\""), "sparkline");
    // Batch data is 40 min old against a 25 min limit: stale; the 5 s old stream is not.
    assert!(index.contains(r#"<li class="fresh stale" data-source="batch""#), "{index}");
    assert!(index.contains(r#"<li class="fresh" data-source="stream""#), "{index}");
    assert!(!index.contains("No data yet."));
}

#[test]
fn coin_pages_list_the_exchanges_bars_and_the_runs_page_the_feeds_figures() {
    let site = render(&fixed()).unwrap();
    let btc = site.page("coins/bitcoin.html").unwrap();
    assert!(
        btc.contains("<caption>Binance, USDT</caption>") && btc.contains("<caption>Coinbase, USD</caption>"),
        "{btc}"
    );
    assert!(btc.contains("91,240.12 USDT") && btc.contains("91,238.50 USDT") && btc.contains("1,342"));
    assert!(btc.contains("$91,251.00") && btc.contains("<td>1 min</td>") && btc.contains("<td>5 s</td>"));
    assert!(!site.page("coins/evil-coin.html").unwrap().contains("Live bars"), "no bars, no section");
    let runs = site.page("runs.html").unwrap();
    assert!(
        runs.contains("binance: 2 reconnects, 1 stalls, 3 gaps (10 trades missed), 3 late trades"),
        "{runs}"
    );
    let index = site.page("index.html").unwrap();
    assert!(index.contains("Live: Binance trades (USDT)"));
}

/// The Atom elements RFC 4287 requires of a feed and of each entry, checked
/// on a parsed document; returns the entries' titles.
fn atom_titles(xml: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("not XML: {e}\n{xml}"));
    let feed = doc.root_element();
    let atom = "http://www.w3.org/2005/Atom";
    assert_eq!((feed.tag_name().namespace(), feed.tag_name().name()), (Some(atom), "feed"));
    fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
        node.children().find(|c| {
            c.is_element()
                && c.tag_name().name() == name
                && c.tag_name().namespace() == Some("http://www.w3.org/2005/Atom")
        })
    }
    let text = |node: roxmltree::Node, name: &str| {
        child(node, name).and_then(|c| c.text()).unwrap_or_default().to_owned()
    };
    for name in ["id", "title", "updated"] {
        assert!(!text(feed, name).is_empty(), "feed without {name}");
    }
    // atom:updated is an RFC 3339 date-time.
    assert!(DateTime::parse_from_rfc3339(&text(feed, "updated")).is_ok());
    // An author on the feed stands for every entry's.
    assert!(child(feed, "author").and_then(|a| child(a, "name")).is_some(), "feed without author");
    let self_link =
        feed.children().any(|c| c.tag_name().name() == "link" && c.attribute("rel") == Some("self"));
    assert!(self_link, "feed without a self link");
    let mut ids = std::collections::HashSet::new();
    feed.children()
        .filter(|c| c.tag_name().name() == "entry")
        .map(|entry| {
            for name in ["id", "title", "updated"] {
                assert!(!text(entry, name).is_empty(), "entry without {name}");
            }
            assert!(DateTime::parse_from_rfc3339(&text(entry, "updated")).is_ok());
            assert!(ids.insert(text(entry, "id")), "two entries with one id");
            assert!(child(entry, "link").and_then(|l| l.attribute("href")).is_some(), "entry without a link");
            text(entry, "title")
        })
        .collect()
}

#[test]
fn alerts_have_atom_feeds_valid_per_rfc_4287_with_names_escaped() {
    let site = render(&fixed()).unwrap();
    let all = site.get("alerts.xml").unwrap();
    assert_eq!(all.content_type, "application/atom+xml; charset=utf-8");
    let xml = std::str::from_utf8(&all.body).unwrap();
    let titles = atom_titles(xml);
    // Newest first, every coin.
    assert_eq!(
        titles,
        [
            "Bitcoin: -7.20% in 1 h".to_owned(),
            format!("{HOSTILE}: +25.00% in 1 h"),
            "Bitcoin: +6.10% in 1 h".to_owned(),
        ]
    );
    // The hostile name is text after parsing, never markup in the file.
    assert!(!xml.contains(HOSTILE), "{xml}");
    assert!(xml.contains("&lt;script&gt;"));
    let btc = atom_titles(site.page("coins/bitcoin.xml").unwrap());
    assert_eq!(btc, ["Bitcoin: -7.20% in 1 h", "Bitcoin: +6.10% in 1 h"]);
    let evil = site.page("coins/evil-coin.xml").unwrap();
    assert_eq!(atom_titles(evil), [format!("{HOSTILE}: +25.00% in 1 h")]);
    assert!(evil.contains("<link rel=\"alternate\" type=\"text/html\" href=\"evil-coin.html\"/>"));
    // Pages point feed readers at them.
    assert!(site.page("alerts.html").unwrap().contains(r#"href="alerts.xml""#));
    assert!(site.page("coins/bitcoin.html").unwrap().contains(r#"href="bitcoin.xml""#));
}

#[test]
fn hostile_text_is_escaped_on_every_page() {
    let site = render(&fixed()).unwrap();
    for (path, html) in pages(&site) {
        assert!(!html.contains(HOSTILE), "{path} contains the raw script tag");
        assert!(!html.contains("<img src=x"), "{path} contains a raw img tag");
        // Only our own scripts, all loaded from files (the page's CSP forbids inline ones).
        let scripts = html.matches("<script").count();
        let own = html.matches("<script defer src=\"").count();
        assert_eq!(scripts, own, "{path} has an inline or foreign script");
    }
    let overview = site.page("index.html").unwrap();
    assert!(overview.contains("&lt;script&gt;alert(1)&lt;&#x2F;script&gt;"), "the name shows as text");
    let runs = site.page("runs.html").unwrap();
    assert!(runs.contains("CoinGecko said &lt;script&gt;"), "errors show as text");
    assert!(runs.contains("HTTP 400: &lt;script&gt;"), "a failed notification's error shows as text");
    // The chart data of the coin page sits in an attribute, quotes escaped.
    let coin = site.page("coins/evil-coin.html").unwrap();
    assert!(coin.contains("data-chart=\"{&quot;alerts&quot;:"), "{}", &coin[..coin.len().min(400)]);
}

#[test]
fn sample_history_is_labelled_on_every_page_and_real_history_is_not() {
    let real = render(&fixed()).unwrap();
    for (path, html) in pages(&real) {
        assert!(!html.contains("sample-banner"), "{path} labels real history as a sample");
    }
    let mut data = fixed();
    let day = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&chrono::Utc);
    let shift = Duration::days(900);
    data.coins[0].sample = Some(site_gen::model::Sample {
        original_from: day("2020-10-23T08:00:00Z"),
        original_to: day("2024-06-16T12:00:00Z"),
        shift_secs: shift.num_seconds(),
        loaded_at: at(40),
    });
    data.freshness.push(Freshness { source: "sample".into(), last: Some(at(40)), stale_after_secs: None });
    let site = render(&data).unwrap();
    for (path, html) in pages(&site) {
        assert!(html.contains(r#"id="sample-banner""#), "{path} does not label the sample");
        assert!(html.contains("Sample history, not market data."), "{path}");
        // What it really is, and where it is shown.
        assert!(html.contains("candles of\n2020-10-23 to 2024-06-16"), "{path}");
        assert!(html.contains("shown from 2023-04-11 to 2026-12-03"), "{path}");
        assert!(html.contains("moved forward\n900 days"), "{path}");
    }
    let index = site.page("index.html").unwrap();
    assert!(index.contains("History (shipped sample, not market data)"), "{index}");
}

#[test]
fn an_empty_database_renders_pages_that_say_so() {
    let data = SiteData {
        generated_at: at(0),
        vs_currency: "usd".into(),
        coins: ["bitcoin", "ethereum"]
            .iter()
            .map(|id| Coin { id: (*id).into(), ..Coin::default() })
            .collect(),
        freshness: vec![Freshness { source: "batch".into(), last: None, stale_after_secs: Some(1500) }],
        ..SiteData::default()
    };
    assert!(data.is_empty());
    let site = render(&data).unwrap();
    let index = site.page("index.html").unwrap();
    assert!(index.contains("No data yet."), "{index}");
    assert!(index.contains("no data</span>"), "freshness without data is 'no data', not stale");
    assert!(site.page("coins/bitcoin.html").unwrap().contains("No data yet for bitcoin"));
    assert!(site.page("alerts.html").unwrap().contains("No alerts yet."));
    assert!(site.page("quality.html").unwrap().contains("No transform run yet."));
    assert!(site.page("runs.html").unwrap().contains("No run recorded yet."));
}

#[test]
fn rendering_is_deterministic_and_assets_are_fingerprinted() {
    let a = render(&fixed()).unwrap();
    let b = render(&fixed()).unwrap();
    assert_eq!(a, b);
    for f in a.files.iter().filter(|f| f.path.starts_with("assets/")) {
        assert_eq!(f.cache_control, "public, max-age=31536000, immutable");
        let stem_hash = f.path.split('.').nth(1).unwrap();
        assert_eq!(stem_hash, &f.md5()[..10], "{} carries its content hash", f.path);
    }
    let index = a.get("index.html").unwrap();
    assert_eq!(index.content_type, "text/html; charset=utf-8");
    assert_eq!(index.cache_control, "no-cache");
    assert_eq!(a.files.last().unwrap().path, "index.html", "the overview is published last");
}

#[test]
fn no_24h_change_across_a_hole_in_the_history() {
    let mut data = fixed();
    // The latest price comes three days after the last hourly close.
    let coin = &mut data.coins[0];
    coin.latest = Some(Observation { price: 100_000.0, at: at(48 + 72) });
    data.generated_at = at(48 + 72);
    let site = render(&data).unwrap();
    let index = site.page("index.html").unwrap();
    let card = index.split("data-coin=\"bitcoin\"").nth(1).unwrap().split("</a>").next().unwrap();
    assert!(card.contains("24 h change: not enough history"), "{card}");
}

/// Tera's escaping undone: what the browser gives `dashboard.js` for an attribute.
fn attribute(html: &str, name: &str) -> Option<String> {
    let start = html.find(&format!(" {name}=\""))? + name.len() + 3;
    let raw = &html[start..start + html[start..].find('"')?];
    Some(
        raw.replace("&quot;", "\"")
            .replace("&#x2F;", "/")
            .replace("&#x27;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

/// 3.5 years of hourly candles (31,973 hours, as the shipped sample holds) with
/// prices of seven significant digits, daily volume and rank, an alert every other day.
fn long_history() -> SiteData {
    const HOURS: i64 = 31_973;
    let mut data = fixed();
    let end = at(47);
    let start = end - Duration::hours(HOURS - 1);
    let mut seed = 42_u64;
    let mut noise = move || {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    let mut close = 30_000.123_4;
    let coin = &mut data.coins[0];
    coin.hourly = (0..HOURS)
        .map(|h| {
            let open = close;
            close *= 1.0 + noise() * 0.01;
            let (hi, lo) = (open.max(close) * (1.0 + noise().abs() * 0.004), open.min(close) * 0.998);
            Hourly {
                hour: start + Duration::hours(h),
                open,
                high: hi,
                low: lo,
                close,
                avg: (open + close) / 2.0,
            }
        })
        .collect();
    let days: Vec<NaiveDate> = coin.hourly.iter().map(|h| h.hour.date_naive()).collect();
    let mut days = days;
    days.dedup();
    coin.volume = days
        .iter()
        .map(|d| DailyVolume { day: *d, volume: 30e9 * (1.0 + noise()), method: "interval_sum".into() })
        .collect();
    coin.ranks = days
        .iter()
        .enumerate()
        .map(|(i, d)| DailyRank { day: *d, rank: (i % 5) as i32 + 1, performance: 0.01 })
        .collect();
    coin.alerts = (0..HOURS)
        .step_by(48)
        .map(|h| Alert {
            at: start + Duration::hours(h) + Duration::minutes(20),
            ..alert("bitcoin", 0, 0.061, 30_000.0)
        })
        .collect();
    data.alerts_total = coin.alerts.len() as i64;
    data
}

#[test]
fn a_long_history_keeps_the_coin_page_light_and_every_hour_in_its_data_file() {
    let data = long_history();
    let coin = &data.coins[0];
    assert_eq!(coin.hourly.len(), 31_973);
    let site = render(&data).unwrap();
    let page = site.get("coins/bitcoin.html").unwrap();
    let html = site.page("coins/bitcoin.html").unwrap();
    let file = site.get("data/coins/bitcoin.hourly.json").expect("the hourly data file");
    eprintln!(
        "bitcoin, {} hours: page {} bytes, hourly data file {} bytes",
        coin.hourly.len(),
        page.body.len(),
        file.body.len()
    );
    // The first view loads the page and the shared (cached) assets; nothing else.
    assert!(page.body.len() <= 400_000, "the page weighs {} bytes", page.body.len());
    assert!(html.contains("31973 hours,"), "the page still says how many hours it covers");

    // Every hour, in order, in the file: what the page showed before.
    assert_eq!((file.content_type, file.cache_control), ("application/json", "no-cache"));
    let hourly: serde_json::Value = serde_json::from_slice(&file.body).unwrap();
    let times: Vec<i64> = coin.hourly.iter().map(|h| h.hour.timestamp()).collect();
    assert_eq!(hourly["t"], serde_json::json!(times));
    // Prices to seven significant digits, as before.
    for (key, want) in ["h", "l", "c"].into_iter().zip([
        coin.hourly.iter().map(|h| h.high).collect::<Vec<_>>(),
        coin.hourly.iter().map(|h| h.low).collect(),
        coin.hourly.iter().map(|h| h.close).collect(),
    ]) {
        let got: Vec<f64> = hourly[key].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        assert_eq!(got.len(), want.len(), "{key}");
        for (i, (got, want)) in got.iter().zip(&want).enumerate() {
            assert!((got - want).abs() <= want * 1e-6, "{key}[{i}]: {got} for {want}");
        }
    }
    // Published before the page that fetches it, which links it relative to itself.
    let order = |path: &str| site.files.iter().position(|f| f.path == path).unwrap();
    assert!(order("data/coins/bitcoin.hourly.json") < order("coins/bitcoin.html"));
    assert_eq!(attribute(html, "data-hourly").as_deref(), Some("../data/coins/bitcoin.hourly.json"));

    // Inline: the hours of the last 30 days (the opening view), days before them.
    let chart: serde_json::Value = serde_json::from_str(&attribute(html, "data-chart").unwrap()).unwrap();
    assert_eq!(chart["open"], 30);
    let inline: Vec<i64> =
        chart["hours"]["t"].as_array().unwrap().iter().map(|t| t.as_i64().unwrap()).collect();
    let last = *times.last().unwrap();
    assert_eq!(inline.last(), Some(&last));
    assert!(inline[0] <= last - 30 * 86_400, "the 30-day view needs no fetch");
    assert_eq!(&times[times.len() - inline.len()..], &inline[..], "the latest hours, each of them");
    let days = chart["days"]["t"].as_array().unwrap();
    let older = &coin.hourly[..times.len() - inline.len()];
    let mut dates: Vec<NaiveDate> = older.iter().map(|h| h.hour.date_naive()).collect();
    dates.dedup();
    assert_eq!(days.len(), dates.len(), "a daily candle per older day");
    assert!(chart["days"]["gaps"].as_array().unwrap().is_empty(), "no hole in this history");
    // The day's last hour closes it; its band spans all its hours.
    let first_day: Vec<&Hourly> = older.iter().take_while(|h| h.hour.date_naive() == dates[0]).collect();
    assert_eq!(days[0], first_day.last().unwrap().hour.timestamp());
    let high = first_day.iter().map(|h| h.high).fold(f64::MIN, f64::max);
    assert!((chart["days"]["h"][0].as_f64().unwrap() - high).abs() <= high * 1e-6);
    // Volume and rank stay daily and whole.
    assert_eq!(chart["volume"]["t"].as_array().unwrap().len(), coin.volume.len());
    assert_eq!(chart["rank"]["r"].as_array().unwrap().len(), coin.ranks.len());
    assert_eq!(chart["alerts"].as_array().unwrap().len(), coin.alerts.len());
}

#[test]
fn a_short_history_is_all_inline_and_has_no_data_file() {
    let site = render(&fixed()).unwrap();
    assert!(!site.files.iter().any(|f| f.path.starts_with("data/")));
    let html = site.page("coins/bitcoin.html").unwrap();
    assert!(!html.contains("data-hourly="));
    let chart: serde_json::Value = serde_json::from_str(&attribute(html, "data-chart").unwrap()).unwrap();
    assert_eq!(chart["hours"]["t"].as_array().unwrap().len(), 48);
    assert!(chart["days"]["t"].as_array().unwrap().is_empty());
}
