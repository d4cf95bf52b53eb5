//! How an audit record looks in a list, in JSON Lines and in CSV.
//!
//! Exports say exactly what the log says: every column, times to the microsecond, NULL as `null` (JSON) or an
//! unquoted empty field (CSV, see [`super::csv`]), hashes and digests in lowercase hex, decisions by their stored
//! names (`ALLOWED`, …, which `--decision` also accepts). In JSON the request is the JSON object it is; in CSV, its
//! JSON text, and the policy ids a JSON array.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::proto::{AuditDecision, AuditEvent};

/// The CSV header, in the order of [`csv_fields`].
pub const COLUMNS: [&str; 15] = [
    "id",
    "occurred_at",
    "principal",
    "authn",
    "peer",
    "action",
    "decision",
    "reason",
    "grpc_code",
    "request",
    "request_digest",
    "copy_id",
    "policy_ids",
    "prev_hash",
    "hash",
];

/// The stored name of a decision (`ALLOWED`, …).
pub fn decision_name(decision: i32) -> String {
    match AuditDecision::try_from(decision) {
        Ok(d) => d.as_str_name().trim_start_matches("AUDIT_DECISION_").to_owned(),
        Err(_) => format!("unknown({decision})"),
    }
}

/// RFC 3339 to the microsecond (the log's precision), or `None` when unset or invalid.
pub fn time(time: Option<&prost_types::Timestamp>) -> Option<String> {
    let time = time?;
    let at = DateTime::<Utc>::from_timestamp(time.seconds, u32::try_from(time.nanos).ok()?)?;
    Some(at.to_rfc3339_opts(SecondsFormat::Micros, true))
}

/// One line for people: id, time, principal, action, decision, gRPC code, copy, reason. Control characters in
/// recorded text (a reason may hold a line break) are shown escaped, so one record stays one line.
pub fn line(event: &AuditEvent) -> String {
    let or_dash = |v: Option<&str>| one_line(v.unwrap_or("-"));
    format!(
        "{}  {}  {}  {}  {}  {}  {}  {}",
        event.id,
        time(event.occurred_at.as_ref()).unwrap_or_else(|| "-".into()),
        or_dash(event.principal.as_deref()),
        one_line(&event.action),
        decision_name(event.decision),
        event.grpc_code,
        or_dash(event.copy_id.as_deref()),
        one_line(event.reason.as_deref().unwrap_or("")),
    )
    .trim_end()
    .to_owned()
}

fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

/// One JSON object: a line of a JSON Lines export.
pub fn json(event: &AuditEvent) -> Value {
    json!({
        "id": event.id,
        "occurred_at": time(event.occurred_at.as_ref()),
        "principal": event.principal,
        "authn": event.authn,
        "peer": event.peer,
        "action": event.action,
        "decision": decision_name(event.decision),
        "reason": event.reason,
        "grpc_code": event.grpc_code,
        // The server sends JSON text; should it ever not parse, the text itself is kept.
        "request": event.request_json.as_deref().map(|text| serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))),
        "request_digest": event.request_digest.as_deref().map(hex::encode),
        "copy_id": event.copy_id,
        "policy_ids": event.policy_ids,
        "prev_hash": event.prev_hash.as_deref().map(hex::encode),
        "hash": hex::encode(&event.hash),
    })
}

/// The CSV fields, in the order of [`COLUMNS`]; `None` is NULL.
pub fn csv_fields(event: &AuditEvent) -> Vec<Option<String>> {
    vec![
        Some(event.id.to_string()),
        time(event.occurred_at.as_ref()),
        event.principal.clone(),
        Some(event.authn.clone()),
        event.peer.clone(),
        Some(event.action.clone()),
        Some(decision_name(event.decision)),
        event.reason.clone(),
        Some(event.grpc_code.clone()),
        event.request_json.clone(),
        event.request_digest.as_deref().map(hex::encode),
        event.copy_id.clone(),
        Some(Value::from(event.policy_ids.clone()).to_string()),
        event.prev_hash.as_deref().map(hex::encode),
        Some(hex::encode(&event.hash)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> AuditEvent {
        AuditEvent {
            id: 12,
            occurred_at: Some(prost_types::Timestamp { seconds: 1_714_564_800, nanos: 123_456_000 }),
            principal: None,
            authn: "none".into(),
            peer: Some("127.0.0.1:5000".into()),
            action: "CopyModelVersion".into(),
            decision: AuditDecision::Denied as i32,
            reason: Some("no credentials, \"really\"".into()),
            grpc_code: "Unauthenticated".into(),
            request_json: Some(r#"{"version_name": "v1"}"#.into()),
            request_digest: None,
            copy_id: None,
            policy_ids: vec!["p-1".into()],
            prev_hash: Some(vec![0xab, 0x01]),
            hash: vec![0xff; 2],
        }
    }

    #[test]
    fn json_keeps_nulls_and_exact_times() {
        let value = json(&event());
        assert_eq!(value["occurred_at"], "2024-05-01T12:00:00.123456Z");
        assert_eq!(value["principal"], Value::Null);
        assert_eq!(value["decision"], "DENIED");
        assert_eq!(value["request"]["version_name"], "v1");
        assert_eq!(value["request_digest"], Value::Null);
        assert_eq!(value["prev_hash"], "ab01");
        assert_eq!(value["hash"], "ffff");
        assert_eq!(value["policy_ids"], serde_json::json!(["p-1"]));
    }

    #[test]
    fn csv_fields_follow_the_header() {
        let fields = csv_fields(&event());
        assert_eq!(fields.len(), COLUMNS.len());
        let at = |name: &str| fields[COLUMNS.iter().position(|c| *c == name).unwrap()].clone();
        assert_eq!(at("id").as_deref(), Some("12"));
        assert_eq!(at("principal"), None);
        assert_eq!(at("request").as_deref(), Some(r#"{"version_name": "v1"}"#));
        assert_eq!(at("policy_ids").as_deref(), Some(r#"["p-1"]"#));
        assert_eq!(at("decision").as_deref(), Some("DENIED"));
    }

    #[test]
    fn one_record_stays_one_line() {
        let event = AuditEvent { reason: Some("first\r\nsecond".into()), ..event() };
        assert!(line(&event).ends_with(r"first\r\nsecond"), "{}", line(&event));
    }

    #[test]
    fn a_line_for_people() {
        assert_eq!(
            line(&event()),
            "12  2024-05-01T12:00:00.123456Z  -  CopyModelVersion  DENIED  Unauthenticated  -  no credentials, \"really\""
        );
    }
}
