//! The tick message on topic `crypto_prices`: key = coin id (so each coin's
//! ticks stay ordered in one partition), value = versioned JSON.
//!
//! ```json
//! {"v":1,"coin":"bitcoin","event_time":"2026-11-25T10:00:05Z","price":91234.5,
//!  "volume":0.42,"interval_secs":5,"source":"simulated","seq":17}
//! ```
//! A bar of real trades adds `"vwap"` and `"trades"` (both or neither), and its
//! `source` is the exchange (`binance`, `coinbase`).
//!
//! Unknown fields are ignored, so v1 can grow fields without breaking readers;
//! anything that changes the meaning of a field takes a new `v`.

use std::collections::HashSet;
use std::fmt;

use chrono::{DateTime, Duration, Utc};
use domain::{BarStats, CoinId, Tick, TickSource};
use serde::{Deserialize, Serialize};

/// The only message version this code writes and reads.
pub const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct WireV1 {
    v: u32,
    coin: String,
    event_time: String,
    price: f64,
    #[serde(default)]
    volume: Option<f64>,
    interval_secs: u32,
    source: TickSource,
    seq: u64,
    /// Volume-weighted average price of a bar of trades (with `trades`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    vwap: Option<f64>,
    /// Trades in a bar of trades (with `vwap`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    trades: Option<u32>,
}

/// Encodes a tick as a v1 message.
pub fn encode(tick: &Tick) -> Vec<u8> {
    let wire = WireV1 {
        v: VERSION,
        coin: tick.coin.to_string(),
        event_time: tick.event_time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        price: tick.price,
        volume: tick.volume,
        interval_secs: tick.interval_secs,
        source: tick.source,
        seq: tick.seq,
        vwap: tick.bar.map(|b| b.vwap),
        trades: tick.bar.map(|b| b.trades),
    };
    // A struct of strings and numbers always serialises.
    serde_json::to_vec(&wire).unwrap_or_default()
}

/// Why a record was not accepted. The text goes to the dead-letter topic.
#[derive(Debug, Clone, PartialEq)]
pub enum Rejection {
    NotBase64,
    NotJson(String),
    BadShape(String),
    UnsupportedVersion(u32),
    UnknownCoin(String),
    BadPrice(f64),
    BadVolume(f64),
    BadInterval,
    /// `vwap` and `trades` come together, positive, or not at all.
    BadBar {
        vwap: Option<f64>,
        trades: Option<u32>,
    },
    UnparseableTime(String),
    AbsurdTime(DateTime<Utc>),
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotBase64 => write!(f, "value is not base64"),
            Self::NotJson(e) => write!(f, "value is not JSON: {e}"),
            Self::BadShape(e) => write!(f, "missing or mistyped field: {e}"),
            Self::UnsupportedVersion(v) => {
                write!(f, "unsupported message version {v} (this consumer reads {VERSION})")
            }
            Self::UnknownCoin(c) => write!(f, "unknown coin {c:?}"),
            Self::BadPrice(p) => write!(f, "price {p} is not a positive finite number"),
            Self::BadVolume(v) => write!(f, "volume {v} is negative or not finite"),
            Self::BadInterval => write!(f, "interval_secs must be positive"),
            Self::BadBar { vwap, trades } => {
                write!(f, "vwap ({vwap:?}) and trades ({trades:?}) must both be positive, or both be absent")
            }
            Self::UnparseableTime(t) => write!(f, "event_time {t:?} is not an RFC 3339 timestamp"),
            Self::AbsurdTime(t) => {
                write!(f, "event_time {t} is before Bitcoin's genesis block or more than a day ahead")
            }
        }
    }
}

/// Decodes and validates one message value against the coins the pipeline follows.
pub fn decode(value: &[u8], known: &HashSet<CoinId>, now: DateTime<Utc>) -> Result<Tick, Rejection> {
    let json: serde_json::Value =
        serde_json::from_slice(value).map_err(|e| Rejection::NotJson(e.to_string()))?;
    if let Some(v) = json.get("v").and_then(serde_json::Value::as_u64).filter(|v| *v != u64::from(VERSION)) {
        return Err(Rejection::UnsupportedVersion(u32::try_from(v).unwrap_or(u32::MAX)));
    }
    let wire: WireV1 = serde_json::from_value(json).map_err(|e| Rejection::BadShape(e.to_string()))?;
    let coin = CoinId::parse(&wire.coin)
        .ok()
        .filter(|c| known.contains(c))
        .ok_or_else(|| Rejection::UnknownCoin(wire.coin.clone()))?;
    if !(wire.price.is_finite() && wire.price > 0.0) {
        return Err(Rejection::BadPrice(wire.price));
    }
    if let Some(v) = wire.volume.filter(|v| !(v.is_finite() && *v >= 0.0)) {
        return Err(Rejection::BadVolume(v));
    }
    if wire.interval_secs == 0 {
        return Err(Rejection::BadInterval);
    }
    let bar = match (wire.vwap, wire.trades) {
        (None, None) => None,
        (Some(vwap), Some(trades)) if vwap.is_finite() && vwap > 0.0 && trades > 0 => {
            Some(BarStats { vwap, trades })
        }
        (vwap, trades) => return Err(Rejection::BadBar { vwap, trades }),
    };
    let event_time = DateTime::parse_from_rfc3339(&wire.event_time)
        .map_err(|_| Rejection::UnparseableTime(wire.event_time.clone()))?
        .with_timezone(&Utc);
    let genesis = DateTime::<Utc>::from_timestamp(1_231_006_505, 0).unwrap_or_default();
    if event_time < genesis || event_time > now + Duration::days(1) {
        return Err(Rejection::AbsurdTime(event_time));
    }
    Ok(Tick {
        coin,
        event_time,
        price: wire.price,
        volume: wire.volume,
        interval_secs: wire.interval_secs,
        source: wire.source,
        seq: wire.seq,
        bar,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> HashSet<CoinId> {
        CoinId::defaults().into_iter().collect()
    }

    fn tick() -> Tick {
        Tick {
            coin: CoinId::parse("bitcoin").unwrap(),
            event_time: DateTime::parse_from_rfc3339("2024-06-16T12:00:00Z").unwrap().with_timezone(&Utc),
            price: 66577.0,
            volume: Some(3015.407),
            interval_secs: 3600,
            source: TickSource::Replay,
            seq: 7,
            bar: None,
        }
    }

    #[test]
    fn a_tick_survives_encoding() {
        assert_eq!(decode(&encode(&tick()), &known(), Utc::now()), Ok(tick()));
    }

    #[test]
    fn a_bar_of_trades_survives_encoding_and_half_a_bar_is_refused() {
        let bar = Tick {
            source: TickSource::Binance,
            interval_secs: 5,
            bar: Some(BarStats { vwap: 66_570.25, trades: 42 }),
            ..tick()
        };
        let encoded = encode(&bar);
        assert!(String::from_utf8_lossy(&encoded).contains(r#""source":"binance""#));
        assert_eq!(decode(&encoded, &known(), Utc::now()), Ok(bar));
        let half = br#"{"v":1,"coin":"bitcoin","event_time":"2024-01-01T00:00:05Z","price":1,"interval_secs":5,"source":"coinbase","seq":0,"vwap":1.0}"#;
        let err = decode(half, &known(), Utc::now()).unwrap_err().to_string();
        assert!(err.contains("must both be positive"), "{err}");
        let no_trades = br#"{"v":1,"coin":"bitcoin","event_time":"2024-01-01T00:00:05Z","price":1,"interval_secs":5,"source":"coinbase","seq":0,"vwap":1.0,"trades":0}"#;
        assert!(decode(no_trades, &known(), Utc::now()).is_err());
    }

    #[test]
    fn local_offsets_are_normalised_to_utc() {
        let msg = br#"{"v":1,"coin":"bitcoin","event_time":"2024-06-16T15:00:00+03:00","price":1,"interval_secs":5,"source":"simulated","seq":0}"#;
        let t = decode(msg, &known(), Utc::now()).unwrap();
        assert_eq!(t.event_time.to_rfc3339(), "2024-06-16T12:00:00+00:00");
        assert_eq!(t.volume, None);
    }

    #[test]
    fn each_kind_of_bad_record_gets_its_reason() {
        let now = Utc::now();
        let cases: &[(&[u8], &str)] = &[
            (b"not json", "not JSON"),
            (br#"{"v":1,"coin":"bitcoin"}"#, "missing field `event_time`"),
            (br#"{"v":1,"coin":"bitcoin","event_time":"2024-01-01T00:00:00Z","price":"12","interval_secs":5,"source":"simulated","seq":0}"#, "mistyped"),
            (br#"{"v":2,"coin":"bitcoin"}"#, "unsupported message version 2"),
            (br#"{"v":1,"coin":"dogecoin","event_time":"2024-01-01T00:00:00Z","price":1,"interval_secs":5,"source":"simulated","seq":0}"#, "unknown coin \"dogecoin\""),
            (br#"{"v":1,"coin":"bitcoin","event_time":"2024-01-01T00:00:00Z","price":0,"interval_secs":5,"source":"simulated","seq":0}"#, "price 0 is not"),
            (br#"{"v":1,"coin":"bitcoin","event_time":"2024-01-01T00:00:00Z","price":-3,"interval_secs":5,"source":"simulated","seq":0}"#, "price -3 is not"),
            (br#"{"v":1,"coin":"bitcoin","event_time":"2024-01-01T00:00:00Z","price":1,"volume":-1,"interval_secs":5,"source":"simulated","seq":0}"#, "volume -1"),
            (br#"{"v":1,"coin":"bitcoin","event_time":"yesterday","price":1,"interval_secs":5,"source":"simulated","seq":0}"#, "not an RFC 3339"),
            (br#"{"v":1,"coin":"bitcoin","event_time":"1970-01-01T00:00:00Z","price":1,"interval_secs":5,"source":"simulated","seq":0}"#, "genesis"),
            (br#"{"v":1,"coin":"bitcoin","event_time":"2999-01-01T00:00:00Z","price":1,"interval_secs":5,"source":"simulated","seq":0}"#, "genesis"),
            (br#"{"v":1,"coin":"bitcoin","event_time":"2024-01-01T00:00:00Z","price":1,"interval_secs":5,"source":"telepathy","seq":0}"#, "unknown variant"),
            (br#"{"v":1,"coin":"bitcoin","event_time":"2024-01-01T00:00:00Z","price":1e999,"interval_secs":5,"source":"simulated","seq":0}"#, "not JSON"),
        ];
        for (msg, reason) in cases {
            let err = decode(msg, &known(), now).unwrap_err().to_string();
            assert!(err.contains(reason), "{}: got {err:?}, want {reason:?}", String::from_utf8_lossy(msg));
        }
    }
}
