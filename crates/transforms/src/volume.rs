//! Daily traded volume in USD.

use polars::prelude::*;

use crate::expr::{sort_by, union, utc_day};

/// Daily USD volume per coin and estimation method, from [`clean`](crate::clean) output.
///
/// Columns `coin: String`, `day: Date` (UTC), `method: String`, `volume_usd: Float64`,
/// sorted by `coin`, `day`, `method`. The two methods are reported side by side because
/// they measure different things and must not be added:
///
/// - `"interval_sum"`: the sum of `volume_base * price` over the day's rows with a
///   `volume_base` (stream ticks, replayed candles: candle volume × close).
/// - `"rolling_24h"`: CoinGecko's `total_volume` is already a rolling 24 h USD figure, so
///   the day's value is the `volume_24h` of its last observation that has one (by `ts`;
///   ties: by `source`, then `price`, then `volume_24h`).
///
/// A (coin, day) appears once per method that has at least one usable row.
pub fn daily_volume(clean: LazyFrame) -> LazyFrame {
    let interval_sum = per_coin_and_day(
        clean.clone().filter(col("volume_base").is_not_null()),
        (col("volume_base") * col("price")).sum(),
        "interval_sum",
    );
    let rolling_24h = per_coin_and_day(
        clean.filter(col("volume_24h").is_not_null()),
        col("volume_24h")
            .sort_by(
                [col("ts"), col("source"), col("price"), col("volume_24h")],
                SortMultipleOptions::default(),
            )
            .last(),
        "rolling_24h",
    );
    sort_by(union(interval_sum, rolling_24h), &["coin", "day", "method"])
}

/// `volume_usd` aggregated per coin and UTC day, as rows of the given `method`.
fn per_coin_and_day(rows: LazyFrame, volume_usd: Expr, method: &str) -> LazyFrame {
    rows.group_by([col("coin"), utc_day().alias("day")]).agg([volume_usd.alias("volume_usd")]).select([
        col("coin"),
        col("day"),
        lit(method).alias("method"),
        col("volume_usd"),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{Obs, cleaned, days, f64s, obs, owned, strs};

    fn volume(rows: &[Obs]) -> DataFrame {
        daily_volume(cleaned(rows)).collect().unwrap()
    }

    #[test]
    fn both_methods_side_by_side() {
        let df = volume(&[
            obs("bitcoin", "2024-01-01T01:00:00Z", 100.0).volume_base(2.0),
            obs("bitcoin", "2024-01-01T02:00:00Z", 110.0).volume_base(3.0),
            obs("bitcoin", "2024-01-01T23:00:00Z", 100.0).source("coingecko").volume_24h(2e9),
            obs("bitcoin", "2024-01-01T10:00:00Z", 100.0).source("coingecko").volume_24h(1e9),
        ]);
        assert_eq!(days(&df, "day"), ["2024-01-01", "2024-01-01"]);
        assert_eq!(strs(&df, "method"), owned(&["interval_sum", "rolling_24h"]));
        assert_eq!(f64s(&df, "volume_usd"), vec![530.0, 2e9]);
        let schema = df.schema();
        assert_eq!(schema.get("day"), Some(&DataType::Date));
        assert_eq!(schema.get("method"), Some(&DataType::String));
        assert_eq!(schema.get("volume_usd"), Some(&DataType::Float64));
    }

    #[test]
    fn single_observation() {
        let df = volume(&[obs("bitcoin", "2024-01-01T01:00:00Z", 100.0).volume_base(0.5)]);
        assert_eq!(f64s(&df, "volume_usd"), vec![50.0]);
        // No volume at all: no row.
        assert_eq!(volume(&[obs("bitcoin", "2024-01-01T01:00:00Z", 1.0)]).height(), 0);
    }

    #[test]
    fn days_are_utc_and_coins_missing_on_a_day_have_no_row() {
        let df = volume(&[
            // 23:30 UTC on the 30th.
            obs("bitcoin", "2024-03-31T01:30:00+02:00", 10.0).volume_base(1.0),
            obs("bitcoin", "2024-03-31T03:30:00+02:00", 10.0).volume_base(2.0),
            obs("ethereum", "2024-03-31T12:00:00Z", 5.0).volume_base(1.0),
        ]);
        assert_eq!(strs(&df, "coin"), owned(&["bitcoin", "bitcoin", "ethereum"]));
        assert_eq!(days(&df, "day"), ["2024-03-30", "2024-03-31", "2024-03-31"]);
        assert_eq!(f64s(&df, "volume_usd"), vec![10.0, 20.0, 5.0]);
    }
}
