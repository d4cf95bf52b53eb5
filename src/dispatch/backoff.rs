//! How long a job waits after a transient failure: exponential, capped, with jitter so that jobs throttled
//! together do not come back together.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

use super::DispatchSettings;

/// The wait before attempt `attempt + 1`, after `attempt` (≥ 1) attempts have failed.
pub fn delay(settings: &DispatchSettings, attempt: u32) -> Duration {
    let max = Duration::from_millis(settings.backoff_max_ms);
    ExponentialBuilder::new()
        .with_min_delay(Duration::from_millis(settings.backoff_min_ms))
        .with_max_delay(max)
        .with_jitter()
        .without_max_times()
        .build()
        .nth(attempt.saturating_sub(1) as usize)
        .unwrap_or(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> DispatchSettings {
        DispatchSettings { backoff_min_ms: 100, backoff_max_ms: 1_000, ..Default::default() }
    }

    #[test]
    fn grows_with_attempts() {
        // Jitter adds at most one more delay's worth, so the bounds below hold for any draw.
        let first = delay(&settings(), 1);
        assert!(first >= Duration::from_millis(100) && first <= Duration::from_millis(200), "{first:?}");
        let third = delay(&settings(), 3);
        assert!(third >= Duration::from_millis(400), "{third:?}");
    }

    #[test]
    fn never_exceeds_twice_the_cap() {
        for attempt in 1..40 {
            assert!(delay(&settings(), attempt) <= Duration::from_millis(2_000));
        }
    }
}
