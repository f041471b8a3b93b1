//! The alert outbox (`alert_outbox`): one row per (alert, channel), written by
//! the transform in the transaction that writes the alert, moved along by the
//! notify step, read by the dashboard. The states and why are in
//! `migrations/V008__alert_outbox.sql`.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::StorageError;

/// The advisory lock one notify run holds (any other value than the transform's).
const NOTIFY_LOCK: i64 = 0x6e6f_7469_6679;

/// An alert's key: coin, instant, window and rule, as in `price_alerts`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AlertKey {
    pub coin_id: String,
    pub at: DateTime<Utc>,
    pub window_secs: i32,
    pub rule: String,
}

/// A row waiting for its channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub key: AlertKey,
    /// `sns` or `webhook:NAME`.
    pub channel: String,
    pub change_pct: f64,
    /// `up` or `down`.
    pub direction: String,
    pub price_before: f64,
    pub price_after: f64,
    pub cooldown_secs: i32,
    /// Tries so far (earlier runs included).
    pub attempts: i32,
}

/// What one transform run put in the outbox.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Enqueued {
    /// Rows to send.
    pub pending: i64,
    /// Rows of alerts too old to send ("not sent: historical").
    pub historical: i64,
}

/// One rule's cool-down, for [`enqueue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleCooldown {
    pub rule: String,
    pub cooldown_secs: i32,
}

/// Inside the transform's transaction: a row per channel for each alert run
/// `run_id` wrote that has none yet. Alerts at or after `send_from` (every one:
/// `None`) are pending; older ones are recorded as historical.
/// Never a second row for an alert and channel: a re-run, an incremental run
/// or a rebuild adds rows only for alerts never seen before.
pub async fn enqueue(
    db: &tokio_postgres::Client,
    run_id: Uuid,
    channels: &[String],
    rules: &[RuleCooldown],
    send_from: Option<DateTime<Utc>>,
) -> Result<Enqueued, StorageError> {
    if channels.is_empty() {
        return Ok(Enqueued::default());
    }
    let names: Vec<&str> = rules.iter().map(|r| r.rule.as_str()).collect();
    let cooldowns: Vec<i32> = rules.iter().map(|r| r.cooldown_secs).collect();
    let row = db
        .query_one(
            "WITH channels AS (SELECT unnest($2::text[]) AS channel),
                  rules AS (SELECT unnest($3::text[]) AS rule, unnest($4::int[]) AS cooldown_secs),
                  added AS (
                 INSERT INTO alert_outbox (coin_id, at, window_secs, rule, channel, state, change_pct,
                                           direction, price_before, price_after, cooldown_secs, run_id)
                 SELECT a.coin_id, a.at, a.window_secs, a.rule, c.channel,
                        CASE WHEN $5::timestamptz IS NULL OR a.at >= $5 THEN 'pending' ELSE 'historical' END,
                        a.change_pct, a.direction, a.price_before, a.price_after, r.cooldown_secs, a.run_id
                 FROM price_alerts a JOIN rules r USING (rule) CROSS JOIN channels c
                 WHERE a.run_id = $1
                 ON CONFLICT DO NOTHING
                 RETURNING state)
             SELECT count(*) FILTER (WHERE state = 'pending'), count(*) FILTER (WHERE state = 'historical')
             FROM added",
            &[&run_id, &channels, &names, &cooldowns, &send_from],
        )
        .await
        .map_err(|e| StorageError::query("queue alert notifications", e))?;
    Ok(Enqueued { pending: row.get(0), historical: row.get(1) })
}

/// Takes the notify lock for this session, if no other run holds it: one
/// notify run at a time, so no two send the same row.
pub async fn try_lock(db: &tokio_postgres::Client) -> Result<bool, StorageError> {
    db.query_one("SELECT pg_try_advisory_lock($1)", &[&NOTIFY_LOCK])
        .await
        .map(|r| r.get(0))
        .map_err(|e| StorageError::query("take the notify lock", e))
}

/// Releases [`try_lock`]'s lock.
pub async fn unlock(db: &tokio_postgres::Client) -> Result<(), StorageError> {
    db.execute("SELECT pg_advisory_unlock($1)", &[&NOTIFY_LOCK])
        .await
        .map(drop)
        .map_err(|e| StorageError::query("release the notify lock", e))
}

/// Pending rows no channel asked to wait past `now`, by channel, coin, rule and instant.
pub async fn pending(db: &tokio_postgres::Client, now: DateTime<Utc>) -> Result<Vec<Pending>, StorageError> {
    let rows = db
        .query(
            "SELECT coin_id, at, window_secs, rule, channel, change_pct, direction, price_before,
                    price_after, cooldown_secs, attempts
             FROM alert_outbox
             WHERE state = 'pending' AND (not_before IS NULL OR not_before <= $1)
             ORDER BY channel, coin_id, rule, at, window_secs",
            &[&now],
        )
        .await
        .map_err(|e| StorageError::query("read pending notifications", e))?;
    Ok(rows
        .iter()
        .map(|r| Pending {
            key: AlertKey { coin_id: r.get(0), at: r.get(1), window_secs: r.get(2), rule: r.get(3) },
            channel: r.get(4),
            change_pct: r.get(5),
            direction: r.get(6),
            price_before: r.get(7),
            price_after: r.get(8),
            cooldown_secs: r.get(9),
            attempts: r.get(10),
        })
        .collect())
}

/// The alert instant of the last message sent, per (channel, coin, rule).
pub async fn last_sent(
    db: &tokio_postgres::Client,
) -> Result<Vec<((String, String, String), DateTime<Utc>)>, StorageError> {
    let rows = db
        .query(
            "SELECT channel, coin_id, rule, max(at) FROM alert_outbox WHERE state = 'sent'
             GROUP BY channel, coin_id, rule",
            &[],
        )
        .await
        .map_err(|e| StorageError::query("read the last notifications sent", e))?;
    Ok(rows.iter().map(|r| ((r.get(0), r.get(1), r.get(2)), r.get(3))).collect())
}

fn key_params<'a>(
    key: &'a AlertKey,
    channel: &'a &'a str,
) -> [&'a (dyn tokio_postgres::types::ToSql + Sync); 5] {
    [&key.coin_id, &key.at, &key.window_secs, &key.rule, channel]
}

const WHERE_KEY: &str = "coin_id = $1 AND at = $2 AND window_secs = $3 AND rule = $4 AND channel = $5";

/// A pending row within the cool-down of a message: recorded, never sent.
pub async fn suppress(
    db: &tokio_postgres::Client,
    key: &AlertKey,
    channel: &str,
) -> Result<(), StorageError> {
    update(db, key, channel, "state = 'suppressed'", &[], "mark a notification suppressed").await
}

/// Suppressed rows of a channel, coin and rule with `after < at < before`
/// (no lower bound: `after` is `None`): what a message reports.
pub async fn suppressed_between(
    db: &tokio_postgres::Client,
    key: &AlertKey,
    channel: &str,
    after: Option<DateTime<Utc>>,
) -> Result<i64, StorageError> {
    db.query_one(
        "SELECT count(*) FROM alert_outbox
         WHERE channel = $1 AND coin_id = $2 AND rule = $3 AND state = 'suppressed'
           AND at < $4 AND ($5::timestamptz IS NULL OR at > $5)",
        &[&channel, &key.coin_id, &key.rule, &key.at, &after],
    )
    .await
    .map(|r| r.get(0))
    .map_err(|e| StorageError::query("count suppressed notifications", e))
}

/// Updates one row: `set` assigns columns, its parameters from `$6` on.
async fn update(
    db: &tokio_postgres::Client,
    key: &AlertKey,
    channel: &str,
    set: &str,
    values: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    what: &'static str,
) -> Result<(), StorageError> {
    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = key_params(key, &channel).to_vec();
    params.extend_from_slice(values);
    db.execute(&format!("UPDATE alert_outbox SET {set}, updated_at = now() WHERE {WHERE_KEY}"), &params)
        .await
        .map(drop)
        .map_err(|e| StorageError::query(what, e))
}

/// A failed try that will be retried: counted, with its error, and the
/// instant before which the channel asked not to be called again, if any.
pub async fn record_attempt(
    db: &tokio_postgres::Client,
    key: &AlertKey,
    channel: &str,
    error: &str,
    not_before: Option<DateTime<Utc>>,
) -> Result<(), StorageError> {
    let set = "attempts = attempts + 1, last_error = $6, not_before = $7";
    update(db, key, channel, set, &[&error, &not_before], "record a notification attempt").await
}

/// The channel accepted the message. Only now is the row sent: a crash
/// before this statement sends the message again on the next run.
pub async fn mark_sent(
    db: &tokio_postgres::Client,
    key: &AlertKey,
    channel: &str,
    suppressed: i64,
) -> Result<(), StorageError> {
    let suppressed = i32::try_from(suppressed).unwrap_or(i32::MAX);
    let set = "state = 'sent', attempts = attempts + 1, sent_at = now(), suppressed = $6, not_before = NULL";
    update(db, key, channel, set, &[&suppressed], "mark a notification sent").await
}

/// No more tries: the row is failed with its last error (shown on the Runs page).
pub async fn mark_failed(
    db: &tokio_postgres::Client,
    key: &AlertKey,
    channel: &str,
    error: &str,
) -> Result<(), StorageError> {
    let set = "state = 'failed', attempts = attempts + 1, last_error = $6, not_before = NULL";
    update(db, key, channel, set, &[&error], "mark a notification failed").await
}

/// One row's delivery, as the dashboard shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub key: AlertKey,
    pub channel: String,
    /// `pending`, `sent`, `suppressed`, `failed` or `historical`.
    pub state: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub suppressed: Option<i32>,
    pub updated_at: DateTime<Utc>,
}

fn delivery(r: &tokio_postgres::Row) -> Delivery {
    Delivery {
        key: AlertKey { coin_id: r.get(0), at: r.get(1), window_secs: r.get(2), rule: r.get(3) },
        channel: r.get(4),
        state: r.get(5),
        attempts: r.get(6),
        last_error: r.get(7),
        sent_at: r.get(8),
        suppressed: r.get(9),
        updated_at: r.get(10),
    }
}

const DELIVERY_COLUMNS: &str =
    "coin_id, at, window_secs, rule, channel, state, attempts, last_error, sent_at, suppressed, updated_at";

/// Every row of the alerts of `coins` at or after `since`, by alert then channel.
pub async fn deliveries(
    db: &tokio_postgres::Client,
    coins: &[String],
    since: DateTime<Utc>,
) -> Result<Vec<Delivery>, StorageError> {
    let rows = db
        .query(
            &format!(
                "SELECT {DELIVERY_COLUMNS} FROM alert_outbox WHERE coin_id = ANY($1) AND at >= $2
                 ORDER BY coin_id, at, window_secs, rule, channel"
            ),
            &[&coins, &since],
        )
        .await
        .map_err(|e| StorageError::query("read alert deliveries", e))?;
    Ok(rows.iter().map(delivery).collect())
}

/// The last `limit` rows that failed, newest first.
pub async fn failed(db: &tokio_postgres::Client, limit: i64) -> Result<Vec<Delivery>, StorageError> {
    let rows = db
        .query(
            &format!(
                "SELECT {DELIVERY_COLUMNS} FROM alert_outbox WHERE state = 'failed'
                 ORDER BY updated_at DESC LIMIT $1"
            ),
            &[&limit],
        )
        .await
        .map_err(|e| StorageError::query("read failed deliveries", e))?;
    Ok(rows.iter().map(delivery).collect())
}
