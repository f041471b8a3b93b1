//! How every function reports a failure: the error with all its causes, and
//! whether running again, unchanged, may succeed.
//!
//! Error enums hold their causes as `#[source]` errors rather than as text, so
//! nothing is lost on the way up; [`Chain`] is the one place that turns an
//! error and its causes into a line, for logs and for Lambda's error message.

use std::error::Error;
use std::fmt;

/// What a caller should do about a failed run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// An outage (network, database, rate limit): the same run may succeed later.
    Retryable,
    /// Bad input, bad configuration or a bug: retrying unchanged cannot help.
    Permanent,
}

impl Disposition {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Retryable => "Retryable",
            Self::Permanent => "Permanent",
        }
    }
}

/// An error that knows its [`Disposition`]. Every function's error implements it.
pub trait Classify: Error + 'static {
    fn disposition(&self) -> Disposition;

    fn is_retryable(&self) -> bool {
        self.disposition() == Disposition::Retryable
    }
}

/// What Lambda reports for a failed invocation: `<Function>.Retryable` or
/// `<Function>.Permanent` as the error type (an alarm or a retry policy can
/// match on it), the error with its causes as the message.
pub fn diagnostic<E: Classify>(function: &str, err: &E) -> lambda_runtime::Diagnostic {
    lambda_runtime::Diagnostic {
        error_type: format!("{function}.{}", err.disposition().as_str()),
        error_message: Chain(err).to_string(),
    }
}

/// An error and its causes on one line, `outer: cause: root cause`. A cause
/// whose text the line already ends with is not repeated (several libraries,
/// tokio-postgres among them, print their source in their own message too).
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line = self.0.to_string();
        let mut cause = self.0.source();
        while let Some(err) = cause {
            let text = err.to_string();
            if !text.is_empty() && !line.contains(&text) {
                match overlap(&line, &text) {
                    // The line already ends with the start of the cause's text.
                    Some(rest) => line.push_str(rest),
                    None => {
                        line.push_str(": ");
                        line.push_str(&text);
                    }
                }
            }
            cause = err.source();
        }
        f.write_str(&line)
    }
}

/// What is left of `text` when `line` already ends with its beginning, cut
/// where a cause begins (after ": "): `a: b` and `b: c` give `: c`.
fn overlap<'t>(line: &str, text: &'t str) -> Option<&'t str> {
    line.match_indices(": ")
        .map(|(i, sep)| i + sep.len())
        .find(|&start| text.starts_with(&line[start..]))
        .map(|start| &text[line.len() - start..])
}

impl fmt::Debug for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum Inner {
        #[error("connection refused")]
        Refused,
    }

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("cannot reach the database")]
        Reach(#[source] Inner),
        #[error("query failed: {0}")]
        Echoes(#[source] Inner),
        #[error("bad request")]
        Bad,
    }

    impl Classify for Outer {
        fn disposition(&self) -> Disposition {
            match self {
                Self::Reach(_) | Self::Echoes(_) => Disposition::Retryable,
                Self::Bad => Disposition::Permanent,
            }
        }
    }

    #[test]
    fn a_chain_names_every_cause_once() {
        assert_eq!(
            Chain(&Outer::Reach(Inner::Refused)).to_string(),
            "cannot reach the database: connection refused"
        );
        assert_eq!(Chain(&Outer::Echoes(Inner::Refused)).to_string(), "query failed: connection refused");
        assert_eq!(Chain(&Outer::Bad).to_string(), "bad request");
    }

    #[test]
    fn a_cause_that_repeats_the_end_of_the_line_is_not_said_twice() {
        assert_eq!(overlap("pool: error connecting", "error connecting: refused"), Some(": refused"));
        assert_eq!(overlap("pool: other", "error connecting: refused"), None);
    }

    #[test]
    fn lambda_sees_the_function_the_disposition_and_the_causes() {
        let d = diagnostic("Ingest", &Outer::Reach(Inner::Refused));
        assert_eq!(d.error_type, "Ingest.Retryable");
        assert_eq!(d.error_message, "cannot reach the database: connection refused");
        assert_eq!(diagnostic("Transform", &Outer::Bad).error_type, "Transform.Permanent");
    }
}
