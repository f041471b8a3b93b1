use lambda_runtime::Diagnostic;
use storage::StorageError;

/// Why a transform run failed. Nothing is written unless the run succeeds.
#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    #[error("invalid request: {0}")]
    BadRequest(String),

    #[error(transparent)]
    Storage(#[from] StorageError),

    #[error("Postgres failed to {what}: {message}")]
    Query { what: std::borrow::Cow<'static, str>, message: String },

    #[error("a Polars transform failed: {0}")]
    Polars(#[from] polars::error::PolarsError),
}

impl TransformError {
    pub(crate) fn query(
        what: impl Into<std::borrow::Cow<'static, str>>,
        err: &tokio_postgres::Error,
    ) -> Self {
        let message = match err.as_db_error() {
            Some(db) => format!("{} ({})", db.message(), db.code().code()),
            None => err.to_string(),
        };
        Self::Query { what: what.into(), message }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Storage(_) | Self::Query { .. })
    }
}

impl From<TransformError> for Diagnostic {
    fn from(err: TransformError) -> Self {
        let kind = if err.is_retryable() { "Retryable" } else { "Permanent" };
        Diagnostic { error_type: format!("Transform.{kind}"), error_message: err.to_string() }
    }
}
