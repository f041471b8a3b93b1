use lambda_runtime::Diagnostic;
use storage::StorageError;
use telemetry::failure::{Classify, Disposition};

/// Why a notify run failed. A channel that refuses a message does not fail
/// the run: its row records the error (and fails after its tries), and the
/// other channels go on.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Config(#[from] settings::ConfigError),

    #[error(transparent)]
    Channels(#[from] alerting::AlertingError),

    /// Links in messages need the dashboard's address once any channel is configured.
    #[error(
        "DASHBOARD_URL is not set: messages link to the coin's dashboard page (e.g. http://127.0.0.1:8080/)"
    )]
    NoDashboardUrl,

    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl Classify for NotifyError {
    fn disposition(&self) -> Disposition {
        match self {
            Self::Storage(e) if e.is_retryable() => Disposition::Retryable,
            // The topic lookup: SNS may be back on the next try.
            Self::Channels(alerting::AlertingError::Sns { .. }) => Disposition::Retryable,
            _ => Disposition::Permanent,
        }
    }
}

impl From<NotifyError> for Diagnostic {
    fn from(err: NotifyError) -> Self {
        telemetry::failure::diagnostic("Notify", &err)
    }
}
