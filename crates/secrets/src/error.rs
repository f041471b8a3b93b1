/// A secret that could not be read or used. Never holds the secret's value.
#[derive(Debug, thiserror::Error)]
#[error("cannot use the secret {variable}={arn:?}")]
pub struct SecretsError {
    /// The variable that named the secret (`DATABASE_SECRET_ARN`…).
    pub variable: &'static str,
    pub arn: String,
    #[source]
    pub problem: Problem,
}

/// What went wrong with a secret.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    /// Secrets Manager could not be reached or refused the call; `hint` says
    /// what to check (it may be empty). The SDK's error names the service's
    /// code and message.
    #[error("Secrets Manager failed{hint}")]
    Fetch {
        hint: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The secret was read, but its value is not of a form we understand.
    #[error("its value {0}")]
    Value(String),

    /// The ARN variable is set but empty.
    #[error("it is set but empty: set it to a secret's ARN, or unset it")]
    Empty,
}
