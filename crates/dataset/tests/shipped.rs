//! The files in the project's `data/` are the originals: decompressed, each
//! matches the SHA-256 recorded from its source in `data/SHA256SUMS`, and the
//! candle files parse into exactly the documented rows.
#![allow(clippy::unwrap_used)]

use sha2::{Digest, Sha256};

fn data() -> dataset::DataDir {
    dataset::DataDir::locate().unwrap()
}

#[test]
fn every_shipped_file_decompresses_to_its_original_bytes() {
    let data = data();
    let sums = std::fs::read_to_string(data.root().join("SHA256SUMS")).unwrap();
    let mut checked = 0;
    for line in sums.lines().filter(|l| !l.trim().is_empty()) {
        let (sum, name) = line.split_once("  ").unwrap();
        let bytes = data.read(name).unwrap();
        assert_eq!(hex::encode(Sha256::digest(&bytes)), sum, "{name} differs from its source");
        checked += 1;
    }
    assert_eq!(checked, 7, "five candle files and two CoinGecko responses");
}

#[test]
fn every_candle_file_has_every_hour_once() {
    let data = data();
    let files = data.candle_files().unwrap();
    assert_eq!(files.len(), 5);
    let first = chrono::DateTime::parse_from_rfc3339(dataset::CANDLE_FIRST_OPEN).unwrap();
    let last = chrono::DateTime::parse_from_rfc3339(dataset::CANDLE_LAST_OPEN).unwrap();
    for file in files {
        let coin = dataset::coin_of_file(&file).unwrap();
        let candles = dataset::read_candles(&file).unwrap();
        assert_eq!(candles.len(), dataset::CANDLE_ROWS, "{coin}");
        assert_eq!(candles[0].open_time, first, "{coin}");
        assert_eq!(candles[candles.len() - 1].open_time, last, "{coin}");
        // No gaps, no duplicates: consecutive hours throughout.
        assert!(
            candles.windows(2).all(|w| (w[1].open_time - w[0].open_time).num_seconds() == 3600),
            "{coin}"
        );
        assert!(candles.iter().all(|c| c.close > 0.0 && c.volume >= 0.0 && c.low <= c.high), "{coin}");
    }
}
