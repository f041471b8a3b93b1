//! The site generator: reads the transformed tables and renders `templates/`
//! into a self-contained static dashboard (pages, uPlot, styles, data inside),
//! published to an S3 website bucket or to a local folder.
//!
//! Three steps, each testable alone: [`load`] (one read-only snapshot of
//! Postgres into [`SiteData`]), [`render`] (pure: data to files) and
//! [`publish`] (only changed files, behind the [`SiteStore`] trait). The
//! function runs after each successful transform run and records its own run.

mod error;
pub mod format;
mod load;
pub mod model;
mod publish;
mod render;

use std::time::Instant;

use chrono::Utc;
use lambda_runtime::LambdaEvent;
use serde::Serialize;
use settings::Settings;
use storage::{PgStore, RunOutcome, RunStatus};
use tracing::{info, instrument, warn};
use uuid::Uuid;

pub use error::SiteError;
pub use load::{LoadOptions, load, rows_read};
pub use model::SiteData;
pub use publish::{DirStore, Output, Published, S3SiteStore, SiteStore, publish};
pub use render::{Site, SiteFile, content_type, render};

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SiteReport {
    pub run_id: Uuid,
    pub output: String,
    pub files: usize,
    pub bytes: usize,
    pub rows_read: i64,
    pub published: Published,
    pub load_ms: u64,
    pub render_ms: u64,
    pub publish_ms: u64,
}

/// The site generator with its pool and output, built once per process.
#[derive(Debug, Clone)]
pub struct SiteGen {
    pub store: PgStore,
    pub options: LoadOptions,
    pub output: Output,
    s3: Option<aws_sdk_s3::Client>,
}

impl SiteGen {
    pub async fn from_settings(settings: &Settings) -> Result<Self, SiteError> {
        let output = Output::parse(&settings.site.output)?;
        let s3 = match output {
            Output::S3 { .. } => Some(storage::s3_client().await),
            Output::Dir(_) => None,
        };
        Ok(Self {
            store: PgStore::connect(&settings.database_url).await?,
            options: LoadOptions {
                coins: settings.coins.iter().map(|c| c.as_str().to_owned()).collect(),
                vs_currency: settings.vs_currency.as_str().to_owned(),
                stale_batch: settings.site.stale_batch,
                stale_stream: settings.site.stale_stream,
            },
            output,
            s3,
        })
    }

    /// A generator on an existing pool (tests, the bench). `s3` is needed for an S3 output.
    pub fn new(store: PgStore, options: LoadOptions, output: Output, s3: Option<aws_sdk_s3::Client>) -> Self {
        Self { store, options, output, s3 }
    }

    /// Generates and publishes once, recording the run in `pipeline_runs`.
    #[instrument(skip_all, fields(output = %self.output))]
    pub async fn run(&self) -> Result<SiteReport, SiteError> {
        let result = storage::record_run(
            &self.store,
            "site-gen",
            serde_json::json!({ "output": self.output.to_string() }),
            |run_id| self.generate(run_id),
            |report: &SiteReport| RunOutcome {
                status: RunStatus::Succeeded,
                rows_in: report.rows_read,
                rows_out: report.published.uploaded as i64,
                error: None,
                details: serde_json::to_value(report).unwrap_or_default(),
            },
        )
        .await;
        match &result {
            Ok(r) => info!(
                files = r.files,
                bytes = r.bytes,
                uploaded = r.published.uploaded,
                load_ms = r.load_ms,
                render_ms = r.render_ms,
                publish_ms = r.publish_ms,
                "site generated"
            ),
            Err(e) => warn!(error = %e, "site generation failed"),
        }
        result
    }

    /// Loads and renders without publishing.
    pub async fn build(&self) -> Result<(SiteData, Site), SiteError> {
        let mut client = self.store.client().await?;
        let mut data = load(&mut client, &self.options, Utc::now()).await?;
        // This run itself is still "running": it is not news on its own page.
        data.runs.retain(|r| !(r.function == "site-gen" && r.status == "running"));
        let site = render(&data)?;
        Ok((data, site))
    }

    async fn generate(&self, run_id: Uuid) -> Result<SiteReport, SiteError> {
        let started = Instant::now();
        let mut client = self.store.client().await?;
        let mut data = load(&mut client, &self.options, Utc::now()).await?;
        drop(client);
        data.runs.retain(|r| !(r.function == "site-gen" && r.status == "running"));
        let load_ms = started.elapsed().as_millis() as u64;
        let started = Instant::now();
        let site = render(&data)?;
        let render_ms = started.elapsed().as_millis() as u64;
        let started = Instant::now();
        let published = match (&self.output, &self.s3) {
            (Output::S3 { bucket, prefix }, Some(client)) => {
                publish(&site, &S3SiteStore::new(client.clone(), bucket, prefix)).await?
            }
            (Output::S3 { bucket, prefix }, None) => {
                publish(&site, &S3SiteStore::new(storage::s3_client().await, bucket, prefix)).await?
            }
            (Output::Dir(dir), _) => publish(&site, &DirStore::new(dir)).await?,
        };
        Ok(SiteReport {
            run_id,
            output: self.output.to_string(),
            files: site.files.len(),
            bytes: site.bytes(),
            rows_read: rows_read(&data),
            published,
            load_ms,
            render_ms,
            publish_ms: started.elapsed().as_millis() as u64,
        })
    }
}

/// The Lambda handler: any payload (a schedule, the transform's success
/// destination, `{}`) means "regenerate now".
pub async fn handle(site: &SiteGen, _event: LambdaEvent<serde_json::Value>) -> Result<SiteReport, SiteError> {
    site.run().await
}
