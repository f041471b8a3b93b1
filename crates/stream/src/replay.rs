//! Replay of real candles as ticks: the Binance one-hour CSVs in
//! `../shared/data/binance_1h/` (or any CSV with the same columns).
//!
//! A candle becomes one tick at its `open_time` (normalised to UTC), priced at
//! its close, with its base-asset volume and a one-hour interval.

use std::path::Path;

use chrono::{DateTime, Utc};
use domain::{CoinId, Tick, TickSource};
use serde::Deserialize;

/// A candle file that cannot be replayed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
    #[error("{path} line {line}: {message}")]
    Row { path: String, line: u64, message: String },
}

#[derive(Debug, Deserialize)]
struct Candle {
    open_time: String,
    close: f64,
    volume: f64,
}

/// The coin a Binance symbol file is about (`BTCUSDT_1h.csv` → bitcoin).
pub fn coin_of_file(path: &Path) -> Option<CoinId> {
    let name = path.file_name()?.to_str()?.to_ascii_uppercase();
    let id = [
        ("BTC", "bitcoin"),
        ("ETH", "ethereum"),
        ("SOL", "solana"),
        ("XRP", "ripple"),
        ("BNB", "binancecoin"),
    ]
    .iter()
    .find(|(symbol, _)| name.starts_with(&format!("{symbol}USD")))?
    .1;
    CoinId::parse(id).ok()
}

/// Reads a candle file into ticks, in file order; `seq` is the row number.
pub fn read_candles(path: &Path, coin: &CoinId) -> Result<Vec<Tick>, ReplayError> {
    let shown = path.display().to_string();
    let mut reader = csv::Reader::from_path(path)
        .map_err(|e| ReplayError::Read { path: shown.clone(), message: e.to_string() })?;
    let mut ticks = Vec::new();
    for (index, row) in reader.deserialize::<Candle>().enumerate() {
        let line = index as u64 + 2;
        let candle =
            row.map_err(|e| ReplayError::Row { path: shown.clone(), line, message: e.to_string() })?;
        let event_time = DateTime::parse_from_str(&candle.open_time, "%Y-%m-%d %H:%M:%S%:z")
            .or_else(|_| DateTime::parse_from_rfc3339(&candle.open_time))
            .map_err(|e| ReplayError::Row {
                path: shown.clone(),
                line,
                message: format!("open_time {:?}: {e}", candle.open_time),
            })?
            .with_timezone(&Utc);
        ticks.push(Tick {
            coin: coin.clone(),
            event_time,
            price: candle.close,
            volume: Some(candle.volume),
            interval_secs: 3600,
            source: TickSource::Replay,
            seq: index as u64,
        });
    }
    Ok(ticks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_map_to_coins() {
        let coin = |n: &str| coin_of_file(Path::new(n)).map(|c| c.to_string());
        assert_eq!(coin("data/BTCUSDT_1h.csv").as_deref(), Some("bitcoin"));
        assert_eq!(coin("XRPUSDT_1h.csv").as_deref(), Some("ripple"));
        assert_eq!(coin("DOGEUSDT_1h.csv"), None);
    }

    #[test]
    fn candles_become_utc_ticks() {
        let dir = std::env::temp_dir().join(format!("replay-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("BTCUSDT_1h.csv");
        std::fs::write(
            &path,
            "open_time,open,high,low,close,volume,close_time,returns\n\
             2020-10-23 11:00:00+03:00,12889.35,12961.83,12856.0,12919.12,9856.01,2020-10-23 11:59:59.999000+03:00,0.0023\n\
             2020-10-25 03:00:00+02:00,1,1,1,13000.5,1.5,2020-10-25 03:59:59.999000+02:00,\n",
        )
        .unwrap();
        let ticks = read_candles(&path, &coin_of_file(&path).unwrap()).unwrap();
        assert_eq!(ticks.len(), 2);
        assert_eq!(ticks[0].event_time.to_rfc3339(), "2020-10-23T08:00:00+00:00");
        assert_eq!(ticks[1].event_time.to_rfc3339(), "2020-10-25T01:00:00+00:00");
        assert_eq!((ticks[0].price, ticks[0].volume), (12919.12, Some(9856.01)));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
