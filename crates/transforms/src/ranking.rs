//! Daily performance ranking.

use polars::prelude::*;

use crate::expr::{in_observation_order, over, sort_by, utc_day};

/// Day-over-day performance of each coin, ranked per UTC day, from [`clean`](crate::clean)
/// output.
///
/// Columns:
///
/// | column | type | meaning |
/// |---|---|---|
/// | `coin` | String | |
/// | `day` | Date | UTC calendar day |
/// | `last_price` | Float64 | price of the day's last observation (ties: by `source`, then `price`) |
/// | `prev_last_price` | Float64 | `last_price` of the previous calendar day |
/// | `performance` | Float64 | `last_price / prev_last_price - 1` |
/// | `rank` | Int64 | 1 = best performance of the day; equal performances by coin id ascending |
///
/// A coin is ranked on a day only if it has observations on that day and on the calendar
/// day before; ranks of a day are therefore `1..=n` for the `n` coins that qualify.
/// Sorted by `day`, `rank`.
pub fn daily_ranking(clean: LazyFrame) -> LazyFrame {
    let last_per_day =
        clean
            .group_by([col("coin"), utc_day().alias("day")])
            .agg([in_observation_order(col("price")).last().alias("last_price")]);

    let with_previous = sort_by(last_per_day, &["coin", "day"])
        .with_columns([
            over(col("day").shift(lit(1)), &["coin"]).alias("__prev_day"),
            over(col("last_price").shift(lit(1)), &["coin"]).alias("prev_last_price"),
        ])
        // The previous row of the same coin must be exactly the previous calendar day.
        .filter((col("day").cast(DataType::Int32) - col("__prev_day").cast(DataType::Int32)).eq(lit(1)))
        .with_column((col("last_price") / col("prev_last_price") - lit(1.0)).alias("performance"));

    with_previous
        .sort_by_exprs(
            [col("day"), col("performance"), col("coin")],
            SortMultipleOptions::default().with_order_descending_multi([false, true, false]),
        )
        .with_column(over(col("coin").cum_count(false), &["day"]).cast(DataType::Int64).alias("rank"))
        .select([
            col("coin"),
            col("day"),
            col("last_price"),
            col("prev_last_price"),
            col("performance"),
            col("rank"),
        ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{Obs, cleaned, days, f64s, i64s, obs, owned, strs};

    fn ranking(rows: &[Obs]) -> DataFrame {
        daily_ranking(cleaned(rows)).collect().unwrap()
    }

    #[test]
    fn single_observation_is_not_ranked() {
        let df = ranking(&[obs("bitcoin", "2024-01-01T10:00:00Z", 1.0)]);
        assert_eq!(df.height(), 0);
        let names: Vec<&str> = df.get_column_names().iter().map(|n| n.as_str()).collect();
        assert_eq!(names, ["coin", "day", "last_price", "prev_last_price", "performance", "rank"]);
        assert_eq!(df.schema().get("day"), Some(&DataType::Date));
        assert_eq!(df.schema().get("rank"), Some(&DataType::Int64));
    }

    #[test]
    fn ranks_by_performance_using_each_days_last_price() {
        let df = ranking(&[
            obs("bitcoin", "2024-01-01T23:00:00Z", 100.0),
            obs("bitcoin", "2024-01-01T08:00:00Z", 50.0),
            obs("bitcoin", "2024-01-02T12:00:00Z", 110.0),
            obs("bitcoin", "2024-01-02T06:00:00Z", 130.0),
            obs("ethereum", "2024-01-01T12:00:00Z", 10.0),
            obs("ethereum", "2024-01-02T12:00:00Z", 12.0),
        ]);
        assert_eq!(days(&df, "day"), ["2024-01-02", "2024-01-02"]);
        assert_eq!(strs(&df, "coin"), owned(&["ethereum", "bitcoin"]));
        assert_eq!(f64s(&df, "last_price"), vec![12.0, 110.0]);
        assert_eq!(f64s(&df, "prev_last_price"), vec![10.0, 100.0]);
        assert_eq!(i64s(&df, "rank"), vec![1, 2]);
        let perf = f64s(&df, "performance");
        assert!((perf[0] - 0.2).abs() < 1e-12 && (perf[1] - 0.1).abs() < 1e-12);
    }

    #[test]
    fn a_coin_missing_on_a_day_is_not_ranked_that_day_nor_the_next() {
        let mut rows = Vec::new();
        for (day, btc, eth) in [(1, 100.0, 10.0), (2, 101.0, 11.0), (4, 102.0, 12.0)] {
            rows.push(obs("bitcoin", &format!("2024-01-0{day}T12:00:00Z"), btc));
            rows.push(obs("ethereum", &format!("2024-01-0{day}T12:00:00Z"), eth));
        }
        // Solana trades on day 3 only, then day 4: ranked on day 4 alone among the coins.
        rows.push(obs("solana", "2024-01-03T12:00:00Z", 20.0));
        rows.push(obs("solana", "2024-01-04T12:00:00Z", 19.0));
        let df = ranking(&rows);
        assert_eq!(days(&df, "day"), ["2024-01-02", "2024-01-02", "2024-01-04"]);
        assert_eq!(strs(&df, "coin"), owned(&["ethereum", "bitcoin", "solana"]));
        assert_eq!(i64s(&df, "rank"), vec![1, 2, 1]);
    }

    #[test]
    fn equal_performances_rank_by_coin_id() {
        let df = ranking(&[
            obs("solana", "2024-01-01T12:00:00Z", 10.0),
            obs("solana", "2024-01-02T12:00:00Z", 20.0),
            obs("bitcoin", "2024-01-01T12:00:00Z", 100.0),
            obs("bitcoin", "2024-01-02T12:00:00Z", 200.0),
            obs("ripple", "2024-01-01T12:00:00Z", 1.0),
            obs("ripple", "2024-01-02T12:00:00Z", 0.5),
        ]);
        assert_eq!(strs(&df, "coin"), owned(&["bitcoin", "solana", "ripple"]));
        assert_eq!(i64s(&df, "rank"), vec![1, 2, 3]);
    }

    #[test]
    fn local_offset_timestamps_land_in_their_utc_day() {
        // 01:30 at +02:00 on 31 March is 23:30 UTC on 30 March: the last price of the 30th.
        let df = ranking(&[
            obs("bitcoin", "2024-03-29T12:00:00Z", 100.0),
            obs("bitcoin", "2024-03-30T20:00:00Z", 90.0),
            obs("bitcoin", "2024-03-31T01:30:00+02:00", 120.0),
            obs("bitcoin", "2024-03-31T12:00:00+02:00", 60.0),
        ]);
        assert_eq!(days(&df, "day"), ["2024-03-30", "2024-03-31"]);
        assert_eq!(f64s(&df, "last_price"), vec![120.0, 60.0]);
        assert_eq!(f64s(&df, "prev_last_price"), vec![100.0, 120.0]);
    }
}
