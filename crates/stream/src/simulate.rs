//! Simulated price ticks: one geometric Brownian motion per coin.
//!
//! `S(t+dt) = S(t) · exp((μ − σ²/2)·dt + σ·√dt·Z)`, Z ~ N(0, 1), with zero drift
//! and each coin's annualised volatility, so a 5-second step of bitcoin moves
//! about 0.6 · √(5 / 31 557 600) ≈ 0.024 % on average, as real markets do.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::{CoinId, Tick, TickSource};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, LogNormal, StandardNormal};

/// Seconds in a Julian year, the unit annualised volatility is quoted in.
const YEAR_SECS: f64 = 31_557_600.0;

/// Starting price and annualised volatility of a coin when nothing is stored
/// yet: rounded levels of late 2024 and the coins' realised volatility over
/// 2021–2024 (the shipped Binance candles in data/ give 0.55–1.0).
pub fn defaults(coin: &CoinId) -> (f64, f64) {
    match coin.as_str() {
        "bitcoin" => (60_000.0, 0.55),
        "ethereum" => (3_000.0, 0.70),
        "solana" => (150.0, 1.00),
        "ripple" => (0.60, 0.85),
        "binancecoin" => (600.0, 0.65),
        _ => (100.0, 0.80),
    }
}

/// A seeded random walk over several coins.
#[derive(Debug)]
pub struct Simulator {
    rng: StdRng,
    interval_secs: u32,
    coins: Vec<CoinState>,
}

#[derive(Debug)]
struct CoinState {
    coin: CoinId,
    price: f64,
    sigma: f64,
    seq: u64,
    /// Volume per interval, in coin units: log-normal around a coin-specific
    /// level that makes daily USD volume of the order real markets show.
    volume: LogNormal<f64>,
}

impl Simulator {
    /// `start` gives the latest known price per coin (others use [`defaults`]);
    /// the same `seed` gives the same ticks.
    pub fn new(coins: &[CoinId], start: &HashMap<CoinId, f64>, interval_secs: u32, seed: u64) -> Self {
        let coins = coins
            .iter()
            .map(|coin| {
                let (default_price, sigma) = defaults(coin);
                let price =
                    start.get(coin).copied().filter(|p| p.is_finite() && *p > 0.0).unwrap_or(default_price);
                // ~$1bn a day: per interval, in coin units at the starting price.
                let usd_per_interval = 1e9 * f64::from(interval_secs) / 86_400.0;
                let volume = LogNormal::new((usd_per_interval / price).ln(), 0.5)
                    .unwrap_or_else(|_| LogNormal::new(0.0, 0.5).unwrap_or_else(|_| unreachable!()));
                CoinState { coin: coin.clone(), price, sigma, seq: 0, volume }
            })
            .collect();
        Self { rng: StdRng::seed_from_u64(seed), interval_secs, coins }
    }

    /// One tick per coin at `at`, each a step of the walk from the previous one.
    pub fn step(&mut self, at: DateTime<Utc>) -> Vec<Tick> {
        let dt = f64::from(self.interval_secs) / YEAR_SECS;
        let interval_secs = self.interval_secs;
        let rng = &mut self.rng;
        self.coins
            .iter_mut()
            .map(|state| {
                let z: f64 = StandardNormal.sample(rng);
                state.price *= ((-0.5 * state.sigma * state.sigma) * dt + state.sigma * dt.sqrt() * z).exp();
                state.seq += 1;
                Tick {
                    coin: state.coin.clone(),
                    event_time: at,
                    price: state.price,
                    volume: Some(state.volume.sample(rng)),
                    interval_secs,
                    source: TickSource::Simulated,
                    seq: state.seq,
                    bar: None,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coins() -> Vec<CoinId> {
        CoinId::defaults()
    }

    #[test]
    fn the_same_seed_gives_the_same_ticks() {
        let at = Utc::now();
        let mut a = Simulator::new(&coins(), &HashMap::new(), 5, 42);
        let mut b = Simulator::new(&coins(), &HashMap::new(), 5, 42);
        let mut c = Simulator::new(&coins(), &HashMap::new(), 5, 43);
        let (ta, tb, tc) = (a.step(at), b.step(at), c.step(at));
        assert_eq!(ta, tb);
        assert_ne!(ta, tc);
    }

    #[test]
    fn the_walk_starts_at_the_stored_price_and_stays_positive() {
        let btc = CoinId::parse("bitcoin").unwrap();
        let start = HashMap::from([(btc.clone(), 91_000.0)]);
        let mut sim = Simulator::new(std::slice::from_ref(&btc), &start, 5, 1);
        let first = sim.step(Utc::now()).remove(0);
        assert!((first.price / 91_000.0 - 1.0).abs() < 0.01, "{}", first.price);
        for _ in 0..10_000 {
            let t = sim.step(Utc::now()).remove(0);
            assert!(t.price > 0.0 && t.price.is_finite() && t.volume.unwrap() > 0.0);
        }
    }

    #[test]
    fn realised_volatility_matches_the_configured_one() {
        // One simulated year of hourly steps: annualised stdev of log returns ≈ σ.
        let sol = CoinId::parse("solana").unwrap();
        let mut sim = Simulator::new(std::slice::from_ref(&sol), &HashMap::new(), 3600, 7);
        let mut prev = sim.step(Utc::now())[0].price;
        let returns: Vec<f64> = (0..8766)
            .map(|_| {
                let p = sim.step(Utc::now())[0].price;
                let r = (p / prev).ln();
                prev = p;
                r
            })
            .collect();
        let mean = returns.iter().sum::<f64>() / returns.len() as f64;
        let var = returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (returns.len() - 1) as f64;
        let annualised = (var * 8766.0).sqrt();
        assert!((annualised - 1.0).abs() < 0.05, "σ ≈ {annualised}");
    }
}
