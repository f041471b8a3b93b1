//! The JSON shapes CoinGecko sends, and their conversion into domain values.

use chrono::{DateTime, TimeZone, Utc};
use domain::{CoinId, HistoryPoint, MarketSnapshot, VsCurrency};
use serde::Deserialize;

/// One item of `/coins/markets`. Every number is optional: CoinGecko sends
/// `null` for unknown values, and integers, decimals or exponents (`8.36e-06`)
/// otherwise, all of which `f64` takes.
#[derive(Debug, Deserialize)]
struct MarketItem {
    id: String,
    symbol: String,
    name: String,
    current_price: Option<f64>,
    market_cap: Option<f64>,
    market_cap_rank: Option<f64>,
    fully_diluted_valuation: Option<f64>,
    total_volume: Option<f64>,
    high_24h: Option<f64>,
    low_24h: Option<f64>,
    price_change_24h: Option<f64>,
    price_change_percentage_24h: Option<f64>,
    circulating_supply: Option<f64>,
    total_supply: Option<f64>,
    max_supply: Option<f64>,
    last_updated: Option<DateTime<Utc>>,
}

/// Parses a whole `/coins/markets` body.
///
/// `fetched_at` stands in for `last_updated` when CoinGecko sends none, so a
/// snapshot always has a time.
pub fn parse_markets(
    body: &[u8],
    vs_currency: &VsCurrency,
    fetched_at: DateTime<Utc>,
) -> Result<Vec<MarketSnapshot>, String> {
    let items: Vec<MarketItem> = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    items
        .into_iter()
        .map(|item| {
            let coin = CoinId::parse(&item.id).map_err(|e| e.to_string())?;
            Ok(MarketSnapshot {
                coin,
                vs_currency: vs_currency.clone(),
                symbol: item.symbol,
                name: item.name,
                observed_at: item.last_updated.unwrap_or(fetched_at),
                current_price: item.current_price,
                market_cap: item.market_cap,
                // Ranks are small integers; anything else is not a rank.
                market_cap_rank: item
                    .market_cap_rank
                    .filter(|r| r.fract() == 0.0 && (1.0..=i32::MAX as f64).contains(r))
                    .map(|r| r as i32),
                fully_diluted_valuation: item.fully_diluted_valuation,
                total_volume: item.total_volume,
                high_24h: item.high_24h,
                low_24h: item.low_24h,
                price_change_24h: item.price_change_24h,
                price_change_percentage_24h: item.price_change_percentage_24h,
                circulating_supply: item.circulating_supply,
                total_supply: item.total_supply,
                max_supply: item.max_supply,
            })
        })
        .collect()
}

/// `[ms_epoch, value]`, the pair every market-chart series is made of.
type Pair = (f64, Option<f64>);

#[derive(Debug, Deserialize)]
struct MarketChart {
    prices: Vec<Pair>,
    #[serde(default)]
    market_caps: Vec<Pair>,
    #[serde(default)]
    total_volumes: Vec<Pair>,
}

/// Parses a `/coins/{id}/market_chart` or `/market_chart/range` body into one
/// point per timestamp of the `prices` series, joined with the market cap and
/// volume of the same instant.
pub fn parse_market_chart(
    body: &[u8],
    coin: &CoinId,
    vs_currency: &VsCurrency,
) -> Result<Vec<HistoryPoint>, String> {
    let chart: MarketChart = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let at = |ms: f64| -> Result<DateTime<Utc>, String> {
        Utc.timestamp_millis_opt(ms as i64).single().ok_or_else(|| format!("timestamp {ms} is out of range"))
    };
    let caps: std::collections::HashMap<i64, Option<f64>> =
        chart.market_caps.iter().map(|(ms, v)| (*ms as i64, *v)).collect();
    let vols: std::collections::HashMap<i64, Option<f64>> =
        chart.total_volumes.iter().map(|(ms, v)| (*ms as i64, *v)).collect();
    let mut points = chart
        .prices
        .iter()
        .map(|(ms, price)| {
            let key = *ms as i64;
            Ok(HistoryPoint {
                coin: coin.clone(),
                vs_currency: vs_currency.clone(),
                ts: at(*ms)?,
                price: *price,
                market_cap: caps.get(&key).copied().flatten(),
                total_volume: vols.get(&key).copied().flatten(),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    // The API has been seen to repeat the last instant; one point per instant.
    points.sort_by_key(|p| p.ts);
    points.dedup_by_key(|p| p.ts);
    Ok(points)
}

/// Pulls the human message out of a CoinGecko error body. Known shapes:
/// `{"error":"coin not found"}`, `{"status":{"error_code":429,"error_message":"…"}}`,
/// `{"error":{"status":{"error_code":10012,"error_message":"…"}}}`; an HTML
/// page (proxies, Cloudflare) yields its `<title>`.
pub(crate) fn api_message(body: &[u8]) -> (Option<i64>, String) {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
        let status = value.get("status").or_else(|| value.pointer("/error/status"));
        if let Some(status) = status {
            let code = status.get("error_code").and_then(serde_json::Value::as_i64);
            if let Some(msg) = status.get("error_message").and_then(serde_json::Value::as_str) {
                return (code, msg.trim().to_owned());
            }
        }
        if let Some(msg) = value.get("error").and_then(serde_json::Value::as_str) {
            return (None, msg.to_owned());
        }
        return (None, excerpt(body, 200));
    }
    let text = String::from_utf8_lossy(body);
    let lower = text.to_ascii_lowercase();
    if let (Some(start), Some(end)) = (lower.find("<title>"), lower.find("</title>"))
        && start + 7 <= end
    {
        let title = text[start + 7..end].split_whitespace().collect::<Vec<_>>().join(" ");
        return (None, format!("an HTML page titled {title:?}"));
    }
    if lower.trim_start().starts_with("<!doctype html") || lower.trim_start().starts_with("<html") {
        return (None, String::from("an HTML page instead of JSON"));
    }
    (None, excerpt(body, 200))
}

/// The first `max` characters of a body, for error messages.
pub(crate) fn excerpt(body: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text.chars().take(max).collect();
    if text.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd() -> VsCurrency {
        VsCurrency::usd()
    }

    #[test]
    fn markets_keep_nulls_and_take_every_number_form() {
        let body = br#"[{"id":"tiny","symbol":"t","name":"Tiny","current_price":8.36e-06,"market_cap":12345,
            "market_cap_rank":null,"fully_diluted_valuation":null,"total_volume":1.5,"high_24h":null,
            "low_24h":null,"price_change_24h":null,"price_change_percentage_24h":null,
            "circulating_supply":1e9,"total_supply":null,"max_supply":null,"roi":null,
            "last_updated":"2023-07-28T09:44:32.396Z"}]"#;
        let snaps = parse_markets(body, &usd(), Utc::now()).unwrap();
        assert_eq!(snaps.len(), 1);
        let s = &snaps[0];
        assert_eq!(s.current_price, Some(8.36e-06));
        assert_eq!(s.market_cap, Some(12345.0));
        assert_eq!(s.market_cap_rank, None);
        assert_eq!(s.circulating_supply, Some(1e9));
        assert_eq!(s.observed_at.to_rfc3339(), "2023-07-28T09:44:32.396+00:00");
    }

    #[test]
    fn truncated_markets_are_an_error_not_a_prefix() {
        let body = br#"[{"id":"bitcoin","symbol":"btc","name":"Bitcoin","current_price":1}, {"id":"eth"#;
        assert!(parse_markets(body, &usd(), Utc::now()).is_err());
    }

    #[test]
    fn missing_last_updated_falls_back_to_fetch_time() {
        let now = Utc::now();
        let body =
            br#"[{"id":"bitcoin","symbol":"btc","name":"Bitcoin","current_price":1,"last_updated":null}]"#;
        assert_eq!(parse_markets(body, &usd(), now).unwrap()[0].observed_at, now);
    }

    #[test]
    fn chart_joins_series_by_instant_and_keeps_null_values() {
        let coin = CoinId::parse("bitcoin").unwrap();
        let body = br#"{"prices":[[1700000000000,100.5],[1700003600000,null],[1700003600000,null]],
            "market_caps":[[1700000000000,5e11]],"total_volumes":[[1700003600000,42]]}"#;
        let points = parse_market_chart(body, &coin, &usd()).unwrap();
        assert_eq!(points.len(), 2);
        assert_eq!(points[0].price, Some(100.5));
        assert_eq!(points[0].market_cap, Some(5e11));
        assert_eq!(points[0].total_volume, None);
        assert_eq!(points[1].price, None);
        assert_eq!(points[1].total_volume, Some(42.0));
    }

    #[test]
    fn api_messages_from_every_known_shape() {
        assert_eq!(api_message(br#"{"error":"coin not found"}"#), (None, "coin not found".into()));
        let (code, msg) =
            api_message(br#"{"status":{"error_code":429,"error_message":"You've exceeded the Rate Limit"}}"#);
        assert_eq!((code, msg.as_str()), (Some(429), "You've exceeded the Rate Limit"));
        let (code, msg) = api_message(
            br#"{"error":{"status":{"timestamp":"2024-04-20T22:00:05.123+00:00","error_code":10012,"error_message":"Your request exceeds the allowed time range. "}}}"#,
        );
        assert_eq!(code, Some(10012));
        assert_eq!(msg, "Your request exceeds the allowed time range.");
        let (_, msg) =
            api_message(b"<!DOCTYPE html><html><head><title>Just a moment...</title></head></html>");
        assert_eq!(msg, "an HTML page titled \"Just a moment...\"");
    }
}
