//! Price-move alerts.

use std::time::Duration as StdDuration;

use polars::prelude::*;

use crate::TransformError;
use crate::expr::{THRESHOLD_EPSILON, sort_by, utc_datetime};

/// When a price move is worth an alert.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertConfig {
    /// Smallest relative move that is *not* an alert: a move alerts when strictly beyond it
    /// (`|change| > threshold`). A fraction; default 0.05 (5 %).
    pub threshold: f64,
    /// Distance between the two hourly closes compared by [`alerts`]. A positive whole
    /// number of hours; default 1 hour.
    pub window: StdDuration,
}

impl Default for AlertConfig {
    fn default() -> Self {
        Self { threshold: 0.05, window: StdDuration::from_secs(3600) }
    }
}

impl AlertConfig {
    /// Checks the values once, at start-up; the transforms do not re-check them.
    ///
    /// A window that is not a whole number of hours would never match two hourly candles,
    /// so [`alerts`] would silently return nothing: reject it here instead.
    pub fn validate(&self) -> Result<(), TransformError> {
        if !(self.threshold.is_finite() && self.threshold >= 0.0) {
            return Err(TransformError::InvalidThreshold(self.threshold));
        }
        let whole_hours = self.window.subsec_nanos() == 0 && self.window.as_secs().is_multiple_of(3600);
        if self.window.is_zero() || !whole_hours {
            return Err(TransformError::WindowNotWholeHours(self.window));
        }
        Ok(())
    }

    fn window_secs(&self) -> i64 {
        // Capped far below overflow of `hour + window` in microseconds.
        i64::try_from(self.window.as_secs()).unwrap_or(i64::MAX).min(i64::MAX / 4_000_000)
    }

    fn beyond(&self, change: Expr) -> Expr {
        change.abs().gt(lit(self.threshold + THRESHOLD_EPSILON))
    }
}

/// The columns of both alert frames, in order.
fn alert_columns(change: Expr) -> [Expr; 7] {
    [
        col("coin"),
        col("at"),
        col("window_secs"),
        (change.clone() * lit(100.0)).alias("change_pct"),
        when(change.gt(lit(0.0))).then(lit("up")).otherwise(lit("down")).alias("direction"),
        col("price_before"),
        col("price_after"),
    ]
}

/// Alerts from [`hourly`](crate::hourly) candles: a move of the close price beyond
/// `config.threshold` over `config.window`.
///
/// For each candle at hour `h`, the candle of the same coin at exactly `h - window` must
/// exist (no alert across a gap, no interpolation); the change is
/// `close(h) / close(h - window) - 1`, and alerts when `|change| > threshold` (with a 1e-9
/// slack, so an exact 5 % move, `0.05000000000000004` in floating point, does not count).
/// Call [`AlertConfig::validate`] first: a window that is not a whole number of hours
/// matches no candle and yields no alerts.
///
/// Columns:
///
/// | column | type | meaning |
/// |---|---|---|
/// | `coin` | String | |
/// | `at` | Datetime(µs, "UTC") | the later hour `h` |
/// | `window_secs` | Int64 | the window in seconds |
/// | `change_pct` | Float64 | the change in percent, e.g. `5.3` or `-7.1` |
/// | `direction` | String | `"up"` or `"down"` |
/// | `price_before` | Float64 | close at `h - window` |
/// | `price_after` | Float64 | close at `h` |
///
/// Sorted by `coin`, `at`.
pub fn alerts(hourly: LazyFrame, config: &AlertConfig) -> LazyFrame {
    let window_secs = config.window_secs();
    let key = || col("hour").cast(DataType::Int64);
    // Each earlier candle is keyed by the hour it is compared with; an inner join then
    // pairs candles exactly `window` apart and drops hours whose partner is missing.
    let before = hourly.clone().select([
        col("coin"),
        (key() + lit(window_secs * 1_000_000)).alias("__key"),
        col("close").alias("price_before"),
    ]);
    let pairs = hourly
        .select([
            col("coin"),
            key().alias("__key"),
            col("hour").cast(utc_datetime()).alias("at"),
            col("close").alias("price_after"),
        ])
        .join(
            before,
            [col("coin"), col("__key")],
            [col("coin"), col("__key")],
            JoinArgs::new(JoinType::Inner),
        )
        .with_columns([
            lit(window_secs).cast(DataType::Int64).alias("window_secs"),
            (col("price_after") / col("price_before") - lit(1.0)).alias("__change"),
        ])
        .filter(config.beyond(col("__change")))
        .select(alert_columns(col("__change")));
    sort_by(pairs, &["coin", "at"])
}

/// 24 h alerts from CoinGecko snapshots in [`clean`](crate::clean) output: rows with
/// `source == "coingecko"` whose `change_24h_pct` is beyond `config.threshold * 100`
/// (same strictness as [`alerts`]; `config.window` is not used, CoinGecko's window is 24 h).
///
/// Same columns as [`alerts`]: `at = ts`, `window_secs = 86400`,
/// `change_pct = change_24h_pct`, `price_after = price`,
/// `price_before = price / (1 + change_24h_pct / 100)`. Sorted by `coin`, `at`.
pub fn snapshot_alerts(clean: LazyFrame, config: &AlertConfig) -> LazyFrame {
    let change = || col("change_24h_pct") / lit(100.0);
    let snapshots = clean
        .filter(
            col("source")
                .eq(lit("coingecko"))
                // NaN compares greater than everything in Polars: exclude it explicitly.
                .and(col("change_24h_pct").is_finite())
                .and(config.beyond(change())),
        )
        .with_columns([
            col("ts").alias("at"),
            lit(86_400_i64).cast(DataType::Int64).alias("window_secs"),
            (col("price") / (lit(1.0) + change())).alias("price_before"),
            col("price").alias("price_after"),
        ])
        .select(alert_columns(change()));
    sort_by(snapshots, &["coin", "at"])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hourly;
    use crate::test_support::{Obs, cleaned, f64s, hourly_series, i64s, obs, owned, strs, us};

    fn hourly_alerts(rows: &[Obs], config: &AlertConfig) -> DataFrame {
        alerts(hourly(cleaned(rows)), config).collect().unwrap()
    }

    /// Hourly closes: one observation in the middle of each hour.
    fn closes(coin: &str, prices: &[f64]) -> Vec<Obs> {
        hourly_series(coin, 30, prices)
    }

    #[test]
    fn exactly_five_percent_is_not_an_alert_but_five_point_01_is() {
        // One two-hour series per coin, so each pair is judged on its own.
        let mut rows = closes("a_up_5", &[100.0, 105.0]);
        rows.extend(closes("b_up_5_01", &[100.0, 105.01]));
        rows.extend(closes("c_down_5", &[100.0, 95.0]));
        rows.extend(closes("d_down_5_01", &[100.0, 94.99]));
        let df = hourly_alerts(&rows, &AlertConfig::default());
        assert_eq!(strs(&df, "coin"), owned(&["b_up_5_01", "d_down_5_01"]));
        assert_eq!(i64s(&df, "at"), vec![us("2024-01-01T01:00:00Z"), us("2024-01-01T01:00:00Z")]);
        assert_eq!(strs(&df, "direction"), owned(&["up", "down"]));
        assert_eq!(f64s(&df, "price_before"), vec![100.0, 100.0]);
        assert_eq!(f64s(&df, "price_after"), vec![105.01, 94.99]);
        let pct = f64s(&df, "change_pct");
        assert!((pct[0] - 5.01).abs() < 1e-9 && (pct[1] + 5.01).abs() < 1e-9, "{pct:?}");
        assert_eq!(i64s(&df, "window_secs"), vec![3600, 3600]);
    }

    #[test]
    fn no_alert_across_a_gap() {
        // 02:00 and 03:00 are missing: 04:00 has no candle one hour before it.
        let rows = [
            obs("bitcoin", "2024-01-01T00:30:00Z", 100.0),
            obs("bitcoin", "2024-01-01T01:30:00Z", 100.0),
            obs("bitcoin", "2024-01-01T04:30:00Z", 120.0),
        ];
        assert_eq!(hourly_alerts(&rows, &AlertConfig::default()).height(), 0);
        // With a 3-hour window, 04:00 is compared with 01:00.
        let three_hours = AlertConfig { window: StdDuration::from_secs(3 * 3600), ..AlertConfig::default() };
        let df = hourly_alerts(&rows, &three_hours);
        assert_eq!(i64s(&df, "at"), vec![us("2024-01-01T04:00:00Z")]);
        assert_eq!(i64s(&df, "window_secs"), vec![3 * 3600]);
    }

    #[test]
    fn single_observation_gives_no_alert_and_the_schema() {
        let df = hourly_alerts(&closes("bitcoin", &[100.0]), &AlertConfig::default());
        assert_eq!(df.height(), 0);
        let schema = df.schema();
        let expected = [
            ("coin", DataType::String),
            ("at", crate::expr::utc_datetime()),
            ("window_secs", DataType::Int64),
            ("change_pct", DataType::Float64),
            ("direction", DataType::String),
            ("price_before", DataType::Float64),
            ("price_after", DataType::Float64),
        ];
        assert_eq!(schema.len(), expected.len());
        for (name, dtype) in expected {
            assert_eq!(schema.get(name), Some(&dtype), "{name}");
        }
    }

    #[test]
    fn coins_are_not_compared_with_each_other() {
        let rows =
            [obs("bitcoin", "2024-01-01T00:30:00Z", 100.0), obs("ethereum", "2024-01-01T01:30:00Z", 3.0)];
        assert_eq!(hourly_alerts(&rows, &AlertConfig::default()).height(), 0);
    }

    #[test]
    fn snapshot_alerts_use_coingecko_change() {
        let rows = [
            obs("bitcoin", "2024-01-01T00:00:00Z", 105.0).source("coingecko").change(5.0),
            obs("bitcoin", "2024-01-01T01:00:00Z", 105.01).source("coingecko").change(5.01),
            obs("bitcoin", "2024-01-01T02:00:00Z", 90.0).source("coingecko").change(-10.0),
            obs("bitcoin", "2024-01-01T03:00:00Z", 100.0).source("simulated").change(50.0),
            obs("bitcoin", "2024-01-01T04:00:00Z", 100.0).source("coingecko"),
            obs("bitcoin", "2024-01-01T05:00:00Z", 100.0).source("coingecko").change(f64::NAN),
        ];
        let df = snapshot_alerts(cleaned(&rows), &AlertConfig::default()).collect().unwrap();
        assert_eq!(i64s(&df, "at"), vec![us("2024-01-01T01:00:00Z"), us("2024-01-01T02:00:00Z")]);
        assert_eq!(i64s(&df, "window_secs"), vec![86_400, 86_400]);
        assert_eq!(f64s(&df, "change_pct"), vec![5.01, -10.0]);
        assert_eq!(strs(&df, "direction"), owned(&["up", "down"]));
        assert_eq!(f64s(&df, "price_after"), vec![105.01, 90.0]);
        let before = f64s(&df, "price_before");
        assert!((before[0] - 100.0).abs() < 1e-9 && (before[1] - 100.0).abs() < 1e-9);
        assert_eq!(df.schema().get("at"), Some(&crate::expr::utc_datetime()));
    }

    #[test]
    fn config_validation() {
        assert_eq!(AlertConfig::default().validate(), Ok(()));
        let half_hour = AlertConfig { window: StdDuration::from_secs(1800), ..AlertConfig::default() };
        assert!(matches!(half_hour.validate(), Err(TransformError::WindowNotWholeHours(_))));
        let negative = AlertConfig { threshold: -0.1, ..AlertConfig::default() };
        assert!(negative.validate().is_err());
    }
}
