//! Shared helpers for the integration tests: building observation frames, reading columns.
#![allow(clippy::unwrap_used, dead_code)]

use polars::prelude::*;
use transforms::utc_datetime;

/// One observation with the columns of the crate docs (`ingested_at` = `ts`).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub coin: String,
    /// Microseconds since the epoch, UTC.
    pub ts: i64,
    pub price: f64,
    pub volume_base: Option<f64>,
    pub source: String,
}

/// The observations frame for `rows`.
pub fn observations(rows: &[Row]) -> LazyFrame {
    let df = df!(
        "coin" => rows.iter().map(|r| r.coin.as_str()).collect::<Vec<_>>(),
        "ts" => rows.iter().map(|r| r.ts).collect::<Vec<_>>(),
        "price" => rows.iter().map(|r| r.price).collect::<Vec<_>>(),
        "volume_base" => rows.iter().map(|r| r.volume_base).collect::<Vec<_>>(),
        "volume_24h" => vec![None::<f64>; rows.len()],
        "change_24h_pct" => vec![None::<f64>; rows.len()],
        "source" => rows.iter().map(|r| r.source.as_str()).collect::<Vec<_>>(),
        "ingested_at" => rows.iter().map(|r| r.ts).collect::<Vec<_>>(),
    )
    .unwrap();
    df.lazy().with_columns([col("ts").cast(utc_datetime()), col("ingested_at").cast(utc_datetime())])
}

/// A Float64 column.
pub fn f64s(df: &DataFrame, name: &str) -> Vec<f64> {
    df.column(name).unwrap().f64().unwrap().into_no_null_iter().collect()
}

/// An integer-backed column (Int64, Date, Datetime) as i64.
pub fn i64s(df: &DataFrame, name: &str) -> Vec<i64> {
    let c = df.column(name).unwrap().cast(&DataType::Int64).unwrap();
    c.i64().unwrap().into_no_null_iter().collect()
}
