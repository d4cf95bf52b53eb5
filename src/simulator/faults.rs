//! The failures a client must survive, made to happen on purpose: errors, dropped connections, slow answers.
//!
//! Two kinds. A [`Fault`] is injected by a test for the next N calls of an operation — exact, for tests that need
//! a failure at one precise call. [`RandomFaults`] are configured shares of all calls — for soak and fleet tests —
//! drawn from the seeded generator per account, operation and call number (see [`chance`](super::chance)), so a
//! run with the same seed and the same calls sees the same faults. Injected faults go first; a call that takes
//! one is not also given a random one.
//!
//! A fault fires after the caller is identified and admitted by its quotas, and before the operation touches any
//! state — except `DroppedResponse`, which lets the operation run and then closes the connection without an
//! answer, the case where a client cannot know whether its call took effect.

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::chance::rng_for;
use super::error::{ApiError, ErrorCode};

/// The next `count` calls of `operation` (from `account_id` only, when given) fail with `error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// An operation name as in `x-amz-target`, e.g. `CopyProjectVersion`.
    pub operation: String,
    #[serde(default)]
    pub account_id: Option<String>,
    /// An error name, e.g. `ThrottlingException` (`ThrottlingException` and `InternalServerError` answer 500,
    /// anything else 400) — or [`Fault::DROPPED_CONNECTION`] / [`Fault::DROPPED_RESPONSE`] to close the connection
    /// without answering, before or after the operation runs.
    pub error: String,
    #[serde(default = "default_fault_message")]
    pub message: String,
    #[serde(default = "default_fault_count")]
    pub count: u32,
}

fn default_fault_message() -> String {
    "Injected by the simulator.".to_owned()
}

fn default_fault_count() -> u32 {
    1
}

impl Fault {
    /// `error` value: the connection is closed before the operation runs; nothing changes.
    pub const DROPPED_CONNECTION: &'static str = "DroppedConnection";
    /// `error` value: the operation runs (a copy starts), then the connection is closed without an answer.
    pub const DROPPED_RESPONSE: &'static str = "DroppedResponse";

    /// The next `count` calls of `operation`, from any account, fail with `error`.
    pub fn new(operation: &str, error: &str, count: u32) -> Self {
        Fault {
            operation: operation.to_owned(),
            account_id: None,
            error: error.to_owned(),
            message: default_fault_message(),
            count,
        }
    }
}

/// Shares (0 to 1) of calls that fail at random, and the latency added to every call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RandomFaults {
    /// Answered `ThrottlingException` (HTTP 500, "temporarily unable to process the request").
    pub throttling: f64,
    /// Answered `InternalServerError` (HTTP 500).
    pub internal_error: f64,
    /// Connection closed before the operation runs.
    pub drop_request: f64,
    /// Operation runs, then the connection is closed without an answer.
    pub drop_response: f64,
    /// Added to every answer (and before a dropped response), drawn uniformly between the bounds.
    pub latency: Latency,
    /// The operations these apply to; empty means all.
    pub operations: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Latency {
    pub min_millis: u64,
    pub max_millis: u64,
}

impl RandomFaults {
    pub fn validate(&self) -> Result<(), String> {
        let shares = [
            ("throttling", self.throttling),
            ("internal_error", self.internal_error),
            ("drop_request", self.drop_request),
            ("drop_response", self.drop_response),
        ];
        if let Some((name, share)) = shares.iter().find(|(_, share)| !(0.0..=1.0).contains(share)) {
            return Err(format!("fault share {name} = {share} is not between 0 and 1"));
        }
        if shares.iter().map(|(_, share)| share).sum::<f64>() > 1.0 {
            return Err("fault shares add up to more than 1".to_owned());
        }
        if self.latency.min_millis > self.latency.max_millis {
            return Err("latency min_millis > max_millis".to_owned());
        }
        Ok(())
    }

    fn applies_to(&self, operation: &str) -> bool {
        self.operations.is_empty() || self.operations.iter().any(|name| name == operation)
    }
}

/// What happens to one call instead of (or besides) a plain answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disruption {
    None,
    Error(ApiError),
    DropRequest,
    DropResponse,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultDecision {
    pub disruption: Disruption,
    pub latency: Duration,
}

/// Pending injected faults and the random fault configuration.
#[derive(Debug, Default)]
pub struct Faults {
    pending: Vec<Fault>,
    /// Per operation, how long each of its next calls is held up in transit.
    held: std::collections::HashMap<String, std::collections::VecDeque<Duration>>,
    random: RandomFaults,
    rng_seed: u64,
}

impl Faults {
    pub fn new(random: RandomFaults, rng_seed: u64) -> Self {
        Faults { pending: Vec::new(), held: Default::default(), random, rng_seed }
    }

    /// Holds the next calls of `operation` up in transit, one delay each, in order: each arrives (is identified,
    /// counted by the quotas, run) that much after it reached the simulator's socket, as a request held up on the
    /// network or behind a busy sender's scheduler. The case a client's pacing must survive: two calls sent a full
    /// period apart can arrive much closer together.
    pub fn hold_in_transit(&mut self, operation: &str, delays: impl IntoIterator<Item = Duration>) {
        self.held.entry(operation.to_owned()).or_default().extend(delays);
    }

    /// How long the call of `operation` arriving now is held up, if it is.
    pub fn take_transit_delay(&mut self, operation: &str) -> Option<Duration> {
        self.held.get_mut(operation)?.pop_front()
    }

    pub fn inject(&mut self, fault: Fault) {
        if fault.count > 0 {
            self.pending.push(fault);
        }
    }

    pub fn clear_pending(&mut self) {
        self.pending.clear();
        self.held.clear();
    }

    pub fn random(&self) -> &RandomFaults {
        &self.random
    }

    pub fn set_random(&mut self, random: RandomFaults) {
        self.random = random;
    }

    /// The fate of the `call_index`-th call (from 0) of `operation` by `account_id`.
    pub fn decide(&mut self, account_id: &str, operation: &str, call_index: u64) -> FaultDecision {
        let injected = self.take_pending(operation, account_id);
        if !self.random.applies_to(operation) {
            return FaultDecision { disruption: injected.unwrap_or(Disruption::None), latency: Duration::ZERO };
        }
        let index = call_index.to_le_bytes();
        let mut rng = rng_for(self.rng_seed, &[b"fault", account_id.as_bytes(), operation.as_bytes(), &index]);
        let Latency { min_millis, max_millis } = self.random.latency;
        let latency = Duration::from_millis(rng.random_range(min_millis..=max_millis));
        let disruption = injected.unwrap_or_else(|| {
            // One draw decides among the kinds: their shares are consecutive slices of [0, 1).
            let draw: f64 = rng.random();
            let random = &self.random;
            let kinds =
                [(random.throttling, ErrorCode::Throttling), (random.internal_error, ErrorCode::InternalServerError)];
            let mut edge = 0.0;
            for (share, code) in kinds {
                edge += share;
                if draw < edge {
                    return Disruption::Error(random_error(code));
                }
            }
            if draw < edge + random.drop_request {
                return Disruption::DropRequest;
            }
            if draw < edge + random.drop_request + random.drop_response {
                return Disruption::DropResponse;
            }
            Disruption::None
        });
        FaultDecision { disruption, latency }
    }

    /// Consumes one use of the first pending fault matching this call, if any.
    fn take_pending(&mut self, operation: &str, account_id: &str) -> Option<Disruption> {
        let index = self.pending.iter().position(|fault| {
            fault.operation == operation && fault.account_id.as_deref().is_none_or(|account| account == account_id)
        })?;
        let fault = &mut self.pending[index];
        let disruption = match fault.error.as_str() {
            Fault::DROPPED_CONNECTION => Disruption::DropRequest,
            Fault::DROPPED_RESPONSE => Disruption::DropResponse,
            name => Disruption::Error(ApiError::new(ErrorCode::from_name(name), fault.message.clone())),
        };
        fault.count -= 1;
        if fault.count == 0 {
            self.pending.remove(index);
        }
        Some(disruption)
    }
}

fn random_error(code: ErrorCode) -> ApiError {
    let message = match code {
        ErrorCode::Throttling => {
            "Amazon Rekognition is temporarily unable to process the request. Try your call again."
        }
        _ => "Amazon Rekognition experienced a service issue. Try your call again.",
    };
    ApiError::new(code, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(account_id: Option<&str>, count: u32) -> Fault {
        Fault {
            operation: "CopyProjectVersion".into(),
            account_id: account_id.map(Into::into),
            error: "ThrottlingException".into(),
            message: "slow down".into(),
            count,
        }
    }

    fn error_of(decision: FaultDecision) -> Option<ErrorCode> {
        match decision.disruption {
            Disruption::Error(err) => Some(err.code),
            _ => None,
        }
    }

    #[test]
    fn fault_fires_count_times() {
        let mut faults = Faults::default();
        faults.inject(fault(None, 2));
        assert_eq!(error_of(faults.decide("1", "CopyProjectVersion", 0)), Some(ErrorCode::Throttling));
        assert!(error_of(faults.decide("1", "CopyProjectVersion", 1)).is_some());
        assert_eq!(faults.decide("1", "CopyProjectVersion", 2).disruption, Disruption::None);
    }

    #[test]
    fn fault_matches_operation_and_account() {
        let mut faults = Faults::default();
        faults.inject(fault(Some("111111111111"), 1));
        assert_eq!(faults.decide("111111111111", "DescribeProjectVersions", 0).disruption, Disruption::None);
        assert_eq!(faults.decide("222222222222", "CopyProjectVersion", 0).disruption, Disruption::None);
        assert!(error_of(faults.decide("111111111111", "CopyProjectVersion", 0)).is_some());
    }

    #[test]
    fn drop_names_drop_connections() {
        let mut faults = Faults::default();
        faults.inject(Fault::new("CopyProjectVersion", Fault::DROPPED_RESPONSE, 1));
        faults.inject(Fault::new("DescribeProjects", Fault::DROPPED_CONNECTION, 1));
        assert_eq!(faults.decide("1", "CopyProjectVersion", 0).disruption, Disruption::DropResponse);
        assert_eq!(faults.decide("1", "DescribeProjects", 0).disruption, Disruption::DropRequest);
    }

    #[test]
    fn random_faults_are_reproducible_and_near_their_share() {
        let random = RandomFaults {
            throttling: 0.2,
            internal_error: 0.1,
            drop_request: 0.05,
            drop_response: 0.05,
            latency: Latency { min_millis: 5, max_millis: 15 },
            operations: vec![],
        };
        let run = |seed| {
            let mut faults = Faults::new(random.clone(), seed);
            (0..2_000).map(|n| faults.decide("1", "Op", n)).collect::<Vec<_>>()
        };
        let first = run(42);
        assert_eq!(first, run(42), "same seed, same faults");
        assert_ne!(first, run(43));
        let throttled = first
            .iter()
            .filter(|d| matches!(&d.disruption, Disruption::Error(e) if e.code == ErrorCode::Throttling))
            .count();
        assert!((300..500).contains(&throttled), "{throttled} of 2000 at 20%");
        let dropped =
            first.iter().filter(|d| matches!(d.disruption, Disruption::DropRequest | Disruption::DropResponse)).count();
        assert!((120..280).contains(&dropped), "{dropped} of 2000 at 10%");
        assert!(first.iter().all(|d| (5..=15).contains(&(d.latency.as_millis() as u64))));
    }

    #[test]
    fn random_faults_spare_other_operations() {
        let random =
            RandomFaults { throttling: 1.0, operations: vec!["CopyProjectVersion".into()], ..RandomFaults::default() };
        let mut faults = Faults::new(random, 1);
        assert!(error_of(faults.decide("1", "CopyProjectVersion", 0)).is_some());
        assert_eq!(faults.decide("1", "DescribeProjects", 0).disruption, Disruption::None);
    }

    #[test]
    fn shares_are_validated() {
        let too_much = RandomFaults { throttling: 0.6, internal_error: 0.6, ..RandomFaults::default() };
        assert!(too_much.validate().is_err());
        let negative = RandomFaults { drop_request: -0.1, ..RandomFaults::default() };
        assert!(negative.validate().is_err());
        assert!(RandomFaults::default().validate().is_ok());
    }

    #[test]
    fn fault_json_has_defaults() {
        let fault: Fault =
            serde_json::from_str(r#"{"operation": "CopyProjectVersion", "error": "ThrottlingException"}"#).unwrap();
        assert_eq!(fault.count, 1);
        assert_eq!(fault.account_id, None);
    }
}
