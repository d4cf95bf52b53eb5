//! What tests see besides the API: the log of every request received, and the per-operation counts.
//!
//! The log is how a test proves what a client did — how many attempts, from which account, with which invocation
//! id (so retries can be told from new calls), and what each copy was set up to do. It keeps the most recent
//! `capacity` calls, so a long run cannot grow it without bound; [`Stats`] stay exact whatever the capacity.

use std::collections::VecDeque;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::error::ErrorCode;
use super::stats::{OperationStats, Stats};

/// One request as the simulator received and answered it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    /// When the request was received.
    pub at: DateTime<Utc>,
    /// The caller's account, when it authenticated.
    pub account_id: Option<String>,
    /// The operation named by `x-amz-target` (without the `RekognitionService.` prefix), as sent.
    pub operation: String,
    /// The parameters that identify what the call was about (`ProjectArn`, `VersionName`, ...).
    pub key: serde_json::Value,
    /// `ok`, the error name answered, or `DroppedConnection` when the connection was closed before the
    /// operation ran.
    pub outcome: String,
    /// The `amz-sdk-request` header (`attempt=N; max=M`).
    pub attempt: Option<String>,
    /// The `amz-sdk-invocation-id` header: the same for every attempt of one SDK call.
    pub invocation_id: Option<String>,
    /// The operation ran (see `outcome`), but the connection was closed without sending its answer.
    #[serde(default)]
    pub response_dropped: bool,
    /// For a copy that started: how long it will take and how it will end.
    #[serde(default)]
    pub copy: Option<PlannedCopy>,
}

/// What the simulator decided for a copy when it started it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedCopy {
    pub version_arn: String,
    pub duration_millis: u64,
    /// `COPYING_COMPLETED` or `COPYING_FAILED`.
    pub final_status: String,
}

/// The outcome of a call that has been received but not answered yet.
pub const PENDING: &str = "pending";

/// The call log, when the simulator keeps no other limit.
pub const DEFAULT_CALL_LOG_CAPACITY: usize = 100_000;

/// How a call ended, for [`Observations::finish`].
pub struct Finished<'a> {
    pub account_id: Option<String>,
    pub key: serde_json::Value,
    pub outcome: &'a str,
    pub response_dropped: bool,
    pub copy: Option<PlannedCopy>,
}

/// The call log and the stats.
#[derive(Debug)]
pub struct Observations {
    calls: VecDeque<CallRecord>,
    /// The id of `calls[0]`; ids are consecutive, so a call's position is its id minus this.
    first_id: u64,
    capacity: usize,
    stats: Stats,
}

impl Default for Observations {
    fn default() -> Self {
        Observations::new(DEFAULT_CALL_LOG_CAPACITY)
    }
}

impl Observations {
    pub fn new(capacity: usize) -> Self {
        Observations { calls: VecDeque::new(), first_id: 0, capacity: capacity.max(1), stats: Stats::default() }
    }

    /// Logs a call as it arrives, so the log is in arrival order; returns the id to [`Observations::finish`] it.
    pub fn begin(&mut self, record: CallRecord) -> u64 {
        let id = self.first_id + self.calls.len() as u64;
        self.calls.push_back(record);
        if self.calls.len() > self.capacity {
            self.calls.pop_front();
            self.first_id += 1;
        }
        id
    }

    /// Counts a call in the stats; returns how many calls of this account and operation came before it.
    pub fn count(&mut self, account_id: &str, operation: &str, received: Instant) -> u64 {
        self.stats.received(account_id, operation, received)
    }

    /// Completes a logged call. A call logged before a reset (or pushed out by newer ones) is gone, and stays gone.
    pub fn finish(&mut self, id: u64, counted_as: (&str, &str), finished: Finished<'_>) {
        if let Some(code) = finished.outcome_code() {
            self.stats.answered(counted_as.0, counted_as.1, &code);
        }
        let Some(position) = id.checked_sub(self.first_id) else {
            return;
        };
        if let Some(record) = self.calls.get_mut(position as usize) {
            record.account_id = finished.account_id;
            record.key = finished.key;
            record.outcome = finished.outcome.to_owned();
            record.response_dropped = finished.response_dropped;
            record.copy = finished.copy;
        }
    }

    /// Forgets the log and the stats.
    pub fn reset(&mut self) {
        self.first_id += self.calls.len() as u64;
        self.calls.clear();
        self.stats.reset();
    }

    pub fn calls(&self) -> Vec<CallRecord> {
        self.calls.iter().cloned().collect()
    }

    pub fn call_count(&self, operation: &str) -> usize {
        self.calls.iter().filter(|record| record.operation == operation).count()
    }

    pub fn stats(&self) -> Vec<OperationStats> {
        self.stats.snapshot()
    }
}

impl Finished<'_> {
    fn outcome_code(&self) -> Option<ErrorCode> {
        match self.outcome {
            "ok" | PENDING => None,
            name => Some(ErrorCode::from_name(name)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(operation: &str) -> CallRecord {
        CallRecord {
            at: Utc::now(),
            account_id: None,
            operation: operation.into(),
            key: serde_json::Value::Null,
            outcome: PENDING.into(),
            attempt: None,
            invocation_id: None,
            response_dropped: false,
            copy: None,
        }
    }

    fn finished(outcome: &str) -> Finished<'_> {
        Finished {
            account_id: Some("1".into()),
            key: serde_json::Value::Null,
            outcome,
            response_dropped: false,
            copy: None,
        }
    }

    #[test]
    fn calls_keep_arrival_order_and_outcome() {
        let mut observations = Observations::default();
        let first = observations.begin(record("CreateProject"));
        let second = observations.begin(record("DescribeProjects"));
        observations.finish(second, ("1", "DescribeProjects"), finished("ok"));
        observations.finish(first, ("", "CreateProject"), finished("ValidationException"));
        let calls = observations.calls();
        assert_eq!(calls[0].operation, "CreateProject");
        assert_eq!(calls[0].outcome, "ValidationException");
        assert_eq!(calls[1].outcome, "ok");
        assert_eq!(observations.call_count("CreateProject"), 1);
    }

    #[test]
    fn the_log_keeps_the_most_recent_calls() {
        let mut observations = Observations::new(2);
        let ids: Vec<u64> = ["A", "B", "C"].iter().map(|op| observations.begin(record(op))).collect();
        observations.finish(ids[0], ("", "A"), finished("ok"));
        observations.finish(ids[2], ("", "C"), finished("ok"));
        let calls = observations.calls();
        assert_eq!(calls.iter().map(|c| c.operation.as_str()).collect::<Vec<_>>(), ["B", "C"]);
        assert_eq!(calls[0].outcome, PENDING);
        assert_eq!(calls[1].outcome, "ok");
    }

    #[test]
    fn reset_forgets_calls_and_stats() {
        let mut observations = Observations::default();
        let id = observations.begin(record("CreateProject"));
        observations.count("1", "CreateProject", Instant::now());
        observations.reset();
        observations.finish(id, ("1", "CreateProject"), finished("ok"));
        assert!(observations.calls().is_empty());
        let later = observations.begin(record("DescribeProjects"));
        observations.finish(later, ("1", "DescribeProjects"), finished("ok"));
        assert_eq!(observations.calls()[0].outcome, "ok");
        assert!(observations.stats().is_empty());
    }

    #[test]
    fn throttles_reach_the_stats() {
        let mut observations = Observations::default();
        let id = observations.begin(record("CopyProjectVersion"));
        observations.count("1", "CopyProjectVersion", Instant::now());
        observations.finish(id, ("1", "CopyProjectVersion"), finished("ProvisionedThroughputExceededException"));
        let stats = observations.stats();
        assert_eq!((stats[0].calls, stats[0].throughput_exceeded), (1, 1));
    }
}
