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
    /// The caller's side of the call was dropped before the answer (see [`AuditSlot::set_caller_gone`]).
    caller_gone: bool,
}

/// The longest a string of a request may be in its audit row, in bytes; longer ones are cut (see [`bounded`]).
/// Far above any field the API accepts (an ARN is at most 2,048 characters, and is refused beyond), far below what
/// a caller can send (gRPC's 4 MB): a row says what was asked without anyone writing megabytes into the log.
pub const MAX_STRING: usize = 2048;
/// The most entries of one map or list of a request kept in its audit row (the API accepts at most 200 tags).
pub const MAX_ENTRIES: usize = 256;
/// The longest reason kept, in bytes: a list of everything wrong with a request stays readable, and bounded.
pub const MAX_REASON: usize = 4096;

/// `text` cut to at most `max` bytes (on a character boundary), with a marker saying how long it was and the SHA-256
/// of all of it, so the row still pins down exactly what was sent; `text` itself when it is short enough.
pub fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes()));
    format!("{}…[cut: {} bytes in all, sha256 {digest}]", &text[..end], text.len())
}

/// `value` with every string cut to [`MAX_STRING`] bytes and every map and list to [`MAX_ENTRIES`] entries (the last
/// kept entry then says how many there were).
pub fn bounded(value: Value) -> Value {
    match value {
        Value::String(text) => Value::String(cut(&text, MAX_STRING)),
        Value::Array(items) => {
            let total = items.len();
            let mut kept: Vec<Value> = items.into_iter().take(MAX_ENTRIES).map(bounded).collect();
            if total > MAX_ENTRIES {
                kept.push(Value::String(format!("…[cut: {total} entries in all]")));
            }
            Value::Array(kept)
        }
        Value::Object(fields) => {
            let total = fields.len();
            let mut kept: serde_json::Map<String, Value> = fields
                .into_iter()
                .take(MAX_ENTRIES)
                .map(|(key, value)| (cut(&key, MAX_STRING), bounded(value)))
                .collect();
            if total > MAX_ENTRIES {
                kept.insert("…".into(), Value::String(format!("[cut: {total} entries in all]")));
            }
            Value::Object(kept)
        }
        other => other,
    }
}

/// What a row adds to its reason when the caller was gone before the answer.
pub const CALLER_GONE: &str = "the caller was gone before the answer (it reset the call, or its deadline passed)";

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
            call: Some(uuid::Uuid::new_v4()),
        };
        AuditSlot(Arc::new(Mutex::new(SlotState { record, written: false, denied: false, caller_gone: false })))
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

    /// The request's key fields (bounded: see [`bounded`]), and its digest once it is known to be valid.
    pub fn set_request(&self, request: Value, digest: Option<Vec<u8>>) {
        let request = bounded(request);
        self.with(|s| {
            s.record.request = Some(request);
            s.record.request_digest = digest;
        })
    }

    /// The method called, as the row names it.
    pub fn rpc(&self) -> String {
        self.with(|s| s.record.rpc.clone())
    }

    /// The caller's side of the call went away before the answer (a reset stream, a deadline passed); the call
    /// still runs to its end, and its row says so.
    pub fn set_caller_gone(&self) {
        self.with(|s| s.caller_gone = true)
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
            if s.caller_gone {
                record.reason = Some(match record.reason.take() {
                    Some(reason) => format!("{reason}; {CALLER_GONE}"),
                    None => CALLER_GONE.to_owned(),
                });
            }
            record.reason = record.reason.map(|reason| cut(&reason, MAX_REASON));
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
    fn a_request_of_megabytes_is_kept_cut_with_its_length_and_digest() {
        let slot = slot();
        let huge = "x".repeat(3_900_000);
        let tags: serde_json::Map<String, Value> = (0..300).map(|n| (format!("k{n}"), Value::from("v"))).collect();
        slot.set_request(serde_json::json!({ "copy_id": huge, "tags": tags }), None);
        let record = slot.finish(tonic::Code::InvalidArgument, Some(&"y".repeat(100_000)));
        let request = record.request.unwrap();
        let kept = request["copy_id"].as_str().unwrap();
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(huge.as_bytes()));
        assert!(kept.len() < MAX_STRING + 200, "{}", kept.len());
        assert!(kept.ends_with(&format!("[cut: 3900000 bytes in all, sha256 {digest}]")), "{}", &kept[MAX_STRING..]);
        assert_eq!(request["tags"].as_object().unwrap().len(), MAX_ENTRIES + 1);
        assert_eq!(request["tags"]["…"], "[cut: 300 entries in all]");
        assert!(record.reason.unwrap().len() < MAX_REASON + 200);
    }

    #[test]
    fn cutting_keeps_whole_characters_and_leaves_short_text_alone() {
        assert_eq!(cut("short", 10), "short");
        let cut_text = cut(&"é".repeat(10), 5);
        assert!(cut_text.starts_with("éé…[cut: 20 bytes in all, sha256 "), "{cut_text}");
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
