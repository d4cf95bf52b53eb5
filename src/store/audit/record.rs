//! What one audit row says: the record a call leaves, as the store appends it.
//!
//! These are the store's row types, not the audit layer's: the store writes them (inside a copy's own transaction,
//! too) and reads them back, so they sit on the store's floor, and the audit layer above fills them in.

use serde_json::Value;

use crate::domain::CopyId;

/// What became of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Authorized and answered (including answers such as NOT_FOUND).
    Allowed,
    /// Refused by authentication or authorization.
    Denied,
    /// Refused because the request itself was not acceptable.
    Invalid,
    /// Authorized, but the service could not do it.
    Failed,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allowed => "ALLOWED",
            Decision::Denied => "DENIED",
            Decision::Invalid => "INVALID",
            Decision::Failed => "FAILED",
        }
    }

    /// The decision a stored name (`ALLOWED`, …) stands for.
    pub fn parse(name: &str) -> Option<Decision> {
        Decision::ALL.into_iter().find(|d| d.as_str() == name)
    }

    pub const ALL: [Decision; 4] = [Decision::Allowed, Decision::Denied, Decision::Invalid, Decision::Failed];

    /// How a gRPC answer reads as a decision.
    pub fn from_code(code: tonic::Code) -> Decision {
        use tonic::Code::*;
        match code {
            Ok | NotFound => Decision::Allowed,
            Unauthenticated | PermissionDenied => Decision::Denied,
            InvalidArgument | AlreadyExists | FailedPrecondition | OutOfRange | ResourceExhausted => Decision::Invalid,
            _ => Decision::Failed,
        }
    }
}

/// One row of `audit_log`.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub principal: Option<String>,
    /// How the principal was established.
    pub authn: String,
    pub peer: Option<String>,
    pub rpc: String,
    pub decision: Decision,
    pub reason: Option<String>,
    pub grpc_code: tonic::Code,
    pub request: Option<Value>,
    pub request_digest: Option<Vec<u8>>,
    pub copy_id: Option<CopyId>,
    /// The ids of the Cedar policies that decided the call; empty when none did (a call refused before
    /// authorization, or one no policy permitted: Cedar's default deny names no policy).
    pub policy_ids: Vec<String>,
    /// The call this row records, when it records one: the store writes one row per call id (`audit_calls`), so
    /// a second row for a call whose first write's outcome was unknown is not written if the first landed. Not
    /// part of the row's hashed content.
    pub call: Option<uuid::Uuid>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_read_as_the_right_decision() {
        assert_eq!(Decision::from_code(tonic::Code::InvalidArgument), Decision::Invalid);
        assert_eq!(Decision::from_code(tonic::Code::PermissionDenied), Decision::Denied);
        assert_eq!(Decision::from_code(tonic::Code::Unauthenticated), Decision::Denied);
        assert_eq!(Decision::from_code(tonic::Code::Unavailable), Decision::Failed);
        assert_eq!(Decision::from_code(tonic::Code::Ok), Decision::Allowed);
    }

    #[test]
    fn stored_names_read_back() {
        for decision in Decision::ALL {
            assert_eq!(Decision::parse(decision.as_str()), Some(decision));
        }
        assert_eq!(Decision::parse("allowed"), None);
    }
}
