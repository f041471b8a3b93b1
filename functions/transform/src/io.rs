//! Postgres ⇄ Polars: reading observations into a frame, writing results back.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use polars::prelude::*;
use tokio_postgres::Transaction;
use transforms::utc_datetime;

use crate::TransformError;

/// An input table: its time column and which of its rows are observations
/// (the `usd` ones: the transforms work in USD).
struct Input {
    table: &'static str,
    time: &'static str,
    filter: &'static str,
}

/// The input tables, each with its own watermark. `OBSERVATIONS` reads the same rows.
const INPUTS: [Input; 3] = [
    Input { table: "price_ticks", time: "event_time", filter: "TRUE" },
    Input { table: "market_snapshots", time: "observed_at", filter: "vs_currency = 'usd'" },
    Input { table: "market_history", time: "ts", filter: "vs_currency = 'usd'" },
];

/// Every stored observation as one shape: the `transforms` crate's input frame.
const OBSERVATIONS: &str = "
    SELECT coin_id, event_time AS ts, price, volume AS volume_base, NULL::float8 AS volume_24h,
           NULL::float8 AS change_24h_pct, source, ingested_at, 'price_ticks' AS input
      FROM price_ticks
    UNION ALL
    SELECT coin_id, observed_at, current_price, NULL, total_volume, price_change_percentage_24h,
           'coingecko', ingested_at, 'market_snapshots'
      FROM market_snapshots WHERE vs_currency = 'usd'
    UNION ALL
    SELECT coin_id, ts, price, NULL, total_volume, NULL, 'history', ingested_at, 'market_history'
      FROM market_history WHERE vs_currency = 'usd'";

/// How far one input table has been transformed, and how far this run goes.
#[derive(Debug, Clone)]
pub(crate) struct Watermark {
    pub input: String,
    /// Rows ingested up to this instant were transformed by earlier runs.
    pub since: Option<DateTime<Utc>>,
    /// This run takes rows ingested up to here (none yet: `None`).
    pub until: Option<DateTime<Utc>>,
}

/// Per input: the watermark so far and the new one. Rows ingested in the last
/// `lag_secs` wait for the next run, so a transaction that started earlier but
/// commits late is never skipped.
pub(crate) async fn watermarks(
    tx: &Transaction<'_>,
    lag_secs: f64,
) -> Result<Vec<Watermark>, TransformError> {
    let mut marks = Vec::with_capacity(INPUTS.len());
    for Input { table, filter, .. } in &INPUTS {
        // One table at a time, so max(ingested_at) comes from its index, not a scan.
        let row = tx
            .query_one(
                &format!(
                    "SELECT (SELECT ingested_until FROM transform_watermarks WHERE input = $1),
                            LEAST((SELECT max(ingested_at) FROM {table} WHERE {filter}),
                                  now() - make_interval(secs => $2))"
                ),
                &[table, &lag_secs],
            )
            .await
            .map_err(|e| TransformError::query("read the watermarks", e))?;
        marks.push(Watermark { input: (*table).to_owned(), since: row.get(0), until: row.get(1) });
    }
    Ok(marks)
}

/// UTC days of observations ingested in `(since, until]` of any input.
pub(crate) async fn affected_days(
    tx: &Transaction<'_>,
    marks: &[Watermark],
) -> Result<BTreeSet<NaiveDate>, TransformError> {
    let mut days = BTreeSet::new();
    for (Input { table, time, filter }, mark) in INPUTS.iter().zip(marks) {
        let rows = tx
            .query(
                &format!(
                    "SELECT DISTINCT ({time} AT TIME ZONE 'UTC')::date FROM {table}
                      WHERE {filter} AND ingested_at > coalesce($1, '-infinity'::timestamptz)
                        AND ingested_at <= $2"
                ),
                &[&mark.since, &mark.until],
            )
            .await
            .map_err(|e| TransformError::query("find the days new rows touch", e))?;
        days.extend(rows.iter().map(|r| r.get::<_, NaiveDate>(0)));
    }
    Ok(days)
}

/// Observations with `from <= ts < to` (all of them when unbounded), ingested
/// no later than each input's new watermark, as the `transforms` input frame.
pub(crate) async fn load(
    tx: &Transaction<'_>,
    marks: &[Watermark],
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<DataFrame, TransformError> {
    let inputs: Vec<&str> = marks.iter().map(|m| m.input.as_str()).collect();
    let until: Vec<Option<DateTime<Utc>>> = marks.iter().map(|m| m.until).collect();
    let rows = tx
        .query(
            &format!(
                "SELECT o.coin_id, (extract(epoch FROM o.ts) * 1000000)::int8, o.price, o.volume_base,
                        o.volume_24h, o.change_24h_pct, o.source,
                        (extract(epoch FROM o.ingested_at) * 1000000)::int8
                   FROM ({OBSERVATIONS}) o
                   JOIN unnest($1::text[], $2::timestamptz[]) AS w(input, until) USING (input)
                  WHERE o.ingested_at <= w.until
                    AND ($3::timestamptz IS NULL OR o.ts >= $3) AND ($4::timestamptz IS NULL OR o.ts < $4)"
            ),
            &[&inputs, &until, &from, &to],
        )
        .await
        .map_err(|e| TransformError::query("read observations", e))?;
    let n = rows.len();
    let (mut coin, mut ts, mut price, mut vol_base, mut vol_24h, mut change, mut source, mut ingested) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for r in &rows {
        coin.push(r.get::<_, Option<String>>(0));
        ts.push(r.get::<_, Option<i64>>(1));
        price.push(r.get::<_, Option<f64>>(2));
        vol_base.push(r.get::<_, Option<f64>>(3));
        vol_24h.push(r.get::<_, Option<f64>>(4));
        change.push(r.get::<_, Option<f64>>(5));
        source.push(r.get::<_, String>(6));
        ingested.push(r.get::<_, i64>(7));
    }
    frame(Columns { coin, ts, price, vol_base, vol_24h, change, source, ingested })
}

/// The observations frame's columns, times in Unix microseconds.
struct Columns {
    coin: Vec<Option<String>>,
    ts: Vec<Option<i64>>,
    price: Vec<Option<f64>>,
    vol_base: Vec<Option<f64>>,
    vol_24h: Vec<Option<f64>>,
    change: Vec<Option<f64>>,
    source: Vec<String>,
    ingested: Vec<i64>,
}

fn frame(c: Columns) -> Result<DataFrame, TransformError> {
    Ok(df!(
        "coin" => c.coin,
        "ts" => c.ts,
        "price" => c.price,
        "volume_base" => c.vol_base,
        "volume_24h" => c.vol_24h,
        "change_24h_pct" => c.change,
        "source" => c.source,
        "ingested_at" => c.ingested,
    )?
    .lazy()
    .with_columns([col("ts").cast(utc_datetime()), col("ingested_at").cast(utc_datetime())])
    .collect()?)
}

/// Ticks (stream ticks, replayed or shipped candles) as the observations frame
/// the transforms take, built in memory: the benchmark's compute-only input.
pub fn ticks_frame(ticks: &[domain::Tick]) -> Result<DataFrame, TransformError> {
    let micros = |t: &domain::Tick| t.event_time.timestamp_micros();
    frame(Columns {
        coin: ticks.iter().map(|t| Some(t.coin.as_str().to_owned())).collect(),
        ts: ticks.iter().map(|t| Some(micros(t))).collect(),
        price: ticks.iter().map(|t| Some(t.price)).collect(),
        vol_base: ticks.iter().map(|t| t.volume).collect(),
        vol_24h: vec![None; ticks.len()],
        change: vec![None; ticks.len()],
        source: ticks.iter().map(|t| t.source.as_str().to_owned()).collect(),
        ingested: ticks.iter().map(micros).collect(),
    })
}

/// A column's values, every one of them present: a null (or a value out of
/// range) is an error naming the column, never "", NaN, 0 or 1970-01-01.
fn present<T>(name: &str, values: impl IntoIterator<Item = Option<T>>) -> Result<Vec<T>, TransformError> {
    values.into_iter().map(|v| v.ok_or_else(|| TransformError::Missing(name.to_owned()))).collect()
}

pub(crate) fn strings(df: &DataFrame, name: &str) -> Result<Vec<String>, TransformError> {
    present(name, df.column(name)?.str()?.iter().map(|v| v.map(str::to_owned)))
}

pub(crate) fn floats(df: &DataFrame, name: &str) -> Result<Vec<f64>, TransformError> {
    present(name, df.column(name)?.cast(&DataType::Float64)?.f64()?.iter())
}

pub(crate) fn ints(df: &DataFrame, name: &str) -> Result<Vec<i64>, TransformError> {
    present(name, df.column(name)?.cast(&DataType::Int64)?.i64()?.iter())
}

/// [`ints`] for an `int4` column.
pub(crate) fn int4s(df: &DataFrame, name: &str) -> Result<Vec<i32>, TransformError> {
    present(name, ints(df, name)?.into_iter().map(|n| i32::try_from(n).ok()))
}

/// A datetime column (µs since the epoch underneath) as UTC instants.
pub(crate) fn instants(df: &DataFrame, name: &str) -> Result<Vec<DateTime<Utc>>, TransformError> {
    let column = df.column(name)?.cast(&utc_datetime())?;
    present(
        name,
        column
            .cast(&DataType::Int64)?
            .i64()?
            .iter()
            .map(|us| us.and_then(DateTime::<Utc>::from_timestamp_micros)),
    )
}

/// What a column becomes in Postgres.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Text,
    Float8,
    Int4,
    Timestamptz,
    Date,
}

/// One output column read out of a frame. Nulls stay nulls, never "", NaN, 0
/// or 1970-01-01: the tables' NOT NULL constraints reject them loudly.
enum Values {
    Text(Vec<Option<String>>),
    Float8(Vec<Option<f64>>),
    Int4(Vec<Option<i32>>),
    Timestamptz(Vec<Option<DateTime<Utc>>>),
    Date(Vec<Option<NaiveDate>>),
}

impl Values {
    fn read(df: &DataFrame, name: &str, kind: Kind) -> Result<Self, TransformError> {
        let column = df.column(name)?;
        Ok(match kind {
            Kind::Text => Self::Text(column.str()?.iter().map(|v| v.map(str::to_owned)).collect()),
            Kind::Float8 => Self::Float8(column.cast(&DataType::Float64)?.f64()?.iter().collect()),
            Kind::Int4 => Self::Int4(column.strict_cast(&DataType::Int32)?.i32()?.iter().collect()),
            Kind::Timestamptz => Self::Timestamptz(
                column
                    .cast(&utc_datetime())?
                    .cast(&DataType::Int64)?
                    .i64()?
                    .iter()
                    .map(|us| us.and_then(DateTime::<Utc>::from_timestamp_micros))
                    .collect(),
            ),
            Kind::Date => {
                let epoch = NaiveDate::from_epoch_days(0);
                Self::Date(
                    column
                        .cast(&DataType::Int32)?
                        .i32()?
                        .iter()
                        .map(|d| d.and_then(|d| epoch?.checked_add_signed(chrono::Duration::days(d.into()))))
                        .collect(),
                )
            }
        })
    }

    fn at(&self, row: usize) -> &(dyn tokio_postgres::types::ToSql + Sync) {
        match self {
            Self::Text(v) => &v[row],
            Self::Float8(v) => &v[row],
            Self::Int4(v) => &v[row],
            Self::Timestamptz(v) => &v[row],
            Self::Date(v) => &v[row],
        }
    }
}

/// Appends every row of `df` to `table` with binary `COPY`: `columns` maps
/// the table's columns to the frame's, in order. The one write path of the
/// transform's output tables (their recomputed days are deleted first).
pub(crate) async fn copy_into(
    tx: &Transaction<'_>,
    table: &str,
    columns: &[(&str, &str, Kind)],
    df: &DataFrame,
) -> Result<u64, TransformError> {
    use tokio_postgres::types::Type;
    let what = || format!("store {table}");
    let names: Vec<&str> = columns.iter().map(|(column, ..)| *column).collect();
    let types: Vec<Type> = columns
        .iter()
        .map(|(.., kind)| match kind {
            Kind::Text => Type::TEXT,
            Kind::Float8 => Type::FLOAT8,
            Kind::Int4 => Type::INT4,
            Kind::Timestamptz => Type::TIMESTAMPTZ,
            Kind::Date => Type::DATE,
        })
        .collect();
    let values: Vec<Values> =
        columns.iter().map(|(_, name, kind)| Values::read(df, name, *kind)).collect::<Result<_, _>>()?;
    let sink = tx
        .copy_in(&format!("COPY {table} ({}) FROM STDIN (FORMAT binary)", names.join(", ")))
        .await
        .map_err(|e| TransformError::query(what(), e))?;
    let writer = tokio_postgres::binary_copy::BinaryCopyInWriter::new(sink, &types);
    futures::pin_mut!(writer);
    let mut row: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = Vec::with_capacity(values.len());
    for i in 0..df.height() {
        row.clear();
        row.extend(values.iter().map(|v| v.at(i)));
        writer.as_mut().write(&row).await.map_err(|e| TransformError::query(what(), e))?;
    }
    writer.finish().await.map_err(|e| TransformError::query(what(), e))
}
