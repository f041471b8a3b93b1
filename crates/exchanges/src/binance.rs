//! Binance spot: the combined trade streams and the 1-minute klines, as
//! Binance documents them ("WebSocket Streams for Binance", "Market data endpoints").
//!
//! The feed connects to the combined-stream address naming `<symbol>@trade`
//! for each market (`/stream?streams=btcusdt@trade/…`, symbols lower-case)
//! and sends one `SUBSCRIBE` request for the same streams, whose answer
//! confirms them; events arrive wrapped as `{"stream":"btcusdt@trade","data":{…}}`:
//!
//! ```json
//! {"e":"trade","E":1672515782136,"s":"BTCUSDT","t":12345,"p":"16500.01","q":"0.002",
//!  "T":1672515782136,"m":true,"M":true}
//! ```
//! Trade ids (`t`) are consecutive per symbol, so a jump is a gap. The server
//! pings every 20 s and expects the payload back within a minute (the
//! websocket library answers), and closes connections at 24 h.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use domain::{BarStats, Tick};
use serde::Deserialize;

use crate::feed::Frame;
use crate::{Exchange, Market, Markets, Trade, minute_tick, positive_decimal};

/// Binance accepts at most this many klines per request.
pub const KLINES_LIMIT: usize = 1000;

/// The combined-stream address of `markets`' trade streams:
/// `…/stream?streams=btcusdt@trade/ethusdt@trade`.
pub fn stream_url(base: &url::Url, markets: &[Market]) -> String {
    let streams: Vec<String> =
        markets.iter().map(|m| format!("{}@trade", m.symbol.to_ascii_lowercase())).collect();
    format!("{}?streams={}", base.as_str().trim_end_matches('/'), streams.join("/"))
}

/// The request subscribing to `markets`' trade streams.
pub fn subscribe(markets: &[Market], id: u64) -> String {
    let params: Vec<String> =
        markets.iter().map(|m| format!("{}@trade", m.symbol.to_ascii_lowercase())).collect();
    serde_json::json!({ "method": "SUBSCRIBE", "params": params, "id": id }).to_string()
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    stream: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    data: Option<Event<'a>>,
    /// Answers to requests carry their id.
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default)]
    error: Option<ErrorBody>,
    /// Older error answers are flat: `{"code":2,"msg":"…","id":1}`.
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    msg: Option<String>,
    /// An event on a raw (not combined) connection, such as `serverShutdown`.
    #[serde(borrow, default)]
    e: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: Option<i64>,
    msg: Option<String>,
}

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(borrow)]
    e: Cow<'a, str>,
    #[serde(borrow, default)]
    s: Option<Cow<'a, str>>,
    #[serde(default)]
    t: Option<u64>,
    #[serde(borrow, default)]
    p: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    q: Option<Cow<'a, str>>,
    #[serde(rename = "T", default)]
    trade_time: Option<i64>,
}

/// Reads one text frame. `Err` is a malformed frame, with the reason.
pub fn parse(text: &str, markets: &Markets) -> Result<Frame, String> {
    let envelope: Envelope = serde_json::from_str(text).map_err(|e| format!("not a Binance message: {e}"))?;
    if let Some(error) = envelope.error {
        return Ok(Frame::SubscriptionError {
            reason: format!("code {}: {}", error.code.unwrap_or_default(), error.msg.unwrap_or_default()),
            symbol: None,
        });
    }
    if let (Some(code), Some(msg)) = (envelope.code, &envelope.msg) {
        return Ok(Frame::SubscriptionError { reason: format!("code {code}: {msg}"), symbol: None });
    }
    let event = match (envelope.data, envelope.e) {
        (Some(event), _) => event,
        (None, Some(kind)) if kind == "serverShutdown" => return Ok(Frame::Reconnect("serverShutdown")),
        (None, Some(kind)) => return Ok(Frame::Unknown(format!("event {kind:?}"))),
        (None, None) if envelope.id.is_some() => return Ok(Frame::Subscribed),
        (None, None) => return Ok(Frame::Unknown(String::from("a message without data, event or id"))),
    };
    match event.e.as_ref() {
        "trade" => {}
        "serverShutdown" => return Ok(Frame::Reconnect("serverShutdown")),
        other => {
            let stream = envelope.stream.as_deref().unwrap_or("?");
            return Ok(Frame::Unknown(format!("event {other:?} on stream {stream:?}")));
        }
    }
    let symbol = event.s.ok_or("a trade without its symbol (s)")?;
    let Some(market) = markets.find(Exchange::Binance, &symbol) else {
        return Ok(Frame::Unknown(format!("a trade of {symbol}, which the feed did not subscribe to")));
    };
    let price =
        event.p.as_deref().and_then(positive_decimal).ok_or("a trade without a positive price (p)")?;
    let size =
        event.q.as_deref().and_then(positive_decimal).ok_or("a trade without a positive quantity (q)")?;
    let id = event.t.ok_or("a trade without its id (t)")?;
    let time = event
        .trade_time
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .ok_or("a trade without its time (T)")?;
    Ok(Frame::Trade(Trade { exchange: Exchange::Binance, market, price, size, time, id }))
}

/// `GET /api/v3/klines` query for one market's 1-minute klines opening in `[from, to)`.
pub fn klines_query(market: &Market, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<(&'static str, String)> {
    vec![
        ("symbol", market.symbol.clone()),
        ("interval", String::from("1m")),
        ("startTime", from.timestamp_millis().to_string()),
        // endTime is inclusive: the last kline wanted opens a minute before `to`.
        ("endTime", (to.timestamp_millis() - 1).to_string()),
        ("limit", KLINES_LIMIT.to_string()),
    ]
}

/// One kline: `[open time, open, high, low, close, volume, close time,
/// quote volume, trades, taker buy base, taker buy quote, ignore]`. `None`
/// for a minute without trades (Binance still lists it). The tick's time is
/// the minute's end.
pub fn kline_tick(row: &serde_json::Value, market: &Market) -> Result<Option<Tick>, String> {
    let field = |i: usize| row.get(i).ok_or_else(|| format!("kline has no field {i}: {row}"));
    let decimal = |i: usize| -> Result<f64, String> {
        field(i)?
            .as_str()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| format!("kline field {i} is not a decimal string: {row}"))
    };
    let open = kline_open(row).ok_or_else(|| format!("kline open time is not a Unix time in ms: {row}"))?;
    let trades = field(8)?.as_u64().ok_or_else(|| format!("kline trade count is not a number: {row}"))?;
    let (close, volume, quote_volume) = (decimal(4)?, decimal(5)?, decimal(7)?);
    if trades == 0 || volume <= 0.0 {
        return Ok(None);
    }
    if close <= 0.0 {
        return Err(format!("kline with trades has no positive close: {row}"));
    }
    let bar = BarStats { vwap: quote_volume / volume, trades: u32::try_from(trades).unwrap_or(u32::MAX) };
    Ok(Some(minute_tick(Exchange::Binance, market, open, close, volume, Some(bar))))
}

/// The open time of a kline row, to page through a range.
pub fn kline_open(row: &serde_json::Value) -> Option<DateTime<Utc>> {
    DateTime::<Utc>::from_timestamp_millis(row.get(0)?.as_i64()?)
}

#[cfg(test)]
mod tests {
    use settings::Env;

    use super::*;

    fn markets() -> Markets {
        Markets::from_config(&Env::default().load().unwrap())
    }

    #[test]
    fn a_documented_trade_event_becomes_a_trade() {
        let frame = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1672515782136,"s":"BTCUSDT","t":12345,"p":"16500.01000000","q":"0.00200000","T":1672515782134,"m":true,"M":true}}"#;
        let Ok(Frame::Trade(t)) = parse(frame, &markets()) else { panic!("{frame}") };
        assert_eq!((t.market, t.id, t.price, t.size), (0, 12345, 16500.01, 0.002));
        assert_eq!(t.time.timestamp_millis(), 1672515782134);
    }

    #[test]
    fn answers_errors_and_unknown_events_are_told_apart() {
        let m = markets();
        assert!(matches!(parse(r#"{"result":null,"id":1}"#, &m), Ok(Frame::Subscribed)));
        assert!(matches!(
            parse(r#"{"code":2,"msg":"Invalid request","id":1}"#, &m),
            Ok(Frame::SubscriptionError { .. })
        ));
        assert!(matches!(
            parse(r#"{"error":{"code":2,"msg":"Invalid request: unknown stream"},"id":1}"#, &m),
            Ok(Frame::SubscriptionError { .. })
        ));
        assert!(matches!(
            parse(r#"{"stream":"btcusdt@depth","data":{"e":"depthUpdate"}}"#, &m),
            Ok(Frame::Unknown(_))
        ));
        assert!(matches!(parse(r#"{"e":"serverShutdown","E":1}"#, &m), Ok(Frame::Reconnect(_))));
        for bad in [
            "not json",
            r#"{"stream":"btcusdt@trade","data":{"e":"trade","s":"BTCUSDT","t":1,"p":"-1","q":"1","T":1}}"#,
            r#"{"stream":"btcusdt@trade","data":{"e":"trade","s":"BTCUSDT","t":1,"p":"1","q":"1"}}"#,
        ] {
            assert!(parse(bad, &m).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_kline_becomes_a_minute_tick_and_an_empty_minute_none() {
        let market = &markets().markets(Exchange::Binance)[0].clone();
        let row: serde_json::Value = serde_json::from_str(
            r#"[1735689600000,"93500.0","93600.0","93400.0","93550.5","12.5",1735689659999,"1168750.0",420,"6.0","561000.0","0"]"#,
        )
        .unwrap();
        let tick = kline_tick(&row, market).unwrap().unwrap();
        assert_eq!(tick.event_time.to_rfc3339(), "2025-01-01T00:01:00+00:00");
        assert_eq!((tick.price, tick.volume, tick.interval_secs), (93550.5, Some(12.5), 60));
        assert_eq!(tick.bar, Some(BarStats { vwap: 93_500.0, trades: 420 }));
        let empty: serde_json::Value =
            serde_json::from_str(r#"[1735689600000,"1","1","1","1","0",1735689659999,"0",0,"0","0","0"]"#)
                .unwrap();
        assert_eq!(kline_tick(&empty, market), Ok(None));
    }
}
