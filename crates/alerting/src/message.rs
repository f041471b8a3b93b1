//! What a person reads: one alert as text, and as each channel's body. Every
//! body is built with serde_json (names JSON-encoded, whatever they hold), and
//! the chat formats escape what their markup would read: Slack's `&`, `<`, `>`
//! (so a coin named `<!channel>` pings nobody), Discord's markdown, with its
//! mentions turned off.

use chrono::{DateTime, Utc};
use domain::window_label as window;
use serde_json::{Value, json};
use url::Url;

/// One alert, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub coin_id: String,
    /// From the latest batch snapshot; `None` before the first one.
    pub coin_name: Option<String>,
    pub symbol: Option<String>,
    pub rule: String,
    pub window_secs: i32,
    /// Percent: 5.3 = +5.3 %.
    pub change_pct: f64,
    pub price_before: f64,
    pub price_after: f64,
    /// `usd`, …
    pub currency: String,
    /// The later instant of the move (the hour of the hourly close, or the snapshot's).
    pub at: DateTime<Utc>,
    /// Alerts of the same coin and rule recorded but not sent since the previous message.
    pub suppressed: i64,
    /// The coin's dashboard page.
    pub link: Option<Url>,
}

/// A price with 2 decimals from 1 up, else 6 significant digits.
pub fn price(p: f64) -> String {
    if !p.is_finite() || p.abs() >= 1.0 || p == 0.0 {
        format!("{p:.2}")
    } else {
        let decimals = (5 - p.abs().log10().floor() as i32).clamp(2, 12) as usize;
        format!("{p:.decimals$}")
    }
}

impl Notice {
    /// The coin as people know it: `Bitcoin (BTC)`, or its id before a name is known.
    pub fn coin(&self) -> String {
        match (&self.coin_name, &self.symbol) {
            (Some(name), Some(symbol)) => format!("{name} ({})", symbol.to_uppercase()),
            (Some(name), None) => name.clone(),
            _ => self.coin_id.clone(),
        }
    }

    fn direction(&self) -> &'static str {
        if self.change_pct >= 0.0 { "up" } else { "down" }
    }

    /// `up +5.31 % in 1 h`
    pub fn headline(&self) -> String {
        format!("{} {:+.2} % in {}", self.direction(), self.change_pct, window(self.window_secs))
    }

    /// The facts after the coin: move, prices, time, rule, suppressed count.
    fn facts(&self) -> String {
        let mut s = format!(
            "{}: {} → {} {}, at {} UTC (rule {}).",
            self.headline(),
            price(self.price_before),
            price(self.price_after),
            self.currency.to_uppercase(),
            self.at.format("%Y-%m-%d %H:%M"),
            self.rule,
        );
        if self.suppressed > 0 {
            s.push_str(&format!(
                " {} suppressed: alerts of this coin and rule within the cool-down since the previous message.",
                self.suppressed
            ));
        }
        s
    }

    /// Plain text, for SNS e-mail and SMS subscribers and the JSON body.
    pub fn text(&self) -> String {
        let mut s = format!("{} {}", self.coin(), self.facts());
        if let Some(link) = &self.link {
            s.push_str(&format!(" {link}"));
        }
        s
    }

    /// SNS's subject: at most 100 printable ASCII characters, no line breaks.
    pub fn subject(&self) -> String {
        let s = format!("Price alert: {} {}", self.coin(), self.headline());
        let ascii: String =
            s.chars().map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' }).collect();
        ascii.chars().take(100).collect()
    }

    /// Slack's incoming webhook body.
    pub fn slack(&self) -> Value {
        let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        let mut text = format!(":rotating_light: *{}* {}", esc(&self.coin()), esc(&self.facts()));
        if let Some(link) = &self.link {
            text.push_str(&format!(" <{}|Dashboard>", esc(link.as_str())));
        }
        json!({ "text": text })
    }

    /// Discord's webhook body; mentions parsed from the text are off.
    pub fn discord(&self) -> Value {
        let esc = |s: &str| {
            s.chars().fold(String::with_capacity(s.len()), |mut out, c| {
                if matches!(
                    c,
                    '\\' | '*' | '_' | '~' | '`' | '|' | '>' | '#' | '[' | ']' | '(' | ')' | '@' | '<'
                ) {
                    out.push('\\');
                }
                out.push(c);
                out
            })
        };
        let mut content = format!("**{}** {}", esc(&self.coin()), esc(&self.facts()));
        if let Some(link) = &self.link {
            content.push_str(&format!(" <{link}>"));
        }
        // Discord refuses content over 2000 characters.
        let content: String = content.chars().take(2000).collect();
        json!({ "content": content, "allowed_mentions": { "parse": [] } })
    }

    /// Every field, for any consumer (SNS's message and the `json` webhooks).
    pub fn json(&self) -> Value {
        json!({
            "type": "price_alert",
            "coin": { "id": self.coin_id, "name": self.coin_name, "symbol": self.symbol },
            "rule": self.rule,
            "window_secs": self.window_secs,
            "window": window(self.window_secs),
            "direction": self.direction(),
            "change_pct": self.change_pct,
            "price_before": self.price_before,
            "price_after": self.price_after,
            "currency": self.currency,
            "at": self.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "suppressed": self.suppressed,
            "dashboard_url": self.link.as_ref().map(Url::as_str),
            "text": self.text(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(name: &str) -> Notice {
        Notice {
            coin_id: "bitcoin".into(),
            coin_name: Some(name.into()),
            symbol: Some("btc".into()),
            rule: "default".into(),
            window_secs: 3600,
            change_pct: -5.312,
            price_before: 100_000.0,
            price_after: 94_688.0,
            currency: "usd".into(),
            at: "2024-03-31T10:00:00Z".parse().unwrap(),
            suppressed: 2,
            link: Some(Url::parse("https://dash.example/coins/bitcoin.html").unwrap()),
        }
    }

    #[test]
    fn the_text_says_coin_window_move_prices_time_link_and_suppressed() {
        assert_eq!(
            notice("Bitcoin").text(),
            "Bitcoin (BTC) down -5.31 % in 1 h: 100000.00 → 94688.00 USD, at 2024-03-31 10:00 UTC (rule \
             default). 2 suppressed: alerts of this coin and rule within the cool-down since the previous \
             message. https://dash.example/coins/bitcoin.html"
        );
        assert_eq!(price(0.000123456), "0.000123456");
        assert_eq!(price(0.5123), "0.512300");
        assert_eq!(window(86_400), "24 h");
    }

    #[test]
    fn hostile_names_are_json_encoded_and_neutralised_per_format() {
        let evil = "<!channel> *Evil* \"coin\" @everyone </script>\n\u{0}";
        let n = notice(evil);
        for body in [n.slack(), n.discord(), n.json()] {
            // Valid JSON that gives the same value back, whatever the name holds.
            let wire = serde_json::to_string(&body).unwrap();
            assert_eq!(serde_json::from_str::<Value>(&wire).unwrap(), body);
            assert!(!wire.contains('\n') && !wire.contains('\u{0}'), "{wire}");
        }
        let slack = n.slack()["text"].as_str().unwrap().to_owned();
        assert!(slack.contains("&lt;!channel&gt;") && !slack.contains("<!channel>"), "{slack}");
        let discord = n.discord();
        assert!(discord["content"].as_str().unwrap().contains("\\@everyone"));
        assert_eq!(discord["allowed_mentions"]["parse"], json!([]));
        assert_eq!(n.json()["coin"]["name"], json!(evil));
        assert!(n.subject().len() <= 100 && n.subject().is_ascii() && !n.subject().contains('\n'));
    }
}
