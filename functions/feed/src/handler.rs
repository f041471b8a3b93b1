use chrono::{DateTime, Utc};
use exchanges::candles::{CandleSource, MarketReport, RestCandles, TickSink, poll};
use exchanges::{FeedConfig, Markets, RestClient};
use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use settings::{ConfigError, Env};
use storage::{FeedCursors, PgConfig, PgStore, Run, RunLog, RunOutcome};
use stream::{KafkaConfig, Publisher};
use tracing::info;
use uuid::Uuid;

use crate::FeedError;

/// What the feed function reads from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub feed: FeedConfig,
    pub database: PgConfig,
    pub kafka: KafkaConfig,
}

impl Config {
    pub fn load(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self { feed: env.load()?, database: env.load()?, kafka: env.load()? })
    }
}

/// The invocation payload: an EventBridge scheduled event, whose `time` (the
/// scheduled minute) is the clock the invocation runs at, so a retried event
/// asks for the same minutes. Without one, now.
#[derive(Debug, Default, Deserialize)]
pub struct FeedRequest {
    #[serde(default)]
    pub time: Option<DateTime<Utc>>,
}

/// What one invocation did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeedReport {
    pub run_id: Uuid,
    pub at: DateTime<Utc>,
    /// Candles published, all markets.
    pub published: u64,
    pub markets: Vec<MarketReport>,
}

/// The feed function with its clients, built once per process.
#[derive(Debug)]
pub struct Feed<S, P, D> {
    pub source: S,
    pub sink: P,
    pub store: D,
    pub markets: Markets,
    pub catchup_minutes: u32,
}

impl Feed<RestCandles, Publisher, PgStore> {
    pub async fn from_config(config: &Config) -> Result<Self, FeedError> {
        let source = RestCandles::new(RestClient::new(&config.feed)?, &config.feed);
        let sink = Publisher::connect(&config.kafka).await?;
        let store = PgStore::connect(&config.database).await?;
        let markets = Markets::from_config(&config.feed);
        Ok(Self { source, sink, store, markets, catchup_minutes: config.feed.catchup_minutes })
    }
}

impl<S: CandleSource, P: TickSink, D: FeedCursors + RunLog> Feed<S, P, D> {
    /// Publishes every market's closed candles due at `request.time` (or now).
    pub async fn run(&self, request: FeedRequest) -> Result<FeedReport, FeedError> {
        let at = request.time.unwrap_or_else(Utc::now);
        let run = Run::start(&self.store, "feed").await?;
        let run_id = run.id();
        let reports =
            poll(&self.source, &self.sink, &self.store, &self.markets, at, self.catchup_minutes).await;
        let published = reports.iter().map(|r| r.published).sum();
        let report = FeedReport { run_id, at, published, markets: reports };
        let failed: Vec<&MarketReport> = report.markets.iter().filter(|m| m.error.is_some()).collect();
        let result = match failed.first() {
            None => Ok(report.clone()),
            Some(first) => Err(FeedError::Markets {
                failed: failed.len(),
                markets: report.markets.len(),
                first: format!(
                    "{} {}: {}",
                    first.exchange,
                    first.symbol,
                    first.error.as_deref().unwrap_or_default()
                ),
            }),
        };
        let details = serde_json::json!({ "form": "candles", "at": at, "markets": report.markets });
        let result = run
            .finish(&self.store, result, |result| match result {
                Ok(r) => RunOutcome::succeeded(r.markets.len() as i64, r.published as i64, details.clone()),
                Err(e) => RunOutcome::failed(e, details.clone()),
            })
            .await;
        if let Ok(r) = &result {
            info!(run_id = %r.run_id, published = r.published, markets = r.markets.len(), "feed done");
        }
        result
    }
}

/// The Lambda handler: an unreadable payload is a permanent error.
pub async fn handle<S: CandleSource, P: TickSink, D: FeedCursors + RunLog>(
    feed: &Feed<S, P, D>,
    event: LambdaEvent<serde_json::Value>,
) -> Result<FeedReport, FeedError> {
    let request: FeedRequest = match event.payload {
        serde_json::Value::Null => FeedRequest::default(),
        payload => serde_json::from_value(payload).map_err(|e| FeedError::BadRequest(e.to_string()))?,
    };
    feed.run(request).await
}
