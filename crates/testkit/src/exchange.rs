//! A fake exchange for the live feed's tests: a websocket server (plain, or
//! TLS with a CA made for the test) whose every connection a test scripts,
//! with builders for Binance's and Coinbase's documented messages; and a REST
//! server answering Binance's `/api/v3/klines` and Coinbase's
//! `/products/{id}/candles` by their documented parameters and limits, from a
//! deterministic series of minutes.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// What the websocket runs over: TCP, or TLS over TCP.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A websocket server on 127.0.0.1; each accepted connection runs the script.
#[derive(Debug)]
pub struct FakeExchange {
    addr: SocketAddr,
    ca_file: Option<PathBuf>,
    connections: Arc<AtomicUsize>,
    subscriptions: Arc<Mutex<Vec<serde_json::Value>>>,
    task: tokio::task::JoinHandle<()>,
}

/// One connection, as the script sees it.
pub struct Session {
    /// 0 for the first connection, 1 for the next…
    pub index: usize,
    ws: WebSocketStream<Box<dyn Io>>,
    subscriptions: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("index", &self.index).finish_non_exhaustive()
    }
}

impl FakeExchange {
    /// A plain `ws://` exchange.
    pub async fn start<F, Fut>(script: F) -> Self
    where
        F: Fn(Session) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self::serve(None, script).await
    }

    /// A `wss://localhost` exchange whose certificate a CA made for this test
    /// signed ([`FakeExchange::ca_file`] holds the CA).
    pub async fn start_tls<F, Fut>(script: F) -> Self
    where
        F: Fn(Session) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (acceptor, ca_pem) = tls_acceptor();
        let ca_file =
            std::env::temp_dir().join(format!("fake-exchange-ca-{}.pem", uuid::Uuid::new_v4().simple()));
        std::fs::write(&ca_file, ca_pem).unwrap();
        let mut exchange = Self::serve(Some(acceptor), script).await;
        exchange.ca_file = Some(ca_file);
        exchange
    }

    /// [`FakeExchange::start`] on a port of the caller's choosing.
    pub async fn start_on<F, Fut>(port: u16, script: F) -> Self
    where
        F: Fn(Session) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self::serve_on(port, None, script).await
    }

    async fn serve<F, Fut>(tls: Option<tokio_rustls::TlsAcceptor>, script: F) -> Self
    where
        F: Fn(Session) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self::serve_on(0, tls, script).await
    }

    async fn serve_on<F, Fut>(port: u16, tls: Option<tokio_rustls::TlsAcceptor>, script: F) -> Self
    where
        F: Fn(Session) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let subscriptions = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(script);
        let (count, subs) = (connections.clone(), subscriptions.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { return };
                let (script, count, subs, tls) = (script.clone(), count.clone(), subs.clone(), tls.clone());
                tokio::spawn(async move {
                    let io: Box<dyn Io> = match tls {
                        // A client that does not trust the certificate fails here.
                        Some(acceptor) => match acceptor.accept(tcp).await {
                            Ok(stream) => Box::new(stream),
                            Err(_) => return,
                        },
                        None => Box::new(tcp),
                    };
                    let Ok(ws) = tokio_tungstenite::accept_async(io).await else { return };
                    let index = count.fetch_add(1, Ordering::SeqCst);
                    script(Session { index, ws, subscriptions: subs }).await;
                });
            }
        });
        Self { addr, ca_file: None, connections, subscriptions, task }
    }

    /// The URL the feed connects to (`FEED_*_WS_URL`).
    pub fn ws_url(&self) -> url::Url {
        let scheme = if self.ca_file.is_some() { "wss://localhost" } else { "ws://127.0.0.1" };
        url::Url::parse(&format!("{scheme}:{}/stream", self.addr.port())).unwrap()
    }

    /// The CA of a [`FakeExchange::start_tls`] exchange, as a PEM file (`FEED_CA_BUNDLE`).
    pub fn ca_file(&self) -> Option<&std::path::Path> {
        self.ca_file.as_deref()
    }

    /// Websocket connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// The subscription requests received, in order.
    pub fn subscriptions(&self) -> Vec<serde_json::Value> {
        self.subscriptions.lock().unwrap().clone()
    }

    /// Waits until `n` connections were accepted.
    pub async fn wait_for_connections(&self, n: usize, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.connections() < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} connections after {timeout:?}, want {n}",
                self.connections()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for FakeExchange {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(file) = &self.ca_file {
            let _ = std::fs::remove_file(file);
        }
    }
}

impl Session {
    /// The next text frame from the client; `None` once it closed. Pings are answered meanwhile.
    pub async fn recv_text(&mut self, timeout: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => return Some(text.to_string()),
                Ok(Some(Ok(Message::Close(_)) | Err(_)) | None) | Err(_) => return None,
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// Reads the client's subscription request (recorded for [`FakeExchange::subscriptions`]).
    pub async fn expect_subscribe(&mut self) -> serde_json::Value {
        let text = self.recv_text(Duration::from_secs(10)).await.expect("the client subscribes");
        let request: serde_json::Value = serde_json::from_str(&text).expect("a JSON subscription request");
        self.subscriptions.lock().unwrap().push(request.clone());
        request
    }

    pub async fn send(&mut self, text: impl Into<String>) {
        let _ = self.ws.send(Message::text(text.into())).await;
    }

    /// Sends every frame, flushing once at the end (as an exchange writes a
    /// burst of messages into one TCP stream), for throughput measurements.
    pub async fn send_many(&mut self, frames: impl IntoIterator<Item = String>) {
        for frame in frames {
            if self.ws.feed(Message::text(frame)).await.is_err() {
                return;
            }
        }
        let _ = self.ws.flush().await;
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        let _ = self.ws.send(Message::binary(bytes)).await;
    }

    /// Sends a ping and waits for the pong carrying the same payload:
    /// how long it took, or `None` if none came within `timeout`.
    pub async fn ping(&mut self, payload: &[u8], timeout: Duration) -> Option<Duration> {
        let sent = tokio::time::Instant::now();
        self.ws.send(Message::Ping(payload.to_vec().into())).await.ok()?;
        let deadline = sent + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Ok(Some(Ok(Message::Pong(p)))) if p.as_ref() == payload => return Some(sent.elapsed()),
                Ok(Some(Ok(_))) => continue,
                _ => return None,
            }
        }
    }

    /// Keeps the connection open for `duration` without sending anything
    /// (reading, so pings and closes are seen). `true` if the client closed it first.
    pub async fn hold(&mut self, duration: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + duration;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return false,
                Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return true,
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// Closes the websocket properly, with a close frame.
    pub async fn close(mut self, reason: &str) {
        let frame = CloseFrame { code: 1001u16.into(), reason: reason.to_owned().into() };
        let _ = self.ws.close(Some(frame)).await;
    }

    /// Drops the TCP connection without a close frame, as a network failure does.
    pub fn drop_connection(self) {
        drop(self);
    }
}

/// A CA made for the test, and an acceptor presenting a `localhost` / 127.0.0.1 certificate it signed.
fn tls_acceptor() -> (tokio_rustls::TlsAcceptor, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "fake exchange test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec![String::from("localhost"), String::from("127.0.0.1")]).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key_der)
        .unwrap();
    (tokio_rustls::TlsAcceptor::from(Arc::new(config)), ca_cert.pem())
}

/// Binance's messages, as its "WebSocket Streams" page documents them.
pub mod binance {
    use super::*;

    /// A trade on the combined stream of `symbol` (upper case, as Binance sends `s`).
    pub fn trade(symbol: &str, id: u64, price: f64, qty: f64, time: DateTime<Utc>) -> String {
        serde_json::json!({
            "stream": format!("{}@trade", symbol.to_ascii_lowercase()),
            "data": {
                "e": "trade", "E": time.timestamp_millis() + 2, "s": symbol, "t": id,
                "p": format!("{price:.8}"), "q": format!("{qty:.8}"), "T": time.timestamp_millis(),
                "m": id.is_multiple_of(2), "M": true
            }
        })
        .to_string()
    }

    /// The answer to a `SUBSCRIBE` request.
    pub fn subscribed(id: &serde_json::Value) -> String {
        serde_json::json!({ "result": null, "id": id }).to_string()
    }

    pub fn error(code: i64, msg: &str, id: &serde_json::Value) -> String {
        serde_json::json!({ "error": { "code": code, "msg": msg }, "id": id }).to_string()
    }

    pub fn server_shutdown() -> String {
        serde_json::json!({ "e": "serverShutdown", "E": Utc::now().timestamp_millis() }).to_string()
    }
}

/// Coinbase Exchange's messages, as its "WebSocket Channels" page documents them.
pub mod coinbase {
    use super::*;

    fn iso(time: DateTime<Utc>) -> String {
        time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    }

    pub fn subscriptions(products: &[&str]) -> String {
        serde_json::json!({ "type": "subscriptions", "channels": [
            { "name": "matches", "product_ids": products },
            { "name": "heartbeat", "product_ids": products },
        ]})
        .to_string()
    }

    fn trade(
        kind: &str,
        product: &str,
        trade_id: u64,
        sequence: u64,
        price: f64,
        size: f64,
        time: DateTime<Utc>,
    ) -> String {
        serde_json::json!({
            "type": kind, "trade_id": trade_id, "sequence": sequence,
            "maker_order_id": "ac928c66-ca53-498f-9c13-a110027a60e8",
            "taker_order_id": "132fb6ae-456b-4654-b4e0-d681ac05cea1",
            "time": iso(time), "product_id": product,
            "size": format!("{size:.8}"), "price": format!("{price:.2}"), "side": "sell"
        })
        .to_string()
    }

    pub fn matched(
        product: &str,
        trade_id: u64,
        sequence: u64,
        price: f64,
        size: f64,
        time: DateTime<Utc>,
    ) -> String {
        trade("match", product, trade_id, sequence, price, size, time)
    }

    pub fn last_match(
        product: &str,
        trade_id: u64,
        sequence: u64,
        price: f64,
        size: f64,
        time: DateTime<Utc>,
    ) -> String {
        trade("last_match", product, trade_id, sequence, price, size, time)
    }

    pub fn heartbeat(product: &str, sequence: u64, last_trade_id: u64, time: DateTime<Utc>) -> String {
        serde_json::json!({
            "type": "heartbeat", "sequence": sequence, "last_trade_id": last_trade_id,
            "product_id": product, "time": iso(time)
        })
        .to_string()
    }

    pub fn error(message: &str, reason: &str) -> String {
        serde_json::json!({ "type": "error", "message": message, "reason": reason }).to_string()
    }
}

/// One minute of a market, as a candle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candle {
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    /// Base volume.
    pub volume: f64,
    pub quote_volume: f64,
    pub trades: u64,
}

impl Candle {
    /// A deterministic minute of `symbol`: every seventh minute has no trades.
    pub fn synthetic(symbol: &str, open: DateTime<Utc>) -> Option<Self> {
        let m = open.timestamp().div_euclid(60);
        if m % 7 == 3 {
            return None;
        }
        let base = 100.0 + symbol.bytes().map(f64::from).sum::<f64>();
        let close = base * (1.0 + ((m % 13) as f64 - 6.0) / 1000.0);
        let volume = 1.0 + (m % 5) as f64;
        Some(Self {
            open: close * 0.999,
            high: close * 1.001,
            low: close * 0.998,
            close,
            volume,
            quote_volume: close * 0.9995 * volume,
            trades: 10 + (m % 17) as u64,
        })
    }
}

/// The exchanges' REST APIs for candles (and their ping endpoints), answering
/// minutes that opened before `until` from [`Candle::synthetic`].
#[derive(Debug)]
pub struct CandleServer {
    server: MockServer,
    until: Arc<Mutex<Option<DateTime<Utc>>>>,
    failures: Arc<AtomicUsize>,
}

struct Klines {
    until: Arc<Mutex<Option<DateTime<Utc>>>>,
    failures: Arc<AtomicUsize>,
}

struct Candles {
    until: Arc<Mutex<Option<DateTime<Utc>>>>,
    failures: Arc<AtomicUsize>,
}

fn query(req: &Request, name: &str) -> Option<String> {
    req.url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

fn failing(failures: &AtomicUsize) -> Option<ResponseTemplate> {
    failures
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .ok()
        .map(|_| ResponseTemplate::new(503).set_body_string("Service Unavailable"))
}

impl Respond for Klines {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        if let Some(failure) = failing(&self.failures) {
            return failure;
        }
        let bad = |msg: &str| {
            ResponseTemplate::new(400).set_body_json(serde_json::json!({ "code": -1100, "msg": msg }))
        };
        let (Some(symbol), Some("1m")) = (query(req, "symbol"), query(req, "interval").as_deref()) else {
            return bad(
                "Mandatory parameter 'symbol' or 'interval' was not sent, was empty/null, or malformed.",
            );
        };
        let limit: usize = query(req, "limit").and_then(|l| l.parse().ok()).unwrap_or(500);
        if limit > 1000 {
            return bad("Invalid data sent for a parameter: limit must be at most 1000.");
        }
        let millis = |name| {
            query(req, name)
                .and_then(|v| v.parse::<i64>().ok())
                .and_then(DateTime::<Utc>::from_timestamp_millis)
        };
        let until = self.until.lock().unwrap().unwrap_or_else(Utc::now);
        let start = millis("startTime").unwrap_or(until - chrono::Duration::minutes(limit as i64));
        let end = millis("endTime").unwrap_or(until);
        // Open times from the first whole minute at or after startTime, to endTime inclusive.
        let mut open =
            DateTime::<Utc>::from_timestamp((start.timestamp() + 59).div_euclid(60) * 60, 0).unwrap();
        let mut rows = Vec::new();
        while open <= end && open < until && rows.len() < limit {
            // Binance lists every minute, with zeros for one without trades.
            let c = Candle::synthetic(&symbol, open).unwrap_or(Candle {
                open: 1.0,
                high: 1.0,
                low: 1.0,
                close: 1.0,
                volume: 0.0,
                quote_volume: 0.0,
                trades: 0,
            });
            let ms = open.timestamp_millis();
            rows.push(serde_json::json!([
                ms,
                format!("{:.8}", c.open),
                format!("{:.8}", c.high),
                format!("{:.8}", c.low),
                format!("{:.8}", c.close),
                format!("{:.8}", c.volume),
                ms + 59_999,
                format!("{:.8}", c.quote_volume),
                c.trades,
                format!("{:.8}", c.volume / 2.0),
                format!("{:.8}", c.quote_volume / 2.0),
                "0"
            ]));
            open += chrono::Duration::minutes(1);
        }
        ResponseTemplate::new(200).set_body_json(rows)
    }
}

impl Respond for Candles {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        if let Some(failure) = failing(&self.failures) {
            return failure;
        }
        let bad = |msg: &str| ResponseTemplate::new(400).set_body_json(serde_json::json!({ "message": msg }));
        let product = req.url.path().trim_start_matches("/products/").trim_end_matches("/candles").to_owned();
        if query(req, "granularity").as_deref() != Some("60") {
            return bad("Unsupported granularity");
        }
        let time = |name| {
            query(req, name)
                .and_then(|v| DateTime::parse_from_rfc3339(&v).ok())
                .map(|t| t.with_timezone(&Utc))
        };
        let (Some(start), Some(end)) = (time("start"), time("end")) else {
            return bad("start and end are required together");
        };
        if (end - start).num_minutes() + 1 > 300 {
            return bad(
                "granularity too small for the requested time range. Count of aggregations requested exceeds 300",
            );
        }
        let until = self.until.lock().unwrap().unwrap_or_else(Utc::now);
        let mut rows = Vec::new();
        let mut open =
            DateTime::<Utc>::from_timestamp((start.timestamp() + 59).div_euclid(60) * 60, 0).unwrap();
        while open <= end && open < until {
            // Coinbase lists only minutes with trades, newest first.
            if let Some(c) = Candle::synthetic(&product, open) {
                rows.push(serde_json::json!([open.timestamp(), c.low, c.high, c.open, c.close, c.volume]));
            }
            open += chrono::Duration::minutes(1);
        }
        rows.reverse();
        ResponseTemplate::new(200).set_body_json(rows)
    }
}

impl CandleServer {
    /// Serves minutes that opened before `until` (move it with
    /// [`CandleServer::set_until`]); `None`: before the current minute.
    pub async fn start(until: Option<DateTime<Utc>>) -> Self {
        Self::on(MockServer::start().await, until).await
    }

    /// [`CandleServer::start`] on a port of the caller's choosing.
    pub async fn on_port(port: u16, until: Option<DateTime<Utc>>) -> Self {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        Self::on(MockServer::builder().listener(listener).start().await, until).await
    }

    async fn on(server: MockServer, until: Option<DateTime<Utc>>) -> Self {
        use wiremock::matchers::{method, path, path_regex};
        let until = Arc::new(Mutex::new(until));
        let failures = Arc::new(AtomicUsize::new(0));
        Mock::given(method("GET"))
            .and(path("/api/v3/klines"))
            .respond_with(Klines { until: until.clone(), failures: failures.clone() })
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path_regex(r"^/products/[A-Z0-9]+-[A-Z0-9]+/candles$"))
            .respond_with(Candles { until: until.clone(), failures: failures.clone() })
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/api/v3/ping"))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({})))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/time"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(serde_json::json!({ "iso": Utc::now().to_rfc3339() })),
            )
            .mount(&server)
            .await;
        Self { server, until, failures }
    }

    /// The base URL (`FEED_BINANCE_REST_URL`, `FEED_COINBASE_REST_URL`).
    pub fn url(&self) -> url::Url {
        url::Url::parse(&self.server.uri()).unwrap()
    }

    pub fn set_until(&self, until: DateTime<Utc>) {
        *self.until.lock().unwrap() = Some(until);
    }

    /// The next `n` candle requests answer 503.
    pub fn fail_next(&self, n: usize) {
        self.failures.store(n, Ordering::SeqCst);
    }

    /// Candle requests received so far (both exchanges).
    pub async fn candle_requests(&self) -> usize {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.url.path().ends_with("/klines") || r.url.path().ends_with("/candles"))
            .count()
    }
}
