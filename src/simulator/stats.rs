//! Counts per account and operation, for tests that assert "never above the quota".
//!
//! A call is counted when it is received, whatever its outcome, so that a test can check what a client *sent*: the
//! largest number of calls in any sliding one-second window is kept as the calls arrive. The window only remembers
//! the arrival times of the last second, so memory stays bounded by the request rate, however long the run.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::error::ErrorCode;

const WINDOW: Duration = Duration::from_secs(1);

/// Per account and operation: calls received, throttles served, and the busiest second.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationStats {
    /// The caller's account; empty for calls that did not authenticate.
    pub account_id: String,
    /// The operation named by `x-amz-target` (without the service prefix).
    pub operation: String,
    pub calls: u64,
    /// Calls answered `ProvisionedThroughputExceededException`.
    pub throughput_exceeded: u64,
    /// Calls answered `LimitExceededException`.
    pub limit_exceeded: u64,
    /// The largest number of calls received in any one-second window (`[t - 1 s, t]`, sliding).
    pub max_calls_in_one_second: u64,
}

#[derive(Debug, Default)]
struct Counter {
    calls: u64,
    throughput_exceeded: u64,
    limit_exceeded: u64,
    max_in_window: u64,
    window: VecDeque<Instant>,
}

#[derive(Debug, Default)]
pub struct Stats {
    counters: HashMap<(String, String), Counter>,
}

impl Stats {
    /// Counts a call received at `at`; returns how many calls of this account and operation came before it
    /// (random faults are drawn from that number).
    pub fn received(&mut self, account_id: &str, operation: &str, at: Instant) -> u64 {
        let counter = self.counters.entry((account_id.to_owned(), operation.to_owned())).or_default();
        let before = counter.calls;
        counter.calls += 1;
        // Arrival order and `at` order can differ by a hair between threads; keep the deque sorted.
        let position = counter.window.partition_point(|t| *t <= at);
        counter.window.insert(position, at);
        while counter.window.front().is_some_and(|oldest| at.saturating_duration_since(*oldest) > WINDOW) {
            counter.window.pop_front();
        }
        counter.max_in_window = counter.max_in_window.max(counter.window.len() as u64);
        before
    }

    /// Counts a throttle answered to a call already counted as received.
    pub fn answered(&mut self, account_id: &str, operation: &str, code: &ErrorCode) {
        let Some(counter) = self.counters.get_mut(&(account_id.to_owned(), operation.to_owned())) else {
            return;
        };
        match code {
            ErrorCode::ProvisionedThroughputExceeded => counter.throughput_exceeded += 1,
            ErrorCode::LimitExceeded => counter.limit_exceeded += 1,
            _ => {}
        }
    }

    /// Sorted by account, then operation.
    pub fn snapshot(&self) -> Vec<OperationStats> {
        let mut stats: Vec<OperationStats> = self
            .counters
            .iter()
            .map(|((account_id, operation), counter)| OperationStats {
                account_id: account_id.clone(),
                operation: operation.clone(),
                calls: counter.calls,
                throughput_exceeded: counter.throughput_exceeded,
                limit_exceeded: counter.limit_exceeded,
                max_calls_in_one_second: counter.max_in_window,
            })
            .collect();
        stats.sort_by(|a, b| (&a.account_id, &a.operation).cmp(&(&b.account_id, &b.operation)));
        stats
    }

    pub fn reset(&mut self) {
        self.counters.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busiest_second_slides() {
        let mut stats = Stats::default();
        let start = Instant::now();
        let ms = |n| start + Duration::from_millis(n);
        // 3 calls in the first 300 ms, then 2 more at 1 250 ms: the window [250, 1250] holds 3, [0, 1000] holds 3.
        for at in [0, 100, 300, 1_250, 1_260] {
            stats.received("1", "Op", ms(at));
        }
        let [op] = stats.snapshot().try_into().unwrap();
        assert_eq!(op.calls, 5);
        assert_eq!(op.max_calls_in_one_second, 3);

        // A burst of 4 within 10 ms, well after the others, raises it.
        for at in [5_000, 5_003, 5_006, 5_009] {
            stats.received("1", "Op", ms(at));
        }
        assert_eq!(stats.snapshot()[0].max_calls_in_one_second, 4);
    }

    #[test]
    fn a_call_exactly_one_second_later_shares_the_window() {
        let mut stats = Stats::default();
        let start = Instant::now();
        stats.received("1", "Op", start);
        stats.received("1", "Op", start + WINDOW);
        assert_eq!(stats.snapshot()[0].max_calls_in_one_second, 2);
        stats.received("1", "Op", start + WINDOW + Duration::from_millis(1) + WINDOW);
        assert_eq!(stats.snapshot()[0].max_calls_in_one_second, 2);
    }

    #[test]
    fn throttles_are_counted_per_kind_and_account() {
        let mut stats = Stats::default();
        let now = Instant::now();
        assert_eq!(stats.received("1", "Copy", now), 0);
        assert_eq!(stats.received("1", "Copy", now), 1);
        stats.received("2", "Copy", now);
        stats.answered("1", "Copy", &ErrorCode::ProvisionedThroughputExceeded);
        stats.answered("1", "Copy", &ErrorCode::LimitExceeded);
        stats.answered("1", "Copy", &ErrorCode::Throttling);
        let snapshot = stats.snapshot();
        assert_eq!(snapshot.len(), 2);
        assert_eq!(
            (
                snapshot[0].account_id.as_str(),
                snapshot[0].calls,
                snapshot[0].throughput_exceeded,
                snapshot[0].limit_exceeded
            ),
            ("1", 2, 1, 1)
        );
        assert_eq!(snapshot[1].throughput_exceeded, 0);
        stats.reset();
        assert!(stats.snapshot().is_empty());
    }
}
