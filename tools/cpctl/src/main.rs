//! `cpctl`: the operator's command line. The jobs it runs are the same library
//! code the Lambda functions run; this is only another front door.

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Parser, Subcommand};
use domain::CoinId;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "crypto-pipeline operator commands (configuration from the environment, see .env.example)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply the SQL migrations in migrations/ that are not applied yet.
    Migrate,
    /// Run one ingest of /coins/markets now, in-process.
    Ingest,
    /// Fetch history from /coins/{id}/market_chart/range; resumes where a previous run stopped.
    Backfill {
        /// First day (UTC, YYYY-MM-DD). Default: 364 days ago, within the Demo plan's limit.
        #[arg(long)]
        from: Option<NaiveDate>,
        /// Day after the last one (UTC, YYYY-MM-DD). Default: now.
        #[arg(long)]
        to: Option<NaiveDate>,
        /// Comma-separated coin ids. Default: COINS.
        #[arg(long)]
        coins: Option<String>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init("cpctl");
    let settings = settings::Settings::from_env()?;
    match cli.command {
        Command::Migrate => {
            let store = storage::PgStore::connect(&settings.database_url).await?;
            let applied = storage::migrate(&store).await?;
            println!("migrations: {applied} applied, database {} is up to date", store.target());
        }
        Command::Ingest => {
            let ingest = ingest::Ingest::from_settings(&settings).await?;
            let report = ingest
                .run(ingest::IngestRequest::default())
                .await
                .with_context(|| format!("ingest from {} failed", ingest.source.base_url()))?;
            println!("{}", serde_json::to_string(&report)?);
        }
        Command::Backfill { from, to, coins } => {
            let now = Utc::now();
            let day = |d: NaiveDate| {
                DateTime::<Utc>::from_naive_utc_and_offset(d.and_time(Default::default()), Utc)
            };
            let request = ingest::backfill::BackfillRequest {
                coins: match coins {
                    Some(list) => CoinId::parse_list(&list)?,
                    None => settings.coins.clone(),
                },
                vs_currency: settings.vs_currency.clone(),
                from: from.map(day).unwrap_or(now - chrono::Duration::days(364)),
                to: to.map(day).unwrap_or(now).min(now),
            };
            let source = coingecko::Client::new(&settings.coingecko)?;
            let store = storage::PgStore::connect(&settings.database_url).await?;
            let report = ingest::backfill::backfill(&source, &store, &request).await?;
            println!("{}", serde_json::to_string(&report)?);
        }
    }
    Ok(())
}
