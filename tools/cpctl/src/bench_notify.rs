//! `just bench` (alerts part): how fast the notify step delivers to a webhook,
//! and how long a crossing takes from being stored to the webhook's receipt
//! when a cycle's transform and notify follow (the local chain minus the wait
//! for the schedule's tick). On a scratch database, with the transform's
//! production settings (the default watermark lag) and Postgres's durable
//! commits; the receiver is `scripts/webhook_receiver.py` on this machine.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use storage::{PgConfig, PgStore};

#[derive(Debug, clap::Args)]
pub struct Options {
    /// Alerts (one per coin) delivered in the throughput run.
    #[arg(long, default_value_t = 300)]
    alerts: usize,
    /// Crossings, one after the other, in the latency run.
    #[arg(long, default_value_t = 20)]
    crossings: usize,
    /// The webhook receiver (scripts/webhook_receiver.py).
    #[arg(long, default_value = "scripts/webhook_receiver.py")]
    receiver: std::path::PathBuf,
}

/// Stores a snapshot of `coin` observed now whose 24 h change is +9 %: an alert.
async fn crossing(store: &PgStore, coin: &str) -> anyhow::Result<()> {
    store
        .client()
        .await?
        .execute(
            "INSERT INTO market_snapshots (coin_id, vs_currency, observed_at, symbol, name, current_price,
                                           price_change_percentage_24h)
             VALUES ($1, 'usd', now(), 'bch', $1, 100, 9)",
            &[&coin],
        )
        .await?;
    Ok(())
}

/// Lines the receiver logged: (arrival, Unix seconds; the coin id).
fn received(log: &Path) -> anyhow::Result<Vec<(f64, String)>> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line)?;
            let at = v["received"].as_f64().context("no arrival time")?;
            let coin = v["body"]["coin"]["id"].as_str().context("no coin")?.to_owned();
            Ok((at, coin))
        })
        .collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

pub async fn run(admin: &PgConfig, options: Options) -> anyhow::Result<()> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let db = format!("bench_{id}");
    let (_, store) = storage::create_database(admin, &db).await?;
    let work = std::env::temp_dir().join(format!("bench-notify-{id}"));
    std::fs::create_dir_all(&work)?;
    let log = work.join("hooks.jsonl");
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut receiver = tokio::process::Command::new("python3")
        .arg(&options.receiver)
        .args(["--port", &port.to_string(), "--log"])
        .arg(&log)
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", options.receiver.display()))?;
    let result = measure(&store, port, &log, &options).await;
    let _ = receiver.kill().await;
    drop(store);
    let _ = storage::drop_database(admin, &db).await;
    let _ = std::fs::remove_dir_all(&work);
    result
}

async fn measure(store: &PgStore, port: u16, log: &Path, o: &Options) -> anyhow::Result<()> {
    for _ in 0..50 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let hook = alerting::channels::parse_webhooks(&format!("bench=json:http://127.0.0.1:{port}/hook"))
        .map_err(anyhow::Error::msg)?
        .remove(0);
    let notify = notify::Notify {
        store: store.clone(),
        senders: vec![alerting::Sender::webhook(hook, Duration::from_secs(10))?],
        delivery: notify::Delivery {
            alert_delivery_attempts: 5,
            alert_retry_base_ms: Duration::from_secs(1),
            alert_retry_max_wait_secs: Duration::from_secs(60),
            alert_webhook_timeout_secs: Duration::from_secs(10),
            dashboard_url: Some(url::Url::parse("http://127.0.0.1:8080/")?),
            vs_currency: domain::VsCurrency::usd(),
        },
    };
    // The transform as configured by default: the shipped rule, the 30 s watermark lag.
    let transform = transform::Transform {
        channels: vec![String::from("webhook:bench")],
        ..transform::Transform::with_defaults(store.clone())
    };

    // Throughput: alerts of as many coins (no cool-down between them), queued by one run.
    for i in 0..o.alerts {
        crossing(store, &format!("bench-coin-{i:04}")).await?;
    }
    let queued = transform.run(transform::TransformRequest::default()).await?;
    anyhow::ensure!(queued.notifications.pending == o.alerts as i64, "queued {:?}", queued.notifications);
    let started = Instant::now();
    let report = notify.run().await?;
    let secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(report.sent == o.alerts, "sent {} of {}", report.sent, o.alerts);
    anyhow::ensure!(received(log)?.len() == o.alerts, "the receiver got {} messages", received(log)?.len());
    println!(
        "bench: notify throughput       {:>7.0} messages/s ({} alerts to a local webhook in {:.2} s; \
         each POST, then its row marked sent, committed durably)",
        o.alerts as f64 / secs,
        o.alerts,
        secs
    );

    // Latency: a crossing stored, then the cycle's transform and notify.
    let mut latencies = Vec::with_capacity(o.crossings);
    let (mut transform_ms, mut notify_ms) = (Vec::new(), Vec::new());
    for i in 0..o.crossings {
        let coin = format!("bench-lat-{i:04}");
        let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs_f64();
        crossing(store, &coin).await?;
        let t = Instant::now();
        let r = transform.run(transform::TransformRequest::default()).await?;
        transform_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(
            r.notifications.pending == 1,
            "crossing {i} not queued at once: {:?}",
            r.notifications
        );
        let t = Instant::now();
        notify.run().await?;
        notify_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        let arrival = received(log)?
            .into_iter()
            .find(|(_, c)| *c == coin)
            .map(|(at, _)| at)
            .with_context(|| format!("no message for {coin}"))?;
        latencies.push((arrival - wall) * 1000.0);
    }
    for v in [&mut latencies, &mut transform_ms, &mut notify_ms] {
        v.sort_by(f64::total_cmp);
    }
    println!(
        "bench: crossing → message      median {:>5.0} ms, p95 {:>5.0} ms, max {:>5.0} ms over {} crossings \
         (stored → transform (median {:.0} ms) → notify (median {:.0} ms) → received; plus, in the chain, \
         the wait for the schedule's next tick)",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.95),
        percentile(&latencies, 1.0),
        o.crossings,
        percentile(&transform_ms, 0.5),
        percentile(&notify_ms, 0.5),
    );
    Ok(())
}
