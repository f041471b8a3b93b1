//! Parsing of real CoinGecko responses shipped in `data/coingecko/`.
#![allow(clippy::unwrap_used)] // tests panic on failure by design

use chrono::{Duration, Utc};
use domain::{CoinId, VsCurrency};

fn read(name: &str) -> Vec<u8> {
    testkit::data().read(&format!("coingecko/{name}")).unwrap()
}

#[test]
fn all_250_market_items_parse_with_their_real_nulls() {
    let snaps = coingecko::parse_markets(&read("dashbrd_coins_markets.json"), &VsCurrency::usd(), Utc::now())
        .unwrap();
    assert_eq!(snaps.len(), 250);
    // Null counts documented in the data README.
    assert_eq!(snaps.iter().filter(|s| s.max_supply.is_none()).count(), 102);
    assert_eq!(snaps.iter().filter(|s| s.fully_diluted_valuation.is_none()).count(), 10);
    assert_eq!(snaps.iter().filter(|s| s.total_supply.is_none()).count(), 9);
    assert_eq!(snaps.iter().filter(|s| s.price_change_percentage_24h.is_none()).count(), 1);
    for coin in domain::DEFAULT_COINS {
        let snap = snaps.iter().find(|s| s.coin.as_str() == coin).unwrap_or_else(|| panic!("{coin} missing"));
        assert!(snap.current_price.is_some_and(|p| p > 0.0), "{coin} has a price");
        assert!(snap.market_cap_rank.is_some(), "{coin} has a rank");
    }
    let btc = snaps.iter().find(|s| s.coin.as_str() == "bitcoin").unwrap();
    assert_eq!(btc.symbol, "btc");
    assert_eq!(btc.market_cap_rank, Some(1));
    // Exponent notation survives: the smallest price in the file is below 1e-4.
    assert!(snaps.iter().filter_map(|s| s.current_price).any(|p| p > 0.0 && p < 1e-4));
}

#[test]
fn the_real_market_chart_parses_into_289_five_minute_points() {
    let coin = CoinId::parse("fixture-coin").unwrap();
    let points =
        coingecko::parse_market_chart(&read("dashbrd_market_chart.json"), &coin, &VsCurrency::usd()).unwrap();
    assert_eq!(points.len(), 289);
    assert_eq!(points[0].ts.format("%Y-%m-%d %H:%M").to_string(), "2023-03-14 23:21");
    assert!(points.iter().all(|p| p.price.is_some() && p.market_cap.is_some() && p.total_volume.is_some()));
    // Nominally every 5 minutes; real spacing wanders between 2 and 8.
    for pair in points.windows(2) {
        let gap = pair[1].ts - pair[0].ts;
        assert!(gap > Duration::minutes(2) && gap < Duration::minutes(8), "gap {gap}");
    }
    let span = points[288].ts - points[0].ts;
    assert!((span - Duration::hours(24)).num_minutes().abs() < 5, "one day: {span}");
}
