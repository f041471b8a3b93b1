use lambda_runtime::Diagnostic;
use storage::StorageError;
use telemetry::failure::{Classify, Disposition};

/// Why a transform run failed. Nothing is written unless the run succeeds.
#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    #[error("invalid request: {0}")]
    BadRequest(String),

    /// The cleaning or alert settings are out of range: fix the configuration.
    #[error("invalid transform settings")]
    Config(#[source] transforms::TransformError),

    /// The alert rules file is unreadable or wrong (the error names the line).
    #[error(transparent)]
    Rules(#[from] alerting::RulesError),

    #[error("ALERT_RULES_FILE and ALERT_RULES are both set: keep one")]
    TwoRuleSources,

    #[error(transparent)]
    Storage(#[from] StorageError),

    /// A transform produced a null (or out-of-range value) where every row needs one: a bug.
    #[error("the transform's output column {0:?} has a missing value")]
    Missing(String),

    /// A bug: the run's snapshot was used after it was committed.
    #[error("the transform's snapshot was used after its commit")]
    Ended,

    #[error("a Polars transform failed")]
    Polars(#[from] polars::error::PolarsError),
}

impl Classify for TransformError {
    fn disposition(&self) -> Disposition {
        let retryable = match self {
            Self::Storage(e) => e.is_retryable(),
            Self::BadRequest(_)
            | Self::Config(_)
            | Self::Rules(_)
            | Self::TwoRuleSources
            | Self::Missing(_)
            | Self::Ended
            | Self::Polars(_) => false,
        };
        if retryable { Disposition::Retryable } else { Disposition::Permanent }
    }
}

impl From<TransformError> for Diagnostic {
    fn from(err: TransformError) -> Self {
        telemetry::failure::diagnostic("Transform", &err)
    }
}
