/// Why the site could not be generated or published.
#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    #[error("cannot {what}: {source}")]
    Query {
        what: &'static str,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("cannot render {page}: {message}")]
    Render { page: String, message: String },
    #[error("invalid SITE_OUTPUT {0:?}: expected s3://BUCKET[/PREFIX] or a folder")]
    Output(String),
    #[error("cannot write {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("S3 {op} of s3://{bucket}/{key} failed: {message}")]
    S3 { op: &'static str, bucket: String, key: String, message: String },
}

impl SiteError {
    pub(crate) fn query(what: &'static str, source: tokio_postgres::Error) -> Self {
        Self::Query { what, source }
    }

    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io { path: path.display().to_string(), source }
    }
}

/// Tera's error chain: its top level only says "Failed to render".
pub(crate) fn tera_message(err: &tera::Error) -> String {
    let mut message = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

/// What Lambda reports: the error's kind as its type, the message in full.
impl From<SiteError> for lambda_runtime::Diagnostic {
    fn from(err: SiteError) -> Self {
        let kind = match err {
            SiteError::Storage(_) | SiteError::Query { .. } => "Database",
            SiteError::Render { .. } => "Render",
            SiteError::Output(_) => "Config",
            SiteError::Io { .. } | SiteError::S3 { .. } => "Publish",
        };
        lambda_runtime::Diagnostic { error_type: format!("SiteGen.{kind}"), error_message: err.to_string() }
    }
}
