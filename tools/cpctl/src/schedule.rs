//! The local scheduler of `just deploy-local`: on every tick of the ingest
//! schedule (schedule.env's `INGEST_SCHEDULE`, the expression AWS EventBridge
//! gets too) it runs ingest, then transform, then notify, then site-gen, each
//! only after the previous one succeeded: the chain the Lambda destinations
//! make on AWS.
//!
//! Each step is this binary again (`cpctl ingest`, …) in a process of its own,
//! as each function is its own Lambda: a crash or a leak stays in its step, and
//! each step logs to its own file. A failed step is logged (and recorded in
//! `pipeline_runs` by the step itself); the chain stops there and the whole
//! cycle runs again on the next tick: nothing is skipped silently.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::Command;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

/// The chain, in order: (function, cpctl subcommand).
/// Notify before site-gen: people hear of an alert before the dashboard's
/// rebuild, which then shows how each channel took it.
const STEPS: [(&str, &str); 4] =
    [("ingest", "ingest"), ("transform", "transform"), ("notify", "notify"), ("site-gen", "site")];

/// How long a step may finish its work after a stop was asked for.
const GRACE: Duration = Duration::from_secs(20);

/// An EventBridge schedule expression, as schedule.env's `INGEST_SCHEDULE`
/// holds it and AWS gets it: the one parser of its grammar (`scripts/iac.sh`
/// checks the expression with `cpctl schedule --check` before a deploy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expression {
    /// `rate(1 minute)`, `rate(N minutes)`, … hours, days.
    Rate { value: u64, unit: &'static str, every: Duration },
    /// `cron(minutes hours day-of-month month day-of-week year)`: AWS only.
    Cron(String),
}

impl Expression {
    pub fn parse(expression: &str) -> anyhow::Result<Self> {
        let expr = expression.trim();
        if let Some(fields) = expr.strip_prefix("cron(").and_then(|s| s.strip_suffix(')')) {
            let n = fields.split_whitespace().count();
            if n != 6 || fields.trim() != fields {
                bail!(
                    "INGEST_SCHEDULE={expression:?}: an EventBridge cron expression has six fields \
                     (minutes hours day-of-month month day-of-week year), this one {n}"
                );
            }
            return Ok(Self::Cron(expr.to_owned()));
        }
        let Some(inner) = expr.strip_prefix("rate(").and_then(|s| s.strip_suffix(')')) else {
            bail!(
                "INGEST_SCHEDULE={expression:?} is not an EventBridge schedule expression: \
                 rate(N minutes|hours|days) or cron(...)"
            );
        };
        let (value, unit) = inner.trim().split_once(' ').context("expected rate(VALUE UNIT)")?;
        let value: u64 = value.parse().with_context(|| format!("{value:?} is not a whole number"))?;
        let (unit, unit_secs) = match (unit.trim(), value) {
            ("minute", 1) => ("minute", 60),
            ("minutes", 2..) => ("minutes", 60),
            ("hour", 1) => ("hour", 3600),
            ("hours", 2..) => ("hours", 3600),
            ("day", 1) => ("day", 86_400),
            ("days", 2..) => ("days", 86_400),
            (unit, _) => bail!(
                "INGEST_SCHEDULE={expression:?}: unit {unit:?} with value {value}; EventBridge takes \
                 `1 minute`, `N minutes`, `1 hour`, `N hours`, `1 day`, `N days`"
            ),
        };
        Ok(Self::Rate { value, unit, every: Duration::from_secs(value * unit_secs) })
    }

    /// The local scheduler's interval. `cron(...)` schedules are for AWS only:
    /// the local scheduler says so.
    pub fn interval(&self) -> anyhow::Result<Duration> {
        match self {
            Self::Rate { every, .. } => Ok(*every),
            Self::Cron(expr) => bail!(
                "INGEST_SCHEDULE={expr:?}: the local scheduler runs rate(N minutes|hours|days) \
                 expressions; cron(...) works on AWS only"
            ),
        }
    }
}

impl std::fmt::Display for Expression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Rate { value, unit, every } => {
                write!(f, "rate({value} {unit}): every {} s, on AWS and locally", every.as_secs())
            }
            Self::Cron(expr) => {
                write!(f, "{expr}: on AWS only (the local scheduler runs rate(...) expressions)")
            }
        }
    }
}

/// How a cycle ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Succeeded,
    /// The step (function) that failed; the rest of the chain did not run.
    Failed(&'static str),
    /// A stop was asked for mid-cycle.
    Stopped,
}

/// Writes the outcome of a finished cycle to `path`: one line, `succeeded` or
/// `failed FUNCTION`. Replaced whole (write, then rename), so a reader never
/// sees half a line. `just deploy-local` waits for it to tell the first
/// cycle's outcome; the log's wording is for people.
fn write_status(path: &Path, outcome: Outcome) -> anyhow::Result<()> {
    let line = match outcome {
        Outcome::Succeeded => String::from("succeeded\n"),
        Outcome::Failed(function) => format!("failed {function}\n"),
        Outcome::Stopped => return Ok(()),
    };
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, line).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// Runs the chain on every tick until `shutdown`; with `once`, one cycle whose
/// failure is the command's. Each cycle's outcome goes to `status_file`, if any.
pub async fn run(
    interval: Duration,
    once: bool,
    status_file: Option<&Path>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find the cpctl binary")?;
    info!(interval_secs = interval.as_secs(), "scheduler started; first cycle now");
    let mut cycle = 0u64;
    loop {
        cycle += 1;
        let started = Instant::now();
        let outcome = run_cycle(&exe, cycle, &shutdown).await;
        if let Some(path) = status_file
            && let Err(e) = write_status(path, outcome)
        {
            // The schedule matters more than its report: it goes on.
            warn!(error = %format!("{e:#}"), "cannot write the status file");
        }
        if once {
            return match outcome {
                Outcome::Succeeded => Ok(()),
                _ => bail!("cycle {cycle} failed (see the step's log)"),
            };
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

async fn run_cycle(exe: &Path, cycle: u64, shutdown: &CancellationToken) -> Outcome {
    let started = Instant::now();
    for (function, subcommand) in STEPS {
        if shutdown.is_cancelled() {
            return Outcome::Stopped;
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
                return Outcome::Failed(function);
            }
        }
    }
    info!(cycle, secs = started.elapsed().as_secs_f64(), "cycle done: ingest, transform, notify, site-gen");
    Outcome::Succeeded
}

async fn run_step(exe: &Path, subcommand: &str, shutdown: &CancellationToken) -> anyhow::Result<()> {
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

    fn every(expression: &str) -> Duration {
        Expression::parse(expression).unwrap().interval().unwrap()
    }

    #[test]
    fn eventbridge_rate_expressions() {
        assert_eq!(every("rate(10 minutes)"), Duration::from_secs(600));
        assert_eq!(every(" rate(1 minute) "), Duration::from_secs(60));
        assert_eq!(every("rate(2 hours)"), Duration::from_secs(7200));
        assert_eq!(every("rate(1 day)"), Duration::from_secs(86_400));
        // EventBridge's own rules: singular for 1, plural otherwise.
        for bad in ["rate(1 minutes)", "rate(5 minute)", "rate(0 minutes)", "rate(ten minutes)", "rate(5)"] {
            assert!(Expression::parse(bad).is_err(), "{bad}");
        }
        // Quotes are the env file's; its reader removes them.
        assert!(Expression::parse("\"rate(1 minute)\"").is_err());
    }

    #[test]
    fn cron_expressions_are_for_aws_only() {
        let cron = Expression::parse("cron(0/10 * * * ? *)").unwrap();
        assert_eq!(cron, Expression::Cron(String::from("cron(0/10 * * * ? *)")));
        let err = cron.interval().unwrap_err().to_string();
        assert!(err.contains("AWS only"), "{err}");
        assert!(Expression::parse("cron(0/10 * * * ?)").is_err(), "five fields");
        assert!(Expression::parse("every 10 minutes").is_err());
    }

    #[test]
    fn the_status_file_holds_the_last_outcome() {
        let dir = std::env::temp_dir().join(format!("cpctl-schedule-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("scheduler.status");
        write_status(&path, Outcome::Failed("ingest")).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "failed ingest\n");
        write_status(&path, Outcome::Stopped).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "failed ingest\n", "a stop is no outcome");
        write_status(&path, Outcome::Succeeded).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "succeeded\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
