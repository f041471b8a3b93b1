use lambda_runtime::Diagnostic;
use storage::StorageError;
use stream::StreamError;
use telemetry::failure::{Classify, Disposition};

/// Why a batch failed. Every variant fails the whole batch; a retryable one is
/// delivered again (by the event source mapping in AWS, by the poller locally),
/// a permanent one would fail again the same way and needs a person.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error("storing the batch failed")]
    Storage(#[from] StorageError),

    #[error("parking bad records on the dead-letter topic failed")]
    DeadLetter(#[from] StreamError),
}

impl Classify for ConsumerError {
    fn disposition(&self) -> Disposition {
        match self {
            Self::Storage(e) if !e.is_retryable() => Disposition::Permanent,
            // The broker may be back; the records are valid either way.
            Self::Storage(_) | Self::DeadLetter(_) => Disposition::Retryable,
        }
    }
}

impl From<ConsumerError> for Diagnostic {
    fn from(err: ConsumerError) -> Self {
        telemetry::failure::diagnostic("Consumer", &err)
    }
}
