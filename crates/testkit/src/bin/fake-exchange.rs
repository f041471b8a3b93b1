//! The fake exchange as a process, for `scripts/lambda-smoke.sh` (the feed
//! function against it) and for trying the live feed without Internet:
//!
//! - REST on 127.0.0.1:PORT: Binance's `/api/v3/klines` and `/api/v3/ping`,
//!   Coinbase's `/products/{id}/candles` and `/time`, from the deterministic
//!   minutes of `testkit::exchange::Candle::synthetic`, up to the current minute;
//! - with `--trades-per-sec N`, a Binance-style websocket on 127.0.0.1:PORT+1
//!   (`/stream`): it answers `SUBSCRIBE` and sends N trades a second, spread
//!   over the subscribed streams, prices on a random walk (ids consecutive
//!   per symbol, times now).
//!
//! Usage: fake-exchange PORT [--trades-per-sec N]   (serves until killed)
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use testkit::exchange::{CandleServer, FakeExchange, Session, binance};

/// Sends trades for the subscribed streams until the client goes.
async fn stream_trades(mut session: Session, per_sec: u64) {
    let request = session.expect_subscribe().await;
    session.send(binance::subscribed(&request["id"])).await;
    let symbols: Vec<String> = request["params"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str()?.strip_suffix("@trade").map(str::to_ascii_uppercase))
        .collect();
    if symbols.is_empty() {
        return;
    }
    // From the simulator's levels (crates/stream/src/simulate.rs), so the dashboard's history meets them.
    let level = |symbol: &str| match symbol.trim_end_matches("USDT") {
        "BTC" => 60_000.0,
        "ETH" => 3_000.0,
        "SOL" => 150.0,
        "XRP" => 0.6,
        "BNB" => 600.0,
        _ => 100.0,
    };
    let mut prices: HashMap<&str, f64> = symbols.iter().map(|s| (s.as_str(), level(s))).collect();
    let mut ids: HashMap<&str, u64> = symbols.iter().map(|s| (s.as_str(), 1)).collect();
    // Batches every 50 ms.
    let per_tick = (per_sec / 20).max(1);
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let mut n: u64 = 0;
    loop {
        tick.tick().await;
        let mut frames = Vec::with_capacity(per_tick as usize);
        for _ in 0..per_tick {
            let symbol = symbols[(n % symbols.len() as u64) as usize].as_str();
            n += 1;
            // A small deterministic wiggle: ±0.05 % per trade.
            let price = prices.get_mut(symbol).unwrap();
            *price *= 1.0 + (((n * 7919) % 101) as f64 - 50.0) / 100_000.0;
            let id = ids.get_mut(symbol).unwrap();
            frames.push(binance::trade(symbol, *id, *price, 0.01 + (n % 9) as f64 / 100.0, Utc::now()));
            *id += 1;
        }
        session.send_many(frames).await;
        if session.hold(Duration::from_millis(0)).await {
            return;
        }
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: fake-exchange PORT [--trades-per-sec N]";
    let port: u16 = args.first().and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("{usage}"));
    let rate: Option<u64> = match args.get(1).map(String::as_str) {
        Some("--trades-per-sec") => {
            Some(args.get(2).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{usage}")))
        }
        Some(_) => panic!("{usage}"),
        None => None,
    };
    let server = CandleServer::on_port(port, None).await;
    println!("fake-exchange: Binance klines and Coinbase candles at {}", server.url());
    let _ws = match rate {
        Some(per_sec) => {
            let ws = FakeExchange::start_on(port + 1, move |s| stream_trades(s, per_sec)).await;
            println!("fake-exchange: Binance-style trades, {per_sec}/s, at {}", ws.ws_url());
            Some(ws)
        }
        None => None,
    };
    tokio::signal::ctrl_c().await.unwrap();
}
