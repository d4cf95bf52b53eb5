//! ListAuditEvents and SummarizeAudit: the compliance side of the API, reading the audit log.
//!
//! Like every handler they only translate: the filter from protobuf to [`AuditFilter`] (reporting every field that
//! cannot be understood), the rows back to protobuf exactly as stored. Both calls are audited by the audit layer
//! like any other, with their filter as the request.

use serde_json::{json, Value};

use super::context::Call;
use super::convert;
use super::ApiError;
use crate::auth::{Action, Resource};
use crate::domain::{AccountId, FieldViolation};
use crate::proto;
use crate::store::audit::summary::{Period, SummaryRow};
use crate::store::audit::{AuditFilter, Decision};
use crate::store::{audit, AuditPageToken, AuditRow, Store};

const MAX_PRINCIPAL_CHARS: usize = 256;
const MAX_ACTION_CHARS: usize = 128;
/// Rows one SummarizeAudit answer carries (about 1 MB, well under gRPC's 4 MB message limit).
const MAX_SUMMARY_ROWS: i64 = 10_000;

pub async fn list(
    store: &Store,
    call: &Call,
    raw: proto::ListAuditEventsRequest,
) -> Result<proto::ListAuditEventsResponse, ApiError> {
    call.audit.set_request(
        json!({
            "filter": filter_json(raw.filter.as_ref()),
            "page_size": raw.page_size,
            "page_token": raw.page_token,
        }),
        None,
    );
    let mut violations = Vec::new();
    let filter = filter("filter", raw.filter).unwrap_or_else(|v| {
        violations.extend(v);
        AuditFilter::default()
    });
    let page_size = convert::page_size(raw.page_size, &mut violations);
    let after = convert::page_token(&raw.page_token, AuditPageToken::decode, &mut violations);
    if !violations.is_empty() {
        return Err(ApiError::Invalid(violations));
    }
    call.authorize(Action::ListAuditEvents, &Resource::AuditLog)?;
    let mut rows = audit::list(store, &filter, after, page_size + 1).await?;
    let next_page_token = if rows.len() as i64 > page_size {
        rows.truncate(page_size as usize);
        rows.last().map(|last| AuditPageToken(last.content.id).encode()).unwrap_or_default()
    } else {
        String::new()
    };
    Ok(proto::ListAuditEventsResponse { events: rows.iter().map(event).collect(), next_page_token })
}

pub async fn summarize(
    store: &Store,
    call: &Call,
    raw: proto::SummarizeAuditRequest,
) -> Result<proto::SummarizeAuditResponse, ApiError> {
    call.audit.set_request(
        json!({
            "period": convert::enum_json(raw.period, proto::AuditPeriod::as_str_name),
            "occurred_after": convert::time_json(raw.occurred_after.as_ref()),
            "occurred_before": convert::time_json(raw.occurred_before.as_ref()),
        }),
        None,
    );
    let mut violations = Vec::new();
    let period = match proto::AuditPeriod::try_from(raw.period) {
        Ok(proto::AuditPeriod::Day) => Some(Period::Day),
        Ok(proto::AuditPeriod::Week) => Some(Period::Week),
        Ok(proto::AuditPeriod::Month) => Some(Period::Month),
        Ok(proto::AuditPeriod::Unspecified) | Err(_) => {
            violations.push(FieldViolation::new("period", "is required: day, week or month"));
            None
        }
    };
    let (from, to) =
        convert::time_range("occurred", raw.occurred_after.as_ref(), raw.occurred_before.as_ref(), &mut violations);
    let Some(period) = period.filter(|_| violations.is_empty()) else {
        return Err(ApiError::Invalid(violations));
    };
    call.authorize(Action::ListAuditEvents, &Resource::AuditLog)?;
    let mut rows = audit::summarize(store, period, from, to, MAX_SUMMARY_ROWS + 1).await?;
    let truncated = rows.len() as i64 > MAX_SUMMARY_ROWS;
    rows.truncate(MAX_SUMMARY_ROWS as usize);
    Ok(proto::SummarizeAuditResponse { rows: rows.iter().map(summary_row).collect(), truncated })
}

/// A filter whose every field was understood, or the violations, named under `prefix` (e.g. "filter").
fn filter(prefix: &str, raw: Option<proto::AuditEventFilter>) -> Result<AuditFilter, Vec<FieldViolation>> {
    let Some(raw) = raw else {
        return Ok(AuditFilter::default());
    };
    let mut violations = Vec::new();
    let (occurred_after, occurred_before) = convert::time_range(
        &format!("{prefix}.occurred"),
        raw.occurred_after.as_ref(),
        raw.occurred_before.as_ref(),
        &mut violations,
    );
    let mut text = |name: &str, value: String, max: usize| {
        if value.is_empty() {
            return None;
        }
        if value.chars().count() > max {
            violations
                .push(FieldViolation::new(format!("{prefix}.{name}"), format!("must be at most {max} characters")));
            return None;
        }
        Some(value)
    };
    let principal = text("principal", raw.principal, MAX_PRINCIPAL_CHARS);
    let action = text("action", raw.action, MAX_ACTION_CHARS);
    let mut decisions = Vec::new();
    for (i, value) in raw.decisions.iter().enumerate() {
        match decision_from_proto(*value) {
            Some(decision) if !decisions.contains(&decision) => decisions.push(decision),
            Some(_) => {}
            None => violations.push(FieldViolation::new(format!("{prefix}.decisions[{i}]"), "is not a decision")),
        }
    }
    let account = match raw.account_id.as_str() {
        "" => None,
        id => AccountId::parse(id)
            .map_err(|e| violations.push(FieldViolation::from_error(format!("{prefix}.account_id"), e)))
            .ok(),
    };
    if !violations.is_empty() {
        return Err(violations);
    }
    Ok(AuditFilter { occurred_after, occurred_before, principal, action, decisions, account })
}

fn decision_from_proto(value: i32) -> Option<Decision> {
    match proto::AuditDecision::try_from(value).ok()? {
        proto::AuditDecision::Unspecified => None,
        proto::AuditDecision::Allowed => Some(Decision::Allowed),
        proto::AuditDecision::Denied => Some(Decision::Denied),
        proto::AuditDecision::Invalid => Some(Decision::Invalid),
        proto::AuditDecision::Failed => Some(Decision::Failed),
    }
}

fn decision_to_proto(stored: &str) -> proto::AuditDecision {
    match Decision::parse(stored) {
        Some(Decision::Allowed) => proto::AuditDecision::Allowed,
        Some(Decision::Denied) => proto::AuditDecision::Denied,
        Some(Decision::Invalid) => proto::AuditDecision::Invalid,
        Some(Decision::Failed) => proto::AuditDecision::Failed,
        // The table's CHECK constraint keeps anything else out.
        None => proto::AuditDecision::Unspecified,
    }
}

/// A row exactly as stored.
fn event(row: &AuditRow) -> proto::AuditEvent {
    let c = &row.content;
    proto::AuditEvent {
        id: c.id.max(0) as u64,
        occurred_at: Some(convert::timestamp(c.occurred_at)),
        principal: c.principal.clone(),
        authn: c.authn.clone(),
        peer: c.peer.clone(),
        action: c.rpc.clone(),
        decision: decision_to_proto(&c.decision) as i32,
        reason: c.reason.clone(),
        grpc_code: c.grpc_code.clone(),
        request_json: c.request.clone(),
        request_digest: c.request_digest.clone(),
        copy_id: c.copy_id.map(|id| id.to_string()),
        policy_ids: c.policy_ids.clone(),
        prev_hash: c.prev_hash.clone(),
        hash: row.hash.clone(),
    }
}

fn summary_row(row: &SummaryRow) -> proto::AuditSummaryRow {
    let count = |n: i64| n.max(0) as u64;
    proto::AuditSummaryRow {
        period_start: Some(convert::timestamp(row.period_start)),
        principal: row.principal.clone(),
        source_account_id: row.source_account.clone(),
        destination_account_id: row.destination_account.clone(),
        allowed: count(row.allowed),
        replayed: count(row.replayed),
        denied: count(row.denied),
        invalid: count(row.invalid),
        errored: count(row.errored),
        succeeded: count(row.succeeded),
        failed: count(row.failed),
        cancelled: count(row.cancelled),
        expired: count(row.expired),
    }
}

/// A filter as sent, for the audit log.
fn filter_json(raw: Option<&proto::AuditEventFilter>) -> Value {
    let Some(raw) = raw else {
        return Value::Null;
    };
    let cut = |s: &str| s.chars().take(2 * MAX_PRINCIPAL_CHARS).collect::<String>();
    json!({
        "occurred_after": convert::time_json(raw.occurred_after.as_ref()),
        "occurred_before": convert::time_json(raw.occurred_before.as_ref()),
        "principal": cut(&raw.principal),
        "action": cut(&raw.action),
        "decisions": raw.decisions.iter().take(16).map(|d| convert::enum_json(*d, proto::AuditDecision::as_str_name)).collect::<Vec<_>>(),
        "account_id": cut(&raw.account_id),
    })
}

#[cfg(test)]
mod tests {
    use prost_types::Timestamp;

    use super::*;

    #[test]
    fn filter_reports_each_bad_field() {
        let raw = proto::AuditEventFilter {
            occurred_after: Some(Timestamp { seconds: 100, nanos: 0 }),
            occurred_before: Some(Timestamp { seconds: 50, nanos: 0 }),
            principal: "p".repeat(257),
            action: String::new(),
            decisions: vec![proto::AuditDecision::Denied as i32, 0, 99],
            account_id: "12".into(),
        };
        let fields: Vec<String> = filter("filter", Some(raw)).unwrap_err().into_iter().map(|v| v.field).collect();
        assert_eq!(
            fields,
            [
                "filter.occurred_before",
                "filter.principal",
                "filter.decisions[1]",
                "filter.decisions[2]",
                "filter.account_id"
            ]
        );
    }

    #[test]
    fn a_good_filter_is_understood() {
        let raw = proto::AuditEventFilter {
            principal: "alice".into(),
            action: "CopyModelVersion".into(),
            decisions: vec![
                proto::AuditDecision::Denied as i32,
                proto::AuditDecision::Invalid as i32,
                proto::AuditDecision::Denied as i32,
            ],
            account_id: "222222222222".into(),
            ..Default::default()
        };
        let understood = filter("filter", Some(raw)).unwrap();
        assert_eq!(understood.principal.as_deref(), Some("alice"));
        assert_eq!(understood.action.as_deref(), Some("CopyModelVersion"));
        assert_eq!(understood.decisions, [Decision::Denied, Decision::Invalid]);
        assert_eq!(understood.account.unwrap().as_str(), "222222222222");
        assert_eq!(understood.occurred_after, None);
        assert_eq!(filter("filter", None).unwrap(), AuditFilter::default());
    }

    #[test]
    fn every_decision_maps_both_ways() {
        for decision in Decision::ALL {
            assert_eq!(decision_from_proto(decision_to_proto(decision.as_str()) as i32), Some(decision));
        }
    }
}
