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

    #[error(transparent)]
    Storage(#[from] StorageError),

    #[error("Postgres failed to {what}")]
    Query {
        what: std::borrow::Cow<'static, str>,
        #[source]
        source: tokio_postgres::Error,
    },

    /// A transform produced a null (or out-of-range value) where every row needs one: a bug.
    #[error("the transform's output column {0:?} has a missing value")]
    Missing(String),

    #[error("a Polars transform failed")]
    Polars(#[from] polars::error::PolarsError),
}

impl TransformError {
    pub(crate) fn query(
        what: impl Into<std::borrow::Cow<'static, str>>,
        source: tokio_postgres::Error,
    ) -> Self {
        Self::Query { what: what.into(), source }
    }
}

impl Classify for TransformError {
    fn disposition(&self) -> Disposition {
        let retryable = match self {
            Self::Storage(e) => e.is_retryable(),
            Self::Query { source, .. } => storage::pg_is_retryable(source),
            Self::BadRequest(_) | Self::Config(_) | Self::Missing(_) | Self::Polars(_) => false,
        };
        if retryable { Disposition::Retryable } else { Disposition::Permanent }
    }
}

impl From<TransformError> for Diagnostic {
    fn from(err: TransformError) -> Self {
        telemetry::failure::diagnostic("Transform", &err)
    }
}
