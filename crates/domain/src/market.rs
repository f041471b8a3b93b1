use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{CoinId, VsCurrency};

/// One coin's market state as `/coins/markets` reported it.
///
/// Every number may be missing: CoinGecko sends `null` for fields it has no
/// value for (new listings, coins without a supply cap…), and the snapshot keeps
/// that absence rather than inventing zeros. Cleaning happens in the transforms.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MarketSnapshot {
    pub coin: CoinId,
    pub vs_currency: VsCurrency,
    pub symbol: String,
    pub name: String,
    /// When CoinGecko last updated this coin (`last_updated`); the snapshot's
    /// identity together with coin and currency, so re-ingesting the same
    /// response adds nothing.
    pub observed_at: DateTime<Utc>,
    pub current_price: Option<f64>,
    pub market_cap: Option<f64>,
    pub market_cap_rank: Option<i32>,
    pub fully_diluted_valuation: Option<f64>,
    /// Rolling 24-hour volume, in `vs_currency`.
    pub total_volume: Option<f64>,
    pub high_24h: Option<f64>,
    pub low_24h: Option<f64>,
    pub price_change_24h: Option<f64>,
    pub price_change_percentage_24h: Option<f64>,
    pub circulating_supply: Option<f64>,
    pub total_supply: Option<f64>,
    pub max_supply: Option<f64>,
}

/// One point of a coin's history (`/coins/{id}/market_chart/range`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryPoint {
    pub coin: CoinId,
    pub vs_currency: VsCurrency,
    pub ts: DateTime<Utc>,
    pub price: Option<f64>,
    pub market_cap: Option<f64>,
    pub total_volume: Option<f64>,
}
