//! Hourly OHLC candles.

use polars::prelude::*;

use crate::expr::sort_by;

/// One candle per coin and UTC hour, from [`clean`](crate::clean) output.
///
/// Columns:
///
/// | column | type | meaning |
/// |---|---|---|
/// | `coin` | String | |
/// | `hour` | Datetime(µs, "UTC") | start of the hour |
/// | `avg_price` | Float64 | mean price of the hour's observations |
/// | `open`, `close` | Float64 | first and last price by `ts` (ties: by `source`, then `price`) |
/// | `high`, `low` | Float64 | highest and lowest price |
/// | `observations` | Int64 | rows in the hour |
///
/// Hours without observations have no row (no forward filling). Sorted by `coin`, `hour`.
pub fn hourly(clean: LazyFrame) -> LazyFrame {
    // One sort of the whole frame in observation order, rather than a sort per
    // group for open and close: group_by keeps each group's rows in frame order,
    // so first() and last() are the open and the close. (Per-group sorts made
    // this transform take most of the compute time on hourly candles, where
    // every group holds one row.)
    let ordered = sort_by(clean, &["coin", "ts", "source", "price"]);
    let candles = ordered
        .with_column(col("ts").dt().truncate(lit("1h")).alias("hour"))
        .group_by([col("coin"), col("hour")])
        .agg([
            col("price").mean().alias("avg_price"),
            col("price").first().alias("open"),
            col("price").max().alias("high"),
            col("price").min().alias("low"),
            col("price").last().alias("close"),
            len().cast(DataType::Int64).alias("observations"),
        ])
        // The exact mean lies in [low, high], but the rounded float sum can step one ulp
        // outside (three times 0.1 averages to 0.10000000000000002); clamp it back.
        .with_column(col("avg_price").clip(col("low"), col("high")))
        .select([
            col("coin"),
            col("hour"),
            col("avg_price"),
            col("open"),
            col("high"),
            col("low"),
            col("close"),
            col("observations"),
        ]);
    sort_by(candles, &["coin", "hour"])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{Obs, cleaned, f64s, i64s, obs, owned, strs, us};

    fn candles(rows: &[Obs]) -> DataFrame {
        hourly(cleaned(rows)).collect().unwrap()
    }

    #[test]
    fn single_observation() {
        let df = candles(&[obs("bitcoin", "2024-01-01T10:15:00Z", 42.0)]);
        assert_eq!(df.height(), 1);
        assert_eq!(i64s(&df, "hour"), vec![us("2024-01-01T10:00:00Z")]);
        for c in ["avg_price", "open", "high", "low", "close"] {
            assert_eq!(f64s(&df, c), vec![42.0], "{c}");
        }
        assert_eq!(i64s(&df, "observations"), vec![1]);
    }

    #[test]
    fn output_schema() {
        let df = candles(&[obs("bitcoin", "2024-01-01T10:15:00Z", 42.0)]);
        let schema = df.schema();
        assert_eq!(schema.get("coin"), Some(&DataType::String));
        assert_eq!(schema.get("hour"), Some(&crate::expr::utc_datetime()));
        for c in ["avg_price", "open", "high", "low", "close"] {
            assert_eq!(schema.get(c), Some(&DataType::Float64), "{c}");
        }
        assert_eq!(schema.get("observations"), Some(&DataType::Int64));
        assert_eq!(df.width(), 8);
    }

    #[test]
    fn ohlc_follow_time_order_not_row_order() {
        let df = candles(&[
            obs("bitcoin", "2024-01-01T10:50:00Z", 103.0),
            obs("bitcoin", "2024-01-01T10:00:00Z", 100.0),
            obs("bitcoin", "2024-01-01T10:20:00Z", 110.0),
            obs("bitcoin", "2024-01-01T10:30:00Z", 95.0),
        ]);
        assert_eq!(f64s(&df, "open"), vec![100.0]);
        assert_eq!(f64s(&df, "high"), vec![110.0]);
        assert_eq!(f64s(&df, "low"), vec![95.0]);
        assert_eq!(f64s(&df, "close"), vec![103.0]);
        assert_eq!(f64s(&df, "avg_price"), vec![102.0]);
        assert_eq!(i64s(&df, "observations"), vec![4]);
    }

    #[test]
    fn same_instant_ties_are_ordered_by_source_then_price() {
        let df = candles(&[
            obs("bitcoin", "2024-01-01T10:00:00Z", 101.0).source("simulated"),
            obs("bitcoin", "2024-01-01T10:00:00Z", 100.0).source("replay"),
            obs("bitcoin", "2024-01-01T10:00:00Z", 99.0).source("coingecko"),
        ]);
        assert_eq!(f64s(&df, "open"), vec![99.0]);
        assert_eq!(f64s(&df, "close"), vec![101.0]);
    }

    #[test]
    fn a_day_with_a_gap_has_no_rows_for_missing_hours() {
        let df = candles(&[
            obs("bitcoin", "2024-01-01T00:10:00Z", 100.0),
            obs("bitcoin", "2024-01-01T01:10:00Z", 101.0),
            obs("bitcoin", "2024-01-01T04:10:00Z", 102.0),
            obs("ethereum", "2024-01-01T02:10:00Z", 3.0),
        ]);
        assert_eq!(strs(&df, "coin"), owned(&["bitcoin", "bitcoin", "bitcoin", "ethereum"]));
        assert_eq!(
            i64s(&df, "hour"),
            vec![
                us("2024-01-01T00:00:00Z"),
                us("2024-01-01T01:00:00Z"),
                us("2024-01-01T04:00:00Z"),
                us("2024-01-01T02:00:00Z"),
            ]
        );
    }

    #[test]
    fn local_offset_timestamps_land_in_their_utc_hour() {
        // 01:30 and 03:10 local on the night Central Europe moves from +01:00 to +02:00.
        let df = candles(&[
            obs("bitcoin", "2024-03-31T01:30:00+02:00", 100.0),
            obs("bitcoin", "2024-03-31T01:45:00+01:00", 101.0),
            obs("bitcoin", "2024-03-31T03:10:00+02:00", 102.0),
        ]);
        assert_eq!(
            i64s(&df, "hour"),
            vec![us("2024-03-30T23:00:00Z"), us("2024-03-31T00:00:00Z"), us("2024-03-31T01:00:00Z"),]
        );
    }

    #[test]
    fn average_stays_within_low_and_high_despite_rounding() {
        let df = candles(&[
            obs("bitcoin", "2024-01-01T10:00:00Z", 0.1),
            obs("bitcoin", "2024-01-01T10:01:00Z", 0.1),
            obs("bitcoin", "2024-01-01T10:02:00Z", 0.1),
        ]);
        assert_eq!(f64s(&df, "avg_price"), vec![0.1]);
    }
}
