//! The site generator: reads the transformed tables and renders `templates/`
//! into a self-contained static dashboard (pages with their chart data inside,
//! uPlot, styles, and each long history's hours in a file the page fetches on
//! zoom), published to an S3 website bucket or to a local folder.
//!
//! Three steps, each testable alone: [`load`] (one read-only snapshot of
//! Postgres into [`SiteData`]), [`render`] (pure: data to files) and
//! [`publish`] (only changed files, behind the [`SiteStore`] trait). The
//! function runs after each successful transform run and records its own run.

pub mod config;
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
use storage::{PgStore, Run, RunOutcome, S3Config};
use tracing::{info, instrument, warn};
use uuid::Uuid;

pub use config::Config;
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
    sink: Sink,
}

/// Where [`publish`] writes, built once with its client.
#[derive(Debug, Clone)]
enum Sink {
    Dir(DirStore),
    S3(S3SiteStore),
}

impl SiteGen {
    pub async fn from_config(config: &Config) -> Result<Self, SiteError> {
        Self::with_store(config, PgStore::connect(&config.database).await?).await
    }

    /// The generator of `config` on an existing pool (a process that already has one).
    pub async fn with_store(config: &Config, store: PgStore) -> Result<Self, SiteError> {
        let options = LoadOptions {
            coins: config.coins.iter().map(|c| c.as_str().to_owned()).collect(),
            vs_currency: config.vs_currency.as_str().to_owned(),
            stale_batch: config.stale_batch,
            stale_stream: config.stale_stream,
        };
        let s3 = match &config.output {
            Output::S3 { .. } => Some(storage::s3_client(&config.s3).await),
            Output::Dir(_) => None,
        };
        Ok(Self::new(store, options, config.output.clone(), s3).await)
    }

    /// A generator on an existing pool. An S3 output uses `s3`, or without
    /// one a client of the AWS SDK's standard environment alone (no endpoint
    /// of ours: [`S3Config::default`]).
    pub async fn new(
        store: PgStore,
        options: LoadOptions,
        output: Output,
        s3: Option<aws_sdk_s3::Client>,
    ) -> Self {
        let sink = match &output {
            Output::Dir(dir) => Sink::Dir(DirStore::new(dir)),
            Output::S3 { bucket, prefix } => {
                let client = match s3 {
                    Some(client) => client,
                    None => storage::s3_client(&S3Config::default()).await,
                };
                Sink::S3(S3SiteStore::new(client, bucket, prefix))
            }
        };
        Self { store, options, output, sink }
    }

    /// Generates and publishes once, recording the run in `pipeline_runs`.
    #[instrument(skip_all, fields(output = %self.output))]
    pub async fn run(&self) -> Result<SiteReport, SiteError> {
        let run = Run::start(&self.store, "site-gen").await?;
        let result = self.generate(run.id()).await;
        let result = run
            .finish(&self.store, result, |result| match result {
                Ok(report) => RunOutcome::succeeded(
                    report.rows_read,
                    report.published.uploaded as i64,
                    serde_json::to_value(report).unwrap_or_default(),
                ),
                Err(err) => RunOutcome::failed(err, serde_json::json!({ "output": self.output.to_string() })),
            })
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
            Err(e) => warn!(error = %telemetry::failure::Chain(e), "site generation failed"),
        }
        result
    }

    /// Loads and renders without publishing.
    pub async fn build(&self) -> Result<(SiteData, Site), SiteError> {
        let data = self.load().await?;
        let site = render(&data)?;
        Ok((data, site))
    }

    async fn load(&self) -> Result<SiteData, SiteError> {
        let mut client = self.store.client().await?;
        let mut data = load(&mut client, &self.options, Utc::now()).await?;
        // This run itself is still "running": it is not news on its own page.
        data.runs.retain(|r| !(r.function == "site-gen" && r.status == "running"));
        Ok(data)
    }

    async fn generate(&self, run_id: Uuid) -> Result<SiteReport, SiteError> {
        let started = Instant::now();
        let data = self.load().await?;
        let load_ms = started.elapsed().as_millis() as u64;
        let started = Instant::now();
        let site = render(&data)?;
        let render_ms = started.elapsed().as_millis() as u64;
        let started = Instant::now();
        let published = match &self.sink {
            Sink::Dir(store) => publish(&site, store).await?,
            Sink::S3(store) => publish(&site, store).await?,
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
