use coingecko::CoinGeckoError;
use lambda_runtime::Diagnostic;
use storage::StorageError;
use telemetry::failure::{Classify, Disposition};

/// Why an ingest or backfill run failed.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("invalid request: {0}")]
    BadRequest(String),

    #[error(transparent)]
    Source(#[from] CoinGeckoError),

    #[error(transparent)]
    Storage(#[from] StorageError),

    #[error("{refused} history chunk(s) refused by the CoinGecko plan; the rest is stored. {message}")]
    HistoryRefused { refused: usize, message: String },
}

impl Classify for IngestError {
    /// Whether running again later, unchanged, may succeed. Lambda retries and
    /// the local scheduler use it to tell an outage from a bug or bad input.
    fn disposition(&self) -> Disposition {
        let retryable = match self {
            Self::Source(e) => e.is_retryable(),
            Self::Storage(e) => e.is_retryable(),
            Self::BadRequest(_) | Self::HistoryRefused { .. } => false,
        };
        if retryable { Disposition::Retryable } else { Disposition::Permanent }
    }
}

impl From<IngestError> for Diagnostic {
    fn from(err: IngestError) -> Self {
        telemetry::failure::diagnostic("Ingest", &err)
    }
}
