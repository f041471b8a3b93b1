//! Rows ⇄ Polars: the observations storage reads as the transforms' input
//! frame, and output frames as the columns storage writes. The SQL is in
//! `storage::inputs` and `storage::outputs`.

use chrono::{DateTime, NaiveDate, Utc};
use polars::prelude::*;
use storage::inputs::Observations;
use storage::outputs::Column;
use transforms::utc_datetime;

use crate::TransformError;

/// Observations as read from the tables, as the `transforms` input frame.
pub(crate) fn frame(c: Observations) -> Result<DataFrame, TransformError> {
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
    frame(tick_observations(ticks.iter()))
}

/// Ticks as observations, ingested at their event time.
pub(crate) fn tick_observations<'a>(ticks: impl Iterator<Item = &'a domain::Tick> + Clone) -> Observations {
    let micros = |t: &domain::Tick| t.event_time.timestamp_micros();
    let n = ticks.clone().count();
    Observations {
        coin: ticks.clone().map(|t| Some(t.coin.as_str().to_owned())).collect(),
        ts: ticks.clone().map(|t| Some(micros(t))).collect(),
        price: ticks.clone().map(|t| Some(t.price)).collect(),
        vol_base: ticks.clone().map(|t| t.volume).collect(),
        vol_24h: vec![None; n],
        change: vec![None; n],
        source: ticks.clone().map(|t| t.source.as_str().to_owned()).collect(),
        ingested: ticks.map(micros).collect(),
    }
}

/// A column's values, every one of them present: a null (or a value out of
/// range) is an error naming the column, never "", NaN, 0 or 1970-01-01.
fn present<T>(name: &str, values: impl IntoIterator<Item = Option<T>>) -> Result<Vec<T>, TransformError> {
    values.into_iter().map(|v| v.ok_or_else(|| TransformError::Missing(name.to_owned()))).collect()
}

pub(crate) fn strings(df: &DataFrame, name: &str) -> Result<Vec<String>, TransformError> {
    present(name, df.column(name)?.str()?.iter().map(|v| v.map(str::to_owned)))
}

#[cfg(test)]
pub(crate) fn floats(df: &DataFrame, name: &str) -> Result<Vec<f64>, TransformError> {
    present(name, df.column(name)?.cast(&DataType::Float64)?.f64()?.iter())
}

pub(crate) fn ints(df: &DataFrame, name: &str) -> Result<Vec<i64>, TransformError> {
    present(name, df.column(name)?.cast(&DataType::Int64)?.i64()?.iter())
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

/// One output column of `df`, as storage writes it: nulls stay nulls, and the
/// tables' NOT NULL constraints reject them loudly.
pub(crate) fn column(df: &DataFrame, name: &str, kind: Kind) -> Result<Column, TransformError> {
    let column = df.column(name)?;
    Ok(match kind {
        Kind::Text => Column::Text(column.str()?.iter().map(|v| v.map(str::to_owned)).collect()),
        Kind::Float8 => Column::Float8(column.cast(&DataType::Float64)?.f64()?.iter().collect()),
        Kind::Int4 => Column::Int4(column.strict_cast(&DataType::Int32)?.i32()?.iter().collect()),
        Kind::Int8 => Column::Int8(column.strict_cast(&DataType::Int64)?.i64()?.iter().collect()),
        Kind::Timestamptz => Column::Timestamptz(
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
            Column::Date(
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

/// What a frame column becomes in Postgres.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Text,
    Float8,
    Int4,
    Int8,
    Timestamptz,
    Date,
}

/// `columns` (table column, frame column, kind) of `df`, ready for [`outputs::copy_into`].
pub(crate) fn columns<'a>(
    df: &DataFrame,
    columns: &[(&'a str, &str, Kind)],
) -> Result<Vec<(&'a str, Column)>, TransformError> {
    columns.iter().map(|(table_column, name, kind)| Ok((*table_column, column(df, name, *kind)?))).collect()
}
