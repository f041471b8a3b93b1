//! Reads what the dashboard shows, in one read-only snapshot of the database
//! (so the overview and the coin pages agree with each other).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use tokio_postgres::Transaction;
use uuid::Uuid;

use crate::SiteError;
use crate::model::{
    Alert, Coin, DailyRank, DailyVolume, Freshness, Hourly, MAX_ALERTS, Observation, QUALITY_RUNS,
    QualityRun, RUNS_PER_FUNCTION, Run, Sample, SiteData,
};

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

    let mut coins: Vec<Coin> =
        options.coins.iter().map(|id| Coin { id: id.clone(), ..Coin::default() }).collect();
    let index: HashMap<String, usize> =
        options.coins.iter().cloned().enumerate().map(|(i, c)| (c, i)).collect();
    let ids = &options.coins;
    // Every query returns the coin id first; rows only of the coins asked for.
    let slot = |row: &tokio_postgres::Row| index[row.get::<_, &str>(0)];

    for row in query(
        &tx,
        "read coin names",
        "SELECT c, s.name, s.symbol FROM unnest($1::text[]) c, LATERAL (
             SELECT name, symbol FROM market_snapshots
             WHERE coin_id = c AND vs_currency = $2 ORDER BY observed_at DESC LIMIT 1) s",
        &[ids, &options.vs_currency],
    )
    .await?
    {
        let coin = &mut coins[slot(&row)];
        coin.name = Some(row.get(1));
        coin.symbol = Some(row.get(2));
    }

    // The newest observation of each coin, from the stream or the batch.
    for row in query(
        &tx,
        "read the latest prices",
        "SELECT c, o.price, o.at FROM unnest($1::text[]) c, LATERAL (
             SELECT * FROM (
                 (SELECT price, event_time AS at FROM price_ticks
                  WHERE coin_id = c ORDER BY event_time DESC LIMIT 1)
                 UNION ALL
                 (SELECT current_price, observed_at FROM market_snapshots
                  WHERE coin_id = c AND vs_currency = $2 AND current_price > 0
                  ORDER BY observed_at DESC LIMIT 1)) latest
             ORDER BY at DESC LIMIT 1) o",
        &[ids, &options.vs_currency],
    )
    .await?
    {
        coins[slot(&row)].latest = Some(Observation { price: row.get(1), at: row.get(2) });
    }

    for row in query(
        &tx,
        "read the sample history",
        "SELECT coin_id, original_from, original_to, shift_secs, loaded_at FROM sample_history
         WHERE coin_id = ANY($1)",
        &[ids],
    )
    .await?
    {
        coins[slot(&row)].sample = Some(Sample {
            original_from: row.get(1),
            original_to: row.get(2),
            shift_secs: row.get(3),
            loaded_at: row.get(4),
        });
    }

    for row in query(
        &tx,
        "read hourly prices",
        "SELECT coin_id, hour, open, high, low, close, avg_price FROM price_hourly
         WHERE coin_id = ANY($1) ORDER BY coin_id, hour",
        &[ids],
    )
    .await?
    {
        coins[slot(&row)].hourly.push(Hourly {
            hour: row.get(1),
            open: row.get(2),
            high: row.get(3),
            low: row.get(4),
            close: row.get(5),
            avg: row.get(6),
        });
    }

    // One figure per day: summed intervals where there are some, else CoinGecko's rolling 24 h.
    for row in query(
        &tx,
        "read daily volumes",
        "SELECT DISTINCT ON (coin_id, day) coin_id, day, volume_usd, method FROM daily_volume
         WHERE coin_id = ANY($1) ORDER BY coin_id, day, method = 'interval_sum' DESC",
        &[ids],
    )
    .await?
    {
        coins[slot(&row)].volume.push(DailyVolume {
            day: row.get(1),
            volume: row.get(2),
            method: row.get(3),
        });
    }

    for row in query(
        &tx,
        "read daily rankings",
        "SELECT coin_id, day, rank, performance FROM daily_ranking WHERE coin_id = ANY($1) ORDER BY coin_id, day",
        &[ids],
    )
    .await?
    {
        coins[slot(&row)].ranks.push(DailyRank {
            day: row.get::<_, NaiveDate>(1),
            rank: row.get(2),
            performance: row.get(3),
        });
    }

    let mut alerts = Vec::new();
    for row in query(
        &tx,
        "read alerts",
        "SELECT coin_id, at, window_secs, change_pct, direction, price_before, price_after
         FROM price_alerts WHERE coin_id = ANY($1) ORDER BY at, coin_id, window_secs",
        &[ids],
    )
    .await?
    {
        let alert = Alert {
            coin_id: row.get(0),
            at: row.get(1),
            window_secs: row.get(2),
            change_pct: row.get(3),
            direction: row.get(4),
            price_before: row.get(5),
            price_after: row.get(6),
        };
        coins[index[&alert.coin_id]].alerts.push(alert.clone());
        alerts.push(alert);
    }
    let alerts_total = alerts.len() as i64;
    alerts.reverse();
    alerts.truncate(MAX_ALERTS as usize);

    let freshness = freshness(&tx, options, &coins).await?;
    let data = SiteData {
        generated_at: now,
        vs_currency: options.vs_currency.clone(),
        coins,
        alerts,
        alerts_total,
        quality: quality(&tx).await?,
        runs: runs(&tx).await?,
        freshness,
    };
    tx.commit().await.map_err(|e| SiteError::query("end the read-only transaction", e))?;
    Ok(data)
}

async fn query(
    tx: &Transaction<'_>,
    what: &'static str,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<tokio_postgres::Row>, SiteError> {
    tx.query(sql, params).await.map_err(|e| SiteError::query(what, e))
}

async fn quality(tx: &Transaction<'_>) -> Result<Vec<QualityRun>, SiteError> {
    let rows = query(
        tx,
        "read data quality",
        "WITH recent AS (
             SELECT run_id, started_at, status, rows_in FROM pipeline_runs
             WHERE function = 'transform' ORDER BY started_at DESC LIMIT $1)
         SELECT r.run_id, r.started_at, r.status, r.rows_in, q.reason, q.rows
         FROM recent r LEFT JOIN data_quality q USING (run_id)
         ORDER BY r.started_at DESC, r.run_id, q.reason",
        &[&QUALITY_RUNS],
    )
    .await?;
    let mut runs: Vec<QualityRun> = Vec::new();
    for row in rows {
        let run_id: Uuid = row.get(0);
        if runs.last().is_none_or(|r| r.run_id != run_id) {
            runs.push(QualityRun {
                run_id,
                started_at: row.get(1),
                status: row.get(2),
                rows_in: row.get(3),
                dropped: BTreeMap::new(),
            });
        }
        if let (Some(reason), Some(n), Some(run)) =
            (row.get::<_, Option<String>>(4), row.get::<_, Option<i64>>(5), runs.last_mut())
        {
            run.dropped.insert(reason, n);
        }
    }
    Ok(runs)
}

async fn runs(tx: &Transaction<'_>) -> Result<Vec<Run>, SiteError> {
    let rows = query(
        tx,
        "read pipeline runs",
        "SELECT function, started_at, finished_at, status, rows_in, rows_out, error FROM (
             SELECT *, row_number() OVER (PARTITION BY function ORDER BY started_at DESC) AS n
             FROM pipeline_runs) r
         WHERE n <= $1 ORDER BY started_at DESC, function",
        &[&RUNS_PER_FUNCTION],
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| Run {
            function: row.get(0),
            started_at: row.get(1),
            finished_at: row.get(2),
            status: row.get(3),
            rows_in: row.get(4),
            rows_out: row.get(5),
            error: row.get(6),
        })
        .collect())
}

async fn freshness(
    tx: &Transaction<'_>,
    options: &LoadOptions,
    coins: &[Coin],
) -> Result<Vec<Freshness>, SiteError> {
    // Each max() reads one end of an ingested_at / started_at index.
    let row = query(
        tx,
        "read freshness",
        "SELECT (SELECT max(ingested_at) FROM market_snapshots),
                (SELECT max(ingested_at) FROM price_ticks),
                (SELECT max(ingested_at) FROM market_history),
                (SELECT max(finished_at) FROM pipeline_runs
                 WHERE function = 'transform' AND status = 'succeeded')",
        &[],
    )
    .await?;
    let row = row.first();
    let at = |i: usize| row.and_then(|r| r.get::<_, Option<DateTime<Utc>>>(i));
    let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    let mut rows = vec![
        Freshness { source: "batch".into(), last: at(0), stale_after_secs: Some(secs(options.stale_batch)) },
        Freshness {
            source: "stream".into(),
            last: at(1),
            stale_after_secs: Some(secs(options.stale_stream)),
        },
        // Backfills are one-off: old history is not stale.
        Freshness { source: "history".into(), last: at(2), stale_after_secs: None },
        // Derived tables follow the batch: stale when the batch is.
        Freshness {
            source: "transform".into(),
            last: at(3),
            stale_after_secs: Some(secs(options.stale_batch)),
        },
    ];
    // The shipped sample is listed apart from real history, and only when stored.
    if let Some(loaded) = coins.iter().filter_map(|c| c.sample.map(|s| s.loaded_at)).max() {
        rows.insert(3, Freshness { source: "sample".into(), last: Some(loaded), stale_after_secs: None });
    }
    Ok(rows)
}
