//! How copies, events and errors look on the terminal and to scripts.
//!
//! Text is for people: one line per copy in a list, one line per event in a watch, a short block for a single copy.
//! JSON is for scripts: one object per line, fields named as in the proto (snake_case), states by their command-line
//! names (`queued`, …) so a script can feed them back to `--state`, times in RFC 3339, absent values as `null`.
//! Every function here is pure, so tests check the exact output.

use std::fmt::Write as _;
use std::io::{self, Write};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use tonic::{Code, Status};
use tonic_types::StatusExt;

use super::OutputFormat;
use crate::proto::{AwsError, Copy, CopyEvent, CopyState};

/// A state's command-line name (`queued`, …); `unknown(N)` for a number this client does not know.
pub fn state_name(state: i32) -> String {
    match CopyState::try_from(state) {
        Ok(CopyState::Unspecified) => "unspecified".to_owned(),
        Ok(CopyState::Queued) => "queued".to_owned(),
        Ok(CopyState::Submitting) => "submitting".to_owned(),
        Ok(CopyState::Copying) => "copying".to_owned(),
        Ok(CopyState::Succeeded) => "succeeded".to_owned(),
        Ok(CopyState::Failed) => "failed".to_owned(),
        Ok(CopyState::Cancelled) => "cancelled".to_owned(),
        Ok(CopyState::Expired) => "expired".to_owned(),
        Err(_) => format!("unknown({state})"),
    }
}

/// A wire time as a date-time, if it is set and valid.
fn to_datetime(time: Option<&prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    let time = time?;
    DateTime::from_timestamp(time.seconds, u32::try_from(time.nanos).ok()?)
}

/// RFC 3339 to the second, for people; `-` when unset.
pub fn time_text(time: Option<&prost_types::Timestamp>) -> String {
    match to_datetime(time) {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Secs, true),
        None => "-".to_owned(),
    }
}

/// RFC 3339 with the fraction the server sent, for scripts; `null` when unset.
fn time_json(time: Option<&prost_types::Timestamp>) -> Value {
    match to_datetime(time) {
        Some(t) => Value::String(t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
        None => Value::Null,
    }
}

/// An ARN without its `arn:<partition>:rekognition:<region>:` prefix: the account and the resource is what tells
/// copies apart in a list. Anything that does not look like an ARN is returned whole.
pub fn short_arn(arn: &str) -> &str {
    if !arn.starts_with("arn:") {
        return arn;
    }
    // arn:partition:service:region:account:resource — skip the first four fields.
    let mut rest = arn;
    for _ in 0..4 {
        match rest.split_once(':') {
            Some((_, after)) => rest = after,
            None => return arn,
        }
    }
    rest
}

fn aws_error_text(error: &AwsError) -> String {
    match (error.code.is_empty(), error.message.is_empty()) {
        (false, false) => format!("{}: {}", error.code, error.message),
        (false, true) => error.code.clone(),
        (true, _) => error.message.clone(),
    }
}

/// One line for a list: id, state, created, source version → destination project, version name.
pub fn copy_line(copy: &Copy) -> String {
    format!(
        "{}  {:<10}  {}  {} → {}  {}",
        copy.copy_id,
        state_name(copy.state),
        time_text(copy.created_at.as_ref()),
        short_arn(&copy.source_project_version_arn),
        short_arn(&copy.destination_project_arn),
        copy.version_name,
    )
}

/// A block of `label  value` lines with everything the server said about one copy; empty fields are left out.
pub fn copy_details(copy: &Copy) -> String {
    let mut rows: Vec<(&str, String)> = vec![
        ("copy", copy.copy_id.clone()),
        ("state", state_name(copy.state)),
        ("principal", copy.principal.clone()),
        ("source", copy.source_project_version_arn.clone()),
        ("source project", copy.source_project_arn.clone()),
        ("destination", copy.destination_project_arn.clone()),
        ("version name", copy.version_name.clone()),
    ];
    if let Some(output) = &copy.output_config {
        rows.push(("output", format!("s3://{}/{}", output.s3_bucket, output.s3_key_prefix)));
    }
    let tags: Vec<String> = copy.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
    rows.push(("tags", tags.join(", ")));
    rows.push(("kms key", copy.kms_key_id.clone().unwrap_or_default()));
    rows.push(("idempotency", copy.idempotency_token.clone()));
    let rekognition = match (copy.rekognition_status.is_empty(), copy.rekognition_status_message.is_empty()) {
        (_, true) => copy.rekognition_status.clone(),
        (true, false) => copy.rekognition_status_message.clone(),
        (false, false) => format!("{}: {}", copy.rekognition_status, copy.rekognition_status_message),
    };
    rows.push(("rekognition", rekognition));
    rows.push(("new version", copy.destination_project_version_arn.clone()));
    rows.push(("error", copy.error.as_ref().map(aws_error_text).unwrap_or_default()));
    rows.push(("delete after", copy.delete_after.map(|d| format!("{}s", d.seconds)).unwrap_or_default()));
    rows.push(("not deleted", copy.expiry_error.as_ref().map(aws_error_text).unwrap_or_default()));
    for (label, time) in [
        ("created", &copy.created_at),
        ("updated", &copy.updated_at),
        ("submitted", &copy.submitted_at),
        ("completed", &copy.completed_at),
        ("expires", &copy.expires_at),
    ] {
        if time.is_some() {
            rows.push((label, time_text(time.as_ref())));
        }
    }
    if copy.attempts > 0 {
        rows.push(("attempts", copy.attempts.to_string()));
    }

    let mut text = String::new();
    for (label, value) in rows.iter().filter(|(_, value)| !value.is_empty()) {
        // Writing to a String cannot fail.
        let _ = writeln!(text, "{label:<14} {value}");
    }
    text
}

/// One line per event: time, sequence, copy id, transition, then what Rekognition said, if anything.
pub fn event_line(event: &CopyEvent) -> String {
    let default_copy = Copy::default();
    let copy = event.copy.as_ref().unwrap_or(&default_copy);
    let new_state = state_name(copy.state);
    let transition = if event.snapshot {
        format!("{new_state} (current)")
    } else if event.previous_state == CopyState::Unspecified as i32 {
        format!("→ {new_state}")
    } else {
        format!("{} → {new_state}", state_name(event.previous_state))
    };
    let mut line =
        format!("{}  #{}  {}  {}", time_text(event.occurred_at.as_ref()), event.sequence, copy.copy_id, transition);
    // The status message too: a change of it alone (copying → copying) is an event, and the line should say why.
    let message = if copy.rekognition_status_message.is_empty() {
        String::new()
    } else {
        format!("({})", copy.rekognition_status_message)
    };
    for extra in [&copy.rekognition_status, &message, &copy.destination_project_version_arn] {
        if !extra.is_empty() {
            line.push_str("  ");
            line.push_str(extra);
        }
    }
    if let Some(error) = &copy.error {
        line.push_str("  error: ");
        line.push_str(&aws_error_text(error));
    }
    line
}

/// A copy as one JSON object.
pub fn copy_json(copy: &Copy) -> Value {
    json!({
        "copy_id": copy.copy_id,
        "state": state_name(copy.state),
        "principal": copy.principal,
        "idempotency_token": copy.idempotency_token,
        "source_project_arn": copy.source_project_arn,
        "source_project_version_arn": copy.source_project_version_arn,
        "destination_project_arn": copy.destination_project_arn,
        "version_name": copy.version_name,
        "output_config": copy.output_config.as_ref().map(|o| json!({
            "s3_bucket": o.s3_bucket,
            "s3_key_prefix": o.s3_key_prefix,
        })),
        "tags": copy.tags,
        "kms_key_id": copy.kms_key_id,
        "rekognition_status": copy.rekognition_status,
        "rekognition_status_message": copy.rekognition_status_message,
        "destination_project_version_arn": copy.destination_project_version_arn,
        "error": copy.error.as_ref().map(|e| json!({ "code": e.code, "message": e.message })),
        "created_at": time_json(copy.created_at.as_ref()),
        "updated_at": time_json(copy.updated_at.as_ref()),
        "submitted_at": time_json(copy.submitted_at.as_ref()),
        "completed_at": time_json(copy.completed_at.as_ref()),
        "attempts": copy.attempts,
        "delete_after_seconds": copy.delete_after.map(|d| d.seconds),
        "expires_at": time_json(copy.expires_at.as_ref()),
        "expiry_error": copy.expiry_error.as_ref().map(|e| json!({ "code": e.code, "message": e.message })),
    })
}

/// An event as one JSON object, with the copy nested as in [`copy_json`].
pub fn event_json(event: &CopyEvent) -> Value {
    json!({
        "sequence": event.sequence,
        "occurred_at": time_json(event.occurred_at.as_ref()),
        "snapshot": event.snapshot,
        "previous_state": state_name(event.previous_state),
        "copy": event.copy.as_ref().map(copy_json),
    })
}

/// Prints one copy: the [`copy_details`] block, or one [`copy_json`] line.
pub fn write_copy(out: &mut impl Write, copy: &Copy, format: OutputFormat) -> io::Result<()> {
    match format {
        OutputFormat::Text => write!(out, "{}", copy_details(copy))?,
        OutputFormat::Json => writeln!(out, "{}", copy_json(copy))?,
    }
    out.flush()
}

/// Prints one event as one line, flushed at once: a watch is read as it happens.
pub fn write_event(out: &mut impl Write, event: &CopyEvent, format: OutputFormat) -> io::Result<()> {
    match format {
        OutputFormat::Text => writeln!(out, "{}", event_line(event))?,
        OutputFormat::Json => writeln!(out, "{}", event_json(event))?,
    }
    out.flush()
}

/// The canonical gRPC name of a status code, as other gRPC tools print it.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// A gRPC status: `CODE: message`, then one indented line per bad field or failed precondition the server named.
pub fn status_text(status: &Status) -> String {
    let mut text = format!("{}: {}", code_name(status.code()), status.message());
    let details = status.get_error_details();
    if let Some(bad_request) = details.bad_request() {
        for violation in &bad_request.field_violations {
            let _ = write!(text, "\n  {}: {}", violation.field, violation.description);
        }
    }
    if let Some(failure) = details.precondition_failure() {
        for violation in &failure.violations {
            let _ = write!(text, "\n  {}", violation.description);
        }
    }
    text
}

/// An error for standard error: the context chain as `a: b: c`, with a gRPC status in the chain shown by
/// [`status_text`] rather than by its unwieldy `Display`.
pub fn error_report(error: &anyhow::Error) -> String {
    let mut parts = Vec::new();
    for cause in error.chain() {
        if let Some(status) = cause.downcast_ref::<Status>() {
            parts.push(status_text(status));
            break;
        }
        let text = cause.to_string();
        // Transport errors often wrap an error that prints the same text; say it once.
        if parts.last() != Some(&text) {
            parts.push(text);
        }
    }
    format!("error: {}", parts.join(": "))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use tonic_types::{ErrorDetails, FieldViolation};

    use super::*;
    use crate::proto::OutputConfig;

    const SOURCE: &str = "arn:aws:rekognition:us-east-1:111122223333:project/cats/version/v1/1690000000000";
    const DESTINATION: &str = "arn:aws:rekognition:us-east-1:444455556666:project/dogs/1690000000001";

    fn at(seconds: i64) -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp { seconds, nanos: 0 })
    }

    fn sample_copy() -> Copy {
        Copy {
            copy_id: "0190-abc".into(),
            state: CopyState::Copying as i32,
            principal: "alice".into(),
            source_project_arn: "arn:aws:rekognition:us-east-1:111122223333:project/cats/1".into(),
            source_project_version_arn: SOURCE.into(),
            destination_project_arn: DESTINATION.into(),
            version_name: "cats-v1".into(),
            output_config: Some(OutputConfig { s3_bucket: "bucket".into(), s3_key_prefix: "out/".into() }),
            tags: BTreeMap::from([("team".into(), "vision".into())]),
            rekognition_status: "COPYING_IN_PROGRESS".into(),
            // 2024-05-01T12:00:00Z
            created_at: at(1_714_564_800),
            attempts: 1,
            ..Copy::default()
        }
    }

    #[test]
    fn state_names_match_the_command_line() {
        assert_eq!(state_name(CopyState::Queued as i32), "queued");
        assert_eq!(state_name(CopyState::Cancelled as i32), "cancelled");
        assert_eq!(state_name(42), "unknown(42)");
        // Every name this client prints is one `--state` accepts back.
        use clap::ValueEnum;
        for arg in super::super::StateArg::value_variants() {
            let name = state_name(CopyState::from(*arg) as i32);
            assert_eq!(super::super::StateArg::from_str(&name, false), Ok(*arg));
        }
    }

    #[test]
    fn short_arn_drops_partition_service_and_region() {
        assert_eq!(short_arn(SOURCE), "111122223333:project/cats/version/v1/1690000000000");
        assert_eq!(short_arn("not-an-arn"), "not-an-arn");
        assert_eq!(short_arn("arn:aws:too:short"), "arn:aws:too:short");
    }

    #[test]
    fn times_are_rfc3339() {
        assert_eq!(time_text(at(1_714_564_800).as_ref()), "2024-05-01T12:00:00Z");
        assert_eq!(time_text(None), "-");
        let precise = prost_types::Timestamp { seconds: 1_714_564_800, nanos: 250_000_000 };
        assert_eq!(time_json(Some(&precise)), json!("2024-05-01T12:00:00.250Z"));
        let invalid = prost_types::Timestamp { seconds: 0, nanos: -1 };
        assert_eq!(time_json(Some(&invalid)), Value::Null);
    }

    #[test]
    fn copy_line_is_one_compact_line() {
        let line = copy_line(&sample_copy());
        assert_eq!(
            line,
            "0190-abc  copying     2024-05-01T12:00:00Z  \
             111122223333:project/cats/version/v1/1690000000000 → \
             444455556666:project/dogs/1690000000001  cats-v1"
        );
    }

    #[test]
    fn copy_details_show_set_fields_only() {
        let text = copy_details(&sample_copy());
        assert!(text.contains("state          copying\n"), "{text}");
        assert!(text.contains(&format!("source         {SOURCE}\n")), "{text}");
        assert!(text.contains("output         s3://bucket/out/\n"), "{text}");
        assert!(text.contains("tags           team=vision\n"), "{text}");
        assert!(text.contains("rekognition    COPYING_IN_PROGRESS\n"), "{text}");
        assert!(text.contains("created        2024-05-01T12:00:00Z\n"), "{text}");
        assert!(!text.contains("error"), "{text}");
        assert!(!text.contains("completed"), "{text}");
        assert!(!text.contains("kms key"), "{text}");
    }

    #[test]
    fn copy_details_show_the_error_of_a_failed_copy() {
        let copy = Copy {
            state: CopyState::Failed as i32,
            error: Some(AwsError { code: "ResourceNotFoundException".into(), message: "no such project".into() }),
            ..sample_copy()
        };
        let text = copy_details(&copy);
        assert!(text.contains("error          ResourceNotFoundException: no such project\n"), "{text}");
    }

    #[test]
    fn copy_details_show_when_a_copy_expires_and_why_it_was_not_deleted() {
        let copy = Copy {
            state: CopyState::Succeeded as i32,
            delete_after: Some(prost_types::Duration { seconds: 604_800, nanos: 0 }),
            // 2024-05-08T12:00:00Z
            expires_at: at(1_715_169_600),
            expiry_error: Some(AwsError { code: "ResourceInUseException".into(), message: "RUNNING".into() }),
            ..sample_copy()
        };
        let text = copy_details(&copy);
        assert!(
            text.contains(
                "delete after   604800s
"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "expires        2024-05-08T12:00:00Z
"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "not deleted    ResourceInUseException: RUNNING
"
            ),
            "{text}"
        );
        let json = copy_json(&copy);
        assert_eq!(json["delete_after_seconds"], 604_800);
        assert_eq!(json["expires_at"], "2024-05-08T12:00:00Z");
        assert_eq!(json["expiry_error"]["code"], "ResourceInUseException");
        assert_eq!(state_name(CopyState::Expired as i32), "expired");
    }

    #[test]
    fn event_line_shows_the_transition() {
        let event = CopyEvent {
            sequence: 42,
            copy: Some(Copy { destination_project_version_arn: "arn:dest-version".into(), ..sample_copy() }),
            previous_state: CopyState::Submitting as i32,
            occurred_at: at(1_714_564_860),
            snapshot: false,
        };
        assert_eq!(
            event_line(&event),
            "2024-05-01T12:01:00Z  #42  0190-abc  submitting → copying  COPYING_IN_PROGRESS  arn:dest-version"
        );
    }

    #[test]
    fn event_line_says_what_changed_when_only_the_status_message_did() {
        let event = CopyEvent {
            sequence: 43,
            copy: Some(Copy { rekognition_status_message: "Copy in progress".into(), ..sample_copy() }),
            previous_state: CopyState::Copying as i32,
            occurred_at: at(1_714_564_860),
            snapshot: false,
        };
        assert_eq!(
            event_line(&event),
            "2024-05-01T12:01:00Z  #43  0190-abc  copying → copying  COPYING_IN_PROGRESS  (Copy in progress)"
        );
    }

    #[test]
    fn event_line_marks_snapshots_creations_and_errors() {
        let snapshot = CopyEvent {
            sequence: 0,
            copy: Some(sample_copy()),
            snapshot: true,
            occurred_at: at(1_714_564_800),
            ..CopyEvent::default()
        };
        assert!(event_line(&snapshot).contains("#0  0190-abc  copying (current)"));

        let created = CopyEvent {
            sequence: 7,
            copy: Some(Copy { state: CopyState::Queued as i32, rekognition_status: String::new(), ..sample_copy() }),
            ..CopyEvent::default()
        };
        assert_eq!(event_line(&created), "-  #7  0190-abc  → queued");

        let failed = CopyEvent {
            sequence: 9,
            previous_state: CopyState::Copying as i32,
            copy: Some(Copy {
                state: CopyState::Failed as i32,
                rekognition_status: "COPYING_FAILED".into(),
                error: Some(AwsError { code: String::new(), message: "bucket not writable".into() }),
                ..sample_copy()
            }),
            ..CopyEvent::default()
        };
        assert!(event_line(&failed).ends_with("copying → failed  COPYING_FAILED  error: bucket not writable"));
    }

    #[test]
    fn copy_json_uses_proto_names_and_nulls() {
        let value = copy_json(&sample_copy());
        assert_eq!(value["copy_id"], "0190-abc");
        assert_eq!(value["state"], "copying");
        assert_eq!(value["output_config"]["s3_bucket"], "bucket");
        assert_eq!(value["tags"]["team"], "vision");
        assert_eq!(value["created_at"], "2024-05-01T12:00:00Z");
        assert_eq!(value["completed_at"], Value::Null);
        assert_eq!(value["kms_key_id"], Value::Null);
        assert_eq!(value["error"], Value::Null);
        assert_eq!(value["attempts"], 1);
    }

    #[test]
    fn event_json_nests_the_copy() {
        let event = CopyEvent {
            sequence: 3,
            copy: Some(sample_copy()),
            previous_state: CopyState::Submitting as i32,
            occurred_at: at(1_714_564_860),
            snapshot: false,
        };
        let value = event_json(&event);
        assert_eq!(value["sequence"], 3);
        assert_eq!(value["previous_state"], "submitting");
        assert_eq!(value["occurred_at"], "2024-05-01T12:01:00Z");
        assert_eq!(value["copy"]["state"], "copying");
        // One line per object: serde_json's compact form never contains a newline.
        assert!(!value.to_string().contains('\n'));
    }

    #[test]
    fn status_text_lists_field_violations() {
        let status = Status::with_error_details(
            Code::InvalidArgument,
            "request is invalid",
            ErrorDetails::with_bad_request(vec![
                FieldViolation::new("output_config.s3_bucket", "must be 3 to 255 characters"),
                FieldViolation::new("tags[\"aws:x\"]", "must not start with aws:"),
            ]),
        );
        assert_eq!(
            status_text(&status),
            "INVALID_ARGUMENT: request is invalid\n  \
             output_config.s3_bucket: must be 3 to 255 characters\n  \
             tags[\"aws:x\"]: must not start with aws:"
        );
    }

    #[test]
    fn error_report_keeps_context_and_formats_the_status() {
        let error = anyhow::Error::new(Status::not_found("no copy 42")).context("GetCopy");
        assert_eq!(error_report(&error), "error: GetCopy: NOT_FOUND: no copy 42");
        let plain = anyhow::anyhow!("boom").context("while listing");
        assert_eq!(error_report(&plain), "error: while listing: boom");
        let repeated = anyhow::anyhow!("refused").context("refused").context("connect");
        assert_eq!(error_report(&repeated), "error: connect: refused");
    }
}
