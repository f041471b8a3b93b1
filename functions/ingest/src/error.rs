use coingecko::CoinGeckoError;
use lambda_runtime::Diagnostic;
use storage::StorageError;

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

impl IngestError {
    /// Whether running again later, unchanged, may succeed. Lambda retries and
    /// the local scheduler use it to tell an outage from a bug or bad input.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Source(e) => e.is_retryable(),
            Self::Storage(_) => true,
            Self::BadRequest(_) | Self::HistoryRefused { .. } => false,
        }
    }
}

impl From<IngestError> for Diagnostic {
    fn from(err: IngestError) -> Self {
        let kind = if err.is_retryable() { "Retryable" } else { "Permanent" };
        Diagnostic { error_type: format!("Ingest.{kind}"), error_message: err.to_string() }
    }
}
