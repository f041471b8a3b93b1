//! Where alerts go: an SNS topic (`ALERT_SNS_TOPIC`) and any number of
//! webhooks (`ALERT_WEBHOOKS`). The transform reads the channels' names (one
//! outbox row per alert and channel); the notify step sends.
//!
//! `ALERT_WEBHOOKS` is a secret (a Slack or Discord webhook URL is all one
//! needs to post): on AWS it comes from Secrets Manager
//! (`ALERT_WEBHOOKS_SECRET_ARN`), its URLs are never logged or shown in full
//! ([`Webhook::redacted`]), and `Debug` hides them.

use secrecy::{ExposeSecret, SecretString};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use url::Url;

/// The channels, from the environment.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Channels {
    /// `ALERT_SNS_TOPIC`: the topic's ARN (on AWS), or its name, looked up
    /// among the account's topics (LocalStack; `cpctl setup` creates it).
    #[serde(rename = "alert_sns_topic", default, deserialize_with = "sns_topic")]
    pub sns: Option<String>,
    /// `ALERT_WEBHOOKS`: comma-separated `NAME=FORMAT:URL`, FORMAT `slack`,
    /// `discord` or `json`, e.g. `team=slack:https://hooks.slack.com/services/T/B/X`.
    #[serde(rename = "alert_webhooks", default, deserialize_with = "webhooks")]
    pub webhooks: Vec<Webhook>,
}

/// The body a webhook gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Slack's incoming webhooks: `{"text": …}` in Slack's mrkdwn.
    Slack,
    /// Discord's webhooks: `{"content": …}`, mentions off.
    Discord,
    /// The alert's fields as JSON, for anything else.
    Json,
}

/// One webhook.
#[derive(Clone)]
pub struct Webhook {
    pub name: String,
    pub format: Format,
    url: SecretString,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("name", &self.name)
            .field("format", &self.format)
            .field("url", &self.redacted())
            .finish()
    }
}

impl Webhook {
    /// The URL, for the request alone.
    pub fn url(&self) -> &str {
        self.url.expose_secret()
    }

    /// What may be shown of the URL: its scheme and host (the path holds the secret).
    pub fn redacted(&self) -> String {
        redact(self.url.expose_secret())
    }

    /// The outbox channel name: `webhook:NAME`.
    pub fn channel(&self) -> String {
        format!("webhook:{}", self.name)
    }
}

/// `scheme://host/…` of a URL; nothing of it when it does not parse.
fn redact(url: &str) -> String {
    match Url::parse(url) {
        Ok(u) => format!("{}://{}/…", u.scheme(), u.host_str().unwrap_or("?")),
        Err(_) => String::from("(a URL)"),
    }
}

/// The channel name of the SNS topic.
pub const SNS: &str = "sns";

impl Channels {
    /// The outbox channel names, in a fixed order: `sns`, then `webhook:NAME` in configuration order.
    pub fn names(&self) -> Vec<String> {
        self.sns.iter().map(|_| SNS.to_owned()).chain(self.webhooks.iter().map(Webhook::channel)).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.sns.is_none() && self.webhooks.is_empty()
    }
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn sns_topic<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let raw = String::deserialize(deserializer)?;
    let name = raw.strip_prefix("arn:").map_or(raw.as_str(), |arn| arn.rsplit(':').next().unwrap_or(""));
    let ok_name = (1..=256).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok_name || (raw.starts_with("arn:") && raw.split(':').count() != 6) {
        return Err(D::Error::custom(format!(
            "{raw:?} is neither a topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME) nor a topic name"
        )));
    }
    Ok(Some(raw))
}

/// Parses `ALERT_WEBHOOKS`; errors name the entry, never its URL.
pub fn parse_webhooks(raw: &str) -> Result<Vec<Webhook>, String> {
    let mut hooks: Vec<Webhook> = Vec::new();
    for (i, entry) in raw.split(',').map(str::trim).filter(|e| !e.is_empty()).enumerate() {
        let n = i + 1;
        let (name, rest) = entry
            .split_once('=')
            .ok_or_else(|| format!("entry {n}: expected NAME=FORMAT:URL (e.g. team=slack:https://…)"))?;
        let name = name.trim();
        if !valid_name(name) {
            return Err(format!("entry {n}: name {name:?}: 1 to 64 of a-z, 0-9, - and _"));
        }
        let (format, url) = rest
            .split_once(':')
            .ok_or_else(|| format!("entry {n} ({name}): expected FORMAT:URL after the ="))?;
        let format = match format.trim() {
            "slack" => Format::Slack,
            "discord" => Format::Discord,
            "json" => Format::Json,
            other => return Err(format!("entry {n} ({name}): format {other:?}: slack, discord or json")),
        };
        let parsed =
            Url::parse(url.trim()).map_err(|_| format!("entry {n} ({name}): the URL does not parse"))?;
        // TLS always, except to a receiver on this machine (a test, a local relay).
        let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        match parsed.scheme() {
            "https" => {}
            "http" if loopback => {}
            scheme => {
                return Err(format!(
                    "entry {n} ({name}): scheme {scheme:?}: https (http only to 127.0.0.1 or localhost)"
                ));
            }
        }
        if hooks.iter().any(|h| h.name == name) {
            return Err(format!("entry {n}: a second webhook named {name:?}"));
        }
        hooks.push(Webhook { name: name.to_owned(), format, url: SecretString::from(url.trim().to_owned()) });
    }
    if hooks.is_empty() {
        return Err(String::from("no webhook in it: unset it, or give NAME=FORMAT:URL entries"));
    }
    Ok(hooks)
}

fn webhooks<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Webhook>, D::Error> {
    let raw = SecretString::from(String::deserialize(deserializer)?);
    parse_webhooks(raw.expose_secret()).map_err(D::Error::custom)
}

#[cfg(test)]
mod tests {
    use settings::Env;

    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Channels, settings::ConfigError> {
        Env::from_pairs(vars.iter().copied()).load()
    }

    #[test]
    fn none_by_default() {
        assert!(load(&[]).unwrap().is_empty());
    }

    #[test]
    fn names_in_order_and_urls_hidden() {
        let c = load(&[
            ("ALERT_SNS_TOPIC", "crypto-alerts"),
            (
                "ALERT_WEBHOOKS",
                "team=slack:https://hooks.slack.com/services/T000/B000/SECRETXYZ, ops=json:http://127.0.0.1:9/h",
            ),
        ])
        .unwrap();
        assert_eq!(c.names(), ["sns", "webhook:team", "webhook:ops"]);
        assert_eq!(c.webhooks[0].format, Format::Slack);
        let shown = format!("{c:?}");
        assert!(!shown.contains("SECRETXYZ") && shown.contains("https://hooks.slack.com/…"), "{shown}");
    }

    #[test]
    fn bad_entries_are_errors_that_never_show_the_url() {
        for bad in [
            "team=slack:http://hooks.slack.com/services/SECRETXYZ",
            "team=slak:https://hooks.slack.com/services/SECRETXYZ",
            "Team=slack:https://hooks.slack.com/services/SECRETXYZ",
            "https://hooks.slack.com/services/SECRETXYZ",
            "a=json:https://x.example/SECRETXYZ,a=json:https://x.example/SECRETXYZ",
            " , ",
        ] {
            let err = load(&[("ALERT_WEBHOOKS", bad)]).unwrap_err();
            assert_eq!(err.variable(), "ALERT_WEBHOOKS");
            assert!(!err.to_string().contains("SECRETXYZ"), "{err}");
        }
        assert!(load(&[("ALERT_SNS_TOPIC", "arn:aws:sns:us-east-1:topic")]).is_err());
        assert!(load(&[("ALERT_SNS_TOPIC", "arn:aws:sns:us-east-1:123456789012:alerts")]).is_ok());
    }
}
