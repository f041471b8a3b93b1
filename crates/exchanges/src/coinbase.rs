//! Coinbase Exchange: the `matches` and `heartbeat` channels of the public
//! websocket feed, and the 1-minute candles, as Coinbase documents them
//! ("Exchange WebSocket Channels", "Get product candles").
//!
//! The feed sends one `subscribe` message within the 5 s Coinbase allows:
//!
//! ```json
//! {"type":"subscribe","product_ids":["BTC-USD"],"channels":["matches","heartbeat"]}
//! ```
//! and reads `subscriptions` (the confirmation), `last_match` (the product's
//! latest trade before the subscription), `match` (each trade), `heartbeat`
//! (every second per product, with the last trade id) and `error`.
//!
//! Gaps are found with trade ids, consecutive per product: the `sequence`
//! numbers count every message of the product's full feed, so on the
//! `matches` channel alone they jump by design and say nothing about loss.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use domain::Tick;
use serde::Deserialize;

use crate::feed::Frame;
use crate::{Exchange, Market, Markets, Trade, minute_tick, positive_decimal};

/// Coinbase answers at most this many candles per request.
pub const CANDLES_LIMIT: usize = 300;

/// The subscribe message for `markets`.
pub fn subscribe(markets: &[Market]) -> String {
    let products: Vec<&str> = markets.iter().map(|m| m.symbol.as_str()).collect();
    serde_json::json!({ "type": "subscribe", "product_ids": products, "channels": ["matches", "heartbeat"] })
        .to_string()
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    product_id: Option<Cow<'a, str>>,
    #[serde(default)]
    trade_id: Option<u64>,
    #[serde(default)]
    last_trade_id: Option<u64>,
    #[serde(borrow, default)]
    price: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    size: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    time: Option<Cow<'a, str>>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

/// Reads one text frame. `Err` is a malformed frame, with the reason.
pub fn parse(text: &str, markets: &Markets) -> Result<Frame, String> {
    let msg: Message = serde_json::from_str(text).map_err(|e| format!("not a Coinbase message: {e}"))?;
    let market = |msg: &Message| -> Result<Option<usize>, String> {
        let product =
            msg.product_id.as_deref().ok_or_else(|| format!("a {} without product_id", msg.kind))?;
        Ok(markets.find(Exchange::Coinbase, product))
    };
    match msg.kind.as_ref() {
        "match" | "last_match" => {
            let Some(market) = market(&msg)? else {
                return Ok(Frame::Unknown(format!(
                    "a {} of a product the feed did not subscribe to",
                    msg.kind
                )));
            };
            let id = msg.trade_id.ok_or("a match without trade_id")?;
            if msg.kind == "last_match" {
                // The latest trade before the subscription: it may have been
                // counted on a previous connection, so it only marks where the
                // trade ids stand.
                return Ok(Frame::LastTradeId { market, id });
            }
            let price =
                msg.price.as_deref().and_then(positive_decimal).ok_or("a match without a positive price")?;
            let size =
                msg.size.as_deref().and_then(positive_decimal).ok_or("a match without a positive size")?;
            let time = msg
                .time
                .as_deref()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .ok_or("a match without an RFC 3339 time")?
                .with_timezone(&Utc);
            Ok(Frame::Trade(Trade { exchange: Exchange::Coinbase, market, price, size, time, id }))
        }
        "heartbeat" => match (market(&msg)?, msg.last_trade_id) {
            // Some heartbeats carry last_trade_id 0: no information.
            (Some(market), Some(id)) if id > 0 => Ok(Frame::LastTradeId { market, id }),
            _ => Ok(Frame::Heartbeat),
        },
        "subscriptions" => Ok(Frame::Subscribed),
        "error" => {
            let reason = msg.reason.or(msg.message).unwrap_or_else(|| String::from("no reason given"));
            let symbol = reason
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .find(|word| markets.find(Exchange::Coinbase, word).is_some())
                .map(str::to_owned);
            Ok(Frame::SubscriptionError { reason, symbol })
        }
        other => Ok(Frame::Unknown(format!("message type {other:?}"))),
    }
}

/// `GET /products/{product}/candles` query for the 1-minute candles opening in `[from, to)`.
pub fn candles_query(from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<(&'static str, String)> {
    let iso = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    vec![
        ("granularity", String::from("60")),
        ("start", iso(from)),
        // Coinbase's end is inclusive: the last candle wanted opens a minute before `to`.
        ("end", iso(to - chrono::Duration::minutes(1))),
    ]
}

/// One candle, `[time, low, high, open, close, volume]` (time: the minute's
/// start, Unix seconds). Coinbase lists only minutes with trades. The tick's
/// time is the minute's end; candles carry no VWAP or trade count.
pub fn candle_tick(row: &serde_json::Value, market: &Market) -> Result<Option<Tick>, String> {
    let number = |i: usize| -> Result<f64, String> {
        row.get(i)
            .and_then(serde_json::Value::as_f64)
            .ok_or_else(|| format!("candle field {i} is not a number: {row}"))
    };
    let open = candle_open(row).ok_or_else(|| format!("candle time is not a Unix time: {row}"))?;
    let (close, volume) = (number(4)?, number(5)?);
    if volume <= 0.0 {
        return Ok(None);
    }
    if !(close.is_finite() && close > 0.0 && volume.is_finite()) {
        return Err(format!("candle with a volume has no positive close: {row}"));
    }
    Ok(Some(minute_tick(Exchange::Coinbase, market, open, close, volume, None)))
}

/// A candle's start.
pub fn candle_open(row: &serde_json::Value) -> Option<DateTime<Utc>> {
    DateTime::<Utc>::from_timestamp(row.get(0)?.as_i64()?, 0)
}

#[cfg(test)]
mod tests {
    use settings::Env;

    use super::*;

    fn markets() -> Markets {
        Markets::from_config(&Env::default().load().unwrap())
    }

    #[test]
    fn documented_messages_are_read() {
        let m = markets();
        let frame = r#"{"type":"match","trade_id":10,"sequence":50,"maker_order_id":"ac928c66-ca53-498f-9c13-a110027a60e8","taker_order_id":"132fb6ae-456b-4654-b4e0-d681ac05cea1","time":"2014-11-07T08:19:27.028459Z","product_id":"ETH-USD","size":"5.23512","price":"400.23","side":"sell"}"#;
        let Ok(Frame::Trade(t)) = parse(frame, &m) else { panic!() };
        assert_eq!((t.market, t.id, t.price, t.size), (1, 10, 400.23, 5.23512));
        assert_eq!(t.time.timestamp_micros(), 1_415_348_367_028_459);
        let hb = r#"{"type":"heartbeat","sequence":90,"last_trade_id":20,"product_id":"BTC-USD","time":"2014-11-07T08:19:28.464459Z"}"#;
        assert!(matches!(parse(hb, &m), Ok(Frame::LastTradeId { market: 0, id: 20 })));
        let hb0 = r#"{"type":"heartbeat","sequence":90,"last_trade_id":0,"product_id":"BTC-USD","time":"2014-11-07T08:19:28.464459Z"}"#;
        assert!(matches!(parse(hb0, &m), Ok(Frame::Heartbeat)));
        let last = r#"{"type":"last_match","trade_id":9,"sequence":49,"time":"2014-11-07T08:19:27.028459Z","product_id":"ETH-USD","size":"1","price":"400","side":"buy"}"#;
        assert!(matches!(parse(last, &m), Ok(Frame::LastTradeId { market: 1, id: 9 })));
        assert!(matches!(parse(r#"{"type":"subscriptions","channels":[]}"#, &m), Ok(Frame::Subscribed)));
        assert!(matches!(parse(r#"{"type":"ticker","product_id":"BTC-USD"}"#, &m), Ok(Frame::Unknown(_))));
    }

    #[test]
    fn a_refused_product_is_named() {
        let err = r#"{"type":"error","message":"Failed to subscribe","reason":"SOL-USD is delisted"}"#;
        let Ok(Frame::SubscriptionError { reason, symbol }) = parse(err, &markets()) else { panic!() };
        assert_eq!((reason.as_str(), symbol.as_deref()), ("SOL-USD is delisted", Some("SOL-USD")));
    }

    #[test]
    fn a_candle_becomes_a_minute_tick() {
        let market = &markets().markets(Exchange::Coinbase)[0].clone();
        let row: serde_json::Value =
            serde_json::from_str("[1735689600, 93400.0, 93600.0, 93500.0, 93550.5, 3.25]").unwrap();
        let tick = candle_tick(&row, market).unwrap().unwrap();
        assert_eq!(tick.event_time.to_rfc3339(), "2025-01-01T00:01:00+00:00");
        assert_eq!((tick.price, tick.volume, tick.bar), (93550.5, Some(3.25), None));
    }
}
