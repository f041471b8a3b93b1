//! Which symbol stands for which coin on which exchange.

use std::collections::HashMap;

use domain::CoinId;
use serde::Deserializer;
use serde::de::Error as _;

use crate::{Exchange, FeedConfig};

/// `coin=SYMBOL` pairs for one exchange, in configuration order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolMap(Vec<(CoinId, String)>);

impl SymbolMap {
    pub fn get(&self, coin: &CoinId) -> Option<&str> {
        self.0.iter().find(|(c, _)| c == coin).map(|(_, s)| s.as_str())
    }

    pub fn binance_defaults() -> Self {
        Self::defaults(&[
            ("bitcoin", "BTCUSDT"),
            ("ethereum", "ETHUSDT"),
            ("solana", "SOLUSDT"),
            ("ripple", "XRPUSDT"),
            ("binancecoin", "BNBUSDT"),
        ])
    }

    pub fn coinbase_defaults() -> Self {
        Self::defaults(&[
            ("bitcoin", "BTC-USD"),
            ("ethereum", "ETH-USD"),
            ("solana", "SOL-USD"),
            ("ripple", "XRP-USD"),
        ])
    }

    fn defaults(pairs: &[(&str, &str)]) -> Self {
        Self(
            pairs
                .iter()
                .filter_map(|(coin, symbol)| Some((CoinId::parse(coin).ok()?, (*symbol).to_owned())))
                .collect(),
        )
    }

    /// `FEED_BINANCE_SYMBOLS`: upper-case spot symbols ending in USDT.
    pub fn binance<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::parse(deserializer, "a Binance spot symbol quoted in USDT, such as BTCUSDT", |s| {
            s.len() > 4
                && s.len() <= 20
                && s.ends_with("USDT")
                && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        })
    }

    /// `FEED_COINBASE_PRODUCTS`: `BASE-USD` product ids.
    pub fn coinbase<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::parse(deserializer, "a Coinbase product quoted in USD, such as BTC-USD", |s| {
            s.strip_suffix("-USD").is_some_and(|base| {
                !base.is_empty()
                    && base.len() <= 10
                    && base.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            })
        })
    }

    fn parse<'de, D: Deserializer<'de>>(
        deserializer: D,
        expected: &str,
        valid: impl Fn(&str) -> bool,
    ) -> Result<Self, D::Error> {
        let raw = <String as serde::Deserialize>::deserialize(deserializer)?;
        let mut pairs: Vec<(CoinId, String)> = Vec::new();
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (coin, symbol) = part
                .split_once('=')
                .ok_or_else(|| D::Error::custom(format!("{part:?} is not coin=SYMBOL")))?;
            let coin = CoinId::parse(coin.trim()).map_err(D::Error::custom)?;
            let symbol = symbol.trim();
            if !valid(symbol) {
                return Err(D::Error::custom(format!("{symbol:?} for {coin} is not {expected}")));
            }
            if pairs.iter().any(|(c, _)| *c == coin) {
                return Err(D::Error::custom(format!("{coin} is mapped twice")));
            }
            pairs.push((coin, symbol.to_owned()));
        }
        Ok(Self(pairs))
    }
}

/// One coin on one exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Market {
    /// Index of the coin in [`Markets::coins`].
    pub index: usize,
    pub coin: CoinId,
    /// As the exchange writes it (`BTCUSDT`, `BTC-USD`).
    pub symbol: String,
}

/// The feed's coins and, per exchange, the markets it reads.
#[derive(Debug, Clone)]
pub struct Markets {
    coins: Vec<CoinId>,
    by_exchange: Vec<(Exchange, Vec<Market>)>,
    /// Per exchange, symbol (as configured, upper case) → coin index; looked
    /// up with a borrowed `&str` for every trade, so nothing is allocated.
    lookup: HashMap<Exchange, HashMap<String, usize>>,
}

impl Markets {
    /// The configured coins on the configured exchanges. A coin an exchange
    /// does not list (no symbol for it) is left out there: see [`Markets::unlisted`].
    pub fn from_config(config: &FeedConfig) -> Self {
        let coins = config.coins.clone();
        let mut by_exchange = Vec::new();
        let mut lookup: HashMap<Exchange, HashMap<String, usize>> = HashMap::new();
        for &exchange in &config.exchanges {
            let symbols = config.symbols(exchange);
            let markets: Vec<Market> = coins
                .iter()
                .enumerate()
                .filter_map(|(index, coin)| {
                    let symbol = symbols.get(coin)?.to_owned();
                    lookup.entry(exchange).or_default().insert(symbol.clone(), index);
                    Some(Market { index, coin: coin.clone(), symbol })
                })
                .collect();
            by_exchange.push((exchange, markets));
        }
        Self { coins, by_exchange, lookup }
    }

    pub fn coins(&self) -> &[CoinId] {
        &self.coins
    }

    pub fn coin(&self, index: usize) -> Option<&CoinId> {
        self.coins.get(index)
    }

    /// The exchanges with at least one market, in configuration order.
    pub fn exchanges(&self) -> impl Iterator<Item = Exchange> + '_ {
        self.by_exchange.iter().filter(|(_, m)| !m.is_empty()).map(|(e, _)| *e)
    }

    pub fn markets(&self, exchange: Exchange) -> &[Market] {
        self.by_exchange.iter().find(|(e, _)| *e == exchange).map(|(_, m)| m.as_slice()).unwrap_or_default()
    }

    /// The coin a symbol (as the exchange spells it, any case) stands for.
    pub fn find(&self, exchange: Exchange, symbol: &str) -> Option<usize> {
        let symbols = self.lookup.get(&exchange)?;
        symbols.get(symbol).or_else(|| symbols.get(&symbol.to_ascii_uppercase())).copied()
    }

    /// Coins a configured exchange has no symbol for (Coinbase lists no BNB).
    pub fn unlisted(&self, exchange: Exchange) -> Vec<&CoinId> {
        let listed = self.markets(exchange);
        self.coins
            .iter()
            .enumerate()
            .filter(|(i, _)| !listed.iter().any(|m| m.index == *i))
            .map(|(_, c)| c)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use settings::Env;

    use super::*;

    #[test]
    fn coinbase_has_no_bnb_by_default_and_binance_lists_all_five() {
        let config: FeedConfig = Env::default().load().unwrap();
        let markets = Markets::from_config(&config);
        assert_eq!(markets.markets(Exchange::Binance).len(), 5);
        assert_eq!(markets.unlisted(Exchange::Coinbase), vec![&CoinId::parse("binancecoin").unwrap()]);
        assert_eq!(markets.find(Exchange::Binance, "ethusdt"), Some(1));
        assert_eq!(markets.find(Exchange::Coinbase, "SOL-USD"), Some(2));
        assert_eq!(markets.find(Exchange::Coinbase, "BNB-USD"), None);
    }

    #[test]
    fn a_custom_mapping_follows_the_configured_coins() {
        let config: FeedConfig = Env::from_pairs([
            ("COINS", "bitcoin,dogecoin"),
            ("FEED_BINANCE_SYMBOLS", "bitcoin=BTCUSDT, dogecoin=DOGEUSDT"),
            ("FEED_EXCHANGES", "binance"),
        ])
        .load()
        .unwrap();
        let markets = Markets::from_config(&config);
        assert_eq!(markets.exchanges().collect::<Vec<_>>(), vec![Exchange::Binance]);
        let symbols: Vec<&str> =
            markets.markets(Exchange::Binance).iter().map(|m| m.symbol.as_str()).collect();
        assert_eq!(symbols, ["BTCUSDT", "DOGEUSDT"]);
    }
}
