//! `[admission]`: how much one replica takes on, in all and from one caller.

use serde::{Deserialize, Serialize};

/// Limits per replica: behind a load balancer spreading calls over N replicas, a caller gets up to N times these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdmissionSettings {
    /// Calls this replica works on at once (a watch stream counts until it is open); beyond it, RESOURCE_EXHAUSTED.
    pub max_concurrent_calls: u32,
    /// Calls a second one authenticated principal may make, sustained.
    pub per_principal_per_second: f64,
    /// Calls one principal may make at once after a quiet spell.
    pub per_principal_burst: u32,
    /// Calls a second one client address may make without valid credentials (each is refused, and audited).
    pub unauthenticated_per_peer_per_second: f64,
    pub unauthenticated_per_peer_burst: u32,
    /// WatchCopy streams one principal may hold open at once on this replica.
    pub max_watch_streams_per_principal: u32,
}

impl AdmissionSettings {
    /// The largest rate a setting may name: beyond it a limit is no limit (and `inf` no rate at all).
    pub const MAX_RATE: f64 = 1_000_000.0;

    /// Every rule these settings break, each naming its key.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (key, rate) in [
            ("per_principal_per_second", self.per_principal_per_second),
            ("unauthenticated_per_peer_per_second", self.unauthenticated_per_peer_per_second),
        ] {
            if !(rate.is_finite() && rate > 0.0 && rate <= Self::MAX_RATE) {
                problems.push(format!("admission.{key} ({rate}) must be above 0 and at most {}", Self::MAX_RATE));
            }
        }
        for (key, value) in [
            ("max_concurrent_calls", self.max_concurrent_calls),
            ("per_principal_burst", self.per_principal_burst),
            ("unauthenticated_per_peer_burst", self.unauthenticated_per_peer_burst),
            ("max_watch_streams_per_principal", self.max_watch_streams_per_principal),
        ] {
            if value == 0 {
                problems.push(format!("admission.{key} must be at least 1"));
            }
        }
        problems
    }
}

impl Default for AdmissionSettings {
    fn default() -> Self {
        AdmissionSettings {
            max_concurrent_calls: 1_024,
            per_principal_per_second: 200.0,
            per_principal_burst: 400,
            unauthenticated_per_peer_per_second: 5.0,
            unauthenticated_per_peer_burst: 20,
            max_watch_streams_per_principal: 100,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_pass_and_every_bad_value_is_named() {
        assert!(AdmissionSettings::default().problems().is_empty());
        let bad = AdmissionSettings {
            max_concurrent_calls: 0,
            per_principal_per_second: f64::INFINITY,
            unauthenticated_per_peer_per_second: 0.0,
            max_watch_streams_per_principal: 0,
            ..AdmissionSettings::default()
        };
        let problems = bad.problems().join("\n");
        for key in [
            "max_concurrent_calls",
            "per_principal_per_second",
            "unauthenticated_per_peer_per_second",
            "max_watch_streams_per_principal",
        ] {
            assert!(problems.contains(&format!("admission.{key}")), "{key}: {problems}");
        }
    }
}
