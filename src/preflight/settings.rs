//! `[preflight]`: the checks made with Rekognition before a copy or a rollout is queued.

use serde::{Deserialize, Serialize};

/// `[preflight]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PreflightSettings {
    /// Whether copies are checked before they are queued (where the service holds the source account's
    /// credentials).
    pub enabled: bool,
    /// Preflight calls per second per AWS account, by all replicas together: a budget apart from the dispatcher's
    /// (keep `describe_per_second` + this within the account's DescribeProjectVersions quota).
    pub per_second: f64,
    /// How long a request may wait for its calls' turn; past it, the request is queued unchecked and says so.
    pub max_wait_ms: u64,
    /// How long a check that passed is believed (a project that exists, a version that can be copied, a policy
    /// that allows an account). Refusals are never cached: the caller fixes what was missing and tries again.
    pub cache_secs: u64,
}

impl Default for PreflightSettings {
    fn default() -> Self {
        PreflightSettings { enabled: true, per_second: 1.0, max_wait_ms: 2_000, cache_secs: 60 }
    }
}

impl PreflightSettings {
    /// The settings' mistakes, each naming its key.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        // `!(0 < rate <= 1000)`: NaN fails every comparison.
        if !(self.per_second > 0.0 && self.per_second <= 1_000.0) {
            problems.push(format!("preflight.per_second ({}) must be above 0 and at most 1000", self.per_second));
        }
        problems
    }
}
