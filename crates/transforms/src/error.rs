//! Errors of this crate.
//!
//! The transforms themselves are infallible to build (errors surface at `.collect()`);
//! what can be rejected up front is configuration, so a service fails at start-up rather
//! than silently producing empty or meaningless output.

/// A configuration value the transforms cannot work with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TransformError {
    /// `CleanConfig::max_deviation` is not a positive finite number.
    #[error("max_deviation must be a positive finite fraction (e.g. 0.5 for 50 %), got {0}")]
    InvalidMaxDeviation(f64),
    /// `CleanConfig::neighbourhood` is shorter than one microsecond.
    #[error("the cleaning neighbourhood must be at least one microsecond long (e.g. 6 hours)")]
    EmptyNeighbourhood,
    /// `AlertConfig::threshold` is not a non-negative finite number.
    #[error("alert threshold must be a non-negative finite fraction (e.g. 0.05 for 5 %), got {0}")]
    InvalidThreshold(f64),
    /// `AlertConfig::window` is zero or not a whole number of hours.
    #[error(
        "alert window must be a positive whole number of hours (hourly candles are compared \
         hour to hour), got {0:?}"
    )]
    WindowNotWholeHours(std::time::Duration),
}
