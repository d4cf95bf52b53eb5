//! An account's pace: one GCRA limiter per Rekognition operation the dispatcher calls.
//!
//! Only the account's leader calls Rekognition for it (see [`super::leadership`]), so a local limiter is a global
//! one. Every attempt goes through here, retries included: the SDK's own retries are off.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::rekognition::AccountLimits;

/// Two limiters per operation, because a decision to call and the call itself are apart in time: the round
/// *admits* work (claims jobs) at the pace, then each call *sends* at the pace. Between the two lie database round
/// trips and, for a retried copy, a describe; pacing only the admission let a late first call and a punctual
/// third land in the same second. Pacing the send, right before the request leaves, keeps consecutive calls a
/// full period apart as Rekognition sees them; pacing the admission keeps the leader from claiming more than it
/// can send.
pub struct Gate {
    admit_copy: DefaultDirectRateLimiter,
    send_copy: DefaultDirectRateLimiter,
    admit_describe: DefaultDirectRateLimiter,
    send_describe: DefaultDirectRateLimiter,
    clock: DefaultClock,
}

/// One call per `(1 + margin) / rate` seconds, `burst` at most at once.
pub fn quota(per_second: f64, burst: u32, margin: f64) -> Quota {
    let period = Duration::from_secs_f64((1.0 + margin) / per_second);
    Quota::with_period(period)
        .expect("rates are checked to be finite and above zero")
        .allow_burst(NonZeroU32::new(burst.max(1)).expect("at least one"))
}

impl Gate {
    /// A gate that starts *empty*: a replica that has just taken an account over cannot know how recently the
    /// previous leader called, so it waits one period before its first call instead of spending a burst.
    pub fn new(limits: &AccountLimits) -> Gate {
        let clock = DefaultClock::default();
        let make = |rate: f64| {
            let limiter =
                RateLimiter::direct_with_clock(quota(rate, limits.burst, limits.pacing_margin), clock.clone());
            let burst = NonZeroU32::new(limits.burst.max(1)).expect("at least one");
            let _ = limiter.check_n(burst);
            limiter
        };
        Gate {
            admit_copy: make(limits.copy_per_second),
            send_copy: make(limits.copy_per_second),
            admit_describe: make(limits.describe_per_second),
            send_describe: make(limits.describe_per_second),
            clock: clock.clone(),
        }
    }

    /// Admits one more CopyProjectVersion now, or says how long until one may be.
    pub fn admit_copy(&self) -> Result<(), Duration> {
        self.admit_copy.check().map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Admits one more DescribeProjectVersions now, or says how long until one may be.
    pub fn admit_describe(&self) -> Result<(), Duration> {
        self.admit_describe.check().map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Waits until a CopyProjectVersion may leave; call it right before sending.
    pub async fn send_copy(&self) {
        self.send_copy.until_ready().await;
    }

    /// Waits until a DescribeProjectVersions may leave; call it right before sending.
    pub async fn send_describe(&self) {
        self.send_describe.until_ready().await;
    }
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;

    /// Calls made as fast as the limiter allows, over `seconds`, on a fake clock.
    fn admitted(quota: Quota, seconds: u64) -> Vec<Duration> {
        let clock = FakeRelativeClock::default();
        let limiter = RateLimiter::direct_with_clock(quota, clock.clone());
        let mut at = Vec::new();
        let step = Duration::from_millis(1);
        let mut now = Duration::ZERO;
        while now < Duration::from_secs(seconds) {
            if limiter.check().is_ok() {
                at.push(now);
            }
            clock.advance(step);
            now += step;
        }
        at
    }

    fn largest_one_second_window(at: &[Duration]) -> usize {
        (0..at.len())
            .map(|i| at[i..].iter().take_while(|t| **t < at[i] + Duration::from_secs(1)).count())
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn no_second_holds_more_calls_than_the_rate() {
        for rate in [1.0, 2.0, 5.0, 10.0] {
            let at = admitted(quota(rate, 1, 0.0), 10);
            assert!(largest_one_second_window(&at) <= rate as usize, "rate {rate}: {at:?}");
            // ...and the rate is used: about rate × seconds calls.
            assert!(at.len() as f64 >= rate * 10.0 - 1.0, "rate {rate}: only {}", at.len());
        }
    }

    #[test]
    fn the_margin_leaves_room_for_a_late_arrival() {
        let at = admitted(quota(5.0, 1, 0.05), 10);
        // Five calls span at least 1.05 s, so any one call may arrive 50 ms late without a sixth in its second.
        assert!(at.windows(6).all(|w| w[5] - w[0] >= Duration::from_millis(1050)), "{at:?}");
    }

    #[test]
    fn a_new_gate_waits_before_its_first_call() {
        let limits = AccountLimits { copy_per_second: 1.0, ..AccountLimits::default() };
        let gate = Gate::new(&limits);
        let wait = gate.admit_copy().unwrap_err();
        assert!(wait > Duration::from_millis(900), "{wait:?}");
    }
}
