/// A boxed cause, for clients whose error types are many (the AWS SDK's) or
/// which wrap tokio-postgres's (the connection pool's).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A storage operation that failed. Causes are kept as `#[source]` errors;
/// `telemetry::failure::Chain` prints them.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// `DATABASE_URL`, or the TLS settings it names, cannot be used as they are.
    #[error("DATABASE_URL cannot be used: {0}")]
    Config(String),

    /// `hint` says what to do: check the stack is up, or trust the server's certificate.
    #[error("cannot connect to Postgres at {target} {hint}")]
    Connect {
        target: String,
        hint: &'static str,
        #[source]
        source: BoxError,
    },

    #[error("Postgres failed to {what}")]
    Query {
        what: &'static str,
        #[source]
        source: tokio_postgres::Error,
    },

    #[error("applying migrations failed")]
    Migrate(#[source] refinery::Error),

    #[error("S3 {op} of s3://{bucket}/{key} failed")]
    S3 {
        op: &'static str,
        bucket: String,
        key: String,
        #[source]
        source: BoxError,
    },
}

impl StorageError {
    pub(crate) fn query(what: &'static str, source: tokio_postgres::Error) -> Self {
        Self::Query { what, source }
    }

    /// Whether the same operation may succeed later: the database was
    /// unreachable, shut down, or resolved a conflict between transactions.
    /// Bad data, a violated constraint, a missing table or a bad URL will fail
    /// again the same way.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Connect { .. } | Self::S3 { .. } => true,
            Self::Config(_) | Self::Migrate(_) => false,
            Self::Query { source, .. } => pg_is_retryable(source),
        }
    }
}

/// Whether a failed Postgres call may succeed later: no server error (the
/// connection broke or timed out), or a server error of class 08 (connection),
/// 40 (serialization failure, deadlock), 53 (insufficient resources), 57
/// (operator intervention: shutdown) or 58 (system error).
pub fn pg_is_retryable(err: &tokio_postgres::Error) -> bool {
    match err.as_db_error() {
        None => true,
        Some(db) => matches!(&db.code().code()[..2], "08" | "40" | "53" | "57" | "58"),
    }
}
