use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use alerting::{Notice, Sender, Step};
use backon::BackoffBuilder;
use chrono::Utc;
use lambda_runtime::LambdaEvent;
use serde::Serialize;
use storage::outbox::{self, Pending};
use storage::{PgClient, PgStore, Run, RunOutcome};
use tracing::{info, instrument, warn};
use url::Url;
use uuid::Uuid;

use crate::{Config, Delivery, NotifyError};

/// What one channel did in a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ChannelReport {
    /// Messages the channel accepted.
    pub sent: usize,
    /// Rows recorded as suppressed by a cool-down.
    pub suppressed: usize,
    /// Rows failed for good (after their tries, or refused outright).
    pub failed: usize,
    /// Rows left pending: the channel asked to wait longer than a run waits.
    pub deferred: usize,
    /// Tries that failed and were tried again.
    pub retries: usize,
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NotifyReport {
    pub run_id: Uuid,
    /// Another notify run held the lock: this one did nothing.
    pub skipped: bool,
    /// Rows waiting when the run began.
    pub pending: usize,
    pub sent: usize,
    pub suppressed: usize,
    pub failed: usize,
    pub deferred: usize,
    pub retries: usize,
    pub channels: BTreeMap<String, ChannelReport>,
    pub elapsed_ms: u64,
}

/// The notify job with its channels, built once per process.
#[derive(Debug, Clone)]
pub struct Notify {
    pub store: PgStore,
    pub senders: Vec<Sender>,
    pub delivery: Delivery,
}

impl Notify {
    /// Connects to the database and makes each configured channel ready (the
    /// SNS topic looked up by name if no ARN is given).
    pub async fn from_config(config: &Config) -> Result<Self, NotifyError> {
        let store = PgStore::connect(&config.database).await?;
        let mut senders = Vec::new();
        if let Some(topic) = &config.channels.sns {
            let client = sns_client(config.aws.endpoint_url.as_ref()).await;
            senders.push(Sender::sns(client, topic).await?);
        }
        for hook in &config.channels.webhooks {
            senders.push(Sender::webhook(hook.clone(), config.delivery.alert_webhook_timeout_secs)?);
        }
        if !senders.is_empty() && config.delivery.dashboard_url.is_none() {
            return Err(NotifyError::NoDashboardUrl);
        }
        for sender in &senders {
            info!(channel = sender.channel(), target = sender.target(), "alert channel ready");
        }
        Ok(Self { store, senders, delivery: config.delivery.clone() })
    }

    /// Runs once and records the run in `pipeline_runs`.
    #[instrument(skip_all)]
    pub async fn run(&self) -> Result<NotifyReport, NotifyError> {
        let run = Run::start(&self.store, "notify").await?;
        let started = Instant::now();
        let result = self.notify(run.id()).await.map(|mut r| {
            r.elapsed_ms = started.elapsed().as_millis() as u64;
            r
        });
        let result = run
            .finish(&self.store, result, |result| match result {
                Ok(r) => RunOutcome::succeeded(
                    r.pending as i64,
                    r.sent as i64,
                    serde_json::to_value(r).unwrap_or_default(),
                ),
                Err(err) => RunOutcome::failed(err, serde_json::json!({})),
            })
            .await;
        match &result {
            Ok(r) => info!(
                pending = r.pending,
                sent = r.sent,
                suppressed = r.suppressed,
                failed = r.failed,
                deferred = r.deferred,
                retries = r.retries,
                skipped = r.skipped,
                elapsed_ms = r.elapsed_ms,
                "notify done"
            ),
            Err(e) => warn!(error = %telemetry::failure::Chain(e), "notify failed"),
        }
        result
    }

    async fn notify(&self, run_id: Uuid) -> Result<NotifyReport, NotifyError> {
        let mut report = NotifyReport { run_id, ..Default::default() };
        let db = self.store.client().await?;
        if !outbox::try_lock(&db).await? {
            info!("another notify run is sending; this one leaves the outbox to it");
            report.skipped = true;
            return Ok(report);
        }
        let result = self.send_pending(&db, &mut report).await;
        match outbox::unlock(&db).await {
            Ok(()) => {}
            // The session ends with the connection, and the lock with it.
            Err(_) => storage::discard(db),
        }
        result.map(|()| report)
    }

    async fn send_pending(&self, db: &PgClient, report: &mut NotifyReport) -> Result<(), NotifyError> {
        let rows = outbox::pending(db, Utc::now()).await?;
        report.pending = rows.len();
        if rows.is_empty() {
            return Ok(());
        }
        let last_sent: HashMap<(String, String, String), chrono::DateTime<Utc>> =
            outbox::last_sent(db).await?.into_iter().collect();
        let mut coins: Vec<String> = rows.iter().map(|r| r.key.coin_id.clone()).collect();
        coins.sort_unstable();
        coins.dedup();
        let names: HashMap<String, (String, String)> =
            storage::inputs::coin_names(db, &coins, self.delivery.vs_currency.as_str())
                .await?
                .into_iter()
                .map(|(id, name, symbol)| (id, (name, symbol)))
                .collect();

        // Rows come by channel, coin, rule and instant: runs of one channel, and
        // within them of one (coin, rule), are its groups.
        // Channels side by side (a slow webhook does not hold SNS back); within one, in order.
        let work = rows.chunk_by(|a, b| a.channel == b.channel).map(|rows| {
            let channel = rows[0].channel.as_str();
            let sender = self.senders.iter().find(|s| s.channel() == channel);
            let (names, last_sent) = (&names, &last_sent);
            async move {
                let mut r = ChannelReport::default();
                let Some(sender) = sender else {
                    let error = format!(
                        "channel {channel} is no longer configured (ALERT_SNS_TOPIC, ALERT_WEBHOOKS)"
                    );
                    for row in rows {
                        outbox::mark_failed(db, &row.key, channel, &error).await?;
                        r.failed += 1;
                    }
                    warn!(channel, rows = r.failed, "rows of a channel no longer configured failed");
                    return Ok::<_, NotifyError>((channel.to_owned(), r));
                };
                for group in rows.chunk_by(|a, b| a.key.coin_id == b.key.coin_id && a.key.rule == b.key.rule)
                {
                    let key = (channel.to_owned(), group[0].key.coin_id.clone(), group[0].key.rule.clone());
                    for step in alerting::plan(group, last_sent.get(&key).copied()) {
                        match step {
                            Step::Suppress(row) => {
                                outbox::suppress(db, &row.key, channel).await?;
                                r.suppressed += 1;
                            }
                            Step::Send { row, since } => {
                                let suppressed =
                                    outbox::suppressed_between(db, &row.key, channel, since).await?;
                                let notice = self.notice(row, suppressed, names);
                                self.send(db, sender, row, &notice, &mut r).await?;
                            }
                        }
                    }
                }
                Ok((channel.to_owned(), r))
            }
        });
        for result in futures::future::join_all(work).await {
            let (channel, r) = result?;
            report.sent += r.sent;
            report.suppressed += r.suppressed;
            report.failed += r.failed;
            report.deferred += r.deferred;
            report.retries += r.retries;
            report.channels.insert(channel, r);
        }
        Ok(())
    }

    fn notice(&self, row: &Pending, suppressed: i64, names: &HashMap<String, (String, String)>) -> Notice {
        let (coin_name, symbol) = match names.get(&row.key.coin_id) {
            Some((name, symbol)) => (Some(name.clone()), Some(symbol.clone())),
            None => (None, None),
        };
        Notice {
            coin_id: row.key.coin_id.clone(),
            coin_name,
            symbol,
            rule: row.key.rule.clone(),
            window_secs: row.key.window_secs,
            change_pct: row.change_pct,
            price_before: row.price_before,
            price_after: row.price_after,
            currency: self.delivery.vs_currency.as_str().to_owned(),
            at: row.key.at,
            suppressed,
            link: coin_page(self.delivery.dashboard_url.as_ref(), &row.key.coin_id),
        }
    }

    /// Sends one message with its retries, and records the outcome in its row.
    async fn send(
        &self,
        db: &PgClient,
        sender: &Sender,
        row: &Pending,
        notice: &Notice,
        report: &mut ChannelReport,
    ) -> Result<(), NotifyError> {
        let d = &self.delivery;
        let channel = row.channel.as_str();
        let mut delays = backon::ExponentialBuilder::default()
            .with_min_delay(d.alert_retry_base_ms)
            .with_max_delay(d.alert_retry_max_wait_secs)
            .with_jitter()
            .without_max_times()
            .build();
        let mut attempts = u32::try_from(row.attempts).unwrap_or(0);
        loop {
            let failure = match sender.deliver(notice).await {
                Ok(()) => {
                    // Only now is the row sent: a crash before this line sends it again next run.
                    outbox::mark_sent(db, &row.key, channel, notice.suppressed).await?;
                    info!(
                        channel,
                        coin = %row.key.coin_id,
                        rule = %row.key.rule,
                        at = %row.key.at,
                        suppressed = notice.suppressed,
                        attempts = attempts + 1,
                        "alert sent"
                    );
                    report.sent += 1;
                    return Ok(());
                }
                Err(f) => f,
            };
            attempts += 1;
            warn!(channel, coin = %row.key.coin_id, attempt = attempts, error = %failure.message, "delivery failed");
            let Some(after) = failure.retry else {
                outbox::mark_failed(db, &row.key, channel, &failure.message).await?;
                report.failed += 1;
                return Ok(());
            };
            if attempts >= d.alert_delivery_attempts {
                let error = format!("{} (after {attempts} tries)", failure.message);
                outbox::mark_failed(db, &row.key, channel, &error).await?;
                report.failed += 1;
                return Ok(());
            }
            let backoff = delays.next().unwrap_or(d.alert_retry_max_wait_secs);
            let wait = after.map_or(backoff, |a| a.max(backoff));
            if wait > d.alert_retry_max_wait_secs {
                let not_before =
                    Utc::now() + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
                outbox::record_attempt(db, &row.key, channel, &failure.message, Some(not_before)).await?;
                info!(
                    channel,
                    wait_secs = wait.as_secs(),
                    "the channel asks to wait: the row waits for a later run"
                );
                report.deferred += 1;
                return Ok(());
            }
            outbox::record_attempt(db, &row.key, channel, &failure.message, None).await?;
            report.retries += 1;
            tokio::time::sleep(wait.min(Duration::from_secs(3600))).await;
        }
    }
}

/// `DASHBOARD_URL` + `coins/{id}.html`.
fn coin_page(dashboard: Option<&Url>, coin: &str) -> Option<Url> {
    let base = dashboard?;
    // A base without a trailing slash would lose its last segment in `join`.
    let base = if base.path().ends_with('/') {
        base.clone()
    } else {
        let mut b = base.clone();
        b.set_path(&format!("{}/", base.path()));
        b
    };
    base.join(&format!("coins/{coin}.html")).ok()
}

/// An SNS client; `endpoint` is LocalStack's (`AWS_ENDPOINT_URL`), none on AWS.
pub async fn sns_client(endpoint: Option<&Url>) -> aws_sdk_sns::Client {
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let mut sns = aws_sdk_sns::config::Builder::from(&shared);
    if let Some(endpoint) = endpoint {
        sns = sns.endpoint_url(endpoint.as_str().trim_end_matches('/'));
    }
    aws_sdk_sns::Client::from_conf(sns.build())
}

/// The Lambda handler. The payload (the transform's destination record) is not read.
pub async fn handle(
    notify: &Notify,
    _event: LambdaEvent<serde_json::Value>,
) -> Result<NotifyReport, NotifyError> {
    notify.run().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_go_under_the_dashboard_url() {
        let page = |base: &str| coin_page(Some(&Url::parse(base).unwrap()), "bitcoin").unwrap().to_string();
        assert_eq!(page("http://127.0.0.1:8080/"), "http://127.0.0.1:8080/coins/bitcoin.html");
        assert_eq!(page("https://d.example/dash"), "https://d.example/dash/coins/bitcoin.html");
        assert_eq!(coin_page(None, "bitcoin"), None);
    }
}
