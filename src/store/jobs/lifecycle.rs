//! A copy's life as the API sees it: created with its audit record in one transaction, read and listed, cancelled
//! with its audit record; and [`transition`], the one statement that moves a job through the state machine, one
//! recorded transition at a time, for the API and the dispatcher alike.

use std::collections::HashMap;

use sqlx::{Postgres, QueryBuilder, Transaction};
use uuid::Uuid;

use super::{parse_all, Change, CopyJob, JobRow, LeaseToken};
use crate::domain::{CopyFilter, CopyId, CopyRequest, CopyState};
use crate::store::audit::AuditRecord;
use crate::store::page_token::PageToken;
use crate::store::writer::{Done, NewCopy, Op};
use crate::store::{events, locks, Store, StoreError};
use crate::telemetry::TraceParent;

/// What CopyModelVersion's transaction did.
#[derive(Debug)]
pub enum CreateOutcome {
    /// A new job, queued.
    Created(CopyJob),
    /// The caller's idempotency token matched an earlier request with the same parameters: that job, untouched.
    Replayed(CopyJob),
    /// The token was used before with other parameters: nothing was written.
    TokenMismatch(CopyJob),
    /// The destination account's queue is full: nothing was written.
    QueueFull { depth: i64 },
}

/// Creates the job for `request` unless its idempotency token was seen before, and writes `audit` in the same
/// transaction: either both are stored, or neither. `trace` is the creating call's trace context, kept with a new
/// job (a replay keeps the first request's). Goes through the store's group commit (see [`crate::store::writer`]).
pub async fn create_with_audit(
    store: &Store,
    request: &CopyRequest,
    principal: &str,
    max_queued: i64,
    audit: AuditRecord,
    trace: Option<&TraceParent>,
) -> Result<CreateOutcome, StoreError> {
    let op = Op::Create(Box::new(NewCopy {
        request: request.clone(),
        principal: principal.to_owned(),
        max_queued,
        audit,
        trace: trace.cloned(),
        rollout: None,
    }));
    match store.writer.write(op).await? {
        Done::Created(outcome) => Ok(outcome),
        other => Err(StoreError::Corrupt(format!("the writer answered a copy with {other:?}"))),
    }
}

/// Whether `principal` has a copy named by `token` (a retry, which preflight need not check again).
pub async fn token_used(store: &Store, principal: &str, token: &str) -> Result<bool, StoreError> {
    Ok(sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM copy_jobs WHERE principal = $1 AND idempotency_token = $2)")
        .bind(principal)
        .bind(token)
        .fetch_one(store.pool())
        .await?)
}

pub async fn get(store: &Store, id: CopyId) -> Result<Option<CopyJob>, StoreError> {
    let row: Option<JobRow> =
        sqlx::query_as("SELECT * FROM copy_jobs WHERE id = $1").bind(id.as_uuid()).fetch_optional(store.pool()).await?;
    row.map(CopyJob::try_from).transpose()
}

/// The copies of `ids` that exist, by id.
pub async fn get_many(store: &Store, ids: &[Uuid]) -> Result<HashMap<CopyId, CopyJob>, StoreError> {
    let rows: Vec<JobRow> =
        sqlx::query_as("SELECT * FROM copy_jobs WHERE id = ANY($1)").bind(ids).fetch_all(store.pool()).await?;
    rows.into_iter().map(|row| CopyJob::try_from(row).map(|job| (job.id, job))).collect()
}

/// Copies matching `filter`, newest first, at most `limit`, after `after` (the previous page's last copy).
pub async fn list(
    store: &Store,
    filter: &CopyFilter,
    after: Option<PageToken>,
    limit: i64,
) -> Result<Vec<CopyJob>, StoreError> {
    let mut query = select_matching("SELECT * FROM copy_jobs", filter);
    if let Some(after) = after {
        query.push(" AND (created_at, id) < (").push_bind(after.created_at);
        query.push(", ").push_bind(after.id).push(")");
    }
    query.push(" ORDER BY created_at DESC, id DESC LIMIT ").push_bind(limit);
    parse_all(query.build_query_as::<JobRow>().fetch_all(store.pool()).await?)
}

/// `SELECT … WHERE` the copy matches `filter`: the SQL twin of [`CopyFilter::matches`].
pub(super) fn select_matching(select: &'static str, filter: &CopyFilter) -> QueryBuilder<'static, Postgres> {
    let mut query = QueryBuilder::new(select);
    query.push(" WHERE TRUE");
    if !filter.states.is_empty() {
        query.push(" AND state = ANY(").push_bind(filter.states.clone()).push(")");
    }
    if let Some(account) = &filter.source_account {
        query.push(" AND source_account = ").push_bind(account.as_str().to_owned());
    }
    if let Some(account) = &filter.destination_account {
        query.push(" AND destination_account = ").push_bind(account.as_str().to_owned());
    }
    if let Some(after) = filter.created_after {
        query.push(" AND created_at >= ").push_bind(after);
    }
    if let Some(before) = filter.created_before {
        query.push(" AND created_at < ").push_bind(before);
    }
    if let Some(rollout) = filter.rollout {
        query.push(" AND rollout_id = ").push_bind(rollout.as_uuid());
    }
    query
}

/// Moves a job from `from` to `change.to`, and records the transition, in one transaction.
///
/// `lease`, when given, must still be the job's claim: a step whose lease lapsed and whose job was claimed again
/// (by any replica, this one included) cannot write over its successor. Returns `None` when the job was no longer
/// in `from` (or no longer ours).
pub async fn transition(
    store: &Store,
    id: CopyId,
    from: CopyState,
    change: &Change,
    lease: Option<&LeaseToken>,
) -> Result<Option<CopyJob>, StoreError> {
    from.transition(change.to)?;
    // The copy events' lock first, before the row's: every transaction that records an event takes its locks in
    // that order (see `locks::COPY_EVENTS`). Taken after the row, it deadlocked with a group commit that held it
    // and waited for the account's queue counter, which this UPDATE's trigger had locked.
    let mut tx =
        store.pool().begin_with(format!("BEGIN; SELECT pg_advisory_xact_lock({})", locks::COPY_EVENTS)).await?;
    let Some(job) = transition_in(&mut tx, id, from, change, lease).await? else {
        return Ok(None);
    };
    tx.commit().await?;
    if !from.is_terminal() && job.state.is_terminal() {
        record_ended(&job);
    }
    Ok(Some(job))
}

/// [`transition`]'s writes, in `tx`, which must hold the copy events' lock (taken before any row lock). The caller
/// has checked that `from` may become `change.to`.
pub(super) async fn transition_in(
    tx: &mut Transaction<'_, Postgres>,
    id: CopyId,
    from: CopyState,
    change: &Change,
    lease: Option<&LeaseToken>,
) -> Result<Option<CopyJob>, StoreError> {
    // Leaving SUBMITTING other than by failing means Rekognition took the copy: that is when it was submitted.
    let submitted = from == CopyState::Submitting && change.to != CopyState::Failed;
    // The copy ends now (a succeeded copy's expiry comes after its end and does not move `completed_at`).
    let ends = !from.is_terminal() && change.to.is_terminal();
    let updated: Option<JobRow> = sqlx::query_as(
        "UPDATE copy_jobs SET
            state = $3,
            rekognition_status = COALESCE($4, rekognition_status),
            rekognition_status_message = COALESCE($5, rekognition_status_message),
            destination_version_arn = COALESCE($6, destination_version_arn),
            error_code = COALESCE($7, error_code),
            error_message = COALESCE($8, error_message),
            submitted_at = CASE WHEN $10 THEN now() ELSE submitted_at END,
            completed_at = CASE WHEN $11 THEN now() ELSE completed_at END,
            expires_at = CASE WHEN $11 AND $14 THEN now() + make_interval(secs => delete_after_secs::float8)
                              ELSE expires_at END,
            expiry_error_code = CASE WHEN $15 THEN NULL ELSE COALESCE($12, expiry_error_code) END,
            expiry_error_message = CASE WHEN $15 THEN NULL ELSE COALESCE($13, expiry_error_message) END,
            updated_at = now()
          WHERE id = $1 AND state = $2 AND ($9::text IS NULL OR lease_owner = $9)
          RETURNING *",
    )
    .bind(id.as_uuid())
    .bind(from)
    .bind(change.to)
    .bind(change.report.rekognition_status.as_ref().map(|s| s.as_str()))
    .bind(&change.report.rekognition_status_message)
    .bind(change.report.destination_version_arn.as_ref().map(|arn| arn.as_str()))
    .bind(&change.report.error_code)
    .bind(&change.report.error_message)
    .bind(lease.map(LeaseToken::as_str))
    .bind(submitted)
    .bind(ends)
    .bind(&change.report.expiry_error_code)
    .bind(&change.report.expiry_error_message)
    .bind(change.to == CopyState::Succeeded)
    .bind(change.to == CopyState::Expired)
    .fetch_optional(&mut **tx)
    .await?;
    // Not in `from` any more (or no longer ours): nothing written, and the transaction ends unused.
    let Some(job) = updated.map(CopyJob::try_from).transpose()? else {
        return Ok(None);
    };
    events::insert(tx, &job, Some(from), change.detail.as_deref()).await?;
    Ok(Some(job))
}

/// Counts a copy that reached its final state, and how long it took from its request.
pub(crate) fn record_ended(job: &CopyJob) {
    let instruments = crate::telemetry::metrics::instruments();
    let attributes = [
        opentelemetry::KeyValue::new("account", job.request.destination_account().as_str().to_owned()),
        opentelemetry::KeyValue::new("state", job.state.as_str()),
    ];
    instruments.copies_ended.add(1, &attributes);
    let took = job.completed_at.unwrap_or(job.updated_at) - job.created_at;
    instruments.copy_duration.record(took.num_milliseconds().max(0) as f64 / 1000.0, &attributes);
}

/// What CancelCopy found.
#[derive(Debug)]
pub enum CancelOutcome {
    Cancelled(CopyJob),
    /// It was cancelled before: nothing changed.
    AlreadyCancelled(CopyJob),
    /// It was submitted, or ended, already.
    TooLate(CopyJob),
    NotFound,
}

/// Cancels a queued job, recording the transition and `audit` in one transaction. The row lock taken there and the
/// dispatcher's QUEUED -> SUBMITTING update exclude each other: whichever commits first wins.
pub async fn cancel_with_audit(
    store: &Store,
    id: CopyId,
    reason: Option<&str>,
    audit: AuditRecord,
) -> Result<CancelOutcome, StoreError> {
    let op = Op::Cancel { id, reason: reason.map(str::to_owned), audit };
    match store.writer.write(op).await? {
        Done::Cancelled(outcome) => Ok(outcome),
        other => Err(StoreError::Corrupt(format!("the writer answered a cancellation with {other:?}"))),
    }
}
