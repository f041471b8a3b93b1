//! Binance one-hour candles (`binance_1h/<SYMBOL>USDT_1h.csv[.gz]`).

use std::path::Path;

use chrono::{DateTime, Utc};
use domain::CoinId;
use serde::Deserialize;

use crate::{DatasetError, RowError, open};

/// Rows per shipped candle file (one per hour, no gaps).
pub const CANDLE_ROWS: usize = 31_973;
/// The first and last candle of every shipped file, as `open_time` in UTC (RFC 3339).
pub const CANDLE_FIRST_OPEN: &str = "2020-10-23T08:00:00Z";
pub const CANDLE_LAST_OPEN: &str = "2024-06-16T12:00:00Z";

/// One candle, its time normalised to UTC. Prices are in the quote currency
/// of the symbol (USDT); `volume` is in units of the coin.
#[derive(Debug, Clone, PartialEq)]
pub struct Candle {
    pub open_time: DateTime<Utc>,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
}

/// A row as written; every field the project uses is required.
#[derive(Debug, Deserialize)]
struct Raw {
    open_time: String,
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume: f64,
}

/// The coin a Binance symbol file is about (`BTCUSDT_1h.csv.gz` → bitcoin).
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

/// Reads a candle file (plain or `.gz`) in file order.
pub fn read_candles(path: &Path) -> Result<Vec<Candle>, DatasetError> {
    let mut reader = csv::Reader::from_reader(open(path)?);
    let mut candles = Vec::with_capacity(CANDLE_ROWS);
    for (index, row) in reader.deserialize::<Raw>().enumerate() {
        let line = index as u64 + 2;
        let fail = |source: RowError| DatasetError::Row { path: path.to_path_buf(), line, source };
        let raw = row.map_err(|e| fail(e.into()))?;
        // The files carry local offsets (+02:00/+03:00 with daylight saving);
        // RFC 3339 is accepted too, for files written by other tools.
        let open_time = DateTime::parse_from_str(&raw.open_time, "%Y-%m-%d %H:%M:%S%:z")
            .or_else(|_| DateTime::parse_from_rfc3339(&raw.open_time))
            .map_err(|source| fail(RowError::Time { value: raw.open_time.clone(), source }))?
            .with_timezone(&Utc);
        candles.push(Candle {
            open_time,
            open: raw.open,
            high: raw.high,
            low: raw.low,
            close: raw.close,
            volume: raw.volume,
        });
    }
    Ok(candles)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn file_names_map_to_coins() {
        let coin = |n: &str| coin_of_file(Path::new(n)).map(|c| c.to_string());
        assert_eq!(coin("data/BTCUSDT_1h.csv").as_deref(), Some("bitcoin"));
        assert_eq!(coin("XRPUSDT_1h.csv.gz").as_deref(), Some("ripple"));
        assert_eq!(coin("DOGEUSDT_1h.csv"), None);
    }

    #[test]
    fn candles_become_utc_and_a_missing_close_is_an_error() {
        let dir = std::env::temp_dir().join(format!("candles-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("BTCUSDT_1h.csv");
        std::fs::write(
            &path,
            "open_time,open,high,low,close,volume,close_time,returns\n\
             2020-10-23 11:00:00+03:00,12889.35,12961.83,12856.0,12919.12,9856.01,2020-10-23 11:59:59.999000+03:00,0.0023\n\
             2020-10-25 03:00:00+02:00,1,1,1,13000.5,1.5,2020-10-25 03:59:59.999000+02:00,\n",
        )
        .unwrap();
        let candles = read_candles(&path).unwrap();
        assert_eq!(candles.len(), 2);
        assert_eq!(candles[0].open_time.to_rfc3339(), "2020-10-23T08:00:00+00:00");
        assert_eq!(candles[1].open_time.to_rfc3339(), "2020-10-25T01:00:00+00:00");
        assert_eq!((candles[0].close, candles[0].volume), (12919.12, 9856.01));

        std::fs::write(
            &path,
            "open_time,open,high,low,close,volume,close_time,returns\n\
             2020-10-23 11:00:00+03:00,1,1,1,,2,x,\n",
        )
        .unwrap();
        let err = read_candles(&path).unwrap_err();
        assert!(matches!(err, DatasetError::Row { line: 2, .. }), "{err:?}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
