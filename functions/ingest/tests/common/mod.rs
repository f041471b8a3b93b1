//! Shared set-up of the ingest integration tests: a fake CoinGecko (wiremock)
//! in front of the real local Postgres and S3 endpoint.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use domain::{CoinId, VsCurrency};
use wiremock::MockServer;

/// A client of the fake server with short backoffs, so retry tests are quick.
pub fn client(server: &MockServer, api_key: Option<&str>) -> coingecko::Client {
    coingecko::Client::new(&coingecko::Config {
        base_url: server.uri().parse().unwrap(),
        api_key: api_key.map(|k| k.to_owned().into()),
        ca_bundle: None,
        timeout: Duration::from_secs(5),
        max_retries: 3,
        retry_base: Duration::from_millis(20),
        max_retry_after: Duration::from_secs(5),
    })
    .unwrap()
}

/// The real `/coins/markets` response cut down to the five default coins.
pub fn markets_body() -> String {
    let raw = testkit::data().read("coingecko/dashbrd_coins_markets.json").unwrap();
    let items: Vec<serde_json::Value> = serde_json::from_slice(&raw).unwrap();
    let picked: Vec<_> = items
        .into_iter()
        .filter(|item| domain::DEFAULT_COINS.contains(&item["id"].as_str().unwrap_or_default()))
        .collect();
    assert_eq!(picked.len(), 5);
    serde_json::to_string(&picked).unwrap()
}

pub fn coins() -> Vec<CoinId> {
    CoinId::defaults()
}

pub fn usd() -> VsCurrency {
    VsCurrency::usd()
}
