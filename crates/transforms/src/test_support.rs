//! Builders for literal observation frames in unit tests.
#![allow(clippy::unwrap_used)]

use polars::prelude::*;

use crate::expr::utc_datetime;
use crate::{CleanConfig, clean};

/// Microseconds since the epoch of an RFC 3339 timestamp with any offset.
pub(crate) fn us(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339).unwrap().with_timezone(&chrono::Utc).timestamp_micros()
}

/// One observation row; build with [`obs`] and the setters.
#[derive(Debug, Clone)]
pub(crate) struct Obs {
    pub coin: Option<String>,
    pub ts: Option<i64>,
    pub price: Option<f64>,
    pub volume_base: Option<f64>,
    pub volume_24h: Option<f64>,
    pub change_24h_pct: Option<f64>,
    pub source: String,
    pub ingested_at: i64,
}

/// A `simulated` observation ingested at its own time.
pub(crate) fn obs(coin: &str, ts: &str, price: f64) -> Obs {
    Obs {
        coin: Some(coin.to_owned()),
        ts: Some(us(ts)),
        price: Some(price),
        volume_base: None,
        volume_24h: None,
        change_24h_pct: None,
        source: "simulated".to_owned(),
        ingested_at: us(ts),
    }
}

impl Obs {
    pub fn source(mut self, source: &str) -> Self {
        self.source = source.to_owned();
        self
    }
    pub fn ingested(mut self, ts: &str) -> Self {
        self.ingested_at = us(ts);
        self
    }
    pub fn volume_base(mut self, v: f64) -> Self {
        self.volume_base = Some(v);
        self
    }
    pub fn volume_24h(mut self, v: f64) -> Self {
        self.volume_24h = Some(v);
        self
    }
    pub fn change(mut self, pct: f64) -> Self {
        self.change_24h_pct = Some(pct);
        self
    }
    pub fn no_price(mut self) -> Self {
        self.price = None;
        self
    }
    pub fn no_coin(mut self) -> Self {
        self.coin = None;
        self
    }
    pub fn no_ts(mut self) -> Self {
        self.ts = None;
        self
    }
}

/// The observations frame of the crate docs, from rows.
pub(crate) fn frame(rows: &[Obs]) -> LazyFrame {
    let col_of = |f: fn(&Obs) -> Option<f64>| rows.iter().map(f).collect::<Vec<_>>();
    let df = df!(
        "coin" => rows.iter().map(|r| r.coin.clone()).collect::<Vec<_>>(),
        "ts" => rows.iter().map(|r| r.ts).collect::<Vec<_>>(),
        "price" => col_of(|r| r.price),
        "volume_base" => col_of(|r| r.volume_base),
        "volume_24h" => col_of(|r| r.volume_24h),
        "change_24h_pct" => col_of(|r| r.change_24h_pct),
        "source" => rows.iter().map(|r| r.source.clone()).collect::<Vec<_>>(),
        "ingested_at" => rows.iter().map(|r| r.ingested_at).collect::<Vec<_>>(),
    )
    .unwrap();
    df.lazy().with_columns([col("ts").cast(utc_datetime()), col("ingested_at").cast(utc_datetime())])
}

/// Observations of one coin, one per hour from 2024-01-01T00:`minute`, with the given prices.
pub(crate) fn hourly_series(coin: &str, minute: u32, prices: &[f64]) -> Vec<Obs> {
    prices
        .iter()
        .enumerate()
        .map(|(h, p)| obs(coin, &format!("2024-01-01T{h:02}:{minute:02}:00Z"), *p))
        .collect()
}

/// The rows' frame through [`clean`] with the default configuration.
pub(crate) fn cleaned(rows: &[Obs]) -> LazyFrame {
    clean(frame(rows), &CleanConfig::default())
}

/// Expected non-null String column values, as [`strs`] returns them.
pub(crate) fn owned(values: &[&str]) -> Vec<Option<String>> {
    values.iter().map(|s| Some((*s).to_owned())).collect()
}

/// A String column as owned optional values.
pub(crate) fn strs(df: &DataFrame, name: &str) -> Vec<Option<String>> {
    df.column(name).unwrap().str().unwrap().iter().map(|s| s.map(str::to_owned)).collect()
}

/// A Float64 column.
pub(crate) fn f64s(df: &DataFrame, name: &str) -> Vec<f64> {
    df.column(name).unwrap().f64().unwrap().into_no_null_iter().collect()
}

/// An integer-backed column (Int64, Datetime as µs) as i64.
pub(crate) fn i64s(df: &DataFrame, name: &str) -> Vec<i64> {
    df.column(name).unwrap().cast(&DataType::Int64).unwrap().i64().unwrap().into_no_null_iter().collect()
}

/// A Date column as `YYYY-MM-DD` strings.
pub(crate) fn days(df: &DataFrame, name: &str) -> Vec<String> {
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
    df.column(name)
        .unwrap()
        .cast(&DataType::Int32)
        .unwrap()
        .i32()
        .unwrap()
        .into_no_null_iter()
        .map(|d| (epoch + chrono::Duration::days(i64::from(d))).to_string())
        .collect()
}
