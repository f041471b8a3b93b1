//! The fake exchange's REST half as a process (`scripts/lambda-smoke.sh`
//! invokes the feed function against it): Binance's `/api/v3/klines` and
//! Coinbase's `/products/{id}/candles` from the deterministic minutes of
//! `testkit::exchange::Candle::synthetic`, up to the current minute.
//!
//! Usage: fake-exchange PORT   (serves 127.0.0.1:PORT until killed)
#![allow(clippy::unwrap_used)]

#[tokio::main]
async fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("usage: fake-exchange PORT"));
    let server = testkit::exchange::CandleServer::on_port(port, None).await;
    println!("fake-exchange: Binance klines and Coinbase candles at {}", server.url());
    tokio::signal::ctrl_c().await.unwrap();
}
