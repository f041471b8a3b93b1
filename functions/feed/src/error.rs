use exchanges::ExchangeError;
use lambda_runtime::Diagnostic;
use storage::StorageError;
use stream::StreamError;
use telemetry::failure::{Classify, Disposition};

/// Why an invocation failed.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error(transparent)]
    Exchange(#[from] ExchangeError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Stream(#[from] StreamError),
    #[error(transparent)]
    Config(#[from] settings::ConfigError),
    #[error(
        "the payload is not a feed request (an EventBridge scheduled event, or {{\"time\": \"RFC 3339\"}}): {0}"
    )]
    BadRequest(String),
    /// Some markets were not published; the others were, and their cursors moved.
    #[error("{failed} of {markets} markets not published (the next invocation catches them up): {first}")]
    Markets { failed: usize, markets: usize, first: String },
}

impl Classify for FeedError {
    fn disposition(&self) -> Disposition {
        match self {
            Self::Config(_) | Self::BadRequest(_) => Disposition::Permanent,
            // The next minute's invocation tries again from the cursors.
            _ => Disposition::Retryable,
        }
    }
}

impl From<FeedError> for Diagnostic {
    fn from(err: FeedError) -> Self {
        telemetry::failure::diagnostic("Feed", &err)
    }
}
