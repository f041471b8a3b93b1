use std::sync::Arc;

use telemetry::failure::{Classify, Disposition};

/// Why the site could not be generated or published. Causes are kept as
/// `#[source]` errors; `telemetry::failure::Chain` prints them.
#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    #[error("cannot {what}")]
    Query {
        what: &'static str,
        #[source]
        source: tokio_postgres::Error,
    },
    /// The compiled-in templates do not parse (parsed once per process, hence shared).
    #[error("the site's templates do not parse")]
    Templates(#[source] Arc<tera::Error>),
    #[error("cannot render {page}")]
    Render {
        page: String,
        #[source]
        source: tera::Error,
    },
    #[error("invalid SITE_OUTPUT {0:?}: expected s3://BUCKET[/PREFIX] or a folder")]
    Output(String),
    #[error("cannot write {path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl SiteError {
    pub(crate) fn query(what: &'static str, source: tokio_postgres::Error) -> Self {
        Self::Query { what, source }
    }

    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io { path: path.display().to_string(), source }
    }
}

impl Classify for SiteError {
    fn disposition(&self) -> Disposition {
        let retryable = match self {
            Self::Storage(e) => e.is_retryable(),
            Self::Query { source, .. } => storage::pg_is_retryable(source),
            // A full disk or a throttled bucket may clear; the same templates will not.
            Self::Io { .. } => true,
            Self::Templates(_) | Self::Render { .. } | Self::Output(_) => false,
        };
        if retryable { Disposition::Retryable } else { Disposition::Permanent }
    }
}

impl From<SiteError> for lambda_runtime::Diagnostic {
    fn from(err: SiteError) -> Self {
        telemetry::failure::diagnostic("SiteGen", &err)
    }
}
