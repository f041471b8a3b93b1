/// A secret that could not be read or used. Never holds the secret's value.
#[derive(Debug, thiserror::Error)]
#[error("cannot use the secret {variable}={arn:?}: {problem}")]
pub struct SecretsError {
    /// The variable that named the secret (`DATABASE_SECRET_ARN`…).
    pub variable: &'static str,
    pub arn: String,
    pub problem: Problem,
}

/// What went wrong with a secret.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    /// Secrets Manager could not be reached or refused the call.
    #[error("Secrets Manager failed: {0}")]
    Fetch(String),

    /// The secret was read, but its value is not of a form we understand.
    #[error("its value {0}")]
    Value(String),
}
