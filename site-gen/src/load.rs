//! Reads what the dashboard shows, in one read-only snapshot of the database
//! (so the overview and the coin pages agree with each other).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use storage::{inputs, live, outbox, outputs, runs};

use crate::SiteError;
use crate::model::{
    AlertKey, Coin, Delivery, FAILED_DELIVERIES, Freshness, MAX_ALERTS, QUALITY_RUNS, RUNS_PER_FUNCTION,
    SiteData,
};

/// The coin pages show the exchanges' bars that ended in the last this many minutes,
const LIVE_MINUTES: i64 = 15;
/// at most this many per exchange.
const LIVE_BARS: i64 = 12;

/// What to read: the coins in display order and the staleness limits.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub coins: Vec<String>,
    pub vs_currency: String,
    pub stale_batch: Duration,
    pub stale_stream: Duration,
}

/// Rows read, for the run record.
pub fn rows_read(data: &SiteData) -> i64 {
    let per_coin: usize =
        data.coins.iter().map(|c| c.hourly.len() + c.volume.len() + c.ranks.len() + c.alerts.len()).sum();
    (per_coin + data.quality.len() + data.runs.len()) as i64
}

pub async fn load(
    client: &mut tokio_postgres::Client,
    options: &LoadOptions,
    now: DateTime<Utc>,
) -> Result<SiteData, SiteError> {
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(|e| SiteError::query("begin a read-only transaction", e))?;
    // Storage's statements run on the transaction's connection, so inside it.
    let db = tokio_postgres::GenericClient::client(&tx);

    let mut coins: Vec<Coin> =
        options.coins.iter().map(|id| Coin { id: id.clone(), ..Coin::default() }).collect();
    let index: HashMap<String, usize> =
        options.coins.iter().cloned().enumerate().map(|(i, c)| (c, i)).collect();
    let ids = &options.coins;
    let vs = options.vs_currency.as_str();

    for (coin, name, symbol) in inputs::coin_names(db, ids, vs).await? {
        let coin = &mut coins[index[&coin]];
        coin.name = Some(name);
        coin.symbol = Some(symbol);
    }
    for (coin, latest) in inputs::latest_observations(db, ids, vs).await? {
        coins[index[&coin]].latest = Some(latest);
    }
    for (coin, sample) in inputs::sample_records(db, ids).await? {
        coins[index[&coin]].sample = Some(sample);
    }
    for (coin, hour) in outputs::hourly(db, ids).await? {
        coins[index[&coin]].hourly.push(hour);
    }
    for (coin, volume) in outputs::volumes(db, ids).await? {
        coins[index[&coin]].volume.push(volume);
    }
    for (coin, rank) in outputs::ranks(db, ids).await? {
        coins[index[&coin]].ranks.push(rank);
    }
    let mut alerts = outputs::alerts(db, ids).await?;
    for alert in &alerts {
        coins[index[&alert.coin_id]].alerts.push(alert.clone());
    }
    let alerts_total = alerts.len() as i64;
    alerts.reverse();
    alerts.truncate(MAX_ALERTS as usize);

    // The coin pages list the exchanges' bars of the last quarter hour.
    for (coin, bar) in
        live::live_bars(db, ids, now - chrono::Duration::minutes(LIVE_MINUTES), LIVE_BARS).await?
    {
        coins[index[&coin]].live.push(bar);
    }
    // Each listed alert's notifications: from the oldest alert any page lists.
    let oldest_listed = coins
        .iter()
        .filter_map(|c| c.alerts.get(c.alerts.len().saturating_sub(100)).map(|a| a.at))
        .chain(alerts.last().map(|a| a.at))
        .min();
    let mut deliveries: BTreeMap<AlertKey, Vec<Delivery>> = BTreeMap::new();
    if let Some(since) = oldest_listed {
        for d in outbox::deliveries(db, ids, since).await? {
            deliveries.entry(d.key.clone()).or_default().push(d);
        }
    }
    let failed_deliveries = outbox::failed(db, FAILED_DELIVERIES).await?;
    let runs = runs::recent(db, RUNS_PER_FUNCTION).await?;
    let feed_deployed = runs.iter().any(|r| r.function == "feed");
    let freshness = freshness(db, options, &coins, now, feed_deployed).await?;
    let data = SiteData {
        generated_at: now,
        vs_currency: options.vs_currency.clone(),
        coins,
        alerts,
        alerts_total,
        quality: outputs::quality(db, QUALITY_RUNS).await?,
        runs,
        freshness,
        deliveries,
        failed_deliveries,
    };
    tx.commit().await.map_err(|e| SiteError::query("end the read-only transaction", e))?;
    Ok(data)
}

async fn freshness(
    db: &tokio_postgres::Client,
    options: &LoadOptions,
    coins: &[Coin],
    now: DateTime<Utc>,
    feed_deployed: bool,
) -> Result<Vec<Freshness>, SiteError> {
    // Each max() reads one end of an ingested_at / started_at index.
    let [batch, stream, history] = inputs::last_ingested(db).await?;
    let transform = runs::last_success(db, "transform").await?;
    let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    let mut rows = vec![
        Freshness { source: "batch".into(), last: batch, stale_after_secs: Some(secs(options.stale_batch)) },
        Freshness {
            source: "stream".into(),
            last: stream,
            stale_after_secs: Some(secs(options.stale_stream)),
        },
        // Backfills are one-off: old history is not stale.
        Freshness { source: "history".into(), last: history, stale_after_secs: None },
        // Derived tables follow the batch: stale when the batch is.
        Freshness {
            source: "transform".into(),
            last: transform,
            stale_after_secs: Some(secs(options.stale_batch)),
        },
    ];
    // The shipped sample is listed apart from real history, and only when stored.
    if let Some(loaded) = coins.iter().filter_map(|c| c.sample.map(|s| s.loaded_at)).max() {
        rows.insert(3, Freshness { source: "sample".into(), last: Some(loaded), stale_after_secs: None });
    }
    // After the stream, each exchange that delivered in the last day, or every exchange once a feed runs here.
    let live = live::live_freshness(db, now - chrono::Duration::days(1)).await?;
    let live = live.into_iter().filter(|(_, last)| last.is_some() || feed_deployed).map(|(source, last)| {
        Freshness { source: source.as_str().into(), last, stale_after_secs: Some(secs(options.stale_stream)) }
    });
    rows.splice(2..2, live);
    Ok(rows)
}
