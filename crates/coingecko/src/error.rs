use std::time::Duration;

/// What can go wrong talking to CoinGecko.
#[derive(Debug, thiserror::Error)]
pub enum CoinGeckoError {
    #[error("could not set up the CoinGecko client: {what}")]
    Setup {
        what: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    /// A 4xx other than 429: retrying the same request cannot help.
    #[error("CoinGecko refused {endpoint} with HTTP {status}: {message}")]
    Api { endpoint: String, status: u16, code: Option<i64>, message: String },

    /// The Demo/Public plans serve only the last 365 days of history.
    #[error(
        "CoinGecko refused history before {limit_days} days ago for {endpoint}: {message} \
         (the Demo and Public plans serve only the past 365 days; pick a later --from, or set \
         COINGECKO_API_KEY to a paid-plan key and COINGECKO_BASE_URL=https://pro-api.coingecko.com/api/v3)"
    )]
    HistoryRangeNotAllowed { endpoint: String, limit_days: u32, message: String },

    #[error(
        "CoinGecko is rate limiting {endpoint} and asks to wait {retry_after:?}, longer than \
         COINGECKO_MAX_RETRY_AFTER_SECS allows; try again later or use an API key"
    )]
    RateLimited { endpoint: String, retry_after: Duration },

    /// Retryable failures (429, 5xx, time-outs, connection errors) until the retries ran out.
    #[error("CoinGecko {endpoint} still failing after {attempts} attempts; last error: {last}")]
    Exhausted { endpoint: String, attempts: u32, last: String },

    /// A 2xx whose body is not the JSON the endpoint documents.
    #[error(
        "CoinGecko sent a response to {endpoint} that does not parse ({reason}); nothing was stored. Body starts with: {excerpt:?}"
    )]
    Malformed { endpoint: String, reason: String, excerpt: String },
}

impl CoinGeckoError {
    pub(crate) fn setup(
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Setup { what: what.into(), source: Some(Box::new(source)) }
    }

    /// Whether the same call may succeed later without any change on our side.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Exhausted { .. } | Self::RateLimited { .. })
    }
}
