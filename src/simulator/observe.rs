//! What tests need beyond the API: a log of every request received, and errors injected on demand.
//!
//! The log is how a test proves what a client did — how many attempts, from which account, with which invocation
//! id (so retries can be told from new calls). Faults make the failures a client must survive (throttling, internal
//! errors, any error name) happen exactly when a test wants them, before the operation touches any state.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ErrorCode};

/// The next `count` calls of `operation` (from `account_id` only, when given) fail with `error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// An operation name as in `x-amz-target`, e.g. `CopyProjectVersion`.
    pub operation: String,
    #[serde(default)]
    pub account_id: Option<String>,
    /// An error name, e.g. `ThrottlingException`; `ThrottlingException` and `InternalServerError` answer 500.
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

/// One request as the simulator received and answered it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    pub at: DateTime<Utc>,
    /// The caller's account, when it authenticated.
    pub account_id: Option<String>,
    /// The operation named by `x-amz-target` (without the `RekognitionService.` prefix), as sent.
    pub operation: String,
    /// The parameters that identify what the call was about (`ProjectArn`, `VersionName`, ...).
    pub key: serde_json::Value,
    /// `ok`, or the error name answered.
    pub outcome: String,
    /// The `amz-sdk-request` header (`attempt=N; max=M`).
    pub attempt: Option<String>,
    /// The `amz-sdk-invocation-id` header: the same for every attempt of one SDK call.
    pub invocation_id: Option<String>,
}

/// The outcome of a call that has been received but not answered yet.
pub const PENDING: &str = "pending";

/// The call log and the pending faults.
#[derive(Debug, Default)]
pub struct Observations {
    calls: Vec<(u64, CallRecord)>,
    last_id: u64,
    faults: Vec<Fault>,
}

impl Observations {
    /// Logs a call as it arrives, so the log is in arrival order; returns the id to [`Observations::finish`] it.
    pub fn begin(&mut self, record: CallRecord) -> u64 {
        self.last_id += 1;
        self.calls.push((self.last_id, record));
        self.last_id
    }

    /// Completes a logged call. A call logged before a reset is gone, and stays gone.
    pub fn finish(
        &mut self,
        id: u64,
        account_id: Option<String>,
        key: serde_json::Value,
        outcome: &str,
    ) {
        if let Some((_, record)) = self.calls.iter_mut().find(|(call, _)| *call == id) {
            record.account_id = account_id;
            record.key = key;
            record.outcome = outcome.to_owned();
        }
    }

    pub fn inject(&mut self, fault: Fault) {
        if fault.count > 0 {
            self.faults.push(fault);
        }
    }

    /// Consumes one use of the first fault matching this call, if any.
    pub fn take_fault(&mut self, operation: &str, account_id: &str) -> Option<ApiError> {
        let index = self.faults.iter().position(|fault| {
            fault.operation == operation
                && fault
                    .account_id
                    .as_deref()
                    .is_none_or(|account| account == account_id)
        })?;
        let fault = &mut self.faults[index];
        let error = ApiError::new(ErrorCode::from_name(&fault.error), fault.message.clone());
        fault.count -= 1;
        if fault.count == 0 {
            self.faults.remove(index);
        }
        Some(error)
    }

    pub fn reset(&mut self) {
        self.calls.clear();
        self.faults.clear();
    }

    pub fn calls(&self) -> Vec<CallRecord> {
        self.calls
            .iter()
            .map(|(_, record)| record.clone())
            .collect()
    }

    pub fn call_count(&self, operation: &str) -> usize {
        self.calls
            .iter()
            .filter(|(_, record)| record.operation == operation)
            .count()
    }
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

    fn record(operation: &str) -> CallRecord {
        CallRecord {
            at: Utc::now(),
            account_id: None,
            operation: operation.into(),
            key: serde_json::Value::Null,
            outcome: PENDING.into(),
            attempt: None,
            invocation_id: None,
        }
    }

    #[test]
    fn fault_fires_count_times() {
        let mut observations = Observations::default();
        observations.inject(fault(None, 2));
        assert_eq!(
            observations
                .take_fault("CopyProjectVersion", "1")
                .unwrap()
                .code,
            ErrorCode::Throttling
        );
        assert!(observations.take_fault("CopyProjectVersion", "1").is_some());
        assert!(observations.take_fault("CopyProjectVersion", "1").is_none());
    }

    #[test]
    fn fault_matches_operation_and_account() {
        let mut observations = Observations::default();
        observations.inject(fault(Some("111111111111"), 1));
        assert!(observations
            .take_fault("DescribeProjectVersions", "111111111111")
            .is_none());
        assert!(observations
            .take_fault("CopyProjectVersion", "222222222222")
            .is_none());
        assert!(observations
            .take_fault("CopyProjectVersion", "111111111111")
            .is_some());
    }

    #[test]
    fn calls_keep_arrival_order_and_outcome() {
        let mut observations = Observations::default();
        let first = observations.begin(record("CreateProject"));
        let second = observations.begin(record("DescribeProjects"));
        observations.finish(second, Some("1".into()), serde_json::Value::Null, "ok");
        observations.finish(first, None, serde_json::Value::Null, "ValidationException");
        let calls = observations.calls();
        assert_eq!(calls[0].operation, "CreateProject");
        assert_eq!(calls[0].outcome, "ValidationException");
        assert_eq!(calls[1].outcome, "ok");
        assert_eq!(observations.call_count("CreateProject"), 1);
    }

    #[test]
    fn reset_forgets_calls_and_faults() {
        let mut observations = Observations::default();
        let id = observations.begin(record("CreateProject"));
        observations.inject(fault(None, 1));
        observations.reset();
        observations.finish(id, None, serde_json::Value::Null, "ok");
        assert!(observations.calls().is_empty());
        assert!(observations.take_fault("CopyProjectVersion", "1").is_none());
    }

    #[test]
    fn fault_json_has_defaults() {
        let fault: Fault = serde_json::from_str(
            r#"{"operation": "CopyProjectVersion", "error": "ThrottlingException"}"#,
        )
        .unwrap();
        assert_eq!(fault.count, 1);
        assert_eq!(fault.account_id, None);
    }
}
