//! CreateRollout, GetRollout, ListRollouts, CancelRollout: a rollout is a request for many ordinary copies, so it is
//! authorized, shown and cancelled copy by copy with the copies' own actions (no action of its own for policies to
//! learn): creating one is a CopyModelVersion per destination, reading one shows the copies the caller may see
//! (GetCopy, ListCopies), cancelling one is a CancelCopy per queued copy.

use std::collections::BTreeMap;

use serde_json::json;

use super::context::Call;
use super::convert;
use super::ApiError;
use crate::auth::{Action, Resource, Visibility};
use crate::domain::{
    AccountId, FieldViolation, RawOutputConfig, RawRolloutDefaults, RawRolloutDestination, RawRolloutRequest,
    RolloutId, RolloutRequest,
};
use crate::proto;
use crate::rekognition::AccountLimits;
use crate::store::rollouts::{self, CreateRolloutOutcome, RolloutCounts, RolloutState, RolloutWithCopies};
use crate::store::{CopyJob, PageToken, Store};
use crate::telemetry::TraceParent;

const MAX_CANCEL_REASON: usize = 1024;
const DEFAULT_PAGE_SIZE: i64 = 20;
const MAX_PAGE_SIZE: i32 = 100;

fn raw_output(output: Option<proto::OutputConfig>) -> Option<RawOutputConfig> {
    output.map(|o| RawOutputConfig { s3_bucket: o.s3_bucket, s3_key_prefix: o.s3_key_prefix })
}

pub fn raw_request(request: proto::CreateRolloutRequest) -> RawRolloutRequest {
    let defaults = request.defaults.unwrap_or_default();
    RawRolloutRequest {
        source_project_arn: request.source_project_arn,
        source_project_version_arn: request.source_project_version_arn,
        defaults: RawRolloutDefaults {
            version_name: defaults.version_name,
            output_config: raw_output(defaults.output_config),
            tags: defaults.tags,
            kms_key_id: defaults.kms_key_id,
        },
        destinations: request
            .destinations
            .into_iter()
            .map(|d| RawRolloutDestination {
                destination_project_arn: d.destination_project_arn,
                version_name: d.version_name,
                output_config: raw_output(d.output_config),
                tags: d.tags,
                kms_key_id: d.kms_key_id,
            })
            .collect(),
        idempotency_token: request.idempotency_token,
        delete_after: request.delete_after.map(|d| (d.seconds, d.nanos)),
    }
}

/// A refused request's key fields for the audit log, cut to a bounded size.
fn raw_audit_json(raw: &RawRolloutRequest) -> serde_json::Value {
    let cut = |s: &str| crate::audit::slot::cut(s, 2048);
    json!({
        "source_project_arn": cut(&raw.source_project_arn),
        "source_project_version_arn": cut(&raw.source_project_version_arn),
        "destinations": raw.destinations.iter().take(RolloutRequest::MAX_DESTINATIONS + 1)
            .map(|d| json!({"destination_project_arn": cut(&d.destination_project_arn), "version_name": cut(&d.version_name)}))
            .collect::<Vec<_>>(),
        "destination_count": raw.destinations.len(),
        "idempotency_token": cut(&raw.idempotency_token),
    })
}

pub async fn create(
    store: &Store,
    accounts: &BTreeMap<AccountId, AccountLimits>,
    checker: &crate::preflight::Preflight,
    call: &Call,
    raw: proto::CreateRolloutRequest,
    trace: Option<TraceParent>,
) -> Result<proto::CreateRolloutResponse, ApiError> {
    let raw = raw_request(raw);
    call.audit.set_request(raw_audit_json(&raw), None);
    let request = RolloutRequest::parse(raw).map_err(ApiError::Invalid)?;
    call.audit.set_request(request.to_json(), Some(request.digest().to_vec()));
    let unknown: Vec<FieldViolation> = request
        .copies()
        .iter()
        .enumerate()
        .filter(|(_, copy)| !accounts.contains_key(copy.destination_account()))
        .map(|(i, copy)| {
            let why = format!("account {} is not one this service copies into", copy.destination_account());
            FieldViolation::new(format!("destinations[{i}].destination_project_arn"), why)
        })
        .collect();
    if !unknown.is_empty() {
        return Err(ApiError::Invalid(unknown));
    }
    // Each destination on its own: one refused refuses the rollout, naming it.
    let principal = call.principal.id();
    let resources = request.copies().iter().map(|copy| Resource::requested_copy(copy, principal));
    call.authorize_each(Action::CopyModelVersion, resources).map_err(|(i, err)| match err {
        ApiError::PermissionDenied(why) => ApiError::PermissionDenied(format!(
            "destinations[{i}] ({}): {why}; the rollout was refused whole",
            request.copies()[i].destination_project()
        )),
        other => other,
    })?;
    let retry = async {
        match request.idempotency_token() {
            Some(token) => rollouts::token_used(store, principal, token.as_str()).await,
            None => Ok(false),
        }
    };
    let checked = super::service::preflight(checker, request.copies(), retry).await?;
    let checked_proto = convert::preflight(&checked);
    if !checked_proto.note.is_empty() {
        call.audit.set_reason(format!("preflight: {}", checked_proto.note));
    }
    let record = call.audit.finish(tonic::Code::Ok, None);
    let max_queued = |account: &AccountId| accounts.get(account).map_or(0, |limits| i64::from(limits.max_queued));
    let outcome = rollouts::create_with_audit(store, &request, principal, max_queued, record, trace.as_ref()).await?;
    let (rollout, replayed) = match outcome {
        CreateRolloutOutcome::Created(rollout) => (rollout, false),
        CreateRolloutOutcome::Replayed(rollout) => (rollout, true),
        CreateRolloutOutcome::TokenMismatch(existing) => {
            return Err(ApiError::RolloutIdempotencyMismatch { rollout_id: existing.id });
        }
        CreateRolloutOutcome::QueueFull { account, depth } => {
            let limits = accounts.get(&account).cloned().unwrap_or_default();
            return Err(ApiError::QueueFull { account, depth, retry_after: super::service::retry_after(&limits) });
        }
    };
    call.audit.mark_written();
    Ok(proto::CreateRolloutResponse {
        rollout: Some(rollout_proto(&rollout, |_| true)),
        replayed,
        preflight: Some(checked_proto),
    })
}

fn rollout_id(raw: &str) -> Result<RolloutId, ApiError> {
    if raw.is_empty() {
        return Err(ApiError::Invalid(vec![FieldViolation::required("rollout_id")]));
    }
    RolloutId::parse(raw).map_err(|e| ApiError::Invalid(vec![FieldViolation::from_error("rollout_id", e)]))
}

/// The rollout, if the caller may see any of its copies; NOT_FOUND (as for a rollout that does not exist) if not.
async fn visible(store: &Store, call: &Call, id: RolloutId) -> Result<(RolloutWithCopies, Visibility), ApiError> {
    let not_found = || ApiError::NotFound(format!("no rollout {id}"));
    let rollout = rollouts::get(store, id).await?.ok_or_else(not_found)?;
    let visibility = call.visibility(Action::GetCopy);
    if !rollout.copies.iter().any(|copy| visibility.sees(copy)) {
        call.audit.set_denied(format!("{} may see none of the copies of rollout {id}", call.principal.id()));
        return Err(not_found());
    }
    Ok((rollout, visibility))
}

pub async fn get(store: &Store, call: &Call, raw: proto::GetRolloutRequest) -> Result<proto::Rollout, ApiError> {
    call.audit.set_request(json!({ "rollout_id": raw.rollout_id }), None);
    let id = rollout_id(&raw.rollout_id)?;
    let (rollout, visibility) = visible(store, call, id).await?;
    Ok(rollout_proto(&rollout, |copy| visibility.sees(copy)))
}

pub async fn list(
    store: &Store,
    call: &Call,
    raw: proto::ListRolloutsRequest,
) -> Result<proto::ListRolloutsResponse, ApiError> {
    call.audit.set_request(json!({ "page_size": raw.page_size, "page_token": raw.page_token }), None);
    let mut violations = Vec::new();
    let page_size = convert::page_size_within(raw.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, &mut violations);
    let after = convert::page_token(&raw.page_token, PageToken::decode, &mut violations);
    if !violations.is_empty() {
        return Err(ApiError::Invalid(violations));
    }
    let mut page = rollouts::list(store, after, page_size + 1).await?;
    let more = page.len() as i64 > page_size;
    page.truncate(page_size as usize);
    let next_page_token = match page.last() {
        Some(last) if more => PageToken { created_at: last.rollout.created_at, id: last.rollout.id.as_uuid() }.encode(),
        _ => String::new(),
    };
    let visibility = call.visibility(Action::ListCopies);
    let rollouts = page
        .iter()
        .filter(|rollout| rollout.copies.iter().any(|copy| visibility.sees(copy)))
        .map(|rollout| rollout_proto(rollout, |copy| visibility.sees(copy)))
        .collect();
    Ok(proto::ListRolloutsResponse { rollouts, next_page_token })
}

pub async fn cancel(store: &Store, call: &Call, raw: proto::CancelRolloutRequest) -> Result<proto::Rollout, ApiError> {
    let reason: String = raw.reason.chars().take(MAX_CANCEL_REASON).collect();
    call.audit.set_request(json!({ "rollout_id": raw.rollout_id, "reason": reason }), None);
    if raw.reason.chars().count() > MAX_CANCEL_REASON {
        return Err(ApiError::invalid("reason", format!("must be at most {MAX_CANCEL_REASON} characters")));
    }
    let id = rollout_id(&raw.rollout_id)?;
    let (rollout, visibility) = visible(store, call, id).await?;
    let queued: Vec<&CopyJob> =
        rollout.copies.iter().filter(|copy| copy.state == crate::domain::CopyState::Queued).collect();
    for copy in &queued {
        call.authorize(Action::CancelCopy, &Resource::copy(copy)).map_err(|err| match err {
            ApiError::PermissionDenied(why) => {
                ApiError::PermissionDenied(format!("copy {} of rollout {id}: {why}; nothing was cancelled", copy.id))
            }
            other => other,
        })?;
    }
    let record = call.audit.finish(tonic::Code::Ok, None);
    let ids: Vec<_> = queued.iter().map(|copy| copy.id).collect();
    let reason = (!reason.is_empty()).then_some(reason.as_str());
    match rollouts::cancel_with_audit(store, id, &ids, reason, record).await? {
        Some(rollout) => {
            call.audit.mark_written();
            Ok(rollout_proto(&rollout, |copy| visibility.sees(copy)))
        }
        None => Err(ApiError::NotFound(format!("no rollout {id}"))),
    }
}

fn state_proto(state: RolloutState) -> proto::RolloutState {
    match state {
        RolloutState::Running => proto::RolloutState::Running,
        RolloutState::Succeeded => proto::RolloutState::Succeeded,
        RolloutState::PartiallyFailed => proto::RolloutState::PartiallyFailed,
        RolloutState::Failed => proto::RolloutState::Failed,
        RolloutState::Cancelled => proto::RolloutState::Cancelled,
    }
}

/// A rollout as the API shows it: counts and state over every copy, the copies `shown` lets the caller see.
pub fn rollout_proto(rollout: &RolloutWithCopies, shown: impl Fn(&CopyJob) -> bool) -> proto::Rollout {
    let counts = RolloutCounts::of(&rollout.copies);
    let r = &rollout.rollout;
    proto::Rollout {
        rollout_id: r.id.to_string(),
        state: state_proto(counts.state(r.cancelled_at.is_some())) as i32,
        principal: r.principal.clone(),
        idempotency_token: r.idempotency_token.clone().unwrap_or_default(),
        source_project_arn: r.source_project.to_string(),
        source_project_version_arn: r.source_version.to_string(),
        counts: Some(proto::RolloutCounts {
            total: counts.total(),
            queued: counts.queued,
            running: counts.running,
            succeeded: counts.succeeded,
            failed: counts.failed,
            cancelled: counts.cancelled,
            expired: counts.expired,
        }),
        copies: rollout.copies.iter().filter(|copy| shown(copy)).map(convert::copy).collect(),
        created_at: Some(convert::timestamp(r.created_at)),
        cancelled_at: r.cancelled_at.map(convert::timestamp),
        audit_event_id: r.audit_id.max(0) as u64,
        delete_after: r.delete_after.map(|d| prost_types::Duration { seconds: d.as_secs() as i64, nanos: 0 }),
    }
}
