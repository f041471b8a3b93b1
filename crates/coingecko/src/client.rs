use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use domain::{CoinId, HistoryPoint, MarketSnapshot, VsCurrency};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use telemetry::failure::Chain;
use tracing::{debug, instrument, warn};

use crate::wire::{api_message, excerpt, parse_market_chart, parse_markets};
use crate::{CoinGeckoError, Config};

/// CoinGecko serves hourly points for ranges of 1 to 90 days; longer ranges
/// fall back to daily points, so history is fetched in chunks of at most this.
pub const MAX_RANGE_DAYS_HOURLY: i64 = 90;

/// The longest backoff between two retries, whatever the attempt count.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Error code CoinGecko returns when a plan may not see that far back.
const CODE_RANGE_NOT_ALLOWED: i64 = 10012;

/// A response body together with what was parsed from it.
#[derive(Debug, Clone)]
pub struct Fetched<T> {
    /// The body exactly as received, for the raw landing zone.
    pub body: Bytes,
    pub fetched_at: DateTime<Utc>,
    pub value: T,
}

/// A CoinGecko API client. Build it once and share it: it holds the connection pool.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    key: Option<(HeaderName, SecretString)>,
    max_retries: u32,
    retry_base: Duration,
    max_retry_after: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("key_header", &self.key.as_ref().map(|(h, _)| h))
            .finish_non_exhaustive()
    }
}

/// What one attempt came to.
enum Attempt {
    Done(Bytes),
    /// Worth another try, after the server's `Retry-After` if it gave one.
    Retry {
        reason: String,
        retry_after: Option<Duration>,
    },
    Fail(CoinGeckoError),
}

impl Client {
    pub fn new(config: &Config) -> Result<Self, CoinGeckoError> {
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("crypto-pipeline/", env!("CARGO_PKG_VERSION")));
        // Extra roots are added to the platform's, for TLS-intercepting proxies;
        // certificate verification always stays on.
        if let Some(path) = &config.ca_bundle {
            let pem = std::fs::read(path)
                .map_err(|e| CoinGeckoError::setup(format!("cannot read {}", path.display()), e))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                CoinGeckoError::setup(format!("{} is not a PEM certificate bundle", path.display()), e)
            })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| CoinGeckoError::setup("cannot build the HTTP client", e))?;

        let key = config.api_key.as_ref().map(|key| {
            // Paid plans authenticate against the pro host with their own header.
            let header = if config.base_url.host_str() == Some("pro-api.coingecko.com") {
                "x-cg-pro-api-key"
            } else {
                "x-cg-demo-api-key"
            };
            (HeaderName::from_static(header), key.clone())
        });
        Ok(Self {
            http,
            base: config.base_url.as_str().trim_end_matches('/').to_owned(),
            key,
            max_retries: config.max_retries,
            retry_base: config.retry_base,
            max_retry_after: config.max_retry_after,
        })
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `GET /coins/markets` for `coins`, quoted in `vs_currency`.
    #[instrument(skip_all, fields(coins = coins.len()))]
    pub async fn coins_markets(
        &self,
        coins: &[CoinId],
        vs_currency: &VsCurrency,
    ) -> Result<Fetched<Vec<MarketSnapshot>>, CoinGeckoError> {
        let ids = coins.iter().map(CoinId::as_str).collect::<Vec<_>>().join(",");
        let query = [
            ("vs_currency", vs_currency.to_string()),
            ("ids", ids),
            ("order", String::from("market_cap_desc")),
            ("per_page", String::from("250")),
            ("page", String::from("1")),
            ("sparkline", String::from("false")),
            ("price_change_percentage", String::from("24h")),
        ];
        let endpoint = "/coins/markets";
        let (body, fetched_at) = self.get(endpoint, "coins/markets", &query).await?;
        let value = parse_markets(&body, vs_currency, fetched_at)
            .map_err(|reason| malformed(endpoint, reason, &body))?;
        Ok(Fetched { body, fetched_at, value })
    }

    /// `GET /coins/{id}/market_chart/range` between `from` and `to` (inclusive,
    /// second precision). Keep ranges within [`MAX_RANGE_DAYS_HOURLY`] for hourly points.
    #[instrument(skip_all, fields(coin = %coin, from = %from, to = %to))]
    pub async fn market_chart_range(
        &self,
        coin: &CoinId,
        vs_currency: &VsCurrency,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Fetched<Vec<HistoryPoint>>, CoinGeckoError> {
        let query = [
            ("vs_currency", vs_currency.to_string()),
            ("from", from.timestamp().to_string()),
            ("to", to.timestamp().to_string()),
        ];
        let endpoint = format!("/coins/{coin}/market_chart/range");
        let (body, fetched_at) =
            self.get(&endpoint, &format!("coins/{coin}/market_chart/range"), &query).await?;
        let value = parse_market_chart(&body, coin, vs_currency)
            .map_err(|reason| malformed(&endpoint, reason, &body))?;
        Ok(Fetched { body, fetched_at, value })
    }

    /// `GET /ping`, once and without retries: whether CoinGecko answers at
    /// all, to choose between a backfill and the offline path at first start.
    #[instrument(skip_all)]
    pub async fn ping(&self) -> Result<(), CoinGeckoError> {
        let endpoint = "/ping";
        match self.attempt(endpoint, &format!("{}/ping", self.base), &[]).await {
            Attempt::Done(body) => {
                // The documented answer: {"gecko_says": "(V3) To the Moon!"}.
                let says = serde_json::from_slice::<serde_json::Value>(&body)
                    .is_ok_and(|v| v.get("gecko_says").is_some_and(serde_json::Value::is_string));
                if says {
                    Ok(())
                } else {
                    Err(malformed(endpoint, String::from("no gecko_says field"), &body))
                }
            }
            Attempt::Retry { reason, .. } => {
                Err(CoinGeckoError::Exhausted { endpoint: endpoint.to_owned(), attempts: 1, last: reason })
            }
            Attempt::Fail(err) => Err(err),
        }
    }

    /// One GET with retries: 429 waits for `Retry-After` (or backs off when the
    /// server gives none), 5xx, 408 and transport errors back off exponentially
    /// with jitter; any other status fails at once with the API's own message.
    async fn get(
        &self,
        endpoint: &str,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<(Bytes, DateTime<Utc>), CoinGeckoError> {
        let url = format!("{}/{path}", self.base);
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(self.retry_base)
            .with_max_delay(MAX_BACKOFF)
            .with_max_times(self.max_retries as usize)
            .with_jitter()
            .build();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let fetched_at = Utc::now();
            let (reason, retry_after) = match self.attempt(endpoint, &url, query).await {
                Attempt::Done(body) => {
                    debug!(endpoint, attempts, bytes = body.len(), "fetched");
                    return Ok((body, fetched_at));
                }
                Attempt::Fail(err) => return Err(err),
                Attempt::Retry { reason, retry_after } => (reason, retry_after),
            };
            if let Some(wait) = retry_after.filter(|w| *w > self.max_retry_after) {
                return Err(CoinGeckoError::RateLimited { endpoint: endpoint.to_owned(), retry_after: wait });
            }
            let Some(delay) = backoff.next() else {
                return Err(CoinGeckoError::Exhausted {
                    endpoint: endpoint.to_owned(),
                    attempts,
                    last: reason,
                });
            };
            let wait = retry_after.unwrap_or(delay);
            warn!(endpoint, attempts, wait_ms = wait.as_millis() as u64, %reason, "CoinGecko call failed, retrying");
            tokio::time::sleep(wait).await;
        }
    }

    async fn attempt(&self, endpoint: &str, url: &str, query: &[(&str, String)]) -> Attempt {
        let mut request = self.http.get(url).query(query).header("accept", "application/json");
        if let Some((header, key)) = &self.key {
            match HeaderValue::from_str(key.expose_secret()) {
                Ok(mut value) => {
                    value.set_sensitive(true);
                    request = request.header(header.clone(), value);
                }
                Err(_) => {
                    return Attempt::Fail(CoinGeckoError::Setup {
                        what: String::from(
                            "COINGECKO_API_KEY holds characters that cannot go in an HTTP header",
                        ),
                        source: None,
                    });
                }
            }
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => {
                let reason = format!("cannot reach {}: {}", self.base, Chain(&e.without_url()));
                return Attempt::Retry { reason, retry_after: None };
            }
        };
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(e) => return Attempt::Retry { reason: Chain(&e).to_string(), retry_after: None },
        };
        if status.is_success() {
            return Attempt::Done(body);
        }
        let (code, message) = api_message(&body);
        let reason = format!("HTTP {}: {message}", status.as_u16());
        match status {
            StatusCode::TOO_MANY_REQUESTS => Attempt::Retry { reason, retry_after },
            s if s.is_server_error() || s == StatusCode::REQUEST_TIMEOUT => {
                Attempt::Retry { reason, retry_after: None }
            }
            _ if code == Some(CODE_RANGE_NOT_ALLOWED) => {
                Attempt::Fail(CoinGeckoError::HistoryRangeNotAllowed {
                    endpoint: endpoint.to_owned(),
                    limit_days: 365,
                    message,
                })
            }
            _ => Attempt::Fail(CoinGeckoError::Api {
                endpoint: endpoint.to_owned(),
                status: status.as_u16(),
                code,
                message,
            }),
        }
    }
}

fn malformed(endpoint: &str, reason: String, body: &[u8]) -> CoinGeckoError {
    CoinGeckoError::Malformed { endpoint: endpoint.to_owned(), reason, excerpt: excerpt(body, 120) }
}

/// `Retry-After` as delta-seconds or an HTTP date (RFC 9110 §10.2.3); a date
/// already past is zero. The one parser of it: the alert webhooks use it too.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(std::time::SystemTime::now()).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        let later = std::time::SystemTime::now() + Duration::from_secs(90);
        headers.insert(RETRY_AFTER, HeaderValue::from_str(&httpdate::fmt_http_date(later)).unwrap());
        let wait = retry_after(&headers).unwrap();
        assert!(wait > Duration::from_secs(80) && wait <= Duration::from_secs(90), "{wait:?}");
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }
}
