//! Copy jobs: created with their audit record in one transaction, claimed by dispatchers under a lease, moved
//! through the state machine one recorded transition at a time.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{FromRow, Postgres, QueryBuilder, Transaction};
use std::collections::BTreeMap;
use std::time::Duration;
use uuid::Uuid;

use super::audit::AuditRecord;
use super::page_token::PageToken;
use super::{audit, events, StoreError};
use crate::domain::{CopyFilter, CopyId, CopyRequest, CopyState};
use crate::telemetry::TraceParent;

/// A copy job as stored.
#[derive(Debug, Clone, FromRow)]
pub struct CopyJob {
    pub id: Uuid,
    pub principal: String,
    pub idempotency_token: Option<String>,
    pub request_digest: Vec<u8>,
    pub source_project_arn: String,
    pub source_project_version_arn: String,
    pub destination_project_arn: String,
    pub version_name: String,
    pub s3_bucket: String,
    pub s3_key_prefix: String,
    pub tags: Json<BTreeMap<String, String>>,
    pub kms_key_id: Option<String>,
    pub source_account: String,
    pub destination_account: String,
    pub region: String,
    #[sqlx(try_from = "String")]
    pub state: CopyState,
    pub rekognition_status: Option<String>,
    pub rekognition_status_message: Option<String>,
    pub destination_version_arn: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    /// The audit row of the request that created the copy (NULL only for copies older than the audit chain).
    pub audit_id: Option<i64>,
    /// The W3C `traceparent` of the request that created the copy, when it had one.
    pub trace_parent: Option<String>,
}

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

/// One transition of a job: the new state and what changed with it. `None` keeps a field as it was.
#[derive(Debug, Clone)]
pub struct Change {
    pub to: CopyState,
    pub rekognition_status: Option<String>,
    pub rekognition_status_message: Option<String>,
    pub destination_version_arn: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// Free text kept in the history only (a cancel reason, why a retry gave up).
    pub detail: Option<String>,
}

impl Change {
    pub fn to(state: CopyState) -> Change {
        Change {
            to: state,
            rekognition_status: None,
            rekognition_status_message: None,
            destination_version_arn: None,
            error_code: None,
            error_message: None,
            detail: None,
        }
    }
}

const LIVE_STATES: &str = "('QUEUED', 'SUBMITTING', 'COPYING')";

/// Creates the job for `request` unless its idempotency token was seen before, and writes `audit` in the same
/// transaction: either both are stored, or neither. `trace` is the creating call's trace context, kept with a new
/// job (a replay keeps the first request's).
pub async fn create_with_audit(
    store: &super::Store,
    request: &CopyRequest,
    principal: &str,
    max_queued: i64,
    mut audit: AuditRecord,
    trace: Option<&TraceParent>,
) -> Result<CreateOutcome, StoreError> {
    let mut tx = store.pool().begin().await?;
    let id = CopyId::new().as_uuid();
    let digest = request.digest().to_vec();
    let token = request.idempotency_token().map(|t| t.as_str().to_owned());

    // A retry is answered even when the queue is full: it asks for nothing new.
    if let Some(token) = &token {
        let existing: Option<CopyJob> =
            sqlx::query_as("SELECT * FROM copy_jobs WHERE principal = $1 AND idempotency_token = $2")
                .bind(principal)
                .bind(token)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(existing) = existing {
            return finish_existing(tx, existing, &digest, audit).await;
        }
    }
    // Backpressure: an estimate (concurrent requests may each see room for one more), which is all a bound on
    // queue depth needs.
    let depth = count_queued(&mut *tx, request.destination_account().as_str()).await?;
    if depth >= max_queued {
        return Ok(CreateOutcome::QueueFull { depth });
    }
    let tags: BTreeMap<String, String> =
        request.tags().iter().map(|(k, v)| (k.as_str().to_owned(), v.as_str().to_owned())).collect();

    // ON CONFLICT waits for a concurrent insert of the same token to commit, then yields no row: the
    // SELECT below then sees the winner. Two racing retries therefore produce one job.
    let inserted: Option<CopyJob> = sqlx::query_as(
        "INSERT INTO copy_jobs
            (id, principal, idempotency_token, request_digest, source_project_arn, source_project_version_arn,
             destination_project_arn, version_name, s3_bucket, s3_key_prefix, tags, kms_key_id,
             source_account, destination_account, region, state, trace_parent)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 'QUEUED', $16)
         ON CONFLICT ON CONSTRAINT copy_jobs_idempotency DO NOTHING
         RETURNING *",
    )
    .bind(id)
    .bind(principal)
    .bind(&token)
    .bind(&digest)
    .bind(request.source_project().as_str())
    .bind(request.source_version().as_str())
    .bind(request.destination_project().as_str())
    .bind(request.version_name().as_str())
    .bind(request.output_config().bucket.as_str())
    .bind(request.output_config().key_prefix.as_str())
    .bind(Json(&tags))
    .bind(request.kms_key_id().map(|k| k.as_str()))
    .bind(request.source_account().as_str())
    .bind(request.destination_account().as_str())
    .bind(request.region().as_str())
    .bind(trace.map(TraceParent::as_str))
    .fetch_optional(&mut *tx)
    .await?;

    let Some(job) = inserted else {
        let existing: CopyJob =
            sqlx::query_as("SELECT * FROM copy_jobs WHERE principal = $1 AND idempotency_token = $2")
                .bind(principal)
                .bind(&token)
                .fetch_one(&mut *tx)
                .await?;
        return finish_existing(tx, existing, &digest, audit).await;
    };
    events::insert(&mut tx, &job, None, None).await?;
    audit.copy_id = Some(job.id);
    append_reason(&mut audit, "queued");
    // The audit row comes last: its id is known only once it is chained, and the chain's lock is held from then
    // until commit, so as little as possible follows it.
    let audit_id = audit::insert(&mut tx, &audit).await?;
    sqlx::query("UPDATE copy_jobs SET audit_id = $2 WHERE id = $1")
        .bind(job.id)
        .bind(audit_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(CreateOutcome::Created(CopyJob { audit_id: Some(audit_id), ..job }))
}

/// The request's token names `existing`: a replay if the parameters are the same, a refusal if not.
async fn finish_existing(
    mut tx: Transaction<'_, Postgres>,
    existing: CopyJob,
    digest: &[u8],
    mut audit: AuditRecord,
) -> Result<CreateOutcome, StoreError> {
    if existing.request_digest != digest {
        // The caller is told ALREADY_EXISTS; the audit layer writes that record once the answer is known.
        return Ok(CreateOutcome::TokenMismatch(existing));
    }
    audit.copy_id = Some(existing.id);
    append_reason(&mut audit, "replayed: idempotency token seen before with the same parameters");
    audit::insert(&mut tx, &audit).await?;
    tx.commit().await?;
    Ok(CreateOutcome::Replayed(existing))
}

pub async fn get(store: &super::Store, id: Uuid) -> Result<Option<CopyJob>, StoreError> {
    Ok(sqlx::query_as("SELECT * FROM copy_jobs WHERE id = $1").bind(id).fetch_optional(store.pool()).await?)
}

/// Copies matching `filter`, newest first, at most `limit`, after `after` (the previous page's last copy).
pub async fn list(
    store: &super::Store,
    filter: &CopyFilter,
    after: Option<PageToken>,
    limit: i64,
    live_only: bool,
) -> Result<Vec<CopyJob>, StoreError> {
    let mut query = select_matching(SELECT_JOBS, filter);
    if let Some(after) = after {
        query.push(" AND (created_at, id) < (").push_bind(after.created_at);
        query.push(", ").push_bind(after.id).push(")");
    }
    if live_only {
        query.push(format!(" AND state IN {LIVE_STATES}"));
    }
    query.push(" ORDER BY created_at DESC, id DESC LIMIT ").push_bind(limit);
    Ok(query.build_query_as().fetch_all(store.pool()).await?)
}

/// A copy with the sequence number of its latest change, read by one statement so that the two agree. A watcher
/// starts from such a pair and then sends exactly the changes numbered after it; reading the copy and the number
/// apart let a change committed in between be counted as sent while the copy still showed the state before it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobAt {
    #[sqlx(flatten)]
    pub job: CopyJob,
    pub last_seq: i64,
}

const SELECT_JOBS: &str = "SELECT * FROM copy_jobs";
const SELECT_JOBS_AT: &str = "SELECT copy_jobs.*, \
    COALESCE((SELECT MAX(seq) FROM copy_events e WHERE e.copy_id = copy_jobs.id), 0) AS last_seq FROM copy_jobs";

/// One copy as it is now, with its latest change's number (see [`JobAt`]).
pub async fn get_at(store: &super::Store, id: Uuid) -> Result<Option<JobAt>, StoreError> {
    let mut query = QueryBuilder::new(SELECT_JOBS_AT);
    query.push(" WHERE id = ").push_bind(id);
    Ok(query.build_query_as().fetch_optional(store.pool()).await?)
}

/// The live copies matching `filter`, newest first, at most `limit`, each with its latest change's number.
pub async fn live_at(store: &super::Store, filter: &CopyFilter, limit: i64) -> Result<Vec<JobAt>, StoreError> {
    let mut query = select_matching(SELECT_JOBS_AT, filter);
    query.push(format!(" AND state IN {LIVE_STATES}"));
    query.push(" ORDER BY created_at DESC, id DESC LIMIT ").push_bind(limit);
    Ok(query.build_query_as().fetch_all(store.pool()).await?)
}

/// Copies matching `filter` changed at or after `since`, oldest change first, at most `limit`, each with its
/// latest change's number: what a watcher that lost its notifications for a while may have missed.
pub async fn changed_since(
    store: &super::Store,
    filter: &CopyFilter,
    since: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<JobAt>, StoreError> {
    let mut query = select_matching(SELECT_JOBS_AT, filter);
    query.push(" AND updated_at >= ").push_bind(since);
    query.push(" ORDER BY updated_at LIMIT ").push_bind(limit);
    Ok(query.build_query_as().fetch_all(store.pool()).await?)
}

/// `SELECT … WHERE` the copy matches `filter`: the SQL twin of [`CopyFilter::matches`].
fn select_matching(select: &'static str, filter: &CopyFilter) -> QueryBuilder<'static, Postgres> {
    let mut query = QueryBuilder::new(select);
    query.push(" WHERE TRUE");
    if !filter.states.is_empty() {
        let states: Vec<&'static str> = filter.states.iter().map(|s| s.as_str()).collect();
        query.push(" AND state = ANY(").push_bind(states).push(")");
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
    query
}

/// Moves a job from `from` to `change.to`, and records the transition, in one transaction.
///
/// `lease_owner`, when given, must still hold the job: a dispatcher whose lease lapsed and was taken over
/// cannot write over its successor. Returns `None` when the job was no longer in `from` (or no longer ours).
pub async fn transition(
    store: &super::Store,
    id: Uuid,
    from: CopyState,
    change: &Change,
    lease_owner: Option<&str>,
) -> Result<Option<CopyJob>, StoreError> {
    let mut tx = store.pool().begin().await?;
    let moved = transition_in(&mut tx, id, from, change, lease_owner).await?;
    if moved.is_some() {
        tx.commit().await?;
    }
    Ok(moved)
}

async fn transition_in(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    from: CopyState,
    change: &Change,
    lease_owner: Option<&str>,
) -> Result<Option<CopyJob>, StoreError> {
    from.transition(change.to)?;
    let updated: Option<CopyJob> = sqlx::query_as(
        "UPDATE copy_jobs SET
            state = $3,
            rekognition_status = COALESCE($4, rekognition_status),
            rekognition_status_message = COALESCE($5, rekognition_status_message),
            destination_version_arn = COALESCE($6, destination_version_arn),
            error_code = COALESCE($7, error_code),
            error_message = COALESCE($8, error_message),
            submitted_at = CASE WHEN $2 = 'SUBMITTING' AND $3 <> 'FAILED' THEN now() ELSE submitted_at END,
            completed_at = CASE WHEN $3 IN ('SUCCEEDED', 'FAILED', 'CANCELLED') THEN now() ELSE completed_at END,
            updated_at = now()
          WHERE id = $1 AND state = $2 AND ($9::text IS NULL OR lease_owner = $9)
          RETURNING *",
    )
    .bind(id)
    .bind(from.as_str())
    .bind(change.to.as_str())
    .bind(&change.rekognition_status)
    .bind(&change.rekognition_status_message)
    .bind(&change.destination_version_arn)
    .bind(&change.error_code)
    .bind(&change.error_message)
    .bind(lease_owner)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(job) = updated else {
        return Ok(None);
    };
    events::insert(tx, &job, Some(from), change.detail.as_deref()).await?;
    Ok(Some(job))
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

/// Cancels a queued job, recording the transition and `audit` in one transaction. The row lock taken here and the
/// dispatcher's QUEUED -> SUBMITTING update exclude each other: whichever commits first wins.
pub async fn cancel_with_audit(
    store: &super::Store,
    id: Uuid,
    reason: Option<&str>,
    mut audit: AuditRecord,
) -> Result<CancelOutcome, StoreError> {
    let mut tx = store.pool().begin().await?;
    let Some(job): Option<CopyJob> =
        sqlx::query_as("SELECT * FROM copy_jobs WHERE id = $1 FOR UPDATE").bind(id).fetch_optional(&mut *tx).await?
    else {
        return Ok(CancelOutcome::NotFound);
    };
    match job.state {
        CopyState::Queued => {}
        CopyState::Cancelled => return Ok(CancelOutcome::AlreadyCancelled(job)),
        _ => return Ok(CancelOutcome::TooLate(job)),
    }
    let change = Change { detail: reason.map(str::to_owned), ..Change::to(CopyState::Cancelled) };
    let job = transition_in(&mut tx, id, CopyState::Queued, &change, None)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("copy {id} changed under its row lock")))?;
    append_reason(&mut audit, "cancelled");
    audit::insert(&mut tx, &audit).await?;
    tx.commit().await?;
    Ok(CancelOutcome::Cancelled(job))
}

fn append_reason(audit: &mut AuditRecord, what: &str) {
    audit.reason = Some(match audit.reason.take() {
        Some(reason) => format!("{reason}; {what}"),
        None => what.to_owned(),
    });
}

/// `account`'s jobs in `state` that are due and not claimed by anyone, those due longest first.
pub async fn due_in_state(
    store: &super::Store,
    account: &str,
    state: CopyState,
    limit: i64,
) -> Result<Vec<CopyJob>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT * FROM copy_jobs
          WHERE destination_account = $1 AND state = $2 AND next_attempt_at <= now()
            AND (lease_expires_at IS NULL OR lease_expires_at < now())
          ORDER BY next_attempt_at
          LIMIT $3",
    )
    .bind(account)
    .bind(state.as_str())
    .bind(limit)
    .fetch_all(store.pool())
    .await?)
}

/// Running copies of one destination project that are not due yet, soonest first: a describe that goes out
/// for a due copy carries up to ten version names, and these fill its free places at no extra call.
pub async fn running_not_due(
    store: &super::Store,
    destination_project_arn: &str,
    limit: i64,
) -> Result<Vec<CopyJob>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT * FROM copy_jobs
          WHERE destination_project_arn = $1 AND state = 'COPYING' AND next_attempt_at > now()
            AND (lease_expires_at IS NULL OR lease_expires_at < now())
          ORDER BY next_attempt_at
          LIMIT $2",
    )
    .bind(destination_project_arn)
    .bind(limit)
    .fetch_all(store.pool())
    .await?)
}

/// The oldest queued, due, unclaimed job of each principal with work queued in `account`: the heads of the
/// per-principal queues that fair dispatch chooses between.
pub async fn queued_heads(store: &super::Store, account: &str) -> Result<Vec<CopyJob>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT DISTINCT ON (principal) * FROM copy_jobs
          WHERE destination_account = $1 AND state = 'QUEUED' AND next_attempt_at <= now()
            AND (lease_expires_at IS NULL OR lease_expires_at < now())
          ORDER BY principal, created_at, id",
    )
    .bind(account)
    .fetch_all(store.pool())
    .await?)
}

/// Copies of `account` that hold, or are about to hold, a place among Rekognition's copies in progress:
/// submitting, copying, or queued and claimed for submission right now.
pub async fn count_in_progress(store: &super::Store, account: &str) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM copy_jobs
          WHERE destination_account = $1
            AND (state IN ('SUBMITTING', 'COPYING') OR (state = 'QUEUED' AND lease_expires_at > now()))",
    )
    .bind(account)
    .fetch_one(store.pool())
    .await?)
}

/// Queued copies of `account`: the depth that backpressure compares with the account's limit.
pub async fn count_queued(executor: impl sqlx::PgExecutor<'_>, account: &str) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM copy_jobs WHERE destination_account = $1 AND state = 'QUEUED'")
        .bind(account)
        .fetch_one(executor)
        .await?)
}

/// Claims those of `ids` that nobody holds, for `owner`, for one step of at most `lease`.
pub async fn claim(
    store: &super::Store,
    ids: &[Uuid],
    owner: &str,
    lease: Duration,
) -> Result<Vec<CopyJob>, StoreError> {
    Ok(sqlx::query_as(
        "UPDATE copy_jobs SET lease_owner = $2, lease_expires_at = now() + make_interval(secs => $3)
          WHERE id = ANY($1) AND (lease_expires_at IS NULL OR lease_expires_at < now())
          RETURNING *",
    )
    .bind(ids)
    .bind(owner)
    .bind(lease.as_secs_f64())
    .fetch_all(store.pool())
    .await?)
}

/// Gives a claimed job back, due again after `after`.
pub async fn release(store: &super::Store, id: Uuid, owner: &str, after: Duration) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE copy_jobs SET lease_owner = NULL, lease_expires_at = NULL,
                next_attempt_at = now() + make_interval(secs => $3)
          WHERE id = $1 AND lease_owner = $2",
    )
    .bind(id)
    .bind(owner)
    .bind(after.as_secs_f64())
    .execute(store.pool())
    .await?;
    Ok(())
}

/// Counts one more submission attempt *before* it is made, so that a successor can tell that an earlier
/// attempt may have reached Rekognition. Returns the new count, or `None` if the job is no longer ours.
pub async fn record_attempt(store: &super::Store, id: Uuid, owner: &str) -> Result<Option<i32>, StoreError> {
    Ok(sqlx::query_scalar(
        "UPDATE copy_jobs SET attempts = attempts + 1, updated_at = now()
          WHERE id = $1 AND lease_owner = $2 AND state = 'SUBMITTING'
          RETURNING attempts",
    )
    .bind(id)
    .bind(owner)
    .fetch_optional(store.pool())
    .await?)
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// A plausible queued job, for tests of code that reads jobs without a database.
    pub fn job() -> CopyJob {
        let now = Utc::now();
        CopyJob {
            id: Uuid::now_v7(),
            principal: "alice".into(),
            idempotency_token: None,
            request_digest: vec![0; 32],
            source_project_arn: "arn:aws:rekognition:us-east-1:111111111111:project/p/1".into(),
            source_project_version_arn: "arn:aws:rekognition:us-east-1:111111111111:project/p/version/v1/2".into(),
            destination_project_arn: "arn:aws:rekognition:us-east-1:222222222222:project/q/3".into(),
            version_name: "v1".into(),
            s3_bucket: "bucket".into(),
            s3_key_prefix: String::new(),
            tags: Json(BTreeMap::new()),
            kms_key_id: None,
            source_account: "111111111111".into(),
            destination_account: "222222222222".into(),
            region: "us-east-1".into(),
            state: CopyState::Queued,
            rekognition_status: None,
            rekognition_status_message: None,
            destination_version_arn: None,
            error_code: None,
            error_message: None,
            attempts: 0,
            next_attempt_at: now,
            lease_owner: None,
            lease_expires_at: None,
            created_at: now,
            updated_at: now,
            submitted_at: None,
            completed_at: None,
            audit_id: None,
            trace_parent: None,
        }
    }
}
