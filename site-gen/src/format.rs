//! Numbers and instants as the dashboard writes them. Formatting happens here,
//! in tested Rust, rather than in template filters.

use chrono::{DateTime, Utc};

/// `$67,123.45`, `$0.5234`: two decimals from 1 up, four significant digits below.
pub fn price(x: f64, currency: &str) -> String {
    let digits = if x.abs() >= 1.0 {
        grouped(x, 2)
    } else {
        let decimals = (3 - x.abs().log10().floor() as i32).clamp(2, 12) as usize;
        if x == 0.0 { String::from("0.00") } else { format!("{x:.decimals$}") }
    };
    money(&digits, currency)
}

/// `$31.24B`: large amounts in a few characters.
pub fn compact(x: f64, currency: &str) -> String {
    let (value, suffix) = match x.abs() {
        a if a >= 1e12 => (x / 1e12, "T"),
        a if a >= 1e9 => (x / 1e9, "B"),
        a if a >= 1e6 => (x / 1e6, "M"),
        a if a >= 1e3 => (x / 1e3, "K"),
        _ => (x, ""),
    };
    money(&format!("{value:.2}{suffix}"), currency)
}

fn money(digits: &str, currency: &str) -> String {
    match currency {
        "usd" => format!("${digits}"),
        "eur" => format!("€{digits}"),
        "gbp" => format!("£{digits}"),
        other => format!("{digits} {}", other.to_uppercase()),
    }
}

/// `12,345.68`: thousands separated.
// Not num-format: it groups integers only, so an f64 with decimals and a sign would still be split by hand.
fn grouped(x: f64, decimals: usize) -> String {
    let text = format!("{:.decimals$}", x.abs());
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let mut out = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    let sign = if x < 0.0 { "-" } else { "" };
    if frac.is_empty() { format!("{sign}{out}") } else { format!("{sign}{out}.{frac}") }
}

/// A fraction as a signed percentage: `+5.21%`, `-0.40%`.
pub fn percent(fraction: f64) -> String {
    format!("{:+.2}%", fraction * 100.0)
}

/// `up`, `down` or `flat`: a CSS class.
pub fn trend(fraction: f64) -> &'static str {
    if fraction > 0.0 {
        "up"
    } else if fraction < 0.0 {
        "down"
    } else {
        "flat"
    }
}

/// `2026-11-25 10:05 UTC`.
pub fn instant(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// Machine-readable, for `<time datetime>` and the script that updates ages live.
pub fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `5 s ago`, `3 min ago`, `2 h ago`, `4 d ago` (`dashboard.js` words ages the same way).
pub fn ago(secs: i64) -> String {
    match secs.max(0) {
        s if s < 60 => format!("{s} s ago"),
        s if s < 3600 => format!("{} min ago", s / 60),
        s if s < 172_800 => format!("{} h ago", s / 3600),
        s => format!("{} d ago", s / 86_400),
    }
}

/// `850 ms`, `12.3 s`, `4 min 05 s`.
pub fn duration_ms(ms: i64) -> String {
    match ms.max(0) {
        ms if ms < 1000 => format!("{ms} ms"),
        ms if ms < 60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        ms => format!("{} min {:02} s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

/// `1 h`, `24 h`: an alert's window, worded as the alert messages word it.
pub use domain::window_label as window;

/// `1,234`.
pub fn count(n: i64) -> String {
    grouped(n as f64, 0)
}

/// `x` kept to `digits` significant digits, so the embedded chart data stays small.
pub fn significant(x: f64, digits: i32) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let decimals = (digits - 1 - x.abs().log10().floor() as i32).clamp(0, 15) as usize;
    format!("{x:.decimals$}").parse().unwrap_or(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices() {
        assert_eq!(price(67123.456, "usd"), "$67,123.46");
        assert_eq!(price(1234567.0, "usd"), "$1,234,567.00");
        assert_eq!(price(3.5, "usd"), "$3.50");
        assert_eq!(price(0.52341, "usd"), "$0.5234");
        assert_eq!(price(0.000012346, "usd"), "$0.00001235");
        assert_eq!(price(999.999, "eur"), "€1,000.00");
        assert_eq!(price(10.0, "chf"), "10.00 CHF");
    }

    #[test]
    fn amounts_and_percentages() {
        assert_eq!(compact(31_240_000_000.0, "usd"), "$31.24B");
        assert_eq!(compact(512_300_000.0, "usd"), "$512.30M");
        assert_eq!(compact(950.0, "usd"), "$950.00");
        assert_eq!(percent(0.0521), "+5.21%");
        assert_eq!(percent(-0.004), "-0.40%");
        assert_eq!(trend(-0.1), "down");
        assert_eq!(count(1_234_567), "1,234,567");
    }

    #[test]
    fn grouping_keeps_the_sign_and_the_decimals() {
        assert_eq!(grouped(-1_234_567.891, 2), "-1,234,567.89");
        assert_eq!(grouped(123.4, 3), "123.400");
        assert_eq!(grouped(-0.25, 2), "-0.25");
        assert_eq!(grouped(100_000.0, 0), "100,000");
    }

    #[test]
    fn ages_and_durations() {
        assert_eq!(ago(5), "5 s ago");
        assert_eq!(ago(180), "3 min ago");
        assert_eq!(ago(7200), "2 h ago");
        assert_eq!(ago(3 * 86_400), "3 d ago");
        assert_eq!(ago(-3), "0 s ago");
        assert_eq!(duration_ms(850), "850 ms");
        assert_eq!(duration_ms(12_340), "12.3 s");
        assert_eq!(duration_ms(245_000), "4 min 05 s");
        assert_eq!(window(3600), "1 h");
        assert_eq!(window(86_400), "24 h");
    }

    #[test]
    fn significant_digits() {
        assert_eq!(significant(67123.4567891, 7), 67123.46);
        assert_eq!(significant(0.523456789, 7), 0.5234568);
        assert_eq!(significant(0.0, 7), 0.0);
    }
}
