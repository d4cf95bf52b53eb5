//! `[dispatch]`: how this replica works the queue (how often it looks, how long it holds a job, how it backs off).
//! The per-account quotas it keeps to are the account's (`rekognition::AccountLimits`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispatchSettings {
    /// Whether this replica dispatches copies at all; API-only replicas set it false.
    pub enabled: bool,
    /// How often the dispatcher looks for due work when nothing wakes it earlier.
    pub poll_interval_ms: u64,
    /// The shortest time after a look at a running copy (a DescribeProjectVersions) before the next: how often a
    /// young copy is looked at. An older one is looked at once it has grown a quarter older (`dispatch::schedule`).
    pub status_poll_interval_ms: u64,
    /// The longest time between two looks at a running copy, however old.
    pub status_poll_max_interval_ms: u64,
    /// How long after Rekognition refused to delete an expired copy's version (a running model, a missing
    /// permission) the service tries again. It never stops a model; the refusal is reported on the copy meanwhile.
    pub expiry_retry_interval_ms: u64,
    /// Jobs this replica works on at once.
    pub max_in_flight: usize,
    /// How long a claimed job stays this replica's before another may take it over.
    pub lease_secs: u64,
    /// Transient failures of one job's submission tolerated before the job fails.
    pub max_attempts: u32,
    pub backoff_min_ms: u64,
    pub backoff_max_ms: u64,
    /// Per-call timeout for Rekognition operations.
    pub aws_timeout_ms: u64,
    /// How long a leader may go on calling Rekognition without its leadership session answering, and how long a
    /// new leader waits before its first call (see `dispatch::term`): the bound on how long an account can go
    /// without calls after a failover, and what keeps two leaders' calls apart. At least twice `poll_interval_ms`,
    /// how often the session is checked.
    pub leadership_timeout_ms: u64,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        DispatchSettings {
            enabled: true,
            poll_interval_ms: 1_000,
            status_poll_interval_ms: 2_000,
            status_poll_max_interval_ms: 300_000,
            expiry_retry_interval_ms: 3_600_000,
            max_in_flight: 32,
            lease_secs: 120,
            max_attempts: 8,
            backoff_min_ms: 200,
            backoff_max_ms: 30_000,
            aws_timeout_ms: 30_000,
            leadership_timeout_ms: 10_000,
        }
    }
}

impl DispatchSettings {
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }
    pub fn status_poll_interval(&self) -> Duration {
        Duration::from_millis(self.status_poll_interval_ms)
    }
    pub fn status_poll_max_interval(&self) -> Duration {
        Duration::from_millis(self.status_poll_max_interval_ms)
    }
    pub fn expiry_retry_interval(&self) -> Duration {
        Duration::from_millis(self.expiry_retry_interval_ms)
    }
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_secs)
    }
    pub fn leadership_timeout(&self) -> Duration {
        Duration::from_millis(self.leadership_timeout_ms)
    }
}
