//! History backfill (`fetch_history` in the original design): CoinGecko
//! `/coins/{id}/market_chart/range` over a date range, in chunks CoinGecko
//! answers with hourly points, resumable, with progress in the logs.
//!
//! Chunks sit on a fixed grid of [`MAX_RANGE_DAYS_HOURLY`]-day windows counted
//! from the Unix epoch, clipped to the requested range. A fixed grid means a
//! re-run with a later end date still finds its earlier chunks done; only the
//! clipped chunk at either end is fetched again.

use std::future::Future;

use chrono::{DateTime, Duration, Utc};
use coingecko::{CoinGeckoError, MAX_RANGE_DAYS_HOURLY};
use domain::{CoinId, HistoryPoint, VsCurrency};
use serde::Serialize;
use storage::{Chunk, HistoryStore, Run, RunLog, RunOutcome};
use tracing::{info, warn};

use crate::IngestError;

/// Where history comes from.
pub trait HistorySource {
    fn fetch_range(
        &self,
        coin: &CoinId,
        vs_currency: &VsCurrency,
        chunk: Chunk,
    ) -> impl Future<Output = Result<Vec<HistoryPoint>, CoinGeckoError>> + Send;
}

impl HistorySource for coingecko::Client {
    async fn fetch_range(
        &self,
        coin: &CoinId,
        vs_currency: &VsCurrency,
        chunk: Chunk,
    ) -> Result<Vec<HistoryPoint>, CoinGeckoError> {
        // The API's `to` is inclusive; drop a point on the end boundary so
        // neighbouring chunks never both claim it.
        let points = self.market_chart_range(coin, vs_currency, chunk.start, chunk.end).await?.value;
        Ok(points.into_iter().filter(|p| p.ts < chunk.end).collect())
    }
}

/// What to backfill.
#[derive(Debug, Clone)]
pub struct BackfillRequest {
    pub coins: Vec<CoinId>,
    pub vs_currency: VsCurrency,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// What a backfill did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BackfillReport {
    pub chunks_planned: usize,
    pub chunks_skipped: usize,
    pub chunks_fetched: usize,
    pub chunks_refused: usize,
    pub points_fetched: usize,
    pub points_stored: u64,
}

/// Splits `[from, to)` into chunks on the fixed grid.
pub fn plan_chunks(from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Chunk> {
    let width = Duration::days(MAX_RANGE_DAYS_HOURLY);
    let width_secs = width.num_seconds();
    let mut chunks = Vec::new();
    let mut start = from;
    while start < to {
        let grid_end_secs = (start.timestamp().div_euclid(width_secs) + 1) * width_secs;
        let grid_end = DateTime::<Utc>::from_timestamp(grid_end_secs, 0).unwrap_or(to);
        let end = grid_end.min(to);
        chunks.push(Chunk { start, end });
        start = end;
    }
    chunks
}

/// Runs a backfill: for each coin, fetches the chunks not stored yet and
/// stores each one atomically with its completion mark, so an interrupted run
/// resumes at the first missing chunk.
///
/// A chunk the plan refuses (older than the Demo plan's 365 days) does not stop
/// the others; the run then ends with [`IngestError::HistoryRefused`] naming the
/// fix. Any other error stops the run; what was stored stays stored.
pub async fn backfill<S, H>(
    source: &S,
    store: &H,
    request: &BackfillRequest,
) -> Result<BackfillReport, IngestError>
where
    S: HistorySource + Sync,
    H: HistoryStore + RunLog + Sync,
{
    if request.from >= request.to {
        return Err(IngestError::BadRequest(format!(
            "empty range: --from {} is not before --to {}",
            request.from, request.to
        )));
    }
    let run = Run::start(store, "backfill").await?;
    let mut report = BackfillReport::default();
    let result = run_chunks(source, store, request, &mut report).await;
    let details = serde_json::to_value(&report).unwrap_or_default();
    let (fetched, stored) = (report.points_fetched as i64, report.points_stored as i64);
    run.finish(store, result, |result| match result {
        Ok(()) => RunOutcome::succeeded(fetched, stored, details),
        // What was stored stays stored: the failed run says how far it got.
        Err(err) => RunOutcome { rows_in: fetched, rows_out: stored, ..RunOutcome::failed(err, details) },
    })
    .await
    .map(|()| report)
}

async fn run_chunks<S, H>(
    source: &S,
    store: &H,
    request: &BackfillRequest,
    report: &mut BackfillReport,
) -> Result<(), IngestError>
where
    S: HistorySource + Sync,
    H: HistoryStore + Sync,
{
    let plan = plan_chunks(request.from, request.to);
    let total = plan.len() * request.coins.len();
    report.chunks_planned = total;
    let mut refused: Option<String> = None;
    let mut done = 0;
    for coin in &request.coins {
        let completed = store.completed_chunks(coin, &request.vs_currency).await?;
        for chunk in &plan {
            done += 1;
            let progress = format!("{done}/{total}");
            if completed.iter().any(|c| c.start <= chunk.start && c.end >= chunk.end) {
                report.chunks_skipped += 1;
                info!(%coin, progress, from = %chunk.start, to = %chunk.end, "chunk already stored, skipped");
                continue;
            }
            let points = match source.fetch_range(coin, &request.vs_currency, *chunk).await {
                Ok(points) => points,
                Err(err @ CoinGeckoError::HistoryRangeNotAllowed { .. }) => {
                    report.chunks_refused += 1;
                    warn!(%coin, progress, from = %chunk.start, to = %chunk.end, "chunk refused by the plan");
                    refused.get_or_insert_with(|| err.to_string());
                    continue;
                }
                Err(err) => return Err(err.into()),
            };
            let stored = store.store_chunk(coin, &request.vs_currency, *chunk, &points).await?;
            report.chunks_fetched += 1;
            report.points_fetched += points.len();
            report.points_stored += stored;
            info!(%coin, progress, from = %chunk.start, to = %chunk.end, points = points.len(), rows = stored, "chunk stored");
        }
    }
    info!(
        fetched = report.chunks_fetched,
        skipped = report.chunks_skipped,
        refused = report.chunks_refused,
        rows = report.points_stored,
        "backfill finished"
    );
    match refused {
        Some(message) => Err(IngestError::HistoryRefused { refused: report.chunks_refused, message }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn chunks_cover_the_range_without_gaps_and_stay_within_90_days() {
        let (from, to) = (at("2023-01-15T00:00:00Z"), at("2024-06-16T12:00:00Z"));
        let chunks = plan_chunks(from, to);
        assert_eq!(chunks.first().unwrap().start, from);
        assert_eq!(chunks.last().unwrap().end, to);
        for pair in chunks.windows(2) {
            assert_eq!(pair[0].end, pair[1].start);
        }
        assert!(chunks.iter().all(|c| c.end - c.start <= Duration::days(90) && c.start < c.end));
    }

    #[test]
    fn the_grid_is_fixed_so_a_later_end_reuses_earlier_chunks() {
        let from = at("2024-01-01T00:00:00Z");
        let short = plan_chunks(from, at("2024-06-01T00:00:00Z"));
        let long = plan_chunks(from, at("2024-09-01T00:00:00Z"));
        // Every chunk of the short plan but its clipped last one is in the long plan.
        for chunk in &short[..short.len() - 1] {
            assert!(long.contains(chunk), "{chunk:?}");
        }
    }

    #[test]
    fn an_empty_range_plans_nothing() {
        let t = at("2024-01-01T00:00:00Z");
        assert!(plan_chunks(t, t).is_empty());
    }
}
