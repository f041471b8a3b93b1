//! The one tracing set-up shared by every binary of the pipeline.
//!
//! Under Lambda (or with `LOG_FORMAT=json`) logs are JSON lines, which CloudWatch
//! Logs Insights can query; locally they are compact human-readable lines.
//! `RUST_LOG` filters as usual (default `info`).
//!
//! With `LOG_DIR` set (the local deployment sets `.state/logs`), each component
//! writes to its own file there, `<component>.log`, rotated at 10 MB with five
//! old files kept (`ingest.log.1` is the newest of those), instead of stderr.

pub mod failure;

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Mutex;

use file_rotate::compression::Compression;
use file_rotate::suffix::AppendCount;
use file_rotate::{ContentLimit, FileRotate};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

/// Output format of the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Text,
}

/// A logging variable that is set but cannot be used: the program stops at
/// start-up rather than log in a form nobody asked for.
#[derive(Debug, thiserror::Error)]
#[error("invalid {variable}={value:?}: {expected}")]
pub struct TelemetryError {
    pub variable: &'static str,
    pub value: String,
    pub expected: String,
}

impl TelemetryError {
    fn new(variable: &'static str, value: &str, expected: impl Into<String>) -> Self {
        Self { variable, value: value.to_owned(), expected: expected.into() }
    }
}

impl Format {
    /// `LOG_FORMAT` (`json` or `text`) wins; unset: JSON under Lambda, text elsewhere.
    pub fn from_env() -> Result<Self, TelemetryError> {
        let value = std::env::var("LOG_FORMAT").ok();
        Self::parse(value.as_deref(), std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some())
    }

    fn parse(value: Option<&str>, under_lambda: bool) -> Result<Self, TelemetryError> {
        match value.map(str::trim) {
            None if under_lambda => Ok(Self::Json),
            None => Ok(Self::Text),
            Some("json") => Ok(Self::Json),
            Some("text") => Ok(Self::Text),
            Some(other) => Err(TelemetryError::new("LOG_FORMAT", other, "expected json or text (or unset)")),
        }
    }
}

/// `RUST_LOG`'s filter; unset: info, with the chattiest dependencies at warn.
fn filter(value: Option<&str>) -> Result<EnvFilter, TelemetryError> {
    match value {
        None => {
            Ok(EnvFilter::new("info,aws_config=warn,aws_smithy_runtime=warn,hyper=warn,refinery_core=warn"))
        }
        Some(v) if v.trim().is_empty() => Err(TelemetryError::new(
            "RUST_LOG",
            v,
            "set but empty: unset it for the default, or give a filter",
        )),
        Some(v) => EnvFilter::try_new(v)
            .map_err(|e| TelemetryError::new("RUST_LOG", v, format!("not a tracing filter ({e})"))),
    }
}

/// Installs the global subscriber. `component` names the binary in every line,
/// so interleaved logs of several components stay attributable.
///
/// Calling it twice is harmless (the second call keeps the first subscriber),
/// which lets tests call it freely.
pub fn init(component: &'static str) -> Result<(), TelemetryError> {
    let format = Format::from_env()?;
    let filter = filter(std::env::var("RUST_LOG").ok().as_deref())?;
    let dir = std::env::var("LOG_DIR").ok();
    match dir.as_deref().map(str::trim) {
        Some("") => {
            return Err(TelemetryError::new(
                "LOG_DIR",
                "",
                "set but empty: unset it to log to stderr, or name a folder",
            ));
        }
        Some(dir) => match log_file(Path::new(dir), component) {
            Ok(file) => install(component, format, filter, Mutex::new(file), false),
            Err(e) => {
                // Said loudly on stderr, where the logs then go: the run itself can go on.
                install(component, format, filter, std::io::stderr, std::io::stderr().is_terminal());
                tracing::error!(dir, error = %e, "cannot write logs to LOG_DIR; logging to stderr");
            }
        },
        // Logs go to stderr, so a command's own output on stdout stays parseable;
        // colours only on a terminal.
        None => install(component, format, filter, std::io::stderr, std::io::stderr().is_terminal()),
    }
    Ok(())
}

/// Rotated at 10 MB, five old files kept: a week of the local pipeline at info level fits.
const ROTATE_BYTES: usize = 10 * 1024 * 1024;
const ROTATED_FILES: usize = 5;

fn log_file(dir: &Path, component: &str) -> std::io::Result<FileRotate<AppendCount>> {
    std::fs::create_dir_all(dir)?;
    Ok(FileRotate::new(
        dir.join(format!("{component}.log")),
        AppendCount::new(ROTATED_FILES),
        ContentLimit::BytesSurpassed(ROTATE_BYTES),
        Compression::None,
        None,
    ))
}

fn install<W>(component: &'static str, format: Format, filter: EnvFilter, writer: W, ansi: bool)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(FmtSpan::NONE)
        .with_writer(writer)
        .with_ansi(ansi);
    let result = match format {
        Format::Json => {
            builder.json().flatten_event(true).with_current_span(true).with_span_list(false).try_init()
        }
        Format::Text => builder.compact().with_target(false).try_init(),
    };
    if result.is_ok() {
        tracing::debug!(component, "telemetry initialised");
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn log_format_is_json_text_or_unset_and_nothing_else() {
        assert_eq!(Format::parse(None, false).unwrap(), Format::Text);
        assert_eq!(Format::parse(None, true).unwrap(), Format::Json);
        assert_eq!(Format::parse(Some(" json "), false).unwrap(), Format::Json);
        assert_eq!(Format::parse(Some("text"), true).unwrap(), Format::Text);
        for bad in ["", "JSON!", "yaml"] {
            let err = Format::parse(Some(bad), false).unwrap_err();
            assert_eq!(err.variable, "LOG_FORMAT", "{bad}");
        }
    }

    #[test]
    fn rust_log_is_a_filter_or_unset() {
        assert!(filter(None).is_ok());
        assert!(filter(Some("debug,hyper=warn")).is_ok());
        for bad in ["", "  ", "info,[{"] {
            assert_eq!(filter(Some(bad)).unwrap_err().variable, "RUST_LOG", "{bad:?}");
        }
    }

    #[test]
    fn log_files_rotate_by_size_and_keep_five() {
        let dir = std::env::temp_dir().join(format!("telemetry-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut file = log_file(&dir, "ingest").unwrap_or_else(|e| panic!("{e}"));
        let line = vec![b'x'; 1024 * 1024];
        for _ in 0..(ROTATE_BYTES / line.len() + 1) * (ROTATED_FILES + 2) {
            file.write_all(&line).unwrap_or_else(|e| panic!("{e}"));
        }
        file.flush().unwrap_or_else(|e| panic!("{e}"));
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{e}"))
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        names.sort();
        let expected: Vec<String> = std::iter::once(String::from("ingest.log"))
            .chain((1..=ROTATED_FILES).map(|i| format!("ingest.log.{i}")))
            .collect();
        assert_eq!(names, expected);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
