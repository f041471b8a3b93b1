//! The transforms on the real Binance hourly candles shipped in `data/binance_1h`, checked
//! against independent plain-Rust computations.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::OnceLock;

use chrono::{DateTime, NaiveDate, Utc};
use common::{Row, f64s, i64s, observations};
use polars::prelude::*;
use transforms::{
    AlertConfig, CleanConfig, alerts, classify, clean, daily_ranking, daily_volume, drop_counts, hourly,
};

const FILES: [(&str, &str); 5] = [
    ("BTCUSDT_1h.csv", "bitcoin"),
    ("ETHUSDT_1h.csv", "ethereum"),
    ("SOLUSDT_1h.csv", "solana"),
    ("XRPUSDT_1h.csv", "ripple"),
    ("BNBUSDT_1h.csv", "binancecoin"),
];

/// One candle as the tests need it.
#[derive(Debug, Clone)]
struct Candle {
    coin: &'static str,
    ts: DateTime<Utc>,
    close: f64,
    volume: f64,
}

/// All five files, parsed once and shared by the tests (which run in parallel).
fn candles() -> &'static [Candle] {
    static CANDLES: OnceLock<Vec<Candle>> = OnceLock::new();
    CANDLES.get_or_init(|| {
        let data = dataset::DataDir::locate().unwrap();
        let mut out = Vec::new();
        for (file, coin) in FILES {
            // Read compressed; local offsets (+02:00/+03:00) come out in UTC.
            let path = data.file(&format!("binance_1h/{file}")).unwrap();
            for c in dataset::read_candles(&path).unwrap() {
                out.push(Candle { coin, ts: c.open_time, close: c.close, volume: c.volume });
            }
        }
        out
    })
}

fn real_observations() -> LazyFrame {
    let rows: Vec<Row> = candles()
        .iter()
        .map(|c| Row {
            coin: c.coin.to_owned(),
            ts: c.ts.timestamp_micros(),
            price: c.close,
            volume_base: Some(c.volume),
            source: "replay".to_owned(),
        })
        .collect();
    observations(&rows)
}

fn strs(df: &DataFrame, name: &str) -> Vec<String> {
    let c = df.column(name).unwrap().str().unwrap();
    c.iter().map(|s| s.unwrap().to_owned()).collect()
}

fn dates(df: &DataFrame, name: &str) -> Vec<NaiveDate> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
    i64s(df, name).into_iter().map(|d| epoch + chrono::Duration::days(d)).collect()
}

fn assert_close(actual: f64, expected: f64, what: &str) {
    let scale = actual.abs().max(expected.abs()).max(f64::MIN_POSITIVE);
    assert!((actual - expected).abs() / scale <= 1e-9, "{what}: {actual} != {expected}");
}

/// Candles per coin, in time order.
fn by_coin() -> HashMap<&'static str, Vec<&'static Candle>> {
    let mut map: HashMap<&str, Vec<&Candle>> = HashMap::new();
    for c in candles() {
        map.entry(c.coin).or_default().push(c);
    }
    for v in map.values_mut() {
        v.sort_by_key(|c| c.ts);
    }
    map
}

#[test]
fn cleaning_drops_nothing() {
    // Real hourly candles of large caps never move more than 50 % from their 6-hour
    // median, and the files have no duplicates, nulls or non-positive prices.
    let classified = classify(real_observations(), &CleanConfig::default());
    let counts = drop_counts(classified).collect().unwrap();
    assert_eq!(counts.height(), 0, "{counts}");
}

#[test]
fn hourly_candles_mirror_the_input_candles() {
    let candles_df = hourly(clean(real_observations(), &CleanConfig::default())).collect().unwrap();
    assert_eq!(candles_df.height(), candles().len());
    assert!(i64s(&candles_df, "observations").iter().all(|n| *n == 1));
    assert_eq!(f64s(&candles_df, "open"), f64s(&candles_df, "close"));
}

#[test]
fn one_hour_alert_counts_match_the_data_readme() {
    let df = alerts(hourly(clean(real_observations(), &CleanConfig::default())), &AlertConfig::default())
        .collect()
        .unwrap();
    let mut counts: HashMap<String, usize> = HashMap::new();
    for coin in strs(&df, "coin") {
        *counts.entry(coin).or_default() += 1;
    }

    // Independent count: consecutive candles exactly one hour apart, strictly beyond 5 %.
    let mut independent: HashMap<String, usize> = HashMap::new();
    for (coin, series) in by_coin() {
        let n = series
            .windows(2)
            .filter(|w| {
                (w[1].ts - w[0].ts).num_seconds() == 3600
                    && (w[1].close / w[0].close - 1.0).abs() > 0.05 + 1e-9
            })
            .count();
        independent.insert(coin.to_owned(), n);
    }

    let readme = [("bitcoin", 28), ("ethereum", 83), ("binancecoin", 122), ("ripple", 268), ("solana", 363)];
    for (coin, expected) in readme {
        assert_eq!(counts.get(coin).copied().unwrap_or(0), expected, "{coin}");
        assert_eq!(independent[coin], expected, "{coin} (plain Rust)");
    }
    assert!(i64s(&df, "window_secs").iter().all(|s| *s == 3600));
}

#[test]
fn daily_interval_volume_matches_plain_rust() {
    let df = daily_volume(clean(real_observations(), &CleanConfig::default())).collect().unwrap();

    let mut expected: HashMap<(String, NaiveDate), f64> = HashMap::new();
    for c in candles() {
        *expected.entry((c.coin.to_owned(), c.ts.date_naive())).or_default() += c.volume * c.close;
    }

    assert_eq!(df.height(), expected.len());
    assert!(strs(&df, "method").iter().all(|m| m == "interval_sum"));
    let (coins, days, volumes) = (strs(&df, "coin"), dates(&df, "day"), f64s(&df, "volume_usd"));
    let mut previous: Option<(&String, NaiveDate)> = None;
    for ((coin, day), volume) in coins.iter().zip(days).zip(volumes) {
        let want = expected[&(coin.clone(), day)];
        assert_close(volume, want, &format!("{coin} {day}"));
        assert!(previous < Some((coin, day)), "not sorted by coin, day");
        previous = Some((coin, day));
    }
}

#[test]
fn daily_ranking_matches_plain_rust() {
    let df = daily_ranking(clean(real_observations(), &CleanConfig::default())).collect().unwrap();

    // Last close of each coin and UTC day.
    let mut last: HashMap<(&str, NaiveDate), (DateTime<Utc>, f64)> = HashMap::new();
    for c in candles() {
        let entry = last.entry((c.coin, c.ts.date_naive())).or_insert((c.ts, c.close));
        if c.ts >= entry.0 {
            *entry = (c.ts, c.close);
        }
    }
    // (day, coin, last, prev, performance) for coin-days with a previous day.
    let mut ranked: Vec<(NaiveDate, &str, f64, f64, f64)> = last
        .iter()
        .filter_map(|(&(coin, day), &(_, price))| {
            let (_, prev) = *last.get(&(coin, day.pred_opt()?))?;
            Some((day, coin, price, prev, price / prev - 1.0))
        })
        .collect();
    ranked.sort_by(|a, b| a.0.cmp(&b.0).then(b.4.total_cmp(&a.4)).then(a.1.cmp(b.1)));

    assert_eq!(df.height(), ranked.len());
    let (coins, days) = (strs(&df, "coin"), dates(&df, "day"));
    let (lasts, prevs) = (f64s(&df, "last_price"), f64s(&df, "prev_last_price"));
    let (perfs, ranks) = (f64s(&df, "performance"), i64s(&df, "rank"));
    let mut rank = 0;
    for (i, (day, coin, price, prev, perf)) in ranked.iter().enumerate() {
        rank = if i > 0 && ranked[i - 1].0 == *day { rank + 1 } else { 1 };
        let what = format!("row {i}: {coin} {day}");
        assert_eq!((coins[i].as_str(), days[i]), (*coin, *day), "{what}");
        assert_close(lasts[i], *price, &what);
        assert_close(prevs[i], *prev, &what);
        assert_close(perfs[i], *perf, &what);
        assert_eq!(ranks[i], rank, "{what}");
    }
}
