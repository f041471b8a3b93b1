//! Real candles as ticks: the Binance one-hour files the project ships in
//! `data/binance_1h/` (or any CSV, plain or gzip, with the same columns).
//!
//! A candle becomes one tick at its `open_time` (normalised to UTC), priced at
//! its close, with its base-asset volume and a one-hour interval.

use std::path::Path;

use chrono::{DateTime, Utc};
use dataset::Candle;
pub use dataset::coin_of_file;
use domain::{CoinId, Tick, TickSource};

/// Reads a candle file into replay ticks, in file order; `seq` is the row number.
pub fn read_candles(path: &Path, coin: &CoinId) -> Result<Vec<Tick>, dataset::DatasetError> {
    Ok(candle_ticks(&dataset::read_candles(path)?, coin, TickSource::Replay, chrono::Duration::zero()))
}

/// Candles as ticks of `source`, each moved forward by `shift` (zero for a
/// replay; the stand-in history of an offline first run ends now).
pub fn candle_ticks(
    candles: &[Candle],
    coin: &CoinId,
    source: TickSource,
    shift: chrono::Duration,
) -> Vec<Tick> {
    candles
        .iter()
        .enumerate()
        .map(|(index, candle)| Tick {
            coin: coin.clone(),
            event_time: candle.open_time + shift,
            price: candle.close,
            volume: Some(candle.volume),
            interval_secs: 3600,
            source,
            seq: index as u64,
            bar: None,
        })
        .collect()
}

/// The whole-hour shift that moves `last_open` to the hour before `now`'s,
/// so stand-in history ends where live data begins (never negative).
pub fn shift_to_end_before(last_open: DateTime<Utc>, now: DateTime<Utc>) -> chrono::Duration {
    let hour = 3600;
    let target = now.timestamp().div_euclid(hour) * hour - hour;
    chrono::Duration::seconds((target - last_open.timestamp()).max(0).div_euclid(hour) * hour)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candles_become_ticks_moved_by_the_shift() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let candle = |t: &str, close: f64| Candle {
            open_time: at(t),
            open: 1.0,
            high: close,
            low: 1.0,
            close,
            volume: 2.5,
        };
        let coin = CoinId::parse("bitcoin").unwrap();
        let candles = [candle("2024-06-16T11:00:00Z", 10.0), candle("2024-06-16T12:00:00Z", 11.0)];
        let now = at("2026-12-02T04:37:10Z");
        let shift = shift_to_end_before(candles[1].open_time, now);
        let ticks = candle_ticks(&candles, &coin, TickSource::Sample, shift);
        assert_eq!(ticks[1].event_time, at("2026-12-02T03:00:00Z"));
        assert_eq!(ticks[0].event_time, at("2026-12-02T02:00:00Z"));
        assert_eq!((ticks[1].price, ticks[1].volume, ticks[1].seq), (11.0, Some(2.5), 1));
        assert_eq!(ticks[1].source.as_str(), "sample");
        // Data newer than the target is never moved back.
        assert_eq!(shift_to_end_before(now, now), chrono::Duration::zero());
    }
}
