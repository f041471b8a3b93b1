//! The cool-down, decided per (channel, coin, rule) over the rows waiting to
//! be sent: which to send, which to record as suppressed.
//!
//! After a message about an alert at `t`, the coin and rule's alerts before
//! `t + cooldown` are suppressed. Rows waiting together (a run that found
//! several alerts at once, a channel back after an outage) that fall within
//! one cool-down make one message, about the latest of them: the earlier ones
//! are suppressed and counted in it. So a coin that swings across the
//! threshold three times in an hour yields one message, saying "2 suppressed"
//! when the three arrive together, and the next message says it otherwise.

use chrono::{DateTime, Duration, Utc};
use storage::outbox::Pending;

/// What to do with one row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step<'a> {
    /// Recorded, not sent.
    Suppress(&'a Pending),
    /// Sent, reporting the suppressed rows after `since` (the previous message's alert; `None`: all).
    Send { row: &'a Pending, since: Option<DateTime<Utc>> },
}

/// The steps for one channel, coin and rule: `rows` are its pending rows by
/// instant, `last_sent` the instant of the alert of its last message.
pub fn plan(rows: &[Pending], last_sent: Option<DateTime<Utc>>) -> Vec<Step<'_>> {
    let mut steps = Vec::with_capacity(rows.len());
    let mut anchor = last_sent;
    let mut i = 0;
    while i < rows.len() {
        let first = &rows[i];
        let cooldown = Duration::seconds(i64::from(first.cooldown_secs));
        if anchor.is_some_and(|a| first.key.at < a + cooldown) {
            steps.push(Step::Suppress(first));
            i += 1;
            continue;
        }
        // A new cool-down from `first`: the rows within it make one message, about the last.
        let end = first.key.at + cooldown;
        let mut last = i;
        while last + 1 < rows.len() && rows[last + 1].key.at < end {
            last += 1;
        }
        steps.extend(rows[i..last].iter().map(Step::Suppress));
        steps.push(Step::Send { row: &rows[last], since: anchor });
        anchor = Some(rows[last].key.at);
        i = last + 1;
    }
    steps
}

#[cfg(test)]
mod tests {
    use storage::outbox::AlertKey;

    use super::*;

    fn at(minute: i64) -> DateTime<Utc> {
        "2024-03-31T10:00:00Z".parse::<DateTime<Utc>>().unwrap() + Duration::minutes(minute)
    }

    fn row(minute: i64, cooldown_mins: i32) -> Pending {
        Pending {
            key: AlertKey {
                coin_id: "bitcoin".into(),
                at: at(minute),
                window_secs: 86_400,
                rule: "default".into(),
            },
            channel: "sns".into(),
            change_pct: 5.5,
            direction: "up".into(),
            price_before: 100.0,
            price_after: 105.5,
            cooldown_secs: cooldown_mins * 60,
            attempts: 0,
        }
    }

    /// (minute, sent?) of each step.
    fn outline(steps: &[Step<'_>]) -> Vec<(i64, bool)> {
        steps
            .iter()
            .map(|s| match s {
                Step::Suppress(r) => ((r.key.at - at(0)).num_minutes(), false),
                Step::Send { row, .. } => ((row.key.at - at(0)).num_minutes(), true),
            })
            .collect()
    }

    #[test]
    fn three_crossings_in_an_hour_arriving_together_make_one_message() {
        let rows = [row(0, 60), row(20, 60), row(40, 60)];
        let steps = plan(&rows, None);
        assert_eq!(outline(&steps), [(0, false), (20, false), (40, true)]);
        assert_eq!(steps[2], Step::Send { row: &rows[2], since: None });
    }

    #[test]
    fn crossings_after_a_message_are_suppressed_until_the_cool_down_ends() {
        let rows = [row(20, 60), row(40, 60), row(70, 60)];
        let steps = plan(&rows, Some(at(0)));
        assert_eq!(outline(&steps), [(20, false), (40, false), (70, true)]);
        assert_eq!(steps[2], Step::Send { row: &rows[2], since: Some(at(0)) });
    }

    #[test]
    fn without_a_cool_down_every_alert_is_sent() {
        let rows = [row(0, 0), row(10, 0)];
        assert_eq!(outline(&plan(&rows, Some(at(-5)))), [(0, true), (10, true)]);
    }

    #[test]
    fn windows_follow_each_other() {
        // 0-59: one message (about 30); 90 is past 30 + 60: a second one.
        let rows = [row(0, 60), row(30, 60), row(90, 60)];
        let steps = plan(&rows, None);
        assert_eq!(outline(&steps), [(0, false), (30, true), (90, true)]);
        assert_eq!(steps[2], Step::Send { row: &rows[2], since: Some(at(30)) });
    }
}
