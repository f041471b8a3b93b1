use std::fmt;

use serde::{Deserialize, Serialize};

use crate::DomainError;

/// The coins the pipeline follows when nothing else is configured.
pub const DEFAULT_COINS: [&str; 5] = ["bitcoin", "ethereum", "solana", "ripple", "binancecoin"];

/// A CoinGecko API coin id (`bitcoin`, `binancecoin`, `ripple`…).
///
/// Ids are what CoinGecko keys its endpoints by; symbols (`BTC`) are ambiguous
/// across coins, so the pipeline never keys anything by symbol.
///
/// Serialized as the bare string (serde formats write a newtype struct as its
/// field; `transparent` cannot be combined with `try_from`), and deserialized
/// through [`CoinId::parse`], so a bad id in JSON fails with its message.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct CoinId(String);

impl CoinId {
    /// Parses an id: 1 to 100 characters of `a-z`, `0-9`, `-`, `_` or `.`,
    /// the alphabet CoinGecko ids are drawn from.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let ok = !raw.is_empty()
            && raw.len() <= 100
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.'));
        if ok { Ok(Self(raw.to_owned())) } else { Err(DomainError::InvalidCoinId(raw.to_owned())) }
    }

    /// Parses a comma-separated list (`bitcoin,ethereum`), ignoring blanks and repeats.
    pub fn parse_list(raw: &str) -> Result<Vec<Self>, DomainError> {
        let mut coins: Vec<Self> = Vec::new();
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let coin = Self::parse(part)?;
            if !coins.contains(&coin) {
                coins.push(coin);
            }
        }
        Ok(coins)
    }

    /// The default coin list, typed.
    pub fn defaults() -> Vec<Self> {
        DEFAULT_COINS.iter().map(|c| Self(String::from(*c))).collect()
    }

    /// A configured list (`COINS`): [`CoinId::parse_list`], of at least one
    /// coin. For `#[serde(deserialize_with = "CoinId::deserialize_list")]`.
    pub fn deserialize_list<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<Self>, D::Error> {
        use serde::de::Error as _;
        let raw = String::deserialize(deserializer)?;
        let coins = Self::parse_list(&raw).map_err(D::Error::custom)?;
        if coins.is_empty() {
            return Err(D::Error::custom("name at least one coin"));
        }
        Ok(coins)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CoinId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for CoinId {
    type Error = DomainError;

    fn try_from(raw: String) -> Result<Self, DomainError> {
        Self::parse(&raw)
    }
}

/// The currency prices are quoted in (`usd`, `eur`…), as CoinGecko's `vs_currency`.
/// Serialized and deserialized as [`CoinId`] is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct VsCurrency(String);

impl VsCurrency {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let lower = raw.trim().to_ascii_lowercase();
        if (2..=10).contains(&lower.len()) && lower.bytes().all(|b| b.is_ascii_lowercase()) {
            Ok(Self(lower))
        } else {
            Err(DomainError::InvalidCurrency(raw.to_owned()))
        }
    }

    pub fn usd() -> Self {
        Self(String::from("usd"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for VsCurrency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for VsCurrency {
    type Error = DomainError;

    fn try_from(raw: String) -> Result<Self, DomainError> {
        Self::parse(&raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coin_ids_accept_coingecko_ids_and_reject_the_rest() {
        for ok in ["bitcoin", "binancecoin", "usd-coin", "0x", "wrapped-steth", "a.b_c"] {
            assert!(CoinId::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Bitcoin", "btc usd", "<script>", "é", &"a".repeat(101)] {
            assert!(CoinId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn coin_list_ignores_blanks_and_repeats() {
        let coins = CoinId::parse_list(" bitcoin, ,ethereum,bitcoin ").unwrap();
        let names: Vec<_> = coins.iter().map(CoinId::as_str).collect();
        assert_eq!(names, ["bitcoin", "ethereum"]);
        assert!(CoinId::parse_list("bitcoin,BAD").is_err());
    }

    #[test]
    fn a_configured_list_has_at_least_one_valid_coin() {
        #[derive(Debug, Deserialize)]
        struct Config {
            #[serde(deserialize_with = "CoinId::deserialize_list")]
            coins: Vec<CoinId>,
        }
        let config: Config = serde_json::from_str(r#"{"coins": " bitcoin, ,ethereum,bitcoin"}"#).unwrap();
        assert_eq!(config.coins, CoinId::parse_list("bitcoin,ethereum").unwrap());
        let err = serde_json::from_str::<Config>(r#"{"coins": "bitcoin,BTC"}"#).unwrap_err().to_string();
        assert!(err.starts_with(r#"invalid coin id "BTC""#), "{err}");
        let err = serde_json::from_str::<Config>(r#"{"coins": " , "}"#).unwrap_err().to_string();
        assert!(err.starts_with("name at least one coin"), "{err}");
    }

    #[test]
    fn currency_is_lowercased_and_checked() {
        assert_eq!(VsCurrency::parse("USD").unwrap().as_str(), "usd");
        assert!(VsCurrency::parse("u").is_err());
        assert!(VsCurrency::parse("us1").is_err());
    }

    #[test]
    fn errors_tell_the_user_what_to_use() {
        let msg = CoinId::parse("BTC").unwrap_err().to_string();
        assert!(msg.contains("`bitcoin`"), "{msg}");
    }

    #[test]
    fn json_values_are_parsed_like_any_other() {
        let coin: CoinId = serde_json::from_str(r#""usd-coin""#).unwrap();
        assert_eq!(coin.as_str(), "usd-coin");
        let currency: VsCurrency = serde_json::from_str(r#""EUR""#).unwrap();
        assert_eq!(currency.as_str(), "eur");
        // A bad value is refused with the validation message, not a generic serde one.
        let err = serde_json::from_str::<CoinId>(r#""BTC""#).unwrap_err().to_string();
        assert!(
            err.starts_with(r#"invalid coin id "BTC": use a CoinGecko API id such as `bitcoin`"#),
            "{err}"
        );
        let err = serde_json::from_str::<VsCurrency>(r#""us1""#).unwrap_err().to_string();
        assert!(
            err.starts_with(r#"invalid currency "us1": use a CoinGecko vs_currency such as `usd`"#),
            "{err}"
        );
        // Inside a record, too, and round-tripped through `Serialize`.
        let err = serde_json::from_str::<Vec<CoinId>>(r#"["bitcoin", "<script>"]"#).unwrap_err().to_string();
        assert!(err.contains(r#"invalid coin id "<script>""#), "{err}");
        assert_eq!(serde_json::to_string(&coin).unwrap(), r#""usd-coin""#);
        assert_eq!(serde_json::to_string(&currency).unwrap(), r#""eur""#);
    }
}
