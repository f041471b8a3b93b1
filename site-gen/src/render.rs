//! Renders [`SiteData`] into the files of the static site: pure, so the same
//! data always gives the same bytes (snapshot tests, "only changed files" uploads).
//!
//! Templates and assets are compiled into the binary: the Lambda needs nothing
//! beside it. Tera escapes every `{{ }}` of the `.html` templates; no template
//! marks anything `safe`, and the chart data goes into an escaped attribute.
//!
//! A coin page carries its chart data inline but light: daily candles for the
//! long views, hourly ones for the last [`INLINE_DAYS`] days. Every hour of a
//! longer history goes into `data/coins/<id>.hourly.json`, which `dashboard.js`
//! fetches only when the reader zooms into the older history.

use std::collections::BTreeSet;
use std::sync::{Arc, LazyLock};

use chrono::{DateTime, Duration, NaiveTime, Utc};
use md5::{Digest, Md5};
use serde::Serialize;
use tera::{Context, Tera};

use crate::SiteError;
use crate::format;
use crate::model::{Alert, AlertKey, Coin, Delivery, Freshness, Hourly, Sample, SiteData};

/// One file of the site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteFile {
    /// Relative path with `/` separators: `index.html`, `coins/bitcoin.html`.
    pub path: String,
    pub body: Vec<u8>,
    pub content_type: &'static str,
    pub cache_control: &'static str,
}

impl SiteFile {
    /// Hex MD5 of the body: what S3 reports as the ETag of a single-part upload.
    pub fn md5(&self) -> String {
        hex::encode(Md5::digest(&self.body))
    }
}

/// The whole site, in publishing order: assets first, then the Atom feeds,
/// each coin's hourly data before its page, the overview last, so a visitor never gets a page
/// whose assets or data are not there yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Site {
    pub files: Vec<SiteFile>,
}

impl Site {
    pub fn get(&self, path: &str) -> Option<&SiteFile> {
        self.files.iter().find(|f| f.path == path)
    }

    /// A page as text (tests and the bench).
    pub fn page(&self, path: &str) -> Option<&str> {
        self.get(path).and_then(|f| std::str::from_utf8(&f.body).ok())
    }

    pub fn bytes(&self) -> usize {
        self.files.iter().map(|f| f.body.len()).sum()
    }
}

/// HTML is revalidated on every view (cheap with ETags) so a new run shows at once;
/// assets carry their content hash in their name, so they never change.
const PAGE_CACHE: &str = "no-cache";
const ASSET_CACHE: &str = "public, max-age=31536000, immutable";
/// A coin's hourly data keeps one name and is revalidated like the pages: it
/// changes with every new hour, and a page left open across a run still finds
/// it (a content-hashed name would be deleted by the next run under it).
const DATA_CACHE: &str = "no-cache";

const TEMPLATES: [(&str, &str); 9] = [
    ("base.html", include_str!("../../templates/base.html")),
    ("alerts_table.html", include_str!("../../templates/alerts_table.html")),
    ("index.html", include_str!("../../templates/index.html")),
    ("coin.html", include_str!("../../templates/coin.html")),
    ("alerts.html", include_str!("../../templates/alerts.html")),
    ("quality.html", include_str!("../../templates/quality.html")),
    ("runs.html", include_str!("../../templates/runs.html")),
    ("404.html", include_str!("../../templates/404.html")),
    ("alerts.xml", include_str!("../../templates/alerts.xml")),
];

/// Shipped assets: (logical name, file name, extension, bytes). uPlot is
/// vendored (`vendor/uplot/README.md`: version, source, licence).
const ASSETS: [(&str, &str, &str, &[u8]); 5] = [
    ("uplot_js", "uplot", "js", include_bytes!("../vendor/uplot/uPlot.iife.min.js")),
    ("uplot_css", "uplot", "css", include_bytes!("../vendor/uplot/uPlot.min.css")),
    ("site_css", "site", "css", include_bytes!("../../templates/assets/site.css")),
    ("app_js", "dashboard", "js", include_bytes!("../../templates/assets/dashboard.js")),
    ("icon", "icon", "svg", include_bytes!("../../templates/assets/icon.svg")),
];

/// The alerts the overview lists.
const OVERVIEW_ALERTS: usize = 10;
/// The sparkline covers the last week of hourly closes.
const SPARKLINE_HOURS: i64 = 7 * 24;
/// A coin page carries hourly candles from midnight UTC this many days before
/// its last hour's day: what the 30-day and 7-day views show. Older hours are
/// inline as daily candles, and each hour in the coin's hourly data file.
const INLINE_DAYS: i64 = 30;
/// More than this between two hours is a hole in the history: the price line
/// breaks there (`dashboard.js` applies the same rule to the hours).
const HOLE_SECS: i64 = 3 * 3600;

/// What never changes within a process: the parsed templates and the
/// fingerprinted assets. Built once, on first use (a warm Lambda reuses it).
struct Static {
    tera: Tera,
    assets: Vec<SiteFile>,
    /// Logical asset name → path, for the templates.
    paths: serde_json::Value,
}

static STATIC: LazyLock<Result<Static, Arc<tera::Error>>> = LazyLock::new(|| {
    let mut tera = Tera::default();
    tera.add_raw_templates(TEMPLATES).map_err(Arc::new)?;
    // Tera's default already escapes .html; said here because the site's safety rests on it.
    tera.autoescape_on(vec![".html", ".xml"]);
    let mut assets = Vec::new();
    let mut paths = serde_json::Map::new();
    for (name, stem, ext, body) in ASSETS {
        let path = format!("assets/{stem}.{}.{ext}", &hex::encode(Md5::digest(body))[..10]);
        paths.insert(name.to_owned(), path.clone().into());
        assets.push(SiteFile {
            path,
            body: body.to_vec(),
            content_type: content_type(ext),
            cache_control: ASSET_CACHE,
        });
    }
    Ok(Static { tera, assets, paths: paths.into() })
});

pub fn render(data: &SiteData) -> Result<Site, SiteError> {
    let statics = STATIC.as_ref().map_err(|e| SiteError::Templates(Arc::clone(e)))?;
    let tera = &statics.tera;
    let mut files = statics.assets.clone();

    let common = Common {
        generated_iso: format::iso(data.generated_at),
        generated_text: format::instant(data.generated_at),
        currency: data.vs_currency.to_uppercase(),
        empty: data.is_empty(),
        coins: data.coins.iter().map(|c| NavCoin { id: c.id.clone(), name: display_name(c) }).collect(),
        assets: statics.paths.clone(),
        sample: sample_banner(data),
    };
    let page = |template: &str, path: &str, root: &str, active: &str, mut context: Context| {
        context.insert("common", &common);
        context.insert("root", root);
        context.insert("active", active);
        let html = tera
            .render(template, &context)
            .map_err(|source| SiteError::Render { page: path.to_owned(), source })?;
        Ok::<_, SiteError>(SiteFile {
            path: path.to_owned(),
            body: html.into_bytes(),
            content_type: content_type("html"),
            cache_control: PAGE_CACHE,
        })
    };

    let cards: Vec<Card> = data.coins.iter().map(|c| card(c, data)).collect();
    let latest_alerts: Vec<AlertRow> = data.alerts.iter().map(|a| alert_row(a, data)).collect();

    // The Atom feeds go up before the pages, which all link to them.
    let feed_alerts: Vec<&Alert> = data.alerts.iter().take(FEED_ENTRIES).collect();
    files.push(atom_feed(tera, data, None, &feed_alerts)?);
    for coin in &data.coins {
        let alerts: Vec<&Alert> = coin.alerts.iter().rev().take(FEED_ENTRIES).collect();
        files.push(atom_feed(tera, data, Some(coin), &alerts)?);
    }

    for (coin, card) in data.coins.iter().zip(&cards) {
        let (older, recent) = split_hours(&coin.hourly);
        let mut context = Context::new();
        // Every hour, beside the page, when the page itself holds only days of the older ones.
        if !older.is_empty() {
            let path = hourly_path(&coin.id);
            files.push(SiteFile {
                body: columns(&coin.hourly).to_string().into_bytes(),
                path: path.clone(),
                content_type: content_type("json"),
                cache_control: DATA_CACHE,
            });
            context.insert("hourly", &path);
            context.insert("inline_days", &INLINE_DAYS);
        }
        context.insert("coin", card);
        context.insert("chart", &chart_json(coin, older, recent, &data.vs_currency));
        let mut alerts: Vec<AlertRow> = coin.alerts.iter().rev().map(|a| alert_row(a, data)).collect();
        alerts.truncate(100);
        context.insert("alerts", &alerts);
        context.insert("alerts_total", &coin.alerts.len());
        context.insert("live", &live_groups(coin));
        let path = format!("coins/{}.html", coin.id);
        files.push(page("coin.html", &path, "../", &coin.id, context)?);
    }

    let mut context = Context::new();
    context.insert("alerts", &latest_alerts);
    context.insert("alerts_total", &format::count(data.alerts_total));
    context.insert("alerts_shown", &data.alerts.len());
    context.insert("alerts_more", &(data.alerts_total > data.alerts.len() as i64));
    files.push(page("alerts.html", "alerts.html", "", "alerts", context)?);

    let mut context = Context::new();
    let reasons: BTreeSet<&String> = data.quality.iter().flat_map(|r| r.dropped.keys()).collect();
    let rows: Vec<QualityRow> = data
        .quality
        .iter()
        .map(|r| QualityRow {
            at_iso: format::iso(r.started_at),
            at_text: format::instant(r.started_at),
            status: r.status.clone(),
            rows_in: r.rows_in.map(format::count).unwrap_or_default(),
            dropped: reasons.iter().map(|k| format::count(r.dropped.get(*k).copied().unwrap_or(0))).collect(),
            total: format::count(r.dropped.values().sum()),
        })
        .collect();
    let totals: Vec<String> = reasons
        .iter()
        .map(|k| format::count(data.quality.iter().filter_map(|r| r.dropped.get(*k)).sum()))
        .collect();
    context.insert("reasons", &reasons);
    context.insert("rows", &rows);
    context.insert("totals", &totals);
    files.push(page("quality.html", "quality.html", "", "quality", context)?);

    let mut context = Context::new();
    context.insert("functions", &run_groups(data));
    context.insert("failed_deliveries", &failed_rows(data));
    files.push(page("runs.html", "runs.html", "", "runs", context)?);

    // The error document is served at any depth: its links are absolute.
    files.push(page("404.html", "404.html", "/", "", Context::new())?);

    let mut context = Context::new();
    context.insert("cards", &cards);
    context.insert("alerts", &latest_alerts[..latest_alerts.len().min(OVERVIEW_ALERTS)]);
    context.insert(
        "freshness",
        &data.freshness.iter().map(|f| fresh_row(f, data.generated_at)).collect::<Vec<_>>(),
    );
    files.push(page("index.html", "index.html", "", "overview", context)?);

    Ok(Site { files })
}

pub fn content_type(ext: &str) -> &'static str {
    match ext {
        "html" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        // The only XML the site publishes: its Atom feeds.
        "xml" => "application/atom+xml; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[derive(Serialize)]
struct Common {
    generated_iso: String,
    generated_text: String,
    currency: String,
    empty: bool,
    coins: Vec<NavCoin>,
    assets: serde_json::Value,
    /// Shown on every page while any coin's history is the shipped sample.
    sample: Option<SampleBanner>,
}

#[derive(Serialize)]
struct SampleBanner {
    coins: String,
    original_from: String,
    original_to: String,
    shown_from: String,
    shown_to: String,
    shift_days: i64,
}

/// The banner saying which history is the shipped sample and what it really is.
fn sample_banner(data: &SiteData) -> Option<SampleBanner> {
    let sampled: Vec<(&Coin, &Sample)> =
        data.coins.iter().filter_map(|c| Some((c, c.sample.as_ref()?))).collect();
    let (from, to) = (
        sampled.iter().map(|(_, s)| s.original_from).min()?,
        sampled.iter().map(|(_, s)| s.original_to).max()?,
    );
    let shifts: BTreeSet<i64> = sampled.iter().map(|(_, s)| s.shift_secs).collect();
    let (lo, hi) = (shifts.first().copied()?, shifts.last().copied()?);
    let day = |t: DateTime<Utc>| t.format("%Y-%m-%d").to_string();
    Some(SampleBanner {
        coins: sampled.iter().map(|(c, _)| display_name(c)).collect::<Vec<_>>().join(", "),
        original_from: day(from),
        original_to: day(to),
        shown_from: day(from + Duration::seconds(lo)),
        shown_to: day(to + Duration::seconds(hi)),
        shift_days: hi / 86_400,
    })
}

#[derive(Serialize)]
struct NavCoin {
    id: String,
    name: String,
}

/// One exchange's latest bars on a coin page.
#[derive(Serialize)]
struct LiveGroup {
    source: &'static str,
    /// `Binance, USDT`.
    title: String,
    bars: Vec<LiveRow>,
}

#[derive(Serialize)]
struct LiveRow {
    end_iso: String,
    end_text: String,
    interval: String,
    price: String,
    vwap: String,
    volume: String,
    trades: String,
}

fn live_groups(coin: &Coin) -> Vec<LiveGroup> {
    let mut groups: Vec<LiveGroup> = Vec::new();
    for bar in &coin.live {
        let (name, quote) = match bar.source {
            domain::TickSource::Binance => ("Binance", "usdt"),
            domain::TickSource::Coinbase => ("Coinbase", "usd"),
            _ => continue,
        };
        let row = LiveRow {
            end_iso: format::iso(bar.end),
            end_text: format::instant(bar.end),
            interval: if bar.interval_secs % 60 == 0 {
                format!("{} min", bar.interval_secs / 60)
            } else {
                format!("{} s", bar.interval_secs)
            },
            price: format::price(bar.price, quote),
            vwap: bar.vwap.map(|v| format::price(v, quote)).unwrap_or_default(),
            volume: bar.volume.map(|v| format!("{}", format::significant(v, 6))).unwrap_or_default(),
            trades: bar.trades.map(|t| format::count(i64::from(t))).unwrap_or_default(),
        };
        match groups.iter_mut().find(|g| g.source == bar.source.as_str()) {
            Some(group) => group.bars.push(row),
            None => groups.push(LiveGroup {
                source: bar.source.as_str(),
                title: format!("{name}, {}", quote.to_uppercase()),
                bars: vec![row],
            }),
        }
    }
    groups
}

/// Entries of each Atom feed: the latest alerts.
const FEED_ENTRIES: usize = 100;

#[derive(Serialize)]
struct FeedHead {
    id: String,
    title: String,
    updated: String,
    self_href: String,
    html_href: String,
}

#[derive(Serialize)]
struct FeedEntry {
    id: String,
    title: String,
    at_iso: String,
    href: String,
    coin_id: String,
    coin_name: String,
    summary: String,
}

/// `alerts.xml` (every coin), or `coins/{id}.xml` (one coin): an Atom feed
/// of the latest alerts, newest first, for any feed reader. Ids are tag URIs
/// that name the alert's key, so a reader never shows one alert twice; links
/// are relative to the feed.
fn atom_feed(
    tera: &Tera,
    data: &SiteData,
    coin: Option<&Coin>,
    alerts: &[&Alert],
) -> Result<SiteFile, SiteError> {
    const TAG: &str = "tag:crypto-pipeline,2026";
    let (path, id, title, html_href, page_of) = match coin {
        None => (
            String::from("alerts.xml"),
            format!("{TAG}:alerts"),
            String::from("Crypto dashboard: alerts"),
            String::from("alerts.html"),
            "coins/",
        ),
        Some(c) => (
            format!("coins/{}.xml", c.id),
            format!("{TAG}:alerts/{}", c.id),
            format!("Crypto dashboard: {} alerts", display_name(c)),
            format!("{}.html", c.id),
            "",
        ),
    };
    let entries: Vec<FeedEntry> = alerts
        .iter()
        .map(|a| {
            let row = alert_row(a, data);
            FeedEntry {
                // The rule joins the id only when it is not `default`: ids given before rules existed stay.
                id: match a.rule.as_str() {
                    "default" => format!("{TAG}:alert/{}/{}/{}", a.coin_id, row.at_iso, a.window_secs),
                    rule => format!("{TAG}:alert/{}/{}/{}/{rule}", a.coin_id, row.at_iso, a.window_secs),
                },
                title: format!("{}: {} in {}", row.coin_name, row.change, row.window),
                href: format!("{page_of}{}.html", a.coin_id),
                summary: format!(
                    "{} moved {} in {}, from {} to {}, at {}.",
                    row.coin_name, row.change, row.window, row.before, row.after, row.at_text
                ),
                at_iso: row.at_iso,
                coin_id: row.coin_id,
                coin_name: row.coin_name,
            }
        })
        .collect();
    let updated = alerts.first().map(|a| a.at).unwrap_or(data.generated_at);
    let file_name = path.rsplit('/').next().unwrap_or(&path).to_owned();
    let head = FeedHead { id, title, updated: format::iso(updated), self_href: file_name, html_href };
    let mut context = Context::new();
    context.insert("feed", &head);
    context.insert("entries", &entries);
    let xml = tera
        .render("alerts.xml", &context)
        .map_err(|source| SiteError::Render { page: path.clone(), source })?;
    Ok(SiteFile {
        path,
        body: xml.into_bytes(),
        content_type: content_type("xml"),
        cache_control: PAGE_CACHE,
    })
}

fn display_name(coin: &Coin) -> String {
    coin.name.clone().unwrap_or_else(|| coin.id.clone())
}

fn name_of(id: &str, data: &SiteData) -> String {
    data.coins.iter().find(|c| c.id == id).map(display_name).unwrap_or_else(|| id.to_owned())
}

/// A coin as the overview's card (and the coin page's header) shows it.
#[derive(Serialize)]
struct Card {
    id: String,
    name: String,
    symbol: String,
    has_data: bool,
    price: Option<String>,
    price_iso: Option<String>,
    price_text: Option<String>,
    change: Option<String>,
    trend: &'static str,
    sparkline: Option<String>,
    rank: Option<i32>,
    rank_day: Option<String>,
    volume: Option<String>,
    volume_day: Option<String>,
    volume_method: Option<&'static str>,
    hours: usize,
    first_hour: Option<String>,
    last_hour: Option<String>,
}

fn card(coin: &Coin, data: &SiteData) -> Card {
    let currency = &data.vs_currency;
    // The latest observation, or the last hourly close when only history is stored.
    let latest =
        coin.latest.map(|o| (o.price, o.at)).or_else(|| coin.hourly.last().map(|h| (h.close, h.hour)));
    // Against the hourly close 24 h earlier; none when the history has a hole
    // there (a close from days before is not a 24 h change).
    let change = latest.and_then(|(price, at)| {
        let before = at - Duration::hours(24);
        let base = coin.hourly.iter().rev().find(|h| h.hour <= before)?;
        (base.hour > before - Duration::hours(2) && base.close > 0.0).then(|| price / base.close - 1.0)
    });
    let rank = coin.ranks.last();
    let volume = coin.volume.last();
    Card {
        id: coin.id.clone(),
        name: display_name(coin),
        symbol: coin.symbol.clone().unwrap_or_default().to_uppercase(),
        has_data: latest.is_some(),
        price: latest.map(|(p, _)| format::price(p, currency)),
        price_iso: latest.map(|(_, at)| format::iso(at)),
        price_text: latest.map(|(_, at)| format::ago((data.generated_at - at).num_seconds())),
        change: change.map(format::percent),
        trend: change.map(format::trend).unwrap_or("flat"),
        sparkline: sparkline(coin),
        rank: rank.map(|r| r.rank),
        rank_day: rank.map(|r| r.day.to_string()),
        volume: volume.map(|v| format::compact(v.volume, currency)),
        volume_day: volume.map(|v| v.day.to_string()),
        volume_method: volume.map(|v| match v.method.as_str() {
            "rolling_24h" => "CoinGecko's rolling 24 h volume",
            _ => "sum of the day's traded volume",
        }),
        hours: coin.hourly.len(),
        first_hour: coin.hourly.first().map(|h| format::instant(h.hour)),
        last_hour: coin.hourly.last().map(|h| format::instant(h.hour)),
    }
}

/// SVG polyline points (viewBox 0 0 100 30) of the last week of hourly closes:
/// drawn without JavaScript, so the overview needs no chart library.
fn sparkline(coin: &Coin) -> Option<String> {
    let last = coin.hourly.last()?.hour;
    let from = last - Duration::hours(SPARKLINE_HOURS);
    let points: Vec<(i64, f64)> =
        coin.hourly.iter().filter(|h| h.hour > from).map(|h| (h.hour.timestamp(), h.close)).collect();
    if points.len() < 2 {
        return None;
    }
    let (t0, t1) = (points[0].0 as f64, points[points.len() - 1].0 as f64);
    let lo = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let hi = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let span = if hi > lo { hi - lo } else { 1.0 };
    Some(
        points
            .iter()
            .map(|(t, v)| {
                format!("{:.1},{:.1}", (*t as f64 - t0) / (t1 - t0) * 100.0, 29.0 - (v - lo) / span * 28.0)
            })
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// Where a coin's hourly data file goes (the page links it relative to the root).
fn hourly_path(coin_id: &str) -> String {
    format!("data/coins/{coin_id}.hourly.json")
}

/// The hours a coin page shows only as days, and the hours it carries inline:
/// those from midnight UTC [`INLINE_DAYS`] days before the last hour's day.
fn split_hours(hours: &[Hourly]) -> (&[Hourly], &[Hourly]) {
    let Some(last) = hours.last() else { return (&[], &[]) };
    let from = (last.hour.date_naive() - Duration::days(INLINE_DAYS)).and_time(NaiveTime::MIN).and_utc();
    hours.split_at(hours.partition_point(|h| h.hour < from))
}

/// Prices are kept to 7 significant digits, so the chart data stays small.
fn sig(x: f64) -> f64 {
    format::significant(x, 7)
}

/// Hourly candles as columns (what uPlot takes), times in Unix seconds: the
/// coin page's inline hours and the whole of its hourly data file.
fn columns(hours: &[Hourly]) -> serde_json::Value {
    serde_json::json!({
        "t": hours.iter().map(|h| h.hour.timestamp()).collect::<Vec<_>>(),
        "h": hours.iter().map(|h| sig(h.high)).collect::<Vec<_>>(),
        "l": hours.iter().map(|h| sig(h.low)).collect::<Vec<_>>(),
        "c": hours.iter().map(|h| sig(h.close)).collect::<Vec<_>>(),
    })
}

/// Daily candles of `hours` (UTC days), as columns: each day at its last hour,
/// with that hour's close and the day's high and low, so the band and line look
/// as the hours do at the scale of months. `gaps` lists the days that follow a
/// hole in the history: the line breaks before them, as it does between hours
/// (a hole within one day shows once its hours are loaded). The opens are left
/// out: the chart draws none.
fn daily_columns(hours: &[Hourly]) -> serde_json::Value {
    let (mut t, mut high, mut low, mut close, mut gaps) = (vec![], vec![], vec![], vec![], vec![]);
    let mut previous: Option<DateTime<Utc>> = None;
    for day in hours.chunk_by(|a, b| a.hour.date_naive() == b.hour.date_naive()) {
        let (Some(first), Some(last)) = (day.first(), day.last()) else { continue };
        if previous.is_some_and(|p| (first.hour - p).num_seconds() > HOLE_SECS) {
            gaps.push(t.len());
        }
        t.push(last.hour.timestamp());
        high.push(sig(day.iter().map(|h| h.high).fold(f64::NEG_INFINITY, f64::max)));
        low.push(sig(day.iter().map(|h| h.low).fold(f64::INFINITY, f64::min)));
        close.push(sig(last.close));
        previous = Some(last.hour);
    }
    serde_json::json!({ "t": t, "h": high, "l": low, "c": close, "gaps": gaps })
}

/// The range the coin page opens on, in days (0: the whole history): the last
/// 30 days (else 7, else 365) when that range holds two days of hours and is not
/// everything (the live part of a long history).
fn opening_days(hours: &[Hourly]) -> i64 {
    let (Some(first), Some(last)) = (hours.first(), hours.last()) else { return 0 };
    [30, 7, 365]
        .into_iter()
        .find(|days| {
            let from = last.hour - Duration::days(*days);
            let inside = hours.len() - hours.partition_point(|h| h.hour < from);
            from > first.hour && inside >= 48 && inside < hours.len()
        })
        .unwrap_or(0)
}

/// The coin page's chart data, columnar (what uPlot takes), times in Unix
/// seconds: the `older` hours as `days`, the `recent` ones as `hours`.
fn chart_json(coin: &Coin, older: &[Hourly], recent: &[Hourly], currency: &str) -> String {
    let day_secs =
        |d: chrono::NaiveDate| d.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp()).unwrap_or(0);
    serde_json::json!({
        "currency": currency,
        "open": opening_days(&coin.hourly),
        "days": daily_columns(older),
        "hours": columns(recent),
        "alerts": coin.alerts.iter()
            .map(|a| serde_json::json!([a.at.timestamp(), sig(a.price_after), format::significant(a.change_pct, 4)]))
            .collect::<Vec<_>>(),
        "volume": {
            "t": coin.volume.iter().map(|v| day_secs(v.day)).collect::<Vec<_>>(),
            "v": coin.volume.iter().map(|v| sig(v.volume)).collect::<Vec<_>>(),
        },
        "rank": {
            "t": coin.ranks.iter().map(|r| day_secs(r.day)).collect::<Vec<_>>(),
            "r": coin.ranks.iter().map(|r| r.rank).collect::<Vec<_>>(),
        },
    })
    .to_string()
}

#[derive(Serialize)]
struct AlertRow {
    coin_id: String,
    coin_name: String,
    rule: String,
    /// How each channel took the alert's notification.
    deliveries: Vec<DeliveryCell>,
    at_iso: String,
    at_text: String,
    window: String,
    change: String,
    direction: String,
    before: String,
    after: String,
}

/// One channel's state for one alert, as the alerts tables show it.
#[derive(Serialize)]
struct DeliveryCell {
    channel: String,
    /// `sent`, `suppressed`, `failed`, `pending` or `historical` (a CSS class too).
    state: String,
    label: String,
    /// The last error, if a try failed.
    error: Option<String>,
}

fn tries(n: i32) -> String {
    if n == 1 { String::from("1 try") } else { format!("{n} tries") }
}

fn delivery_cell(d: &Delivery) -> DeliveryCell {
    let label = match d.state.as_str() {
        "sent" => {
            let mut label = String::from("sent");
            if let Some(n) = d.suppressed.filter(|n| *n > 0) {
                label.push_str(&format!(", {n} suppressed before it"));
            }
            if d.attempts > 1 {
                label.push_str(&format!(" ({})", tries(d.attempts)));
            }
            label
        }
        "suppressed" => String::from("not sent: cool-down"),
        "historical" => String::from("not sent: historical"),
        "failed" => format!("failed after {}", tries(d.attempts)),
        _ if d.attempts > 0 => format!("pending ({} failed)", tries(d.attempts)),
        _ => String::from("pending"),
    };
    DeliveryCell { channel: d.channel.clone(), state: d.state.clone(), label, error: d.last_error.clone() }
}

fn alert_row(alert: &Alert, data: &SiteData) -> AlertRow {
    let key = AlertKey {
        coin_id: alert.coin_id.clone(),
        at: alert.at,
        window_secs: alert.window_secs,
        rule: alert.rule.clone(),
    };
    let deliveries = data.deliveries.get(&key).into_iter().flatten().map(delivery_cell).collect();
    AlertRow {
        coin_id: alert.coin_id.clone(),
        coin_name: name_of(&alert.coin_id, data),
        rule: alert.rule.clone(),
        deliveries,
        at_iso: format::iso(alert.at),
        at_text: format::instant(alert.at),
        window: format::window(alert.window_secs),
        change: format::percent(alert.change_pct / 100.0),
        direction: if alert.direction == "up" { "up" } else { "down" }.to_owned(),
        before: format::price(alert.price_before, &data.vs_currency),
        after: format::price(alert.price_after, &data.vs_currency),
    }
}

#[derive(Serialize)]
struct QualityRow {
    at_iso: String,
    at_text: String,
    status: String,
    rows_in: String,
    dropped: Vec<String>,
    total: String,
}

#[derive(Serialize)]
struct FreshRow {
    source: String,
    label: &'static str,
    last_iso: Option<String>,
    last_text: Option<String>,
    ago: Option<String>,
    stale_after: Option<i64>,
    stale: bool,
}

fn fresh_row(f: &Freshness, now: DateTime<Utc>) -> FreshRow {
    let age = f.last.map(|at| (now - at).num_seconds());
    FreshRow {
        source: f.source.clone(),
        label: match f.source.as_str() {
            "batch" => "Batch (CoinGecko)",
            "stream" => "Stream (Kafka)",
            "history" => "History (CoinGecko backfill)",
            "sample" => "History (shipped sample, not market data)",
            "transform" => "Transforms",
            "binance" => "Live: Binance trades (USDT)",
            "coinbase" => "Live: Coinbase trades (USD)",
            _ => "Source",
        },
        last_iso: f.last.map(format::iso),
        last_text: f.last.map(format::instant),
        ago: age.map(format::ago),
        stale_after: f.stale_after_secs,
        // A source that never delivered is "no data", not stale.
        stale: matches!((age, f.stale_after_secs), (Some(a), Some(limit)) if a > limit),
    }
}

#[derive(Serialize)]
struct RunGroup {
    function: String,
    runs: Vec<RunRow>,
}

/// What a run's details add to its rows, in words: the live feed's
/// reconnects, stalls, gaps and late trades per exchange, or the minutes its
/// serverless form could not catch up.
fn run_notes(details: &serde_json::Value) -> String {
    let mut notes = Vec::new();
    if let Some(exchanges) = details.get("exchanges").and_then(serde_json::Value::as_object) {
        for (exchange, f) in exchanges {
            let n = |key: &str| f.get(key).and_then(serde_json::Value::as_u64).unwrap_or_default();
            let (gaps, missed) = f
                .get("gaps")
                .and_then(serde_json::Value::as_object)
                .map(|g| {
                    g.values().fold((0, 0), |(a, b), v| {
                        (
                            a + v["gaps"].as_u64().unwrap_or_default(),
                            b + v["missed_trades"].as_u64().unwrap_or_default(),
                        )
                    })
                })
                .unwrap_or_default();
            notes.push(format!(
                "{exchange}: {} reconnects, {} stalls, {gaps} gaps ({missed} trades missed), {} late trades",
                n("reconnects"),
                n("stalls"),
                n("late_trades")
            ));
        }
    }
    // A notify run's counts.
    if details.get("pending").is_some() && details.get("sent").is_some() {
        let n = |key: &str| details.get(key).and_then(serde_json::Value::as_u64).unwrap_or_default();
        if details.get("skipped").and_then(serde_json::Value::as_bool) == Some(true) {
            notes.push(String::from("skipped: another notify run was sending"));
        } else {
            notes.push(format!(
                "{} sent, {} suppressed, {} failed, {} deferred, {} retries",
                n("sent"),
                n("suppressed"),
                n("failed"),
                n("deferred"),
                n("retries")
            ));
        }
    }
    if let Some(markets) = details.get("markets").and_then(serde_json::Value::as_array) {
        let skipped: i64 = markets.iter().filter_map(|m| m["skipped_minutes"].as_i64()).sum();
        if skipped > 0 {
            notes.push(format!("{skipped} minutes beyond FEED_CATCHUP_MINUTES skipped"));
        }
    }
    notes.join("; ")
}

/// A notification that failed for good, for the runs page.
#[derive(Serialize)]
struct FailedRow {
    coin_id: String,
    coin_name: String,
    at_iso: String,
    at_text: String,
    window: String,
    rule: String,
    channel: String,
    tries: String,
    error: String,
    updated_iso: String,
    updated_text: String,
}

fn failed_rows(data: &SiteData) -> Vec<FailedRow> {
    data.failed_deliveries
        .iter()
        .map(|d| FailedRow {
            coin_id: d.key.coin_id.clone(),
            coin_name: name_of(&d.key.coin_id, data),
            at_iso: format::iso(d.key.at),
            at_text: format::instant(d.key.at),
            window: format::window(d.key.window_secs),
            rule: d.key.rule.clone(),
            channel: d.channel.clone(),
            tries: tries(d.attempts),
            error: d.last_error.clone().unwrap_or_default(),
            updated_iso: format::iso(d.updated_at),
            updated_text: format::instant(d.updated_at),
        })
        .collect()
}

#[derive(Serialize)]
struct RunRow {
    at_iso: String,
    at_text: String,
    duration: String,
    status: String,
    rows_in: String,
    rows_out: String,
    error: String,
    notes: String,
}

/// Runs grouped by function, the pipeline's own functions in pipeline order first.
fn run_groups(data: &SiteData) -> Vec<RunGroup> {
    const ORDER: [&str; 7] = ["ingest", "backfill", "feed", "consumer", "transform", "notify", "site-gen"];
    let mut names: Vec<&str> = data.runs.iter().map(|r| r.function.as_str()).collect();
    names.sort_by_key(|n| (ORDER.iter().position(|o| o == n).unwrap_or(ORDER.len()), *n));
    names.dedup();
    names
        .into_iter()
        .map(|name| RunGroup {
            function: name.to_owned(),
            runs: data
                .runs
                .iter()
                .filter(|r| r.function == name)
                .map(|r| RunRow {
                    at_iso: format::iso(r.started_at),
                    at_text: format::instant(r.started_at),
                    duration: r
                        .finished_at
                        .map(|f| format::duration_ms((f - r.started_at).num_milliseconds()))
                        .unwrap_or_else(|| String::from("running")),
                    status: r.status.clone(),
                    rows_in: r.rows_in.map(format::count).unwrap_or_default(),
                    rows_out: r.rows_out.map(format::count).unwrap_or_default(),
                    error: r.error.clone().unwrap_or_default(),
                    notes: run_notes(&r.details),
                })
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use sha2::Sha256;

    use super::*;

    #[test]
    fn the_vendored_uplot_is_the_published_release() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("vendor/uplot");
        let sums = std::fs::read_to_string(dir.join("SHA256SUMS")).unwrap();
        let mut names = Vec::new();
        for line in sums.lines().filter(|l| !l.trim().is_empty()) {
            let (sum, name) = line.split_once("  ").unwrap();
            let bytes = std::fs::read(dir.join(name)).unwrap();
            let actual = hex::encode(<Sha256 as sha2::Digest>::digest(&bytes));
            assert_eq!(
                actual, sum,
                "vendor/uplot/{name} is not the file of uPlot's npm release (see its README)"
            );
            names.push(name);
        }
        assert_eq!(names, ["LICENSE", "uPlot.iife.min.js", "uPlot.min.css"]);
    }

    fn hours(offsets: impl IntoIterator<Item = i64>) -> Vec<Hourly> {
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        offsets
            .into_iter()
            .map(|h| {
                let x = 100.0 + h as f64;
                Hourly {
                    hour: start + Duration::hours(h),
                    open: x,
                    high: x + 1.0,
                    low: x - 1.0,
                    close: x,
                    avg: x,
                }
            })
            .collect()
    }

    #[test]
    fn the_page_holds_the_hours_from_midnight_thirty_days_before_the_last_day() {
        let all = hours(0..24 * 40 + 5);
        let (older, recent) = split_hours(&all);
        assert_eq!(older.len() + recent.len(), all.len());
        // The last hour is on day 40 (04:00): hours from day 10, 00:00 on are inline.
        assert_eq!(older.len(), 24 * 10);
        assert_eq!(recent[0].hour.format("%H:%M").to_string(), "00:00");
        let short = hours(0..24 * 20);
        assert_eq!(split_hours(&short).0.len(), 0, "a short history is all inline");
        assert_eq!(split_hours(&[]), (&[][..], &[][..]));
    }

    #[test]
    fn days_take_the_extremes_and_last_close_and_break_after_holes() {
        // Day 0 whole; day 1 from 02:00 (a 3 h hole: no break); day 2 missing;
        // day 3 from 00:00; day 4 from 04:00 after day 3 ended at 20:00 (8 h: a break).
        let offsets = (0..24).chain(26..48).chain(72..24 * 3 + 21).chain(24 * 4 + 4..24 * 5);
        let days = daily_columns(&hours(offsets));
        assert_eq!(days["t"].as_array().map(Vec::len), Some(4));
        assert_eq!(days["gaps"], serde_json::json!([2, 3]), "{days}");
        // Day 0: hours 0..=23, closes 100..=123.
        assert_eq!(days["t"][0], Utc.with_ymd_and_hms(2026, 1, 1, 23, 0, 0).unwrap().timestamp());
        assert_eq!(
            (&days["h"][0], &days["l"][0], &days["c"][0]),
            (&124.0.into(), &99.0.into(), &123.0.into())
        );
    }

    #[test]
    fn pages_open_on_the_live_part_of_a_long_history() {
        assert_eq!(opening_days(&hours(0..24 * 90)), 30);
        assert_eq!(opening_days(&hours(0..24 * 20)), 7, "everything fits in 30 days, not in 7");
        assert_eq!(opening_days(&hours(0..24 * 5)), 0, "everything fits in 7 days");
        // Ten days of hours, a month without, a day of hours: 30 d holds too few; 7 d as well.
        let sparse = hours((0..240).chain(24 * 40..24 * 40 + 24));
        assert_eq!(opening_days(&sparse), 0);
        // 300 days of hours, then one hour 99 days later: only the last year holds two days of hours.
        let stale = hours((0..24 * 300).chain([24 * 399]));
        assert_eq!(opening_days(&stale), 365);
        assert_eq!(opening_days(&[]), 0);
    }
}
