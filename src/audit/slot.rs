//! The slot in which a call's audit record is filled in: the audit layer opens it with who and how, the handler adds
//! what only it knows, and whoever writes the row marks it written.
//!
//! It sits above the store: it only collects an [`AuditRecord`], which the store appends.

use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::domain::CopyId;
use crate::store::audit::{AuditRecord, Decision};

/// A call's audit record in the making: the layer fills in who and how, the handler what.
#[derive(Debug, Clone)]
pub struct AuditSlot(Arc<Mutex<SlotState>>);

#[derive(Debug)]
struct SlotState {
    record: AuditRecord,
    written: bool,
    /// Authorization refused the call, whatever code answers it (see [`AuditSlot::set_denied`]).
    denied: bool,
}

impl AuditSlot {
    /// The slot of a call to `rpc` from `peer`, as it arrives: nobody established yet, no answer yet.
    pub fn open(rpc: impl Into<String>, peer: Option<String>) -> Self {
        let record = AuditRecord {
            principal: None,
            authn: "none".into(),
            peer,
            rpc: rpc.into(),
            decision: Decision::Allowed,
            reason: None,
            grpc_code: tonic::Code::Ok,
            request: None,
            request_digest: None,
            copy_id: None,
            policy_ids: Vec::new(),
        };
        AuditSlot(Arc::new(Mutex::new(SlotState { record, written: false, denied: false })))
    }

    fn with<R>(&self, f: impl FnOnce(&mut SlotState) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Who is calling, and how that was established.
    pub fn set_principal(&self, principal: &str, authn: &str) {
        self.with(|s| {
            s.record.principal = Some(principal.to_owned());
            s.record.authn = authn.to_owned();
        })
    }

    /// How authentication was attempted, for a call refused before anyone was established.
    pub fn set_authn(&self, authn: &str) {
        self.with(|s| s.record.authn = authn.to_owned())
    }

    /// The policies that decided the call.
    pub fn set_policies(&self, policy_ids: &[String]) {
        self.with(|s| s.record.policy_ids = policy_ids.to_vec())
    }

    /// A copy of the record so far, for a handler that writes it inside its own transaction.
    pub fn snapshot(&self) -> AuditRecord {
        self.with(|s| s.record.clone())
    }

    /// The request's key fields, and its digest once it is known to be valid.
    pub fn set_request(&self, request: Value, digest: Option<Vec<u8>>) {
        self.with(|s| {
            s.record.request = Some(request);
            s.record.request_digest = digest;
        })
    }

    pub fn set_copy_id(&self, copy_id: CopyId) {
        self.with(|s| s.record.copy_id = Some(copy_id))
    }

    pub fn set_reason(&self, reason: impl Into<String>) {
        self.with(|s| s.record.reason = Some(reason.into()))
    }

    /// Authorization refused the call, though its answer may not say so: a copy the caller may not see is answered
    /// NOT_FOUND, as if it did not exist. The row says DENIED, with the reason set here rather than the answer's.
    pub fn set_denied(&self, reason: impl Into<String>) {
        self.with(|s| {
            s.denied = true;
            s.record.reason = Some(reason.into());
        })
    }

    /// The record as it would be written for an answer with `code`.
    pub fn finish(&self, code: tonic::Code, message: Option<&str>) -> AuditRecord {
        self.with(|s| {
            let mut record = s.record.clone();
            record.grpc_code = code;
            record.decision = Decision::from_code(code);
            if s.denied {
                // The caller's answer hides the refusal; the row keeps the authorization's reason.
                record.decision = Decision::Denied;
            } else if code != tonic::Code::Ok {
                record.reason = message.map(str::to_owned).or(record.reason);
            }
            record
        })
    }

    /// Someone (the store, inside the request's own transaction) has written the record already.
    pub fn mark_written(&self) {
        self.with(|s| s.written = true)
    }

    pub fn is_written(&self) -> bool {
        self.with(|s| s.written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot() -> AuditSlot {
        let slot = AuditSlot::open("GetCopy", None);
        slot.set_principal("alice", "dev-metadata");
        slot
    }

    #[test]
    fn the_deciding_policies_reach_the_record() {
        let slot = slot();
        slot.set_policies(&["team-a-routes".into(), "forbid-prod".into()]);
        let record = slot.finish(tonic::Code::PermissionDenied, None);
        assert_eq!(record.policy_ids, ["team-a-routes", "forbid-prod"]);
    }

    #[test]
    fn a_hidden_refusal_is_recorded_as_denied_with_its_own_reason() {
        let slot = slot();
        slot.set_denied("no policy permits GetCopy here");
        let record = slot.finish(tonic::Code::NotFound, Some("no copy 1"));
        assert_eq!(record.decision, Decision::Denied);
        assert_eq!(record.reason.as_deref(), Some("no policy permits GetCopy here"));
    }

    #[test]
    fn an_error_answer_becomes_the_reason() {
        let slot = slot();
        slot.set_reason("replayed");
        let record = slot.finish(tonic::Code::NotFound, Some("no copy 1"));
        assert_eq!(record.reason.as_deref(), Some("no copy 1"));
        let record = slot.finish(tonic::Code::Ok, None);
        assert_eq!(record.reason.as_deref(), Some("replayed"));
    }

    #[test]
    fn handlers_details_reach_the_record() {
        let slot = slot();
        let id = CopyId::new();
        slot.set_copy_id(id);
        slot.set_request(serde_json::json!({"copy_id": id.to_string()}), Some(vec![1, 2]));
        let record = slot.finish(tonic::Code::Ok, None);
        assert_eq!(record.copy_id, Some(id));
        assert_eq!(record.request_digest, Some(vec![1, 2]));
        assert!(!slot.is_written());
        slot.mark_written();
        assert!(slot.is_written());
    }
}
