//! Small expression helpers shared by the transforms.

use polars::prelude::*;

/// The dtype of every timestamp column, in the input and the outputs: microseconds, UTC.
pub fn utc_datetime() -> DataType {
    DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
}

/// A window expression partitioned by the given columns.
///
/// `Expr::over` returns a `PolarsResult` only to reject an empty partition list; building the
/// variant directly keeps our signatures infallible (we always pass at least one column).
pub(crate) fn over(expr: Expr, partition_by: &[&str]) -> Expr {
    Expr::Over {
        function: Arc::new(expr),
        partition_by: partition_by.iter().map(|c| col(*c)).collect(),
        order_by: None,
        mapping: WindowMapping::GroupsToRows,
    }
}

/// `expr` sorted in observation order: by `ts`, then `source`, then `price`.
///
/// Several sources may report the same instant; sorting on `source` and `price` too makes
/// "first" and "last" independent of the input row order.
pub(crate) fn in_observation_order(expr: Expr) -> Expr {
    expr.sort_by([col("ts"), col("source"), col("price")], SortMultipleOptions::default())
}

/// The UTC calendar day of `ts`, as a `Date`.
pub(crate) fn utc_day() -> Expr {
    // `ts` is tz-aware UTC, so its "local" date is the UTC date.
    col("ts").dt().date()
}

/// Sort ascending by the given columns, stable so equal keys keep their relative order.
pub(crate) fn sort_by(lf: LazyFrame, columns: &[&str]) -> LazyFrame {
    lf.sort_by_exprs(
        columns.iter().map(|c| col(*c)).collect::<Vec<_>>(),
        SortMultipleOptions::default().with_maintain_order(true),
    )
}

/// Vertical concatenation of two frames with identical schemas.
///
/// `polars::prelude::concat` is fallible only for an empty input list; with exactly two
/// inputs the union plan can be built directly.
pub(crate) fn union(a: LazyFrame, b: LazyFrame) -> LazyFrame {
    LazyFrame::from(DslPlan::Union {
        inputs: vec![a.logical_plan, b.logical_plan],
        args: UnionArgs::default(),
    })
}

/// Slack for "strictly beyond the threshold" comparisons: `105.0 / 100.0 - 1.0` is
/// `0.05000000000000004`, which must not count as a move beyond 5 %.
pub(crate) const THRESHOLD_EPSILON: f64 = 1e-9;
