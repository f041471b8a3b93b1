//! The one tracing set-up shared by every binary of the pipeline.
//!
//! Under Lambda (or with `LOG_FORMAT=json`) logs are JSON lines, which CloudWatch
//! Logs Insights can query; locally they are compact human-readable lines.
//! `RUST_LOG` filters as usual (default `info`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

/// Output format of the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Text,
}

impl Format {
    /// `LOG_FORMAT` (`json` or `text`) wins; otherwise JSON under Lambda, text elsewhere.
    pub fn from_env() -> Self {
        match std::env::var("LOG_FORMAT").ok().as_deref() {
            Some("json") => Self::Json,
            Some("text") => Self::Text,
            _ if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() => Self::Json,
            _ => Self::Text,
        }
    }
}

/// Installs the global subscriber. `component` names the binary in every line,
/// so interleaved logs of several components stay attributable.
///
/// Calling it twice is harmless (the second call keeps the first subscriber),
/// which lets tests call it freely.
pub fn init(component: &'static str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,aws_config=warn,aws_smithy_runtime=warn,hyper=warn,refinery_core=warn")
    });
    // Logs go to stderr, so a command's own output on stdout stays parseable;
    // colours only on a terminal, never in log files.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(FmtSpan::NONE)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let result = match Format::from_env() {
        Format::Json => {
            builder.json().flatten_event(true).with_current_span(true).with_span_list(false).try_init()
        }
        Format::Text => builder.compact().with_target(false).try_init(),
    };
    if result.is_ok() {
        tracing::debug!(component, "telemetry initialised");
    }
}
