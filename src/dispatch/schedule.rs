//! When a running copy is next looked at: on a schedule that fits its age.
//!
//! Why: a copy of a Custom Labels model takes minutes to hours, and rarely ends in its first seconds; describing
//! every copy every `status_poll_interval_ms` spends most calls on copies nowhere near their end, and every call
//! counts against the account's DescribeProjectVersions quota (issue 13, P4). A copy is looked at again once it
//! has grown a quarter older than it was (never sooner than `status_poll_interval_ms`, never later than
//! `status_poll_max_interval_ms`), so that its end is seen at most a quarter of its running time late (or a poll
//! interval, for a short copy), while the calls per copy grow with the logarithm of its duration instead of with
//! the duration: at a 5 s poll, a copy of 40 s is looked at 8 times as before, one of an hour under 30 times
//! instead of 720. (Copies running at once into one project share their looks: `dispatch::account`.)

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::DispatchSettings;

/// A copy is looked at again after this part of its age.
const AGE_FRACTION: f64 = 0.25;

/// How long after now a copy submitted at `submitted_at` (when Rekognition accepted it) is looked at again.
pub fn next_look(settings: &DispatchSettings, submitted_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Duration {
    let age = submitted_at.and_then(|at| (now - at).to_std().ok()).unwrap_or_default();
    let grown = age.mul_f64(AGE_FRACTION);
    grown.clamp(
        settings.status_poll_interval(),
        settings.status_poll_max_interval().max(settings.status_poll_interval()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(poll_ms: u64, max_ms: u64) -> DispatchSettings {
        DispatchSettings { status_poll_interval_ms: poll_ms, status_poll_max_interval_ms: max_ms, ..Default::default() }
    }

    fn look_after(settings: &DispatchSettings, age_secs: i64) -> Duration {
        let now = Utc::now();
        next_look(settings, Some(now - chrono::Duration::seconds(age_secs)), now)
    }

    #[test]
    fn a_young_copy_is_looked_at_every_poll_interval() {
        let s = settings(5_000, 600_000);
        assert_eq!(look_after(&s, 0), Duration::from_secs(5));
        assert_eq!(look_after(&s, 19), Duration::from_secs(5));
        // Not yet submitted, or a clock behind: the poll interval.
        assert_eq!(next_look(&s, None, Utc::now()), Duration::from_secs(5));
        assert_eq!(look_after(&s, -30), Duration::from_secs(5));
    }

    #[test]
    fn an_older_copy_is_looked_at_after_a_quarter_of_its_age_up_to_the_maximum() {
        let s = settings(5_000, 600_000);
        assert_eq!(look_after(&s, 40), Duration::from_secs(10));
        assert_eq!(look_after(&s, 3_600), Duration::from_secs(600));
        assert_eq!(look_after(&s, 1_200), Duration::from_secs(300));
    }

    #[test]
    fn a_maximum_below_the_poll_interval_leaves_the_poll_interval() {
        let s = settings(5_000, 1_000);
        assert_eq!(look_after(&s, 3_600), Duration::from_secs(5));
    }

    /// The looks at a copy that runs `secs`: how many calls it costs alone.
    fn looks(settings: &DispatchSettings, secs: f64) -> usize {
        let (mut at, mut count) = (0.0, 0);
        while at < secs {
            at += look_after(settings, at as i64).as_secs_f64();
            count += 1;
        }
        count
    }

    #[test]
    fn looks_grow_with_the_logarithm_of_the_duration() {
        let s = settings(5_000, 600_000);
        // Every 5 s, a copy of 40 s is looked at 8 times, one of an hour 720.
        assert_eq!(looks(&s, 40.0), 8);
        assert!(looks(&s, 3_600.0) <= 30, "{}", looks(&s, 3_600.0));
    }
}
