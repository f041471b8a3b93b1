/// What went wrong talking to an exchange, or configuring the feed.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// A setting that cannot work (a symbol in the wrong quote currency, an unreadable CA file…).
    #[error("{variable}: {problem}")]
    Config { variable: &'static str, problem: String },
    /// The HTTP or TLS client could not be built.
    #[error("cannot set up the {what}: {source}")]
    Setup {
        what: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A REST call failed after its retries (or at once, for an error retrying cannot fix).
    #[error("{exchange} {endpoint} failed{}: {reason}", .attempts.map(|n| format!(" after {n} attempts")).unwrap_or_default())]
    Rest { exchange: &'static str, endpoint: String, attempts: Option<u32>, reason: String },
    /// A REST answer that does not have the documented shape.
    #[error("{exchange} {endpoint} answered something unexpected ({reason}): {excerpt}")]
    Malformed { exchange: &'static str, endpoint: String, reason: String, excerpt: String },
    /// The feed stopped with bars Kafka had not taken (they were retried until the stop).
    #[error("{bars} bars could not be published before the feed stopped: {reason}")]
    Unpublished { bars: usize, reason: String },
    /// Every exchange refused every market: the feed has nothing to read.
    #[error("no exchange connection is left: every market was refused (see the subscription errors logged)")]
    NothingLeft,
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    #[error(transparent)]
    Stream(#[from] stream::StreamError),
}
