//! The live feed's configuration: `FEED_*` (and `COINS`), read by `cpctl feed`
//! and the `feed` function through crate `settings`.

use std::path::PathBuf;
use std::time::Duration;

use domain::CoinId;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use url::Url;

use crate::Exchange;
use crate::markets::SymbolMap;

/// Binance's spot market-data streams; a combined-stream connection (`/stream`),
/// subscribed with a `SUBSCRIBE` request.
pub const BINANCE_WS_URL: &str = "wss://stream.binance.com:9443/stream";
pub const BINANCE_REST_URL: &str = "https://api.binance.com";
/// Coinbase Exchange's public feed (no authentication).
pub const COINBASE_WS_URL: &str = "wss://ws-feed.exchange.coinbase.com";
pub const COINBASE_REST_URL: &str = "https://api.exchange.coinbase.com";

/// Binance closes a connection at the 24-hour mark: the feed opens a new one
/// before that, at a moment of its own choosing.
pub const BINANCE_MAX_CONNECTION_AGE: Duration = Duration::from_secs(23 * 3600 + 50 * 60);

/// Everything the live feed and the feed function read.
#[derive(Debug, Clone, Deserialize)]
pub struct FeedConfig {
    /// `COINS`: the coins to follow; those an exchange does not list are skipped there, with a notice.
    #[serde(default = "CoinId::defaults", deserialize_with = "CoinId::deserialize_list")]
    pub coins: Vec<CoinId>,
    /// `FEED_EXCHANGES`: comma-separated, `binance`, `coinbase`.
    #[serde(rename = "feed_exchanges", default = "all_exchanges", deserialize_with = "exchange_list")]
    pub exchanges: Vec<Exchange>,
    /// `FEED_BAR_SECS`: trades are aggregated into bars this long, aligned to the clock.
    #[serde(rename = "feed_bar_secs", default = "default_bar_secs", deserialize_with = "bar_secs")]
    pub bar_secs: u32,
    /// `FEED_BAR_GRACE_MS`: how long after a bar's end its trades may still
    /// arrive (network and exchange latency) before it is published; a trade
    /// for a bar already published is counted as late, never merged.
    #[serde(
        rename = "feed_bar_grace_ms",
        default = "default_grace",
        deserialize_with = "settings::de::positive_millis"
    )]
    pub bar_grace: Duration,
    /// `FEED_STALL_SECS`: a connection that delivers no data for this long is
    /// stalled, and replaced.
    #[serde(
        rename = "feed_stall_secs",
        default = "default_stall",
        deserialize_with = "settings::de::positive_seconds"
    )]
    pub stall: Duration,
    /// `FEED_RECONNECT_BASE_MS`: the first delay before reconnecting; doubles
    /// (with jitter) on each failed attempt, up to `FEED_RECONNECT_MAX_SECS`.
    #[serde(
        rename = "feed_reconnect_base_ms",
        default = "default_reconnect_base",
        deserialize_with = "settings::de::positive_millis"
    )]
    pub reconnect_base: Duration,
    /// `FEED_RECONNECT_MAX_SECS`.
    #[serde(
        rename = "feed_reconnect_max_secs",
        default = "default_reconnect_max",
        deserialize_with = "settings::de::positive_seconds"
    )]
    pub reconnect_max: Duration,
    /// `FEED_RUN_RECORD_SECS`: the websocket feed writes its figures (bars,
    /// trades, reconnects, gaps) to the runs table this often, and when it stops.
    #[serde(
        rename = "feed_run_record_secs",
        default = "default_run_record",
        deserialize_with = "settings::de::positive_seconds"
    )]
    pub run_record: Duration,
    /// `FEED_CATCHUP_MINUTES`: the feed function fetches at most this many
    /// minutes back after downtime; older minutes are skipped, and the run says how many.
    #[serde(
        rename = "feed_catchup_minutes",
        default = "default_catchup",
        deserialize_with = "settings::de::positive"
    )]
    pub catchup_minutes: u32,
    /// `FEED_BINANCE_SYMBOLS`: `coin=SYMBOL,…`, spot pairs quoted in USDT.
    #[serde(
        rename = "feed_binance_symbols",
        default = "SymbolMap::binance_defaults",
        deserialize_with = "SymbolMap::binance"
    )]
    pub binance_symbols: SymbolMap,
    /// `FEED_COINBASE_PRODUCTS`: `coin=PRODUCT,…`, products quoted in USD
    /// (Coinbase lists no BNB, so binancecoin has none by default).
    #[serde(
        rename = "feed_coinbase_products",
        default = "SymbolMap::coinbase_defaults",
        deserialize_with = "SymbolMap::coinbase"
    )]
    pub coinbase_products: SymbolMap,
    /// `FEED_BINANCE_WS_URL`.
    #[serde(rename = "feed_binance_ws_url", default = "binance_ws", deserialize_with = "ws_url")]
    pub binance_ws_url: Url,
    /// `FEED_BINANCE_REST_URL`.
    #[serde(
        rename = "feed_binance_rest_url",
        default = "binance_rest",
        deserialize_with = "settings::de::http_url"
    )]
    pub binance_rest_url: Url,
    /// `FEED_COINBASE_WS_URL`.
    #[serde(rename = "feed_coinbase_ws_url", default = "coinbase_ws", deserialize_with = "ws_url")]
    pub coinbase_ws_url: Url,
    /// `FEED_COINBASE_REST_URL`.
    #[serde(
        rename = "feed_coinbase_rest_url",
        default = "coinbase_rest",
        deserialize_with = "settings::de::http_url"
    )]
    pub coinbase_rest_url: Url,
    /// `FEED_CA_BUNDLE`: extra PEM roots to trust (a TLS-intercepting proxy, a
    /// test exchange), added to the system's. Verification is never turned off.
    #[serde(rename = "feed_ca_bundle", default, deserialize_with = "settings::de::pem_file")]
    pub ca_bundle: Option<PathBuf>,
    /// How long one websocket connection may live ([`BINANCE_MAX_CONNECTION_AGE`]);
    /// not a variable: tests shorten it.
    #[serde(skip, default = "max_connection_age")]
    pub max_connection_age: Duration,
}

/// Where one exchange is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeEndpoints {
    pub ws: Url,
    pub rest: Url,
}

impl FeedConfig {
    pub fn endpoints(&self, exchange: Exchange) -> ExchangeEndpoints {
        match exchange {
            Exchange::Binance => {
                ExchangeEndpoints { ws: self.binance_ws_url.clone(), rest: self.binance_rest_url.clone() }
            }
            Exchange::Coinbase => {
                ExchangeEndpoints { ws: self.coinbase_ws_url.clone(), rest: self.coinbase_rest_url.clone() }
            }
        }
    }

    pub fn symbols(&self, exchange: Exchange) -> &SymbolMap {
        match exchange {
            Exchange::Binance => &self.binance_symbols,
            Exchange::Coinbase => &self.coinbase_products,
        }
    }
}

fn all_exchanges() -> Vec<Exchange> {
    Exchange::ALL.to_vec()
}

fn default_bar_secs() -> u32 {
    5
}

fn default_grace() -> Duration {
    Duration::from_millis(2000)
}

fn default_stall() -> Duration {
    Duration::from_secs(30)
}

fn default_reconnect_base() -> Duration {
    Duration::from_millis(500)
}

fn default_reconnect_max() -> Duration {
    Duration::from_secs(30)
}

fn default_run_record() -> Duration {
    Duration::from_secs(300)
}

fn default_catchup() -> u32 {
    1440
}

fn max_connection_age() -> Duration {
    BINANCE_MAX_CONNECTION_AGE
}

fn parse_url(raw: &str) -> Url {
    // The constants above are valid URLs.
    Url::parse(raw).unwrap_or_else(|_| unreachable!("{raw} is a URL"))
}

fn binance_ws() -> Url {
    parse_url(BINANCE_WS_URL)
}

fn binance_rest() -> Url {
    parse_url(BINANCE_REST_URL)
}

fn coinbase_ws() -> Url {
    parse_url(COINBASE_WS_URL)
}

fn coinbase_rest() -> Url {
    parse_url(COINBASE_REST_URL)
}

fn exchange_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Exchange>, D::Error> {
    let raw = String::deserialize(deserializer)?;
    let mut exchanges = Vec::new();
    for name in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let exchange = Exchange::ALL.into_iter().find(|e| e.as_str() == name).ok_or_else(|| {
            D::Error::custom(format!("unknown exchange {name:?}: expected binance, coinbase"))
        })?;
        if !exchanges.contains(&exchange) {
            exchanges.push(exchange);
        }
    }
    if exchanges.is_empty() {
        return Err(D::Error::custom("name at least one exchange (binance, coinbase)"));
    }
    Ok(exchanges)
}

/// Bars divide a minute evenly, so every bar lies within one minute and the
/// grid is the same after any restart.
fn bar_secs<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    let secs: u32 = settings::de::positive(deserializer)?;
    if 60 % secs != 0 {
        return Err(D::Error::custom(format!(
            "{secs} does not divide a minute: use 1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30 or 60"
        )));
    }
    Ok(secs)
}

/// A `wss://` URL (or `ws://`, for a local test exchange), without a trailing `/`.
fn ws_url<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Url, D::Error> {
    let raw = String::deserialize(deserializer)?;
    Url::parse(raw.trim_end_matches('/'))
        .ok()
        .filter(|u| matches!(u.scheme(), "ws" | "wss") && u.has_host())
        .ok_or_else(|| D::Error::custom("expected a wss:// (or ws://) URL"))
}

#[cfg(test)]
mod tests {
    use settings::Env;

    use super::*;

    #[test]
    fn the_defaults_are_the_exchanges_public_endpoints_and_five_second_bars() {
        let c: FeedConfig = Env::default().load().unwrap();
        assert_eq!(c.exchanges, vec![Exchange::Binance, Exchange::Coinbase]);
        assert_eq!((c.bar_secs, c.stall, c.catchup_minutes), (5, Duration::from_secs(30), 1440));
        assert_eq!(c.endpoints(Exchange::Binance).ws.as_str(), BINANCE_WS_URL);
        assert_eq!(c.endpoints(Exchange::Coinbase).rest.as_str(), "https://api.exchange.coinbase.com/");
        assert_eq!(c.binance_symbols.get(&CoinId::parse("binancecoin").unwrap()), Some("BNBUSDT"));
        assert_eq!(c.coinbase_products.get(&CoinId::parse("binancecoin").unwrap()), None);
        assert_eq!(c.coinbase_products.get(&CoinId::parse("ripple").unwrap()), Some("XRP-USD"));
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (name, bad) in [
            ("FEED_EXCHANGES", "kraken"),
            ("FEED_EXCHANGES", ","),
            ("FEED_BAR_SECS", "7"),
            ("FEED_BAR_SECS", "0"),
            ("FEED_STALL_SECS", "0"),
            ("FEED_BINANCE_SYMBOLS", "bitcoin=BTCEUR"),
            ("FEED_BINANCE_SYMBOLS", "bitcoin"),
            ("FEED_COINBASE_PRODUCTS", "bitcoin=BTC-USDT"),
            ("FEED_COINBASE_PRODUCTS", "Bitcoin=BTC-USD"),
            ("FEED_BINANCE_WS_URL", "https://stream.binance.com"),
            ("FEED_COINBASE_REST_URL", "wss://x"),
            ("FEED_CA_BUNDLE", "/nonexistent/ca.pem"),
        ] {
            let err = Env::from_pairs([(name, bad)]).load::<FeedConfig>().unwrap_err();
            assert_eq!(err.variable(), name, "{bad}: {err}");
        }
    }

    #[test]
    fn env_example_documents_every_variable_with_its_default() {
        settings::check_documented::<FeedConfig>(include_str!("../../../.env.example")).unwrap();
    }
}
