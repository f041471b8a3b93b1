//! The exchanges' public REST endpoints: candles for the feed function, and
//! a reachability probe for `just deploy-local`'s choice of live feed.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;
use tracing::warn;
use url::Url;

use crate::{Exchange, ExchangeError, FeedConfig};

/// Retries after the first attempt, for 429, 5xx and transport errors.
const MAX_RETRIES: u32 = 4;
/// A `Retry-After` longer than this fails the call: the next invocation comes in a minute.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(20);

/// A client for the exchanges' REST APIs, with retries.
#[derive(Debug, Clone)]
pub struct RestClient {
    http: reqwest::Client,
    retry_base: Duration,
}

impl RestClient {
    pub fn new(config: &FeedConfig) -> Result<Self, ExchangeError> {
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            // Coinbase refuses requests without a User-Agent.
            .user_agent(concat!("crypto-pipeline/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &config.ca_bundle {
            let pem = std::fs::read(path).map_err(|e| ExchangeError::Config {
                variable: "FEED_CA_BUNDLE",
                problem: format!("cannot read {}: {e}", path.display()),
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ExchangeError::Config {
                variable: "FEED_CA_BUNDLE",
                problem: format!("{} is not a PEM bundle: {e}", path.display()),
            })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http =
            builder.build().map_err(|e| ExchangeError::Setup { what: "HTTP client", source: Box::new(e) })?;
        Ok(Self { http, retry_base: Duration::from_millis(300) })
    }

    /// The same client with a shorter first retry delay (tests).
    pub fn with_retry_base(mut self, base: Duration) -> Self {
        self.retry_base = base;
        self
    }

    /// GETs `path` under `base` and parses the JSON answer, retrying 429
    /// (after `Retry-After`), 5xx and transport errors with jittered backoff.
    pub async fn get_json(
        &self,
        exchange: Exchange,
        base: &Url,
        path: &str,
        query: &[(&'static str, String)],
    ) -> Result<serde_json::Value, ExchangeError> {
        let url = format!("{}{path}", base.as_str().trim_end_matches('/'));
        let mut delays = ExponentialBuilder::default()
            .with_min_delay(self.retry_base)
            .with_max_delay(Duration::from_secs(10))
            .with_jitter()
            .with_max_times(MAX_RETRIES as usize)
            .build();
        let fail = |attempts: Option<u32>, reason: String| ExchangeError::Rest {
            exchange: exchange.title(),
            endpoint: path.to_owned(),
            attempts,
            reason,
        };
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let (reason, retry_after) = match self.http.get(&url).query(query).send().await {
                Ok(response) if response.status().is_success() => {
                    let body =
                        response.bytes().await.map_err(|e| fail(None, format!("reading the body: {e}")))?;
                    return serde_json::from_slice(&body).map_err(|e| ExchangeError::Malformed {
                        exchange: exchange.title(),
                        endpoint: path.to_owned(),
                        reason: e.to_string(),
                        excerpt: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
                    });
                }
                Ok(response) => {
                    let status = response.status();
                    let retry_after = response
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let body = response.text().await.unwrap_or_default();
                    let reason = format!("HTTP {status}: {}", body.chars().take(200).collect::<String>());
                    // 418: Binance has banned the IP for ignoring 429s; retrying makes it longer.
                    if !(status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()) {
                        return Err(fail(None, reason));
                    }
                    (reason, retry_after)
                }
                Err(e) => (telemetry::failure::Chain(&e).to_string(), None),
            };
            let Some(backoff) = delays.next() else { return Err(fail(Some(attempt), reason)) };
            let delay = match retry_after {
                Some(wait) if wait > MAX_RETRY_AFTER => {
                    return Err(fail(Some(attempt), format!("{reason} (Retry-After {} s)", wait.as_secs())));
                }
                Some(wait) => wait,
                None => backoff,
            };
            warn!(%exchange, endpoint = path, attempt, retry_in_ms = delay.as_millis() as u64, %reason, "retrying");
            tokio::time::sleep(delay).await;
        }
    }

    /// Whether `exchange` answers its public REST API (`/api/v3/ping`,
    /// `/time`) within a few seconds, without retries.
    pub async fn probe(&self, exchange: Exchange, base: &Url) -> Result<(), String> {
        let path = match exchange {
            Exchange::Binance => "/api/v3/ping",
            Exchange::Coinbase => "/time",
        };
        let url = format!("{}{path}", base.as_str().trim_end_matches('/'));
        match self.http.get(&url).timeout(Duration::from_secs(5)).send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!("{url}: HTTP {}", r.status())),
            Err(e) => Err(format!("{url}: {}", telemetry::failure::Chain(&e))),
        }
    }
}
