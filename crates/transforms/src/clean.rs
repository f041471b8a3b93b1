//! Cleaning: tag every observation with why it is unusable, or keep it.

use std::time::Duration as StdDuration;

use polars::prelude::*;

use crate::TransformError;
use crate::expr::{over, sort_by};

/// How [`classify`] decides that a price is aberrant.
#[derive(Debug, Clone, PartialEq)]
pub struct CleanConfig {
    /// Largest accepted relative distance from the neighbourhood median:
    /// a price is aberrant when `|price / median - 1| > max_deviation`. Default 0.5 (50 %).
    pub max_deviation: f64,
    /// Length of the trailing window `(ts - neighbourhood, ts]` whose median a price is
    /// compared with. Default 6 hours.
    pub neighbourhood: StdDuration,
}

impl Default for CleanConfig {
    fn default() -> Self {
        Self { max_deviation: 0.5, neighbourhood: StdDuration::from_secs(6 * 3600) }
    }
}

impl CleanConfig {
    /// Checks the values once, at start-up; the transforms do not re-check them.
    pub fn validate(&self) -> Result<(), TransformError> {
        if !(self.max_deviation.is_finite() && self.max_deviation > 0.0) {
            return Err(TransformError::InvalidMaxDeviation(self.max_deviation));
        }
        if self.neighbourhood.as_micros() == 0 {
            return Err(TransformError::EmptyNeighbourhood);
        }
        Ok(())
    }

    /// The neighbourhood as a Polars duration, in whole microseconds (the `ts` unit).
    fn neighbourhood_duration(&self) -> Duration {
        // Capped so that the nanosecond count Polars keeps internally cannot overflow.
        let us = i64::try_from(self.neighbourhood.as_micros()).unwrap_or(i64::MAX).min(i64::MAX / 1_000);
        // "<n>us" with a non-negative integer n always parses.
        Duration::parse(&format!("{us}us"))
    }
}

/// Why [`classify`] dropped an observation; `as_str` is the value of `drop_reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// `coin`, `ts` or `price` is null.
    MissingField,
    /// Another row has the same coin, ts and source and was ingested later.
    Duplicate,
    /// The price is not finite or not positive.
    InvalidPrice,
    /// The price is too far from the median of its neighbourhood.
    AberrantPrice,
}

impl DropReason {
    /// Every reason, in the order [`classify`] checks them.
    pub const ALL: [DropReason; 4] = [
        DropReason::MissingField,
        DropReason::Duplicate,
        DropReason::InvalidPrice,
        DropReason::AberrantPrice,
    ];

    /// The value stored in the `drop_reason` column.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::MissingField => "missing_field",
            DropReason::Duplicate => "duplicate",
            DropReason::InvalidPrice => "invalid_price",
            DropReason::AberrantPrice => "aberrant_price",
        }
    }
}

impl std::fmt::Display for DropReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

const ROW: &str = "__row";
const MISSING: &str = "__missing";
const DUPLICATE: &str = "__duplicate";
const INVALID: &str = "__invalid";
const MEDIAN: &str = "__median";

/// Adds a `drop_reason: String` column to observations; null means the row is kept.
///
/// Reasons are checked in this order, the first that applies wins:
///
/// 1. `"missing_field"`: `coin`, `ts` or `price` is null.
/// 2. `"duplicate"`: another row has the same `coin`, `ts` and `source`. Of such a group the
///    row with the latest `ingested_at` is kept (a null `ingested_at` counts as oldest);
///    ties go to a finite positive price, then to the higher price, then to the earlier
///    input row, so the choice is deterministic.
/// 3. `"invalid_price"`: the price is NaN, infinite, zero or negative.
/// 4. `"aberrant_price"`: `|price / median - 1| > config.max_deviation`, where `median` is
///    the median price of the same coin's observations that passed checks 1–3, across all
///    sources, in the **trailing neighbourhood** `(ts - config.neighbourhood, ts]`: the window
///    ends at the observation's own time and includes it (and any other row at the same
///    instant). With an even count the median is the mean of the two middle values.
///
/// Because the window only looks back, the first observations of a series are judged
/// against little history (the very first one only against itself, so it is never
/// aberrant); a spike is reliably caught once the window holds at least two normal prices
/// before it.
///
/// The output keeps every input row, in input order, with all input columns.
pub fn classify(observations: LazyFrame, config: &CleanConfig) -> LazyFrame {
    let price_ok = col("price").is_finite().and(col("price").gt(lit(0.0)));
    let tagged = observations
        .with_row_index(ROW, None)
        .with_column(col("coin").is_null().or(col("ts").is_null()).or(col("price").is_null()).alias(MISSING))
        // Put the row to keep first in each (coin, ts, source) group; a row is then a
        // duplicate exactly when the row before it has the same key. This is vectorised,
        // unlike a per-group sort inside a window, which matters on 100k+ rows.
        .sort_by_exprs(
            [
                col(MISSING),
                col("coin"),
                col("ts"),
                col("source"),
                col("ingested_at"),
                price_ok.clone(),
                col("price"),
                col(ROW),
            ],
            SortMultipleOptions::default()
                .with_order_descending_multi([false, false, false, false, true, true, true, false])
                .with_nulls_last(true),
        )
        .with_columns([
            col(MISSING).not().and(same_as_previous_row(&["coin", "ts", "source"])).alias(DUPLICATE),
            price_ok.not().alias(INVALID),
        ]);

    let remaining = col(MISSING).not().and(col(DUPLICATE).not()).and(col(INVALID).not());
    let window = RollingOptionsDynamicWindow {
        window_size: config.neighbourhood_duration(),
        min_periods: 1,
        closed_window: ClosedWindow::Right,
        fn_params: None,
    };
    // Polars' look-behind windows include every row at the window's end instant, so rows
    // sharing a timestamp (several sources) all see each other.
    let medians = sort_by(tagged.clone().filter(remaining), &["coin", "ts"])
        .with_column(over(col("price").rolling_median_by(col("ts"), window), &["coin"]).alias(MEDIAN))
        .select([col(ROW), col(MEDIAN)]);

    let aberrant = (col("price") / col(MEDIAN) - lit(1.0)).abs().gt(lit(config.max_deviation));
    let reason = when(col(MISSING))
        .then(lit(DropReason::MissingField.as_str()))
        .when(col(DUPLICATE))
        .then(lit(DropReason::Duplicate.as_str()))
        .when(col(INVALID))
        .then(lit(DropReason::InvalidPrice.as_str()))
        .when(aberrant)
        .then(lit(DropReason::AberrantPrice.as_str()))
        .otherwise(lit(NULL).cast(DataType::String))
        .alias("drop_reason");

    tagged
        .join(medians, [col(ROW)], [col(ROW)], JoinArgs::new(JoinType::Left))
        .with_column(reason)
        .sort_by_exprs([col(ROW)], SortMultipleOptions::default())
        .drop(cols([ROW, MISSING, DUPLICATE, INVALID, MEDIAN]))
}

/// True when every given column equals (nulls included) its value on the previous row.
fn same_as_previous_row(columns: &[&str]) -> Expr {
    columns
        .iter()
        .map(|c| col(*c).eq_missing(col(*c).shift(lit(1))))
        .reduce(Expr::and)
        .unwrap_or(lit(false))
        // The first row has no predecessor: its shifted values are null.
        .fill_null(lit(false))
}

/// [`classify`], then keep only rows with a null `drop_reason` and remove that column.
///
/// Same columns as the input, sorted by `coin`, `ts`, `source` (unique after cleaning, so
/// the order does not depend on the input order).
pub fn clean(observations: LazyFrame, config: &CleanConfig) -> LazyFrame {
    kept(classify(observations, config))
}

/// The rows of [`classify`] output that were kept, as [`clean`] returns them:
/// for callers that need both the drop counts and the clean rows without
/// classifying twice.
pub fn kept(classified: LazyFrame) -> LazyFrame {
    let kept = classified.filter(col("drop_reason").is_null()).drop(cols(["drop_reason"]));
    sort_by(kept, &["coin", "ts", "source"])
}

/// Rows dropped per reason, from [`classify`] output.
///
/// Columns `reason: String`, `rows: Int64`; only reasons that dropped at least one row
/// appear; sorted by `reason`.
pub fn drop_counts(classified: LazyFrame) -> LazyFrame {
    let counts = classified
        .filter(col("drop_reason").is_not_null())
        .group_by([col("drop_reason").alias("reason")])
        .agg([len().cast(DataType::Int64).alias("rows")]);
    sort_by(counts, &["reason"])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{Obs, cleaned, f64s, frame, hourly_series, i64s, obs, owned, strs, us};

    fn reasons(rows: &[Obs]) -> Vec<Option<String>> {
        let df = classify(frame(rows), &CleanConfig::default()).collect().unwrap();
        strs(&df, "drop_reason")
    }

    #[test]
    fn single_observation_is_kept() {
        assert_eq!(reasons(&[obs("bitcoin", "2024-01-01T00:00:00Z", 42_000.0)]), vec![None]);
    }

    #[test]
    fn null_fields_are_missing_field() {
        let rows = [
            obs("bitcoin", "2024-01-01T00:00:00Z", 1.0).no_price(),
            obs("bitcoin", "2024-01-01T00:00:00Z", 1.0).no_coin(),
            obs("bitcoin", "2024-01-01T00:00:00Z", 1.0).no_ts(),
            obs("bitcoin", "2024-01-01T00:00:00Z", 1.0),
        ];
        let missing = Some("missing_field".to_owned());
        assert_eq!(reasons(&rows), vec![missing.clone(), missing.clone(), missing, None]);
    }

    #[test]
    fn missing_field_wins_over_other_reasons() {
        // Same key as a valid row, but missing its price: not a "duplicate" of it, and the
        // valid row must not be dropped because of it.
        let rows = [
            obs("bitcoin", "2024-01-01T00:00:00Z", 1.0).no_price().ingested("2024-01-02T00:00:00Z"),
            obs("bitcoin", "2024-01-01T00:00:00Z", 1.0),
        ];
        assert_eq!(reasons(&rows), vec![Some("missing_field".to_owned()), None]);
    }

    #[test]
    fn duplicates_keep_the_latest_ingested() {
        let rows = [
            obs("bitcoin", "2024-01-01T00:00:00Z", 101.0).ingested("2024-01-01T00:05:00Z"),
            obs("bitcoin", "2024-01-01T00:00:00Z", 100.0).ingested("2024-01-01T00:01:00Z"),
            obs("bitcoin", "2024-01-01T00:00:00Z", 102.0).ingested("2024-01-01T00:03:00Z"),
            // Same instant, other source: not a duplicate.
            obs("bitcoin", "2024-01-01T00:00:00Z", 100.5).source("replay"),
            // Other coin: not a duplicate.
            obs("ethereum", "2024-01-01T00:00:00Z", 100.0),
        ];
        let dup = Some("duplicate".to_owned());
        assert_eq!(reasons(&rows), vec![None, dup.clone(), dup, None, None]);
        let kept = cleaned(&rows).collect().unwrap();
        // replay sorts before simulated.
        assert_eq!(f64s(&kept, "price"), vec![100.5, 101.0, 100.0]);
    }

    #[test]
    fn duplicate_ties_are_broken_independently_of_row_order() {
        let a = obs("bitcoin", "2024-01-01T00:00:00Z", 100.0);
        let b = obs("bitcoin", "2024-01-01T00:00:00Z", 200.0);
        let c = obs("bitcoin", "2024-01-01T00:00:00Z", f64::NAN);
        let forward = cleaned(&[a.clone(), b.clone(), c.clone()]).collect().unwrap();
        let backward = cleaned(&[c, b, a]).collect().unwrap();
        assert!(forward.equals_missing(&backward));
        // A valid price wins the tie over NaN, then the higher price.
        assert_eq!(f64s(&forward, "price"), vec![200.0]);
    }

    #[test]
    fn invalid_prices() {
        let rows = [
            obs("bitcoin", "2024-01-01T00:00:00Z", f64::NAN),
            obs("bitcoin", "2024-01-01T01:00:00Z", f64::INFINITY),
            obs("bitcoin", "2024-01-01T02:00:00Z", 0.0),
            obs("bitcoin", "2024-01-01T03:00:00Z", -5.0),
            obs("bitcoin", "2024-01-01T04:00:00Z", 5.0),
        ];
        let invalid = Some("invalid_price".to_owned());
        assert_eq!(reasons(&rows), vec![invalid.clone(), invalid.clone(), invalid.clone(), invalid, None]);
    }

    #[test]
    fn spike_in_steady_series_is_aberrant_and_neighbours_stay() {
        let mut prices = vec![100.0, 101.0, 99.0, 100.5, 100.0, 99.5, 100.0];
        prices.extend([300.0, 100.0, 101.0, 99.0, 100.0, 100.0]);
        let got = reasons(&hourly_series("bitcoin", 0, &prices));
        let mut expected = vec![None; prices.len()];
        expected[7] = Some("aberrant_price".to_owned());
        assert_eq!(got, expected);
    }

    #[test]
    fn neighbourhood_spans_sources_and_is_per_coin() {
        // A replayed spike at the same instant as a simulated normal price: the median
        // of (ts - 6 h, ts] includes both, plus the earlier history.
        let mut rows = hourly_series("bitcoin", 0, &[100.0, 100.0, 100.0, 100.0]);
        rows.push(obs("bitcoin", "2024-01-01T03:00:00Z", 400.0).source("replay"));
        // Another coin at a very different price level is judged on its own.
        rows.push(obs("ethereum", "2024-01-01T03:00:00Z", 3.0));
        let got = reasons(&rows);
        assert_eq!(got[4], Some("aberrant_price".to_owned()));
        assert_eq!(got[5], None);
        assert!(got[..4].iter().all(Option::is_none));
    }

    #[test]
    fn the_neighbourhood_is_trailing_and_bounded() {
        // With a 2 h neighbourhood, the price at 05:00 only sees (03:00, 05:00]: the old
        // level at 00:00–03:00 no longer counts, so the new level is not aberrant.
        let rows = hourly_series("bitcoin", 0, &[100.0, 100.0, 100.0, 100.0, 300.0, 300.0, 300.0]);
        let config =
            CleanConfig { neighbourhood: StdDuration::from_secs(2 * 3600), ..CleanConfig::default() };
        let df = classify(frame(&rows), &config).collect().unwrap();
        let got = strs(&df, "drop_reason");
        // 04:00 sees {100, 300}: median 200, |300/200 - 1| = 0.5, not beyond 0.5.
        assert!(got.iter().all(Option::is_none), "{got:?}");
    }

    #[test]
    fn output_keeps_every_row_in_input_order() {
        let rows = [
            obs("ethereum", "2024-01-01T02:00:00Z", 3.0),
            obs("bitcoin", "2024-01-01T00:00:00Z", 1.0).no_price(),
            obs("bitcoin", "2024-01-01T01:00:00Z", 2.0),
        ];
        let df = classify(frame(&rows), &CleanConfig::default()).collect().unwrap();
        assert_eq!(df.height(), 3);
        assert_eq!(
            i64s(&df, "ts"),
            vec![us("2024-01-01T02:00:00Z"), us("2024-01-01T00:00:00Z"), us("2024-01-01T01:00:00Z")]
        );
        let names: Vec<&str> = df.get_column_names().iter().map(|n| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "coin",
                "ts",
                "price",
                "volume_base",
                "volume_24h",
                "change_24h_pct",
                "source",
                "ingested_at",
                "drop_reason"
            ]
        );
    }

    #[test]
    fn clean_is_sorted_and_drops_the_reason_column() {
        let rows = [
            obs("ethereum", "2024-01-01T02:00:00Z", 3.0),
            obs("bitcoin", "2024-01-01T01:00:00Z", 2.0),
            obs("bitcoin", "2024-01-01T00:00:00Z", 1.0),
            obs("bitcoin", "2024-01-01T00:30:00Z", -1.0),
        ];
        let df = cleaned(&rows).collect().unwrap();
        assert!(df.column("drop_reason").is_err());
        assert_eq!(strs(&df, "coin"), owned(&["bitcoin", "bitcoin", "ethereum"]));
        assert_eq!(f64s(&df, "price"), vec![1.0, 2.0, 3.0]);
    }

    #[test]
    fn drop_counts_lists_only_reasons_that_dropped_rows() {
        let rows = [
            obs("bitcoin", "2024-01-01T00:00:00Z", 1.0).no_price(),
            obs("bitcoin", "2024-01-01T01:00:00Z", -1.0),
            obs("bitcoin", "2024-01-01T02:00:00Z", 0.0),
            obs("bitcoin", "2024-01-01T03:00:00Z", 1.0),
        ];
        let classified = classify(frame(&rows), &CleanConfig::default());
        let df = drop_counts(classified).collect().unwrap();
        assert_eq!(strs(&df, "reason"), owned(&["invalid_price", "missing_field"]));
        assert_eq!(i64s(&df, "rows"), vec![2, 1]);
        assert_eq!(df.column("rows").unwrap().dtype(), &DataType::Int64);

        let none = drop_counts(classify(
            frame(&[obs("bitcoin", "2024-01-01T00:00:00Z", 1.0)]),
            &CleanConfig::default(),
        ))
        .collect()
        .unwrap();
        assert_eq!(none.height(), 0);
    }

    #[test]
    fn config_validation() {
        assert_eq!(CleanConfig::default().validate(), Ok(()));
        let bad = CleanConfig { max_deviation: f64::NAN, ..CleanConfig::default() };
        assert!(bad.validate().is_err());
        let empty = CleanConfig { neighbourhood: StdDuration::ZERO, ..CleanConfig::default() };
        assert_eq!(empty.validate(), Err(TransformError::EmptyNeighbourhood));
    }
}
