//! Protobuf to domain and back. Nothing here decides anything; it only translates, and reports what cannot be
//! translated as a field violation naming the field.

use chrono::{DateTime, Utc};
use prost_types::Timestamp;

use crate::domain::{
    AccountId, CopyFilter, CopyId, CopyState, FieldViolation, RawCopyRequest, RawOutputConfig, RolloutId,
};
use crate::proto;
use crate::proto::encoded::EncodedCopyEvent;
use crate::store::CopyJob;
use crate::watch::WatchItem;

/// Page size when a list request leaves it 0.
pub const DEFAULT_PAGE_SIZE: i64 = 50;
/// Largest page a list request may ask for: bounds one call's memory and time.
pub const MAX_PAGE_SIZE: i32 = 500;

/// A list request's `page_size` (0 means the default), or a violation naming the field.
pub fn page_size(raw: i32, violations: &mut Vec<FieldViolation>) -> i64 {
    page_size_within(raw, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, violations)
}

/// As [`page_size`], for a list with its own default and largest page (rollouts, each carrying its copies).
pub fn page_size_within(raw: i32, default: i64, max: i32, violations: &mut Vec<FieldViolation>) -> i64 {
    match raw {
        0 => default,
        n if (1..=max).contains(&n) => i64::from(n),
        _ => {
            violations.push(FieldViolation::new("page_size", format!("must be 0 (default) to {max}")));
            default
        }
    }
}

/// A list request's `page_token` (empty means the first page), decoded by the list's own token type, or a
/// violation naming the field.
pub fn page_token<T>(
    raw: &str,
    decode: impl FnOnce(&str) -> Option<T>,
    violations: &mut Vec<FieldViolation>,
) -> Option<T> {
    if raw.is_empty() {
        return None;
    }
    let token = decode(raw);
    if token.is_none() {
        violations.push(FieldViolation::new("page_token", "is not a token this service issued"));
    }
    token
}

pub fn raw_copy_request(request: proto::CopyModelVersionRequest) -> RawCopyRequest {
    RawCopyRequest {
        source_project_arn: request.source_project_arn,
        source_project_version_arn: request.source_project_version_arn,
        destination_project_arn: request.destination_project_arn,
        version_name: request.version_name,
        output_config: request
            .output_config
            .map(|o| RawOutputConfig { s3_bucket: o.s3_bucket, s3_key_prefix: o.s3_key_prefix }),
        tags: request.tags,
        kms_key_id: request.kms_key_id,
        idempotency_token: request.idempotency_token,
        delete_after: request.delete_after.map(|d| (d.seconds, d.nanos)),
    }
}

/// A refused request's fields for the audit log, each cut to a bounded length: what was sent, not all of it.
pub fn raw_audit_json(raw: &RawCopyRequest) -> serde_json::Value {
    const MAX_CHARS: usize = 2048;
    const MAX_TAGS: usize = 200;
    let cut = |s: &str| s.chars().take(MAX_CHARS).collect::<String>();
    serde_json::json!({
        "source_project_arn": cut(&raw.source_project_arn),
        "source_project_version_arn": cut(&raw.source_project_version_arn),
        "destination_project_arn": cut(&raw.destination_project_arn),
        "version_name": cut(&raw.version_name),
        "output_config": raw.output_config.as_ref().map(|o| serde_json::json!({
            "s3_bucket": cut(&o.s3_bucket),
            "s3_key_prefix": cut(&o.s3_key_prefix),
        })),
        "tags": raw.tags.iter().take(MAX_TAGS).map(|(k, v)| (cut(k), serde_json::Value::from(cut(v)))).collect::<serde_json::Map<_, _>>(),
        "tag_count": raw.tags.len(),
        "kms_key_id": raw.kms_key_id.as_deref().map(cut),
        "idempotency_token": cut(&raw.idempotency_token),
        "delete_after": raw.delete_after.map(|(seconds, nanos)| serde_json::json!({"seconds": seconds, "nanos": nanos})),
    })
}

/// A filter as sent, for the audit log.
pub fn filter_json(raw: Option<&proto::CopyFilter>) -> serde_json::Value {
    let Some(raw) = raw else {
        return serde_json::Value::Null;
    };
    serde_json::json!({
        "states": raw.states.iter().map(|s| enum_json(*s, proto::CopyState::as_str_name)).collect::<Vec<_>>(),
        "source_account_id": raw.source_account_id,
        "destination_account_id": raw.destination_account_id,
        "created_after": time_json(raw.created_after.as_ref()),
        "created_before": time_json(raw.created_before.as_ref()),
        "rollout_id": raw.rollout_id,
    })
}

/// A timestamp as sent, for the audit log: `seconds.nanoseconds`, exactly as given, even if it is not a valid time
/// (the record says what was asked, and the violation why it was refused).
pub fn time_json(time: Option<&Timestamp>) -> serde_json::Value {
    time.map_or(serde_json::Value::Null, |t| format!("{}.{:09}", t.seconds, t.nanos).into())
}

/// A protobuf enum value as sent, for the audit log: its name when `E` has one for it, else its number.
pub fn enum_json<E: TryFrom<i32>>(value: i32, name: impl Fn(&E) -> &'static str) -> String {
    E::try_from(value).map_or_else(|_| value.to_string(), |e| name(&e).to_owned())
}

pub fn copy_id(field: &str, raw: &str) -> Result<CopyId, Vec<FieldViolation>> {
    if raw.is_empty() {
        return Err(vec![FieldViolation::required(field)]);
    }
    CopyId::parse(raw).map_err(|e| vec![FieldViolation::from_error(field, e)])
}

pub fn state_to_proto(state: CopyState) -> proto::CopyState {
    match state {
        CopyState::Queued => proto::CopyState::Queued,
        CopyState::Submitting => proto::CopyState::Submitting,
        CopyState::Copying => proto::CopyState::Copying,
        CopyState::Succeeded => proto::CopyState::Succeeded,
        CopyState::Failed => proto::CopyState::Failed,
        CopyState::Cancelled => proto::CopyState::Cancelled,
        CopyState::Expired => proto::CopyState::Expired,
    }
}

fn state_from_proto(value: i32) -> Option<CopyState> {
    match proto::CopyState::try_from(value).ok()? {
        proto::CopyState::Unspecified => None,
        proto::CopyState::Queued => Some(CopyState::Queued),
        proto::CopyState::Submitting => Some(CopyState::Submitting),
        proto::CopyState::Copying => Some(CopyState::Copying),
        proto::CopyState::Succeeded => Some(CopyState::Succeeded),
        proto::CopyState::Failed => Some(CopyState::Failed),
        proto::CopyState::Cancelled => Some(CopyState::Cancelled),
        proto::CopyState::Expired => Some(CopyState::Expired),
    }
}

pub fn timestamp(time: DateTime<Utc>) -> Timestamp {
    Timestamp { seconds: time.timestamp(), nanos: time.timestamp_subsec_nanos() as i32 }
}

/// A time range `[after, before)` as a request sends it, each bound optional. `field` names both bounds without
/// their `_after` / `_before` (`"filter.created"`, `"occurred"`): violations name `{field}_after` or
/// `{field}_before`, and a range that does not move forward is `{field}_before`'s fault.
pub fn time_range(
    field: &str,
    after: Option<&Timestamp>,
    before: Option<&Timestamp>,
    violations: &mut Vec<FieldViolation>,
) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let (after_field, before_field) = (format!("{field}_after"), format!("{field}_before"));
    let after = after.and_then(|t| time_from_proto(&after_field, t, violations));
    let before = before.and_then(|t| time_from_proto(&before_field, t, violations));
    if let (Some(a), Some(b)) = (after, before) {
        if a >= b {
            let after_name = after_field.rsplit('.').next().unwrap_or(&after_field);
            violations.push(FieldViolation::new(before_field, format!("must be later than {after_name}")));
        }
    }
    (after, before)
}

pub fn time_from_proto(field: &str, ts: &Timestamp, violations: &mut Vec<FieldViolation>) -> Option<DateTime<Utc>> {
    let time = u32::try_from(ts.nanos).ok().and_then(|nanos| DateTime::from_timestamp(ts.seconds, nanos));
    if time.is_none() {
        violations.push(FieldViolation::new(field, "is not a valid timestamp"));
    }
    time
}

/// A filter whose every field was understood, or the violations, named under `prefix` (e.g. "filter").
pub fn filter(prefix: &str, raw: Option<proto::CopyFilter>) -> Result<CopyFilter, Vec<FieldViolation>> {
    let Some(raw) = raw else {
        return Ok(CopyFilter::default());
    };
    let mut violations = Vec::new();
    let mut states = Vec::new();
    for (i, value) in raw.states.iter().enumerate() {
        match state_from_proto(*value) {
            Some(state) if !states.contains(&state) => states.push(state),
            Some(_) => {}
            None => violations.push(FieldViolation::new(format!("{prefix}.states[{i}]"), "is not a copy state")),
        }
    }
    let mut account = |name: &str, value: &str| {
        if value.is_empty() {
            return None;
        }
        AccountId::parse(value)
            .map_err(|e| violations.push(FieldViolation::from_error(format!("{prefix}.{name}"), e)))
            .ok()
    };
    let source_account = account("source_account_id", &raw.source_account_id);
    let destination_account = account("destination_account_id", &raw.destination_account_id);
    let (created_after, created_before) = time_range(
        &format!("{prefix}.created"),
        raw.created_after.as_ref(),
        raw.created_before.as_ref(),
        &mut violations,
    );
    let rollout = if raw.rollout_id.is_empty() {
        None
    } else {
        RolloutId::parse(&raw.rollout_id)
            .map_err(|e| violations.push(FieldViolation::from_error(format!("{prefix}.rollout_id"), e)))
            .ok()
    };
    if !violations.is_empty() {
        return Err(violations);
    }
    Ok(CopyFilter { states, source_account, destination_account, created_after, created_before, rollout })
}

pub fn copy(job: &CopyJob) -> proto::Copy {
    let report = &job.report;
    let error = aws_error(&report.error_code, &report.error_message);
    let expiry_error = aws_error(&report.expiry_error_code, &report.expiry_error_message);
    let request = &job.request;
    let text = |value: &str| value.to_owned();
    proto::Copy {
        copy_id: job.id.to_string(),
        state: state_to_proto(job.state) as i32,
        principal: job.principal.clone(),
        idempotency_token: request.idempotency_token().map_or_else(String::new, |t| text(t.as_str())),
        source_project_arn: text(request.source_project().as_str()),
        source_project_version_arn: text(request.source_version().as_str()),
        destination_project_arn: text(request.destination_project().as_str()),
        version_name: text(request.version_name().as_str()),
        output_config: Some(proto::OutputConfig {
            s3_bucket: text(request.output_config().bucket().as_str()),
            s3_key_prefix: text(request.output_config().key_prefix().as_str()),
        }),
        tags: request.tags().to_string_map().into_iter().collect(),
        kms_key_id: request.kms_key_id().map(|k| text(k.as_str())),
        rekognition_status: report.rekognition_status.as_ref().map_or_else(String::new, |s| text(s.as_str())),
        rekognition_status_message: report.rekognition_status_message.clone().unwrap_or_default(),
        destination_project_version_arn: report
            .destination_version_arn
            .as_ref()
            .map_or_else(String::new, |a| text(a.as_str())),
        error,
        created_at: Some(timestamp(job.created_at)),
        updated_at: Some(timestamp(job.updated_at)),
        submitted_at: job.submitted_at.map(timestamp),
        completed_at: job.completed_at.map(timestamp),
        attempts: job.attempts,
        audit_event_id: job.audit_id.map_or(0, |id| id.max(0) as u64),
        delete_after: request.delete_after().map(|d| prost_types::Duration { seconds: d.as_secs() as i64, nanos: 0 }),
        expires_at: job.expires_at.map(timestamp),
        expiry_error,
        rollout_id: job.rollout.map(|id| id.to_string()).unwrap_or_default(),
    }
}

/// What preflight concluded, as the API answers it (a failure is an error, never an answer).
pub fn preflight(verdict: &crate::preflight::Verdict) -> proto::Preflight {
    use crate::preflight::Verdict;
    use proto::preflight::Outcome;
    let (outcome, note) = match verdict {
        Verdict::Passed { note } => (Outcome::Passed, note.clone().unwrap_or_default()),
        Verdict::Skipped { note } => (Outcome::Skipped, note.clone()),
        Verdict::Failed(_) => (Outcome::Unspecified, String::new()),
    };
    proto::Preflight { outcome: outcome as i32, note }
}

/// An AWS error as the API shows it, if either half was recorded.
fn aws_error(code: &Option<String>, message: &Option<String>) -> Option<proto::AwsError> {
    match (code, message) {
        (None, None) => None,
        (code, message) => Some(proto::AwsError {
            code: code.clone().unwrap_or_default(),
            message: message.clone().unwrap_or_default(),
        }),
    }
}

pub fn event(item: &WatchItem) -> proto::CopyEvent {
    proto::CopyEvent {
        sequence: item.seq.max(0) as u64,
        copy: Some(copy(&item.job)),
        previous_state: item.previous.map(state_to_proto).unwrap_or(proto::CopyState::Unspecified) as i32,
        occurred_at: Some(timestamp(item.occurred_at)),
        snapshot: item.snapshot,
    }
}

/// A change as every stream sends it, encoded once (see `proto::encoded`).
pub fn encoded_event(item: &WatchItem) -> EncodedCopyEvent {
    EncodedCopyEvent::new(&event(item))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_survives_the_round_trip() {
        for state in CopyState::ALL {
            assert_eq!(state_from_proto(state_to_proto(state) as i32), Some(state));
        }
        assert_eq!(state_from_proto(0), None);
        assert_eq!(state_from_proto(99), None);
    }

    #[test]
    fn filter_reports_each_bad_field() {
        let raw = proto::CopyFilter {
            states: vec![0, proto::CopyState::Queued as i32],
            source_account_id: "12".into(),
            destination_account_id: "222222222222".into(),
            created_after: Some(Timestamp { seconds: 100, nanos: 0 }),
            created_before: Some(Timestamp { seconds: 50, nanos: 0 }),
            rollout_id: "r-1".into(),
        };
        let fields: Vec<String> = filter("filter", Some(raw)).unwrap_err().into_iter().map(|v| v.field).collect();
        assert_eq!(
            fields,
            ["filter.states[0]", "filter.source_account_id", "filter.created_before", "filter.rollout_id"]
        );
    }

    #[test]
    fn a_good_filter_is_understood() {
        let raw = proto::CopyFilter {
            states: vec![proto::CopyState::Failed as i32, proto::CopyState::Failed as i32],
            destination_account_id: "222222222222".into(),
            ..Default::default()
        };
        let filter = filter("filter", Some(raw)).unwrap();
        assert_eq!(filter.states, [CopyState::Failed]);
        assert_eq!(filter.destination_account.unwrap().as_str(), "222222222222");
    }

    #[test]
    fn negative_nanos_are_not_a_time() {
        let raw = proto::CopyFilter { created_after: Some(Timestamp { seconds: 1, nanos: -1 }), ..Default::default() };
        assert_eq!(filter("f", Some(raw)).unwrap_err()[0].field, "f.created_after");
    }

    #[test]
    fn a_time_range_names_its_fields_as_the_request_does() {
        let (later, earlier) = (Timestamp { seconds: 100, nanos: 0 }, Timestamp { seconds: 50, nanos: 0 });
        for (field, after, before) in [
            ("filter.created", "filter.created_after", "filter.created_before"),
            ("occurred", "occurred_after", "occurred_before"),
        ] {
            let mut violations = Vec::new();
            assert_eq!(time_range(field, Some(&later), Some(&earlier), &mut violations).0.unwrap().timestamp(), 100);
            let bad = Timestamp { seconds: 1, nanos: -1 };
            assert_eq!(time_range(field, Some(&bad), None, &mut violations), (None, None));
            let named: Vec<(&str, &str)> =
                violations.iter().map(|v| (v.field.as_str(), v.description.as_str())).collect();
            let order = format!("must be later than {}", after.rsplit('.').next().unwrap());
            assert_eq!(named, [(before, order.as_str()), (after, "is not a valid timestamp")]);
        }
    }

    #[test]
    fn what_was_sent_is_recorded_as_sent() {
        assert_eq!(time_json(Some(&Timestamp { seconds: 5, nanos: 7 })), "5.000000007");
        assert_eq!(time_json(None), serde_json::Value::Null);
        assert_eq!(enum_json(proto::CopyState::Failed as i32, proto::CopyState::as_str_name), "COPY_STATE_FAILED");
        assert_eq!(enum_json(99, proto::CopyState::as_str_name), "99");
    }
}
