//! The one place where the service's errors become gRPC statuses.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use tracing::error;

use crate::domain::{AccountId, CopyId, FieldViolation, RolloutId};
use crate::store::StoreError;
use crate::watch::WatchError;

/// At most this many field violations travel back (they ride in the response trailers).
const MAX_VIOLATIONS: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid request: {}", summary(.0))]
    Invalid(Vec<FieldViolation>),
    #[error("{0}")]
    NotFound(String),
    /// Authorization refused the call (the message names the action and says why).
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    FailedPrecondition(String),
    /// Preflight found that the copy cannot work: FAILED_PRECONDITION with a PreconditionFailure naming each check.
    #[error("preflight: {}", .0.iter().map(|v| format!("{} {}: {}", v.kind, v.subject, v.description)).collect::<Vec<_>>().join("; "))]
    Preflight(Vec<crate::preflight::Violation>),
    #[error("idempotency_token was already used for copy {copy_id} with different parameters")]
    IdempotencyMismatch { copy_id: CopyId },
    #[error("idempotency_token was already used for rollout {rollout_id} with different parameters")]
    RolloutIdempotencyMismatch { rollout_id: RolloutId },
    #[error("the queue of account {account} is full ({depth} copies waiting); retry in {}s", .retry_after.as_secs())]
    QueueFull { account: AccountId, depth: i64, retry_after: std::time::Duration },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the service is shutting down")]
    ShuttingDown,
    /// A resumed watch needs changes that were pruned (`WatchError::Pruned`): OUT_OF_RANGE, with an ErrorInfo
    /// (`HISTORY_PRUNED`, `oldest_held`) so a client knows to watch again for the current state.
    #[error(
        "after_sequence {after}: the changes after it are no longer all held (the history before {oldest_held} was \
         pruned); watch again without after_sequence, for the current state"
    )]
    HistoryPruned { after: i64, oldest_held: i64 },
    /// A watch stream's client fell behind and was cut off (`WatchError::SlowConsumer`): RESOURCE_EXHAUSTED, with
    /// an ErrorInfo (`SLOW_CONSUMER`, `last_sequence`) to resume after.
    #[error(
        "this stream fell {buffer} changes behind and was cut off; watch again with after_sequence {last_sent} (the \
         last change sent)"
    )]
    SlowConsumer { last_sent: i64, buffer: usize },
    /// A watch stream's replica lost contact with the database.
    #[error("lost contact with the copy store")]
    WatchLost,
}

impl ApiError {
    pub fn invalid(field: &str, description: impl Into<String>) -> ApiError {
        ApiError::Invalid(vec![FieldViolation::new(field, description)])
    }
}

fn summary(violations: &[FieldViolation]) -> String {
    violations.iter().map(|v| format!("{}: {}", v.field, v.description)).collect::<Vec<_>>().join("; ")
}

impl From<WatchError> for ApiError {
    fn from(err: WatchError) -> Self {
        match err {
            WatchError::NotFound(id) => ApiError::NotFound(format!("no copy {id}")),
            WatchError::Store(err) => ApiError::Store(err),
            WatchError::Closed => ApiError::ShuttingDown,
            WatchError::Lost => ApiError::WatchLost,
            err @ WatchError::FutureSequence { .. } => ApiError::invalid("after_sequence", err.to_string()),
            WatchError::Pruned { after, oldest_held } => ApiError::HistoryPruned { after, oldest_held },
            WatchError::SlowConsumer { last_sent, buffer } => ApiError::SlowConsumer { last_sent, buffer },
        }
    }
}

impl From<ApiError> for Status {
    fn from(err: ApiError) -> Status {
        match err {
            ApiError::Invalid(violations) => {
                let message = format!("invalid request: {}", summary(&violations));
                let details: Vec<_> = violations
                    .iter()
                    .take(MAX_VIOLATIONS)
                    .map(|v| tonic_types::FieldViolation::new(&v.field, &v.description))
                    .collect();
                Status::with_error_details(Code::InvalidArgument, message, ErrorDetails::with_bad_request(details))
            }
            ApiError::NotFound(message) => Status::not_found(message),
            ApiError::PermissionDenied(message) => Status::permission_denied(message),
            ApiError::FailedPrecondition(message) => Status::failed_precondition(message),
            err @ ApiError::Preflight(_) => {
                let ApiError::Preflight(violations) = &err else { unreachable!() };
                let mut details = ErrorDetails::new();
                for v in violations.iter().take(MAX_VIOLATIONS) {
                    details.add_precondition_failure_violation(v.kind, &v.subject, &v.description);
                }
                Status::with_error_details(Code::FailedPrecondition, err.to_string(), details)
            }
            err @ (ApiError::IdempotencyMismatch { .. } | ApiError::RolloutIdempotencyMismatch { .. }) => {
                Status::with_error_details(
                    Code::AlreadyExists,
                    err.to_string(),
                    ErrorDetails::with_bad_request_violation("idempotency_token", err.to_string()),
                )
            }
            err @ ApiError::QueueFull { .. } => {
                let ApiError::QueueFull { retry_after, .. } = &err else { unreachable!() };
                let details = ErrorDetails::with_retry_info(Some(*retry_after));
                Status::with_error_details(Code::ResourceExhausted, err.to_string(), details)
            }
            // Read through a group commit's shared error: every call of a failed batch gets the status its cause
            // deserves.
            ApiError::Store(err) => match err.root() {
                StoreError::IllegalTransition(illegal) => Status::failed_precondition(illegal.to_string()),
                // A row that does not parse will not parse on a retry either: not UNAVAILABLE, which invites one.
                StoreError::Corrupt(_) => {
                    error!(%err, "stored data cannot be read");
                    Status::internal("a stored record cannot be read; the service's operators must look at it")
                }
                _ => {
                    error!(%err, "store error");
                    Status::unavailable("the copy store is unavailable; retry later")
                }
            },
            err @ ApiError::HistoryPruned { .. } => {
                let ApiError::HistoryPruned { oldest_held, .. } = &err else { unreachable!() };
                let metadata = std::collections::HashMap::from([("oldest_held".to_owned(), oldest_held.to_string())]);
                let details = ErrorDetails::with_error_info("HISTORY_PRUNED", "modelcopy", metadata);
                Status::with_error_details(Code::OutOfRange, err.to_string(), details)
            }
            err @ ApiError::SlowConsumer { .. } => {
                let ApiError::SlowConsumer { last_sent, .. } = &err else { unreachable!() };
                let metadata = std::collections::HashMap::from([("last_sequence".to_owned(), last_sent.to_string())]);
                let details = ErrorDetails::with_error_info("SLOW_CONSUMER", "modelcopy", metadata);
                Status::with_error_details(Code::ResourceExhausted, err.to_string(), details)
            }
            ApiError::ShuttingDown => Status::unavailable("the service is shutting down; retry"),
            ApiError::WatchLost => Status::unavailable(
                "this replica lost contact with the copy store; watch again (after_sequence: the last one received)",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_requests_name_every_bad_field() {
        let status: Status = ApiError::Invalid(vec![
            FieldViolation::new("version_name", "is required"),
            FieldViolation::new("output_config.s3_bucket", "must be 3 to 255 characters"),
        ])
        .into();
        assert_eq!(status.code(), Code::InvalidArgument);
        let bad = status.get_details_bad_request().expect("a BadRequest detail");
        let fields: Vec<_> = bad.field_violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["version_name", "output_config.s3_bucket"]);
    }

    #[test]
    fn a_full_queue_says_when_to_retry() {
        let status: Status = ApiError::QueueFull {
            account: AccountId::parse("222222222222").unwrap(),
            depth: 10,
            retry_after: std::time::Duration::from_secs(3),
        }
        .into();
        assert_eq!(status.code(), Code::ResourceExhausted);
        let retry = status.get_details_retry_info().expect("RetryInfo");
        assert_eq!(retry.retry_delay, Some(std::time::Duration::from_secs(3)));
    }

    #[test]
    fn unreadable_stored_data_is_internal_not_a_reason_to_retry() {
        let status: Status = ApiError::Store(StoreError::Corrupt("copy_jobs row 1: state".into())).into();
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("copy_jobs"), "row details stay in the log: {}", status.message());
    }

    #[test]
    fn a_failed_batch_answers_by_its_cause() {
        let shared = |err| ApiError::Store(StoreError::Batch(std::sync::Arc::new(err)));
        let status: Status = shared(StoreError::Corrupt("copy 1 was not inserted".into())).into();
        assert_eq!(status.code(), Code::Internal);
        let status: Status = shared(StoreError::Database(sqlx::Error::PoolTimedOut)).into();
        assert_eq!(status.code(), Code::Unavailable);
    }

    #[test]
    fn a_reused_token_is_already_exists() {
        let status: Status = ApiError::IdempotencyMismatch { copy_id: CopyId::from(uuid::Uuid::nil()) }.into();
        assert_eq!(status.code(), Code::AlreadyExists);
        assert!(status.message().contains("idempotency_token"));
    }
}
