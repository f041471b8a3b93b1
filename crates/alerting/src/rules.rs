//! Alert rules: which moves alert, for which coins, and how often a coin and
//! rule may notify. One small TOML file (`alerts.toml`, its path in
//! `ALERT_RULES_FILE`); without one, a single rule named `default` from
//! `ALERT_THRESHOLD_PCT` and `ALERT_WINDOW_HOURS`, which are also the
//! defaults of a rule that leaves its threshold or window out.
//!
//! ```toml
//! [[rule]]
//! name = "default"            # unique: [a-z0-9_-], part of each alert's key
//! coins = "all"               # or ["bitcoin", "solana"]
//! window_hours = 1            # 1 to 24; default ALERT_WINDOW_HOURS
//! threshold_pct = 5           # a move strictly beyond ±5 %; default ALERT_THRESHOLD_PCT
//! cooldown_minutes = 60       # later alerts of the coin and rule within it are not sent
//! ```
//!
//! A bad file is an error naming its line, so the transform stops at start
//! instead of alerting on something nobody meant.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use domain::CoinId;
use serde::Deserialize;
use serde::de::Error as _;

/// A rule's cool-down when the file leaves it out.
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(3600);

/// The name of the rule made from the environment alone.
pub const DEFAULT_RULE: &str = "default";

/// One rule, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    /// `None`: every coin the pipeline tracks.
    pub coins: Option<Vec<CoinId>>,
    /// A fraction: 0.05 alerts on moves strictly beyond ±5 %.
    pub threshold: f64,
    /// Whole hours, 1 to 24.
    pub window: Duration,
    pub cooldown: Duration,
}

impl Rule {
    /// Whether the rule watches `coin`.
    pub fn applies_to(&self, coin: &str) -> bool {
        self.coins.as_ref().is_none_or(|coins| coins.iter().any(|c| c.as_str() == coin))
    }
}

/// A rule's threshold and window when it leaves them out: `ALERT_THRESHOLD_PCT`, `ALERT_WINDOW_HOURS`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RuleDefaults {
    pub threshold: f64,
    pub window: Duration,
}

/// The rules, in file order; at least one, names unique.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules(Vec<Rule>);

/// Why a rules file was refused: the file, the line (1-based) when the error
/// has a place, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct RulesError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for RulesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "alert rules {}, line {line}: {}", self.path.display(), self.message),
            None => write!(f, "alert rules {}: {}", self.path.display(), self.message),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: toml::Spanned<String>,
    #[serde(default)]
    coins: Option<Coins>,
    #[serde(default, deserialize_with = "window_hours")]
    window_hours: Option<Duration>,
    #[serde(default, deserialize_with = "threshold_pct")]
    threshold_pct: Option<f64>,
    #[serde(default, deserialize_with = "cooldown_minutes")]
    cooldown_minutes: Option<Duration>,
}

/// `"all"` or a list of coin ids.
#[derive(Debug)]
enum Coins {
    All,
    Some(Vec<CoinId>),
}

impl<'de> Deserialize<'de> for Coins {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Word(String),
            List(Vec<String>),
        }
        match Raw::deserialize(deserializer)
            .map_err(|_| D::Error::custom("coins: \"all\" or a list of coin ids, e.g. [\"bitcoin\"]"))?
        {
            Raw::Word(w) if w == "all" => Ok(Self::All),
            Raw::Word(w) => Err(D::Error::custom(format!("coins: \"all\" or a list of coin ids, not {w:?}"))),
            Raw::List(ids) if ids.is_empty() => Err(D::Error::custom("coins: an empty list watches nothing")),
            Raw::List(ids) => ids
                .iter()
                .map(|id| CoinId::parse(id).map_err(|e| D::Error::custom(format!("coins: {e}"))))
                .collect::<Result<_, _>>()
                .map(Self::Some),
        }
    }
}

fn window_hours<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
    let hours = i64::deserialize(deserializer)?;
    if !(1..=24).contains(&hours) {
        return Err(D::Error::custom(format!("window_hours: whole hours from 1 to 24, not {hours}")));
    }
    Ok(Some(Duration::from_secs(hours.unsigned_abs() * 3600)))
}

fn threshold_pct<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Number {
        Int(i64),
        Float(f64),
    }
    let pct = match Number::deserialize(deserializer)
        .map_err(|_| D::Error::custom("threshold_pct: a number of percent, e.g. 5 or 2.5"))?
    {
        Number::Int(i) => i as f64,
        Number::Float(f) => f,
    };
    if !(pct.is_finite() && pct > 0.0 && pct < 1000.0) {
        return Err(D::Error::custom(format!("threshold_pct: a percentage above 0 (5 = ±5 %), not {pct}")));
    }
    Ok(Some(pct / 100.0))
}

fn cooldown_minutes<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
    let minutes = i64::deserialize(deserializer)?;
    // At most a week: beyond it a rule would in effect never notify twice.
    if !(0..=7 * 24 * 60).contains(&minutes) {
        return Err(D::Error::custom(format!("cooldown_minutes: 0 (none) to 10080 (a week), not {minutes}")));
    }
    Ok(Some(Duration::from_secs(minutes.unsigned_abs() * 60)))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

impl Rules {
    /// The one rule made from the environment: every coin, `defaults`, the default cool-down.
    pub fn from_defaults(defaults: RuleDefaults) -> Self {
        Self(vec![Rule {
            name: DEFAULT_RULE.to_owned(),
            coins: None,
            threshold: defaults.threshold,
            window: defaults.window,
            cooldown: DEFAULT_COOLDOWN,
        }])
    }

    /// Reads and checks the file at `path`.
    pub fn load(path: &Path, defaults: RuleDefaults) -> Result<Self, RulesError> {
        let text = std::fs::read_to_string(path).map_err(|e| RulesError {
            path: path.to_owned(),
            line: None,
            message: format!("cannot read it: {e}"),
        })?;
        Self::parse(&text, path, defaults)
    }

    /// Checks `text`, the contents of `path` (named in errors).
    pub fn parse(text: &str, path: &Path, defaults: RuleDefaults) -> Result<Self, RulesError> {
        let error = |offset: Option<usize>, message: String| RulesError {
            path: path.to_owned(),
            line: offset.map(|o| line_of(text, o)),
            message,
        };
        let file: File = toml::from_str(text)
            .map_err(|e| error(e.span().map(|s| s.start), e.message().trim_end().to_owned()))?;
        if file.rule.is_empty() {
            return Err(error(None, String::from("no [[rule]]: an alert needs at least one rule")));
        }
        let mut rules: Vec<Rule> = Vec::with_capacity(file.rule.len());
        for raw in file.rule {
            let name_at = raw.name.span().start;
            let name = raw.name.into_inner();
            if !valid_name(&name) {
                return Err(error(
                    Some(name_at),
                    format!("name {name:?}: 1 to 64 of a-z, 0-9, - and _ (it is part of each alert's key)"),
                ));
            }
            if rules.iter().any(|r| r.name == name) {
                return Err(error(Some(name_at), format!("a second rule named {name:?}")));
            }
            rules.push(Rule {
                coins: match raw.coins {
                    None | Some(Coins::All) => None,
                    Some(Coins::Some(list)) => Some(list),
                },
                threshold: raw.threshold_pct.unwrap_or(defaults.threshold),
                window: raw.window_hours.unwrap_or(defaults.window),
                cooldown: raw.cooldown_minutes.unwrap_or(DEFAULT_COOLDOWN),
                name,
            });
        }
        Ok(Self(rules))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Rule> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: RuleDefaults = RuleDefaults { threshold: 0.05, window: Duration::from_secs(3600) };

    fn parse(text: &str) -> Result<Rules, RulesError> {
        Rules::parse(text, Path::new("alerts.toml"), DEFAULTS)
    }

    #[test]
    fn the_shipped_file_is_the_environment_default_rule() {
        let shipped = parse(include_str!("../../../alerts.toml")).unwrap();
        assert_eq!(shipped, Rules::from_defaults(DEFAULTS));
    }

    #[test]
    fn one_line_of_inline_tables_is_the_same_as_the_file() {
        let line = r#"rule = [{name = "default", coins = "all", cooldown_minutes = 60}]"#;
        assert_eq!(parse(line).unwrap(), parse(include_str!("../../../alerts.toml")).unwrap());
    }

    #[test]
    fn several_rules_can_watch_one_coin() {
        let rules = parse(
            r#"
[[rule]]
name = "move-1h"
cooldown_minutes = 30

[[rule]]
name = "swing-24h"
coins = ["bitcoin", "solana"]
window_hours = 24
threshold_pct = 10
"#,
        )
        .unwrap();
        let [one, day] = [&rules.0[0], &rules.0[1]];
        assert_eq!(
            (one.threshold, one.window, one.cooldown),
            (0.05, DEFAULTS.window, Duration::from_secs(1800))
        );
        assert_eq!(
            (day.threshold, day.window, day.cooldown),
            (0.1, Duration::from_secs(86_400), DEFAULT_COOLDOWN)
        );
        assert!(one.applies_to("bitcoin") && day.applies_to("bitcoin"));
        assert!(one.applies_to("ripple") && !day.applies_to("ripple"));
    }

    /// Every error names the line of what is wrong.
    #[test]
    fn errors_name_the_line() {
        let cases = [
            // TOML syntax: a missing closing quote on line 3.
            ("[[rule]]\nname = \"a\"\ncoins = [\"bitcoin]\n", 3, "expected"),
            ("[[rule]]\nname = \"a\"\n\nwindow_hours = 48\n", 4, "window_hours"),
            ("[[rule]]\nname = \"a\"\nthreshold_pct = -5\n", 3, "threshold_pct"),
            ("[[rule]]\nname = \"a\"\ncooldown_minutes = 99999\n", 3, "cooldown_minutes"),
            ("[[rule]]\nname = \"a\"\ncoins = [\"Bit Coin\"]\n", 3, "coins"),
            ("[[rule]]\nname = \"a\"\ncoins = \"some\"\n", 3, "coins"),
            ("[[rule]]\nname = \"a\"\ntreshold_pct = 5\n", 3, "treshold_pct"),
            ("[[rule]]\nname = \"Big Moves\"\n", 2, "name"),
            ("[[rule]]\nname = \"a\"\n\n[[rule]]\nname = \"a\"\n", 5, "second rule"),
        ];
        for (text, line, mentions) in cases {
            let err = parse(text).unwrap_err();
            assert_eq!(err.line, Some(line), "{text:?}: {err}");
            assert!(err.to_string().contains(&format!("line {line}:")), "{err}");
            assert!(err.message.contains(mentions), "{text:?}: {err}");
        }
    }

    #[test]
    fn a_file_without_rules_or_unreadable_is_refused() {
        assert!(parse("# nothing\n").unwrap_err().message.contains("no [[rule]]"));
        let err = Rules::load(Path::new("/nonexistent/alerts.toml"), DEFAULTS).unwrap_err();
        assert!(err.to_string().starts_with("alert rules /nonexistent/alerts.toml: cannot read it"), "{err}");
    }
}
