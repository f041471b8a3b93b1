use lambda_runtime::Diagnostic;
use storage::StorageError;
use stream::StreamError;

/// Why a batch failed. Every variant fails the whole batch, so it is delivered
/// again: by the event source mapping in AWS, by the poller locally.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error("storing the batch failed, it will be retried: {0}")]
    Storage(#[from] StorageError),

    #[error("parking bad records on the dead-letter topic failed, the batch will be retried: {0}")]
    DeadLetter(#[from] StreamError),
}

impl From<ConsumerError> for Diagnostic {
    fn from(err: ConsumerError) -> Self {
        Diagnostic { error_type: String::from("Consumer.Retryable"), error_message: err.to_string() }
    }
}
