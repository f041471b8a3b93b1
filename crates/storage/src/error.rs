/// A storage operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("cannot connect to Postgres at {target}: {message} (is the local stack up? run `just up`)")]
    Connect { target: String, message: String },

    #[error("Postgres failed to {what}: {message}")]
    Query { what: &'static str, message: String },

    #[error("applying migrations failed: {0}")]
    Migrate(String),

    #[error("S3 {op} of s3://{bucket}/{key} failed: {message}")]
    S3 { op: &'static str, bucket: String, key: String, message: String },
}

impl StorageError {
    pub(crate) fn query(what: &'static str, err: &tokio_postgres::Error) -> Self {
        Self::Query { what, message: pg_message(err) }
    }
}

/// tokio-postgres prints "db error" for every server error; the useful text is
/// in the `DbError`.
pub(crate) fn pg_message(err: &tokio_postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut out = err.to_string();
            let mut source = std::error::Error::source(err);
            while let Some(cause) = source {
                out.push_str(": ");
                out.push_str(&cause.to_string());
                source = cause.source();
            }
            out
        }
    }
}
