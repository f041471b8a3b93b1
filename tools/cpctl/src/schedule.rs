//! The local scheduler of `just deploy-local`: on every tick of the ingest
//! schedule (schedule.env's `INGEST_SCHEDULE`, the expression AWS EventBridge
//! gets too) it runs ingest, then transform, then site-gen, each only after the
//! previous one succeeded: the chain the Lambda destinations make on AWS.
//!
//! Each step is this binary again (`cpctl ingest`, …) in a process of its own,
//! as each function is its own Lambda: a crash or a leak stays in its step, and
//! each step logs to its own file. A failed step is logged (and recorded in
//! `pipeline_runs` by the step itself); the chain stops there and the whole
//! cycle runs again on the next tick: nothing is skipped silently.

use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::Command;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

/// The chain, in order: (function, cpctl subcommand).
const STEPS: [(&str, &str); 3] = [("ingest", "ingest"), ("transform", "transform"), ("site-gen", "site")];

/// How long a step may finish its work after a stop was asked for.
const GRACE: Duration = Duration::from_secs(20);

/// An EventBridge rate expression, `rate(10 minutes)`, as an interval.
/// `cron(...)` schedules are for AWS only: the local scheduler says so.
pub fn parse_rate(expression: &str) -> anyhow::Result<Duration> {
    let expr = expression.trim().trim_matches('"');
    let Some(inner) = expr.strip_prefix("rate(").and_then(|s| s.strip_suffix(')')) else {
        bail!(
            "INGEST_SCHEDULE={expression:?}: the local scheduler runs rate(N minutes|hours|days) \
             expressions; cron(...) works on AWS only"
        );
    };
    let (value, unit) = inner.trim().split_once(' ').context("expected rate(VALUE UNIT)")?;
    let value: u64 = value.parse().with_context(|| format!("{value:?} is not a whole number"))?;
    let unit_secs = match (unit.trim(), value) {
        ("minute", 1) | ("minutes", 2..) => 60,
        ("hour", 1) | ("hours", 2..) => 3600,
        ("day", 1) | ("days", 2..) => 86_400,
        (unit, _) => bail!(
            "INGEST_SCHEDULE={expression:?}: unit {unit:?} with value {value}; EventBridge takes \
             `1 minute`, `N minutes`, `1 hour`, `N hours`, `1 day`, `N days`"
        ),
    };
    Ok(Duration::from_secs(value * unit_secs))
}

/// Runs the chain on every tick until `shutdown`; with `once`, one cycle whose
/// failure is the command's.
pub async fn run(interval: Duration, once: bool, shutdown: CancellationToken) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find the cpctl binary")?;
    info!(interval_secs = interval.as_secs(), "scheduler started; first cycle now");
    let mut cycle = 0u64;
    loop {
        cycle += 1;
        let started = Instant::now();
        let ok = run_cycle(&exe, cycle, &shutdown).await;
        if once {
            return if ok { Ok(()) } else { bail!("cycle {cycle} failed (see the step's log)") };
        }
        if shutdown.is_cancelled() {
            break;
        }
        // Ticks keep their cadence; a cycle longer than the interval makes the next one start at once.
        let next = started + interval;
        if Instant::now() >= next {
            warn!(cycle, took_secs = started.elapsed().as_secs(), "cycle took longer than the interval");
        } else {
            info!(next_in_secs = (next - Instant::now()).as_secs(), "waiting for the next tick");
        }
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = shutdown.cancelled() => break,
        }
    }
    info!("scheduler stopped");
    Ok(())
}

async fn run_cycle(exe: &std::path::Path, cycle: u64, shutdown: &CancellationToken) -> bool {
    let started = Instant::now();
    for (function, subcommand) in STEPS {
        if shutdown.is_cancelled() {
            return false;
        }
        let step = Instant::now();
        match run_step(exe, subcommand, shutdown).await {
            Ok(()) => info!(cycle, function, secs = step.elapsed().as_secs_f64(), "step succeeded"),
            Err(e) => {
                error!(
                    cycle,
                    function,
                    error = %format!("{e:#}"),
                    "step failed; the rest of the chain waits for the next tick"
                );
                return false;
            }
        }
    }
    info!(cycle, secs = started.elapsed().as_secs_f64(), "cycle done: ingest, transform, site-gen");
    true
}

async fn run_step(
    exe: &std::path::Path,
    subcommand: &str,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let mut child = Command::new(exe)
        .arg(subcommand)
        // Its own process group: a stop signal to the scheduler's group does not
        // cut the step short; the scheduler gives it GRACE to finish instead.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start `cpctl {subcommand}`"))?;
    let status = tokio::select! {
        status = child.wait() => status?,
        _ = shutdown.cancelled() => {
            info!(step = subcommand, grace_secs = GRACE.as_secs(), "stop asked; letting the step finish");
            match tokio::time::timeout(GRACE, child.wait()).await {
                Ok(status) => status?,
                Err(_) => {
                    child.kill().await?;
                    bail!("`cpctl {subcommand}` did not finish within {} s of the stop; killed", GRACE.as_secs());
                }
            }
        }
    };
    if status.success() { Ok(()) } else { bail!("`cpctl {subcommand}` exited with {status}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eventbridge_rate_expressions() {
        assert_eq!(parse_rate("rate(10 minutes)").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_rate("\"rate(1 minute)\"").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_rate("rate(2 hours)").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_rate("rate(1 day)").unwrap(), Duration::from_secs(86_400));
        // EventBridge's own rules: singular for 1, plural otherwise.
        assert!(parse_rate("rate(1 minutes)").is_err());
        assert!(parse_rate("rate(5 minute)").is_err());
        assert!(parse_rate("rate(0 minutes)").is_err());
        let err = parse_rate("cron(0/10 * * * ? *)").unwrap_err().to_string();
        assert!(err.contains("AWS only"), "{err}");
    }
}
