//! Trades into bars: per (exchange, coin), one bar per `bar_secs` of the
//! clock, carrying the last price, the VWAP, the base volume and the trade count.
//!
//! A bar is identified by its end on the bar grid, so the same trades always
//! make the same key. A bar is closed (and published) once the clock passes
//! its end by the grace; a trade that arrives for a bar already closed is
//! *late*: counted, never merged into a published bar. An interval without
//! trades makes no bar.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use domain::{BarStats, Tick};

use crate::{Exchange, Markets, Trade};

/// A bar being filled.
#[derive(Debug, Clone, Copy)]
struct Open {
    last_price: f64,
    /// The trade time and id the last price comes from.
    last_at: (i64, u64),
    notional: f64,
    volume: f64,
    trades: u32,
}

/// Whether a trade went into a bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    Added,
    /// Its bar was already closed.
    Late,
}

/// A closed bar.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub exchange: Exchange,
    pub market: usize,
    /// The bar's end (exclusive), on the grid: its identity.
    pub end: DateTime<Utc>,
    pub last_price: f64,
    pub vwap: f64,
    pub volume: f64,
    pub trades: u32,
}

/// The bars of every market of a feed.
#[derive(Debug)]
pub struct Aggregator {
    bar_ms: i64,
    grace_ms: i64,
    /// Open bars by market, by start (ms).
    open: HashMap<(Exchange, usize), BTreeMap<i64, Open>>,
    /// Every bar ending at or before this (ms) is closed.
    closed_until: i64,
    late: HashMap<Exchange, u64>,
}

impl Aggregator {
    pub fn new(bar_secs: u32, grace: std::time::Duration) -> Self {
        Self {
            bar_ms: i64::from(bar_secs.max(1)) * 1000,
            grace_ms: i64::try_from(grace.as_millis()).unwrap_or(i64::MAX),
            open: HashMap::new(),
            closed_until: i64::MIN,
            late: HashMap::new(),
        }
    }

    /// Adds one trade to its bar.
    pub fn add(&mut self, trade: &Trade) -> Added {
        let ms = trade.time.timestamp_millis();
        let start = ms.div_euclid(self.bar_ms) * self.bar_ms;
        if start + self.bar_ms <= self.closed_until {
            *self.late.entry(trade.exchange).or_default() += 1;
            return Added::Late;
        }
        let at = (ms, trade.id);
        let bar = self.open.entry((trade.exchange, trade.market)).or_default().entry(start).or_insert(Open {
            last_price: trade.price,
            last_at: at,
            notional: 0.0,
            volume: 0.0,
            trades: 0,
        });
        if at >= bar.last_at {
            bar.last_price = trade.price;
            bar.last_at = at;
        }
        bar.notional += trade.price * trade.size;
        bar.volume += trade.size;
        bar.trades += 1;
        Added::Added
    }

    /// Closes the bars whose end is at least the grace behind `now`, oldest first.
    pub fn close_due(&mut self, now: DateTime<Utc>) -> Vec<Bar> {
        let due = (now.timestamp_millis() - self.grace_ms).div_euclid(self.bar_ms) * self.bar_ms;
        if due <= self.closed_until {
            return Vec::new();
        }
        self.closed_until = due;
        self.take(|end| end <= due)
    }

    /// Closes every open bar, finished or not (the feed is stopping).
    pub fn flush(&mut self) -> Vec<Bar> {
        self.take(|_| true)
    }

    /// Trades that came after their bar was closed, per exchange, since the last call.
    pub fn take_late(&mut self) -> HashMap<Exchange, u64> {
        std::mem::take(&mut self.late)
    }

    fn take(&mut self, closes: impl Fn(i64) -> bool) -> Vec<Bar> {
        let bar_ms = self.bar_ms;
        let mut closed = Vec::new();
        for (&(exchange, market), bars) in &mut self.open {
            while let Some(entry) = bars.first_entry() {
                let end = *entry.key() + bar_ms;
                if !closes(end) {
                    break;
                }
                let bar = entry.remove();
                let Some(end) = DateTime::<Utc>::from_timestamp_millis(end) else { continue };
                closed.push(Bar {
                    exchange,
                    market,
                    end,
                    last_price: bar.last_price,
                    vwap: bar.notional / bar.volume,
                    volume: bar.volume,
                    trades: bar.trades,
                });
            }
        }
        self.open.retain(|_, bars| !bars.is_empty());
        closed.sort_by_key(|a| (a.end, a.exchange, a.market));
        closed
    }
}

impl Bar {
    /// The bar as a tick v1 message: the last price, the exchange as source,
    /// the bar's end as event time, its place on the grid as sequence number
    /// (a bar published again carries the same message).
    pub fn tick(&self, markets: &Markets, bar_secs: u32) -> Option<Tick> {
        Some(Tick {
            coin: markets.coin(self.market)?.clone(),
            event_time: self.end,
            price: self.last_price,
            volume: Some(self.volume),
            interval_secs: bar_secs,
            source: self.exchange.source(),
            seq: crate::grid_seq(self.end, bar_secs),
            bar: Some(BarStats { vwap: self.vwap, trades: self.trades }),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_767_225_600_000 + ms).unwrap()
    }

    fn trade(market: usize, ms: i64, id: u64, price: f64, size: f64) -> Trade {
        Trade { exchange: Exchange::Binance, market, price, size, time: at(ms), id }
    }

    #[test]
    fn trades_make_the_bars_a_hand_computation_gives() {
        let mut agg = Aggregator::new(5, Duration::from_millis(500));
        // Bar [0, 5 s) of market 0: three trades, the last by time arrives second.
        agg.add(&trade(0, 100, 1, 100.0, 1.0));
        agg.add(&trade(0, 4_900, 3, 103.0, 3.0));
        agg.add(&trade(0, 2_000, 2, 101.0, 2.0));
        // Market 1 in the same bar, and market 0 in [10 s, 15 s): [5 s, 10 s) is empty.
        agg.add(&trade(1, 300, 7, 50.0, 4.0));
        agg.add(&trade(0, 12_000, 4, 104.0, 0.5));

        assert!(agg.close_due(at(5_400)).is_empty(), "within the grace nothing closes");
        let bars = agg.close_due(at(5_500));
        assert_eq!(bars.len(), 2);
        let b = &bars[0];
        assert_eq!((b.market, b.end, b.last_price, b.volume, b.trades), (0, at(5_000), 103.0, 6.0, 3));
        // (100·1 + 101·2 + 103·3) / 6
        assert!((b.vwap - 611.0 / 6.0).abs() < 1e-9, "{}", b.vwap);
        assert_eq!((bars[1].market, bars[1].vwap, bars[1].trades), (1, 50.0, 1));

        // The empty interval publishes nothing; the next bar closes on time.
        assert!(agg.close_due(at(10_600)).is_empty());
        let bars = agg.close_due(at(15_500));
        assert_eq!(bars.iter().map(|b| (b.end, b.trades)).collect::<Vec<_>>(), vec![(at(15_000), 1)]);
    }

    #[test]
    fn a_trade_for_a_published_bar_is_late_and_not_merged() {
        let mut agg = Aggregator::new(5, Duration::from_millis(500));
        agg.add(&trade(0, 1_000, 1, 100.0, 1.0));
        assert_eq!(agg.close_due(at(6_000)).len(), 1);
        assert_eq!(agg.add(&trade(0, 4_999, 2, 999.0, 1.0)), Added::Late);
        assert!(agg.flush().is_empty(), "the late trade made no bar");
        assert_eq!(agg.take_late(), HashMap::from([(Exchange::Binance, 1)]));
        assert!(agg.take_late().is_empty());
    }

    #[test]
    fn flush_closes_the_bar_in_progress() {
        let mut agg = Aggregator::new(5, Duration::from_millis(500));
        agg.add(&trade(0, 6_000, 1, 100.0, 2.0));
        assert!(agg.close_due(at(7_000)).is_empty());
        let bars = agg.flush();
        assert_eq!(bars.len(), 1);
        assert_eq!((bars[0].end, bars[0].volume), (at(10_000), 2.0));
    }
}
