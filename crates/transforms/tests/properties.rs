//! Property tests on small random series of observations.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;

use common::{Row, f64s, i64s, observations};
use polars::prelude::*;
use proptest::prelude::*;
use transforms::{
    AlertConfig, CleanConfig, alerts, classify, clean, daily_ranking, daily_volume, hourly, snapshot_alerts,
};

const COINS: [&str; 3] = ["bitcoin", "ethereum", "solana"];
const SOURCES: [&str; 2] = ["replay", "simulated"];
/// 2024-01-01T00:00:00Z.
const START_US: i64 = 1_704_067_200_000_000;

/// Up to 40 observations of three coins over four days, at whole minutes, with random
/// prices (so duplicates, gaps, missing days and aberrant prices all occur).
fn rows() -> impl Strategy<Value = Vec<Row>> {
    prop::collection::vec((0..COINS.len(), 0..4 * 24 * 60_i64, 1.0..1000.0_f64, 0..SOURCES.len()), 1..40)
        .prop_map(|raw| {
            raw.into_iter()
                .map(|(coin, minute, price, source)| Row {
                    coin: COINS[coin].to_owned(),
                    ts: START_US + minute * 60_000_000,
                    price,
                    // Derived from the price so that rows with equal keys and prices are
                    // identical: the kept duplicate is then indistinguishable.
                    volume_base: Some(price / 100.0),
                    source: SOURCES[source].to_owned(),
                })
                .collect()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn hourly_average_lies_within_low_and_high(rows in rows()) {
        let config = CleanConfig::default();
        let candles = hourly(clean(observations(&rows), &config)).collect().unwrap();
        let kept = clean(observations(&rows), &config).collect().unwrap().height();
        let (avg, low, high) =
            (f64s(&candles, "avg_price"), f64s(&candles, "low"), f64s(&candles, "high"));
        for i in 0..candles.height() {
            prop_assert!(low[i] <= avg[i] && avg[i] <= high[i], "{} {} {}", low[i], avg[i], high[i]);
        }
        let observed: i64 = i64s(&candles, "observations").iter().sum();
        prop_assert_eq!(observed, i64::try_from(kept).unwrap());
    }

    #[test]
    fn ranks_per_day_are_a_permutation(rows in rows()) {
        let ranking = daily_ranking(clean(observations(&rows), &CleanConfig::default()))
            .collect()
            .unwrap();
        let mut per_day: HashMap<i64, Vec<i64>> = HashMap::new();
        for (day, rank) in i64s(&ranking, "day").into_iter().zip(i64s(&ranking, "rank")) {
            per_day.entry(day).or_default().push(rank);
        }
        for ranks in per_day.values_mut() {
            ranks.sort_unstable();
            let expected: Vec<i64> = (1..=i64::try_from(ranks.len()).unwrap()).collect();
            prop_assert_eq!(&*ranks, &expected);
        }
    }

    #[test]
    fn transforms_are_deterministic(rows in rows()) {
        let runs: Vec<fn(LazyFrame) -> LazyFrame> = vec![
            |lf| classify(lf, &CleanConfig::default()),
            |lf| hourly(clean(lf, &CleanConfig::default())),
            |lf| daily_ranking(clean(lf, &CleanConfig::default())),
            |lf| alerts(hourly(clean(lf, &CleanConfig::default())), &AlertConfig::default()),
            |lf| snapshot_alerts(clean(lf, &CleanConfig::default()), &AlertConfig::default()),
            |lf| daily_volume(clean(lf, &CleanConfig::default())),
        ];
        for run in runs {
            let first = run(observations(&rows)).collect().unwrap();
            let second = run(observations(&rows)).collect().unwrap();
            prop_assert!(first.equals_missing(&second), "{first}\n{second}");
        }
        // Cleaning does not depend on the order rows arrive in either.
        let mut reversed = rows.clone();
        reversed.reverse();
        let forward = clean(observations(&rows), &CleanConfig::default()).collect().unwrap();
        let backward = clean(observations(&reversed), &CleanConfig::default()).collect().unwrap();
        prop_assert!(forward.equals_missing(&backward), "{forward}\n{backward}");
    }
}
