//! The websocket feed: one connection per exchange, trades into bars, bars
//! into Kafka, figures into the runs table.
//!
//! ```text
//! Binance conn ─┐ trades            bars               ticks
//!               ├────────▶ bar loop ─────▶ publisher ─────────▶ KAFKA_TOPIC
//! Coinbase conn ┘  (mpsc)  (aggregator,    (retries until
//!                           clock)          Kafka takes them)
//! ```
//! Each connection task reconnects on its own with jittered exponential
//! backoff, after a close, an error, a stall (no data for `FEED_STALL_SECS`),
//! a refused subscription, Binance's `serverShutdown`, or before Binance's
//! 24-hour limit, and subscribes again. The bar loop keeps the open bars
//! across reconnects (a bar cut by a reconnect is still published once), and
//! never waits on Kafka: the publisher task does, holding what it could not
//! publish yet. On stop (SIGTERM) the open bars are flushed and published.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::Utc;
use domain::Tick;
use futures::{SinkExt, StreamExt};
use serde::Serialize;
use storage::{Run, RunLog, RunOutcome};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::Connector;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::bars::{Added, Aggregator, Bar};
use crate::candles::TickSink;
use crate::{Exchange, ExchangeError, FeedConfig, Market, Markets, Trade, binance, coinbase};

/// What one text frame from an exchange says.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Trade(Trade),
    /// The exchange's latest trade id for a market (Coinbase's `last_match`
    /// and `heartbeat`): trades up to it that never arrived are a gap.
    LastTradeId {
        market: usize,
        id: u64,
    },
    /// A keep-alive without news.
    Heartbeat,
    /// The subscription was accepted.
    Subscribed,
    /// The subscription was refused; `symbol` when the exchange named one of ours.
    SubscriptionError {
        reason: String,
        symbol: Option<String>,
    },
    /// The exchange asks for a new connection.
    Reconnect(&'static str),
    /// A message type the feed does not use.
    Unknown(String),
}

/// Reads one text frame of `exchange`.
pub fn parse(exchange: Exchange, text: &str, markets: &Markets) -> Result<Frame, String> {
    match exchange {
        Exchange::Binance => binance::parse(text, markets),
        Exchange::Coinbase => coinbase::parse(text, markets),
    }
}

/// Trade-id gaps of one market.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Gaps {
    /// Jumps in the trade ids.
    pub gaps: u64,
    /// Trades the jumps skipped.
    pub missed_trades: u64,
}

/// One exchange's figures, over a period or the whole run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ExchangeFigures {
    pub connections: u64,
    pub reconnects: u64,
    pub stalls: u64,
    pub trades: u64,
    pub bars_published: u64,
    pub late_trades: u64,
    /// Trades whose id was already seen (dropped, not counted twice).
    pub duplicate_trades: u64,
    pub malformed_frames: u64,
    pub unknown_messages: u64,
    pub subscription_errors: u64,
    /// By symbol.
    pub gaps: BTreeMap<String, Gaps>,
}

impl ExchangeFigures {
    pub fn gap_count(&self) -> u64 {
        self.gaps.values().map(|g| g.gaps).sum()
    }
}

/// The feed's figures, shared by its tasks: since the last run record, and in total.
#[derive(Debug, Default)]
pub struct Figures {
    inner: Mutex<FiguresInner>,
}

#[derive(Debug, Default)]
struct FiguresInner {
    period: BTreeMap<Exchange, ExchangeFigures>,
    total: BTreeMap<Exchange, ExchangeFigures>,
    publish_error: Option<String>,
    /// The last publishing error of the run (kept after its period is recorded).
    last_publish_error: Option<String>,
}

impl Figures {
    fn update(&self, exchange: Exchange, change: impl Fn(&mut ExchangeFigures)) {
        let mut inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        change(inner.period.entry(exchange).or_default());
        change(inner.total.entry(exchange).or_default());
    }

    /// The figures of the whole run so far.
    pub fn total(&self) -> BTreeMap<Exchange, ExchangeFigures> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner).total.clone()
    }

    fn take_period(&self) -> (BTreeMap<Exchange, ExchangeFigures>, Option<String>) {
        let mut inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        (std::mem::take(&mut inner.period), inner.publish_error.take())
    }

    fn publish_failed(&self, error: String) {
        let mut inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.publish_error = Some(error.clone());
        inner.last_publish_error = Some(error);
    }

    fn last_publish_error(&self) -> Option<String> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner).last_publish_error.clone()
    }
}

/// The websocket feed, configured.
#[derive(Debug, Clone)]
pub struct Feed {
    config: FeedConfig,
    markets: Arc<Markets>,
    figures: Arc<Figures>,
}

/// Trades in flight between the connections and the bar loop.
const TRADE_QUEUE: usize = 65_536;

impl Feed {
    pub fn new(config: FeedConfig) -> Self {
        let markets = Arc::new(Markets::from_config(&config));
        Self { config, markets, figures: Arc::default() }
    }

    pub fn markets(&self) -> &Markets {
        &self.markets
    }

    /// The running feed's figures (tests and the bench read them).
    pub fn figures(&self) -> Arc<Figures> {
        self.figures.clone()
    }

    /// Runs until `shutdown`, then flushes the open bars and publishes them.
    /// Fails at start on a configuration that cannot work; afterwards only
    /// when the bars of the final flush could not be published.
    pub async fn run<P, L>(&self, sink: P, log: &L, shutdown: CancellationToken) -> Result<(), ExchangeError>
    where
        P: TickSink + Send + Sync + 'static,
        L: RunLog,
    {
        let tls = crate::tls::client_config(self.config.ca_bundle.as_deref())?;
        let exchanges: Vec<Exchange> = self.markets.exchanges().collect();
        if exchanges.is_empty() {
            return Err(ExchangeError::Config {
                variable: "COINS",
                problem: String::from("no configured coin has a symbol on the configured exchanges"),
            });
        }
        for &exchange in &self.config.exchanges {
            let unlisted = self.markets.unlisted(exchange);
            if !unlisted.is_empty() {
                let coins: Vec<&str> = unlisted.iter().map(|c| c.as_str()).collect();
                warn!(
                    %exchange, coins = %coins.join(","),
                    "{} lists no market for these coins (no symbol in {}); they are followed on the other exchanges",
                    exchange.title(),
                    match exchange { Exchange::Binance => "FEED_BINANCE_SYMBOLS", Exchange::Coinbase => "FEED_COINBASE_PRODUCTS" },
                );
            }
            let symbols: Vec<&str> =
                self.markets.markets(exchange).iter().map(|m| m.symbol.as_str()).collect();
            if !symbols.is_empty() {
                info!(%exchange, quote = exchange.quote(), symbols = %symbols.join(","), url = %self.config.endpoints(exchange).ws, "following");
            }
        }

        let (trades_tx, mut trades) = mpsc::channel::<Trade>(TRADE_QUEUE);
        let (bars_tx, bars_rx) = mpsc::unbounded_channel::<Vec<Bar>>();
        let connections = CancellationToken::new();
        let mut tasks = tokio::task::JoinSet::new();
        for exchange in exchanges {
            let connection = Connection {
                exchange,
                config: self.config.clone(),
                markets: self.markets.clone(),
                tls: tls.clone(),
                figures: self.figures.clone(),
                trades: trades_tx.clone(),
            };
            tasks.spawn(connection.run(connections.clone()));
        }
        drop(trades_tx);
        let publisher = tokio::spawn(publish_bars(
            sink,
            bars_rx,
            self.markets.clone(),
            self.config.bar_secs,
            self.figures.clone(),
        ));

        let mut aggregator = Aggregator::new(self.config.bar_secs, self.config.bar_grace);
        // Bars close on the clock, a few times per bar.
        let mut clock = tokio::time::interval(Duration::from_millis(250));
        clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut record =
            tokio::time::interval_at(Instant::now() + self.config.run_record, self.config.run_record);
        let mut period = Run::begin("feed");
        let mut batch = Vec::with_capacity(1024);
        let mut nothing_left = false;
        loop {
            tokio::select! {
                n = trades.recv_many(&mut batch, 1024) => {
                    if n == 0 {
                        // Every connection task ended (each logged why).
                        error!("no exchange connection is left; the feed stops");
                        nothing_left = true;
                        break;
                    }
                    self.aggregate(&mut aggregator, &mut batch);
                }
                _ = clock.tick() => {
                    let closed = aggregator.close_due(Utc::now());
                    self.count_late(&mut aggregator);
                    if !closed.is_empty() {
                        let _ = bars_tx.send(closed);
                    }
                }
                _ = record.tick() => {
                    self.record(log, &mut period).await;
                }
                () = shutdown.cancelled() => break,
            }
        }
        // Stop reading, take in what the connections already handed over, publish every open bar.
        connections.cancel();
        while tasks.join_next().await.is_some() {}
        while let Ok(trade) = trades.try_recv() {
            batch.push(trade);
        }
        self.aggregate(&mut aggregator, &mut batch);
        let open = aggregator.flush();
        self.count_late(&mut aggregator);
        info!(bars = open.len(), "stopping: publishing the open bars");
        let _ = bars_tx.send(open);
        drop(bars_tx);
        let unpublished = publisher.await.unwrap_or_default();
        self.record(log, &mut period).await;
        if unpublished > 0 {
            let reason = self
                .figures
                .last_publish_error()
                .unwrap_or_else(|| String::from("Kafka did not acknowledge them"));
            return Err(ExchangeError::Unpublished { bars: unpublished, reason });
        }
        if nothing_left {
            return Err(ExchangeError::NothingLeft);
        }
        Ok(())
    }

    fn aggregate(&self, aggregator: &mut Aggregator, batch: &mut Vec<Trade>) {
        let mut counted: HashMap<Exchange, u64> = HashMap::new();
        for trade in batch.drain(..) {
            if aggregator.add(&trade) == Added::Added {
                *counted.entry(trade.exchange).or_default() += 1;
            }
        }
        for (exchange, n) in counted {
            self.figures.update(exchange, |f| f.trades += n);
        }
    }

    fn count_late(&self, aggregator: &mut Aggregator) {
        for (exchange, late) in aggregator.take_late() {
            warn!(%exchange, late, "trades arrived after their bar was published (counted, not merged; FEED_BAR_GRACE_MS)");
            self.figures.update(exchange, |f| f.late_trades += late);
        }
    }

    /// Writes the period's figures as one run of `feed`, and starts the next period.
    async fn record<L: RunLog>(&self, log: &L, period: &mut Run) {
        let (figures, publish_error) = self.figures.take_period();
        let trades: u64 = figures.values().map(|f| f.trades).sum();
        let bars: u64 = figures.values().map(|f| f.bars_published).sum();
        let reconnects: u64 = figures.values().map(|f| f.reconnects).sum();
        let gaps: u64 = figures.values().map(ExchangeFigures::gap_count).sum();
        info!(trades, bars, reconnects, gaps, "feed figures since the last record");
        let details = serde_json::json!({ "form": "websocket", "exchanges": figures });
        let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let mut outcome = RunOutcome::succeeded(as_i64(trades), as_i64(bars), details);
        if let Some(error) = publish_error {
            outcome.status = storage::RunStatus::Failed;
            outcome.error = Some(format!("publishing bars failed (retried): {error}"));
        }
        let run = std::mem::replace(period, Run::begin("feed"));
        if let Err(e) = log.close(&run, &outcome).await {
            warn!(error = %telemetry::failure::Chain(&e), "could not record the feed's figures");
        }
    }
}

/// Publishes closed bars as ticks, holding and retrying what Kafka did not take.
/// Returns how many bars were still unpublished when the bar loop ended.
async fn publish_bars<P: TickSink>(
    sink: P,
    mut bars: mpsc::UnboundedReceiver<Vec<Bar>>,
    markets: Arc<Markets>,
    bar_secs: u32,
    figures: Arc<Figures>,
) -> usize {
    const FIRST_RETRY: Duration = Duration::from_millis(500);
    let mut pending: Vec<Tick> = Vec::new();
    let mut retry = FIRST_RETRY;
    loop {
        // With nothing held, wait for bars; with bars held, at most until the next try.
        let received = if pending.is_empty() {
            bars.recv().await
        } else {
            tokio::time::timeout(retry, bars.recv()).await.unwrap_or(Some(Vec::new()))
        };
        // `None`: the bar loop ended, and handed over its last bars before.
        let Some(closed) = received else { break };
        pending.extend(closed.iter().filter_map(|b| b.tick(&markets, bar_secs)));
        if pending.is_empty() {
            continue;
        }
        retry = if publish_held(&sink, &mut pending, &figures).await {
            FIRST_RETRY
        } else {
            (retry * 2).min(Duration::from_secs(10))
        };
    }
    // Stopping: what is still held gets one last try.
    if !pending.is_empty() && !publish_held(&sink, &mut pending, &figures).await {
        error!(bars = pending.len(), "bars lost: Kafka did not take them before the feed stopped");
        return pending.len();
    }
    0
}

/// Publishes the held bars; on success counts and clears them, on failure keeps them.
async fn publish_held<P: TickSink>(sink: &P, pending: &mut Vec<Tick>, figures: &Figures) -> bool {
    match sink.publish(pending).await {
        Ok(_) => {
            let mut counts: HashMap<Exchange, u64> = HashMap::new();
            for exchange in pending.iter().filter_map(|t| Exchange::of(t.source)) {
                *counts.entry(exchange).or_default() += 1;
            }
            for (exchange, n) in counts {
                figures.update(exchange, |f| f.bars_published += n);
            }
            debug!(bars = pending.len(), "bars published");
            pending.clear();
            true
        }
        Err(e) => {
            let error = telemetry::failure::Chain(&e).to_string();
            warn!(bars = pending.len(), %error, "bars not published; kept and retried");
            figures.publish_failed(error);
            false
        }
    }
}

/// How a connection ended.
#[derive(Debug)]
enum End {
    Stopped,
    /// Worth connecting again.
    Lost(String),
    /// The exchange refused every market: nothing to connect for.
    NothingLeft,
}

/// One exchange's connection, for the whole run.
struct Connection {
    exchange: Exchange,
    config: FeedConfig,
    markets: Arc<Markets>,
    tls: Arc<rustls::ClientConfig>,
    figures: Arc<Figures>,
    trades: mpsc::Sender<Trade>,
}

/// What a connection task remembers across its connections.
#[derive(Debug, Default)]
struct State {
    /// Last trade id per market: consecutive on both exchanges.
    last_ids: HashMap<usize, u64>,
    /// Symbols the exchange refused.
    refused: HashSet<String>,
}

/// Frames logged per connection before the feed only counts them.
const LOGGED_PER_CONNECTION: u32 = 20;

impl Connection {
    async fn run(self, stop: CancellationToken) {
        let mut backoff = self.backoff();
        let mut state = State::default();
        let mut first = true;
        loop {
            if !first {
                self.figures.update(self.exchange, |f| f.reconnects += 1);
            }
            first = false;
            let (end, delivered) = self.connect_once(&mut state, &stop).await;
            match end {
                End::Stopped => return,
                End::NothingLeft => {
                    error!(exchange = %self.exchange, "every market was refused; no more connections to this exchange");
                    return;
                }
                End::Lost(reason) => {
                    if delivered {
                        backoff = self.backoff();
                    }
                    let delay = backoff.next().unwrap_or(self.config.reconnect_max);
                    warn!(exchange = %self.exchange, %reason, reconnect_in_ms = delay.as_millis() as u64, "connection lost");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = stop.cancelled() => return,
                    }
                }
            }
        }
    }

    fn backoff(&self) -> backon::ExponentialBackoff {
        ExponentialBuilder::default()
            .with_min_delay(self.config.reconnect_base)
            .with_max_delay(self.config.reconnect_max)
            .with_jitter()
            .without_max_times()
            .build()
    }

    fn active_markets(&self, state: &State) -> Vec<Market> {
        self.markets
            .markets(self.exchange)
            .iter()
            .filter(|m| !state.refused.contains(&m.symbol))
            .cloned()
            .collect()
    }

    /// One connection: connect, subscribe, read until it ends. Also says
    /// whether it delivered any trade (then the backoff starts over).
    async fn connect_once(&self, state: &mut State, stop: &CancellationToken) -> (End, bool) {
        let markets = self.active_markets(state);
        if markets.is_empty() {
            return (End::NothingLeft, false);
        }
        let url = match self.exchange {
            // The documented combined-stream address names the streams; the
            // SUBSCRIBE request below then confirms them (or says why not).
            Exchange::Binance => binance::stream_url(&self.config.endpoints(self.exchange).ws, &markets),
            Exchange::Coinbase => self.config.endpoints(self.exchange).ws.to_string(),
        };
        let connecting = tokio_tungstenite::connect_async_tls_with_config(
            url.as_str(),
            None,
            true,
            Some(Connector::Rustls(self.tls.clone())),
        );
        let mut ws = tokio::select! {
            connected = tokio::time::timeout(Duration::from_secs(10), connecting) => match connected {
                Ok(Ok((ws, _))) => ws,
                Ok(Err(e)) => return (End::Lost(format!("cannot connect to {url}: {}", telemetry::failure::Chain(&e))), false),
                Err(_) => return (End::Lost(format!("no websocket handshake with {url} within 10 s")), false),
            },
            () = stop.cancelled() => return (End::Stopped, false),
        };
        self.figures.update(self.exchange, |f| f.connections += 1);
        let subscribe = match self.exchange {
            Exchange::Binance => binance::subscribe(&markets, 1),
            Exchange::Coinbase => coinbase::subscribe(&markets),
        };
        if let Err(e) = ws.send(Message::text(subscribe)).await {
            return (End::Lost(format!("cannot subscribe: {e}")), false);
        }
        info!(exchange = %self.exchange, %url, markets = markets.len(), "connected; subscribing");

        let connected_at = Instant::now();
        let mut last_data = Instant::now();
        let stall = tokio::time::sleep(self.config.stall);
        tokio::pin!(stall);
        let rotate = tokio::time::sleep(self.config.max_connection_age);
        tokio::pin!(rotate);
        let mut delivered = false;
        let mut logged = 0u32;
        let end = loop {
            tokio::select! {
                message = ws.next() => {
                    let text = match message {
                        None => break End::Lost(String::from("the exchange closed the connection")),
                        Some(Err(e)) => break End::Lost(format!("read failed: {e}")),
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(Message::Close(frame))) => {
                            let why = frame.map(|f| format!("{} {}", f.code, f.reason)).unwrap_or_default();
                            break End::Lost(format!("the exchange closed the connection ({why})"));
                        }
                        // Pings are answered by the websocket library with their payload.
                        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                        Some(Ok(Message::Binary(_))) => {
                            self.figures.update(self.exchange, |f| f.unknown_messages += 1);
                            continue;
                        }
                    };
                    last_data = Instant::now();
                    match parse(self.exchange, &text, &self.markets) {
                        Ok(Frame::Trade(trade)) => {
                            if !self.check_id(state, trade.market, trade.id, true) {
                                continue;
                            }
                            delivered = true;
                            if self.trades.send(trade).await.is_err() {
                                break End::Stopped;
                            }
                        }
                        Ok(Frame::LastTradeId { market, id }) => {
                            self.check_id(state, market, id, false);
                        }
                        Ok(Frame::Heartbeat) => {}
                        Ok(Frame::Subscribed) => info!(exchange = %self.exchange, "subscribed"),
                        Ok(Frame::SubscriptionError { reason, symbol }) => {
                            self.figures.update(self.exchange, |f| f.subscription_errors += 1);
                            warn!(exchange = %self.exchange, %reason, symbol = symbol.as_deref().unwrap_or(""), "subscription refused");
                            if let Some(symbol) = symbol {
                                // Subscribe again without it; the others carry on.
                                state.refused.insert(symbol);
                            }
                            break End::Lost(format!("subscription refused: {reason}"));
                        }
                        Ok(Frame::Reconnect(why)) => break End::Lost(format!("the exchange asked for a new connection ({why})")),
                        Ok(Frame::Unknown(what)) => {
                            self.figures.update(self.exchange, |f| f.unknown_messages += 1);
                            if logged < LOGGED_PER_CONNECTION {
                                logged += 1;
                                debug!(exchange = %self.exchange, %what, "message ignored");
                            }
                        }
                        Err(reason) => {
                            self.figures.update(self.exchange, |f| f.malformed_frames += 1);
                            if logged < LOGGED_PER_CONNECTION {
                                logged += 1;
                                let excerpt: String = text.chars().take(200).collect();
                                warn!(exchange = %self.exchange, %reason, %excerpt, "malformed frame skipped");
                            }
                        }
                    }
                }
                () = &mut stall => {
                    if last_data.elapsed() >= self.config.stall {
                        self.figures.update(self.exchange, |f| f.stalls += 1);
                        break End::Lost(format!("stalled: no data for {} s (FEED_STALL_SECS)", self.config.stall.as_secs()));
                    }
                    stall.as_mut().reset(last_data + self.config.stall);
                }
                () = &mut rotate => {
                    info!(exchange = %self.exchange, age_secs = connected_at.elapsed().as_secs(), "replacing the connection before the exchange's 24-hour limit");
                    break End::Lost(String::from("connection age limit"));
                }
                () = stop.cancelled() => break End::Stopped,
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
        (end, delivered)
    }

    /// Tracks trade ids: a jump is a gap (counted, logged); a trade id already
    /// seen is a duplicate (`false`: drop it). `trade` is false for an id the
    /// exchange reports without the trade (it only moves the mark).
    fn check_id(&self, state: &mut State, market: usize, id: u64, trade: bool) -> bool {
        let Some(&last) = state.last_ids.get(&market) else {
            state.last_ids.insert(market, id);
            return true;
        };
        if id <= last {
            if trade {
                self.figures.update(self.exchange, |f| f.duplicate_trades += 1);
            }
            return !trade;
        }
        // A trade follows its predecessor; a reported last id may equal it.
        let missed = if trade { id - last - 1 } else { id - last };
        if missed > 0 {
            let symbol = self
                .markets
                .markets(self.exchange)
                .iter()
                .find(|m| m.index == market)
                .map(|m| m.symbol.clone())
                .unwrap_or_default();
            warn!(exchange = %self.exchange, %symbol, after = last, next = id, missed, "trade-id gap");
            self.figures.update(self.exchange, |f| {
                let gaps = f.gaps.entry(symbol.clone()).or_default();
                gaps.gaps += 1;
                gaps.missed_trades += missed;
            });
        }
        state.last_ids.insert(market, id);
        true
    }
}
