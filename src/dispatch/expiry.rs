//! The expiry of a succeeded copy whose `delete_after` has passed: one DeleteProjectVersion, paced by the
//! destination account's own lane for it (`Gate::admit_delete`), and what came of it recorded on the copy with the
//! service's audit record of its own action.
//!
//! - Deleted (or already gone): the copy becomes EXPIRED.
//! - Refused (a running model: `ResourceInUseException`; a missing permission): the copy stays SUCCEEDED with the
//!   refusal in its `expiry_error`, and the deletion is tried again `expiry_retry_interval_ms` later. The service
//!   never stops a model to delete it: a running model serves someone, and whoever started it decides. The same
//!   refusal again is not recorded again (an event and an audit row an hour for a model left running for months
//!   would bury the first); a different one is.
//! - A transient error (throttled, a 5xx, no credentials right now): tried again after the longest backoff, unrecorded,
//!   as a deletion is never urgent.

use std::time::Duration;

use aws_sdk_rekognition::Client;
use tracing::{info, warn};

use super::gate::Ticket;
use super::Dispatcher;
use crate::domain::CopyState;
use crate::rekognition::delete::{self, Deleted};
use crate::rekognition::AwsCallError;
use crate::store::audit::{AuditRecord, Decision};
use crate::store::jobs::Claimed;
use crate::store::{jobs, Change, CopyJob, Report, StoreError};

/// The principal of the service's own actions in the audit log (with `authn` [`SERVICE_AUTHN`]).
pub const SERVICE_PRINCIPAL: &str = "modelcopy";
/// How the audit log tells the service's own actions from callers' (no authenticator produces it).
pub const SERVICE_AUTHN: &str = "service";
/// The action the audit log records for a deletion: the Rekognition operation made.
pub const DELETE_ACTION: &str = "DeleteProjectVersion";

/// What one expiry step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expiry {
    /// The version is deleted; the copy is EXPIRED.
    Expired,
    /// Rekognition refused; reported on the copy (or already was), tried again later.
    Refused { code: String },
    /// A transient error; tried again later, unrecorded.
    RetryLater { code: String },
    /// The claim was lost meanwhile: nothing written.
    NotOurs,
}

/// Deletes the claimed copy's version with the delete slot `ticket`, records what came of it, and gives the lease
/// back with when it is next due.
pub async fn expire(
    dispatcher: &Dispatcher,
    client: &Client,
    ticket: Ticket,
    claimed: Claimed,
) -> Result<Expiry, StoreError> {
    let Claimed { job, token } = claimed;
    let store = &dispatcher.store;
    let Some(version) = job.report.destination_version_arn.clone() else {
        // A copy succeeds only once Rekognition named its version; a row without one was mended by hand.
        warn!(copy_id = %job.id, "a succeeded copy without its version cannot be deleted; looked at again later");
        jobs::release(store, job.id, &token, dispatcher.settings.expiry_retry_interval()).await?;
        return Ok(Expiry::RetryLater { code: "NoVersionArn".into() });
    };
    let answer = ticket.call(delete::delete_version(client, &version)).await;
    let (expiry, due_in) = match answer {
        Ok(deleted) => {
            let (status, reason) = match &deleted {
                Deleted::Accepted(status) => (status.clone(), "delete_after passed: the copied version was deleted"),
                Deleted::AlreadyGone => (None, "delete_after passed: the copied version had already been deleted"),
            };
            let report = Report { rekognition_status: status, rekognition_status_message: None, ..Report::default() };
            let change = Change { report, detail: Some(reason.to_owned()), ..Change::to(CopyState::Expired) };
            let audit = record(&job, Decision::Allowed, tonic::Code::Ok, reason.to_owned(), &version);
            let written = jobs::record_with_audit(store, job.id, &change, &token, audit).await?;
            if written.is_some() {
                info!(copy_id = %job.id, arn = %version, "expired copy deleted");
            }
            (if written.is_some() { Expiry::Expired } else { Expiry::NotOurs }, Duration::ZERO)
        }
        Err(err) if err.is_permanent() && !err.is_credentials() => {
            let retry = dispatcher.settings.expiry_retry_interval();
            warn!(copy_id = %job.id, code = %err.code, message = %err.message, "deletion refused; tried again later");
            (refused(dispatcher, &job, &token, &err, &version, retry).await?, retry)
        }
        Err(err) => {
            let wait = Duration::from_millis(dispatcher.settings.backoff_max_ms);
            (Expiry::RetryLater { code: err.code }, wait)
        }
    };
    jobs::release(store, job.id, &token, due_in).await?;
    Ok(expiry)
}

/// Records Rekognition's refusal on the copy, with its audit record, unless the copy already shows this one.
async fn refused(
    dispatcher: &Dispatcher,
    job: &CopyJob,
    token: &jobs::LeaseToken,
    err: &AwsCallError,
    version: &crate::domain::ProjectVersionArn,
    retry: Duration,
) -> Result<Expiry, StoreError> {
    let refusal = Expiry::Refused { code: err.code.clone() };
    let known = job.report.expiry_error_code.as_deref() == Some(err.code.as_str())
        && job.report.expiry_error_message.as_deref() == Some(err.message.as_str());
    if known {
        return Ok(refusal);
    }
    let reason = format!(
        "delete_after passed, deletion refused: {}: {} (the service does not stop models; tried again every {} s)",
        err.code,
        err.message,
        retry.as_secs()
    );
    let report = Report {
        expiry_error_code: Some(err.code.clone()),
        expiry_error_message: Some(err.message.clone()),
        ..Report::default()
    };
    let change = Change { report, detail: Some(reason.clone()), ..Change::to(CopyState::Succeeded) };
    let audit = record(job, Decision::Failed, tonic::Code::FailedPrecondition, reason, version);
    let written = jobs::record_with_audit(&dispatcher.store, job.id, &change, token, audit).await?;
    Ok(if written.is_some() { refusal } else { Expiry::NotOurs })
}

/// The audit record of the service's deletion of `job`'s version.
fn record(
    job: &CopyJob,
    decision: Decision,
    code: tonic::Code,
    reason: String,
    version: &crate::domain::ProjectVersionArn,
) -> AuditRecord {
    AuditRecord {
        principal: Some(SERVICE_PRINCIPAL.to_owned()),
        authn: SERVICE_AUTHN.to_owned(),
        peer: None,
        rpc: DELETE_ACTION.to_owned(),
        decision,
        reason: Some(reason),
        grpc_code: code,
        request: Some(serde_json::json!({
            "project_version_arn": version.as_str(),
            "delete_after": job.request.delete_after(),
            "expires_at": job.expires_at,
            "requested_by": job.principal,
        })),
        request_digest: None,
        copy_id: Some(job.id),
        policy_ids: Vec::new(),
        call: None,
    }
}
