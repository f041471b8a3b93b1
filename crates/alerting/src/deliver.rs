//! Sending one message to one channel, and telling a failure worth retrying
//! (a 5xx, a 429 with its `Retry-After`, a timeout, a dropped connection) from
//! one no retry can change (a 404 for a deleted webhook, a refused payload).
//! The retries themselves, and the outbox rows, are the notify step's.

use std::time::Duration;

use aws_sdk_sns::error::{DisplayErrorContext, ProvideErrorMetadata};
use coingecko::retry_after;
use tracing::debug;

use crate::AlertingError;
use crate::channels::{Format, SNS, Webhook};
use crate::message::Notice;

/// Why a message was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// `Some`: worth another try, not before the channel's `Retry-After` if it gave one.
    pub retry: Option<Option<Duration>>,
    /// What went wrong; never the webhook's URL.
    pub message: String,
}

impl Failure {
    fn retryable(message: String, after: Option<Duration>) -> Self {
        Self { retry: Some(after), message }
    }

    fn permanent(message: String) -> Self {
        Self { retry: None, message }
    }
}

/// One channel, ready to send.
#[derive(Debug, Clone)]
pub enum Sender {
    Sns { client: aws_sdk_sns::Client, topic_arn: String },
    Webhook { hook: Webhook, http: reqwest::Client },
}

impl Sender {
    /// The outbox channel name.
    pub fn channel(&self) -> String {
        match self {
            Self::Sns { .. } => SNS.to_owned(),
            Self::Webhook { hook, .. } => hook.channel(),
        }
    }

    /// Where it sends, for logs: the topic ARN, or the webhook's redacted URL.
    pub fn target(&self) -> String {
        match self {
            Self::Sns { topic_arn, .. } => topic_arn.clone(),
            Self::Webhook { hook, .. } => hook.redacted(),
        }
    }

    /// The SNS topic: an ARN as given, or a name looked up among the account's topics.
    pub async fn sns(client: aws_sdk_sns::Client, topic: &str) -> Result<Self, AlertingError> {
        if topic.starts_with("arn:") {
            return Ok(Self::Sns { client, topic_arn: topic.to_owned() });
        }
        let suffix = format!(":{topic}");
        let mut pages = client.list_topics().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AlertingError::Sns {
                action: "list the topics",
                message: DisplayErrorContext(&e).to_string(),
            })?;
            if let Some(arn) =
                page.topics().iter().filter_map(|t| t.topic_arn()).find(|arn| arn.ends_with(&suffix))
            {
                return Ok(Self::Sns { client, topic_arn: arn.to_owned() });
            }
        }
        Err(AlertingError::NoTopic(topic.to_owned()))
    }

    /// A webhook, its requests bounded by `timeout`.
    pub fn webhook(hook: Webhook, timeout: Duration) -> Result<Self, AlertingError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("crypto-pipeline-notify/", env!("CARGO_PKG_VERSION")))
            // A redirect would send the secret URL's message elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| AlertingError::Http(e.without_url().to_string()))?;
        Ok(Self::Webhook { hook, http })
    }

    /// Sends `notice`; `Ok` only once the channel accepted it.
    pub async fn deliver(&self, notice: &Notice) -> Result<(), Failure> {
        match self {
            Self::Sns { client, topic_arn } => sns_publish(client, topic_arn, notice).await,
            Self::Webhook { hook, http } => post(http, hook, notice).await,
        }
    }
}

async fn sns_publish(client: &aws_sdk_sns::Client, topic_arn: &str, notice: &Notice) -> Result<(), Failure> {
    let attribute = |value: &str| {
        aws_sdk_sns::types::MessageAttributeValue::builder().data_type("String").string_value(value).build()
    };
    let (coin, rule) = match (attribute(&notice.coin_id), attribute(&notice.rule)) {
        (Ok(coin), Ok(rule)) => (coin, rule),
        (Err(e), _) | (_, Err(e)) => return Err(Failure::permanent(format!("SNS message attribute: {e}"))),
    };
    let result = client
        .publish()
        .topic_arn(topic_arn)
        .subject(notice.subject())
        .message(notice.json().to_string())
        // Subscribers can filter on these (an SNS filter policy per coin or rule).
        .message_attributes("coin", coin)
        .message_attributes("rule", rule)
        .send()
        .await;
    match result {
        Ok(out) => {
            debug!(message_id = out.message_id().unwrap_or("?"), "SNS accepted the alert");
            Ok(())
        }
        Err(e) => {
            let message = format!("SNS Publish: {}", DisplayErrorContext(&e));
            // The SDK retried throttling and 5xx already; a service error left
            // after that is retried by the outbox only if it is of that kind.
            let retryable = match e.code() {
                Some(code) => {
                    code.contains("Throttl") || code.contains("InternalError") || code.contains("Unavailable")
                }
                None => true, // timeout, connection: no answer at all
            };
            Err(if retryable { Failure::retryable(message, None) } else { Failure::permanent(message) })
        }
    }
}

async fn post(http: &reqwest::Client, hook: &Webhook, notice: &Notice) -> Result<(), Failure> {
    let body = match hook.format {
        Format::Slack => notice.slack(),
        Format::Discord => notice.discord(),
        Format::Json => notice.json(),
    };
    let response = match http.post(hook.url()).json(&body).send().await {
        Ok(r) => r,
        // The URL is the secret: never in the message.
        Err(e) => return Err(Failure::retryable(format!("no answer: {}", e.without_url()), None)),
    };
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let after = retry_after(response.headers());
    let text: String = response.text().await.unwrap_or_default().chars().take(200).collect();
    let message = format!("HTTP {}: {}", status.as_u16(), text.trim());
    if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
        Err(Failure::retryable(message, after))
    } else {
        Err(Failure::permanent(message))
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

    use super::*;

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"));
        assert_eq!(retry_after(&h), Some(Duration::ZERO), "a date in the past: at once");
        // An HTTP date (IMF-fixdate), as servers send it.
        let later =
            (Utc::now() + chrono::Duration::seconds(90)).format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        h.insert(RETRY_AFTER, HeaderValue::from_str(&later).unwrap());
        let d = retry_after(&h).unwrap();
        assert!(d > Duration::from_secs(80) && d <= Duration::from_secs(90), "{d:?}");
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }
}
