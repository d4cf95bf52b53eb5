//! The dispatcher's view of the jobs: what is due in an account, claims under a short lease, and the counts an
//! account's limits are kept with.
//!
//! A lease is how a job is worked by one step at a time without holding a database lock across a Rekognition
//! call: a claim sets a token and an end, every write of the step shows the token, and a job whose replica died
//! becomes claimable again once its lease has lapsed. The token is new for every claim ([`LeaseToken`]): a fencing
//! token for the attempt, not the replica's name, so a step that outlived its lease cannot write over the step that
//! claimed the job after it, even on the same replica.
//!
//! A row that does not parse is left out of what the dispatcher sees, logged as an error naming it, and put off for
//! [`UNREADABLE_RETRY`], rather than failing the whole read: one unreadable job must not stop every other job of its
//! account, nor stay the head of its principal's queue. It stays in its state, unchanged, for an operator to mend.
//! (The API's reads fail loudly instead, so the row is noticed.)

use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::error;

use super::{CopyJob, JobRow};
use crate::domain::{AccountId, CopyId, CopyState, ProjectArn};
use crate::store::{Store, StoreError};

/// Who holds a job for one step, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The claim's token as stored: `<replica>/<uuid>` for claims made by [`claim`].
    pub owner: String,
    pub expires_at: DateTime<Utc>,
}

/// The token of one claim, which every write of its step must show. Made only by [`claim`]: the replica's name (so
/// an operator can tell who holds a job) and a random part new to this claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseToken(String);

impl LeaseToken {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for LeaseToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A job claimed for one step, with the token of that claim.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub job: CopyJob,
    pub token: LeaseToken,
}

/// `account`'s jobs in `state` that are due and not claimed by anyone, those due longest first.
pub async fn due_in_state(
    store: &Store,
    account: &AccountId,
    state: CopyState,
    limit: i64,
) -> Result<Vec<CopyJob>, StoreError> {
    let rows: Vec<JobRow> = sqlx::query_as(
        "SELECT * FROM copy_jobs
          WHERE destination_account = $1 AND state = $2 AND next_attempt_at <= now()
            AND (lease_expires_at IS NULL OR lease_expires_at < now())
          ORDER BY next_attempt_at
          LIMIT $3",
    )
    .bind(account.as_str())
    .bind(state)
    .bind(limit)
    .fetch_all(store.pool())
    .await?;
    readable(store, rows).await
}

/// Running copies of one destination project that are not due yet, soonest first: a describe that goes out
/// for a due copy carries up to ten version names, and these fill its free places at no extra call.
pub async fn running_not_due(
    store: &Store,
    destination_project: &ProjectArn,
    limit: i64,
) -> Result<Vec<CopyJob>, StoreError> {
    let rows: Vec<JobRow> = sqlx::query_as(
        "SELECT * FROM copy_jobs
          WHERE destination_project_arn = $1 AND state = $2 AND next_attempt_at > now()
            AND (lease_expires_at IS NULL OR lease_expires_at < now())
          ORDER BY next_attempt_at
          LIMIT $3",
    )
    .bind(destination_project.as_str())
    .bind(CopyState::Copying)
    .bind(limit)
    .fetch_all(store.pool())
    .await?;
    readable(store, rows).await
}

/// The oldest queued, due, unclaimed job of each principal with work queued in `account`: the heads of the
/// per-principal queues that fair dispatch chooses between.
pub async fn queued_heads(store: &Store, account: &AccountId) -> Result<Vec<CopyJob>, StoreError> {
    let rows: Vec<JobRow> = sqlx::query_as(
        "SELECT DISTINCT ON (principal) * FROM copy_jobs
          WHERE destination_account = $1 AND state = $2 AND next_attempt_at <= now()
            AND (lease_expires_at IS NULL OR lease_expires_at < now())
          ORDER BY principal, created_at, id",
    )
    .bind(account.as_str())
    .bind(CopyState::Queued)
    .fetch_all(store.pool())
    .await?;
    readable(store, rows).await
}

/// Copies of `account` that hold, or are about to hold, a place among Rekognition's copies in progress:
/// submitting, copying, or queued and claimed for submission right now.
pub async fn count_in_progress(store: &Store, account: &AccountId) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM copy_jobs
          WHERE destination_account = $1
            AND (state = ANY($2) OR (state = $3 AND lease_expires_at > now()))",
    )
    .bind(account.as_str())
    .bind(vec![CopyState::Submitting, CopyState::Copying])
    .bind(CopyState::Queued)
    .fetch_one(store.pool())
    .await?)
}

/// Claims those of `ids` that nobody holds, for one step of at most `lease` by `replica`, each under a token of its
/// own.
pub async fn claim(store: &Store, ids: &[CopyId], replica: &str, lease: Duration) -> Result<Vec<Claimed>, StoreError> {
    let ids: Vec<_> = ids.iter().map(CopyId::as_uuid).collect();
    let rows: Vec<JobRow> = sqlx::query_as(
        "UPDATE copy_jobs SET lease_owner = $2 || '/' || gen_random_uuid(),
                lease_expires_at = now() + make_interval(secs => $3)
          WHERE id = ANY($1) AND (lease_expires_at IS NULL OR lease_expires_at < now())
          RETURNING *",
    )
    .bind(ids)
    .bind(replica)
    .bind(lease.as_secs_f64())
    .fetch_all(store.pool())
    .await?;
    readable(store, rows)
        .await?
        .into_iter()
        .map(|job| {
            let token = job.lease.as_ref().map(|lease| LeaseToken(lease.owner.clone()));
            let token =
                token.ok_or_else(|| StoreError::Corrupt(format!("copy {} was claimed without a lease", job.id)))?;
            Ok(Claimed { job, token })
        })
        .collect()
}

/// Gives a claimed job back, due again after `after`; nothing if the claim is no longer the job's.
pub async fn release(store: &Store, id: CopyId, token: &LeaseToken, after: Duration) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE copy_jobs SET lease_owner = NULL, lease_expires_at = NULL,
                next_attempt_at = now() + make_interval(secs => $3)
          WHERE id = $1 AND lease_owner = $2",
    )
    .bind(id.as_uuid())
    .bind(token.as_str())
    .bind(after.as_secs_f64())
    .execute(store.pool())
    .await?;
    Ok(())
}

/// Counts one more submission attempt *before* it is made, so that a successor can tell that an earlier
/// attempt may have reached Rekognition. Returns the new count, or `None` if the claim is no longer the job's.
pub async fn record_attempt(store: &Store, id: CopyId, token: &LeaseToken) -> Result<Option<u32>, StoreError> {
    let attempts: Option<i32> = sqlx::query_scalar(
        "UPDATE copy_jobs SET attempts = attempts + 1, updated_at = now()
          WHERE id = $1 AND lease_owner = $2 AND state = $3
          RETURNING attempts",
    )
    .bind(id.as_uuid())
    .bind(token.as_str())
    .bind(CopyState::Submitting)
    .fetch_optional(store.pool())
    .await?;
    attempts
        .map(|n| u32::try_from(n).map_err(|_| StoreError::Corrupt(format!("copy {id} has {n} attempts"))))
        .transpose()
}

/// How long a job whose row does not parse is put off before the dispatcher looks at it again.
pub const UNREADABLE_RETRY: Duration = Duration::from_secs(3600);

/// The rows that parse. Each that does not is logged, naming it, released if it was claimed, and put off for
/// [`UNREADABLE_RETRY`].
pub(super) async fn readable(store: &Store, rows: Vec<JobRow>) -> Result<Vec<CopyJob>, StoreError> {
    let mut jobs = Vec::with_capacity(rows.len());
    let mut unreadable = Vec::new();
    for row in rows {
        let id = row.id;
        match CopyJob::try_from(row) {
            Ok(job) => jobs.push(job),
            Err(err) => {
                error!(%err, "a job cannot be read; putting it off for an operator to mend");
                unreadable.push(id);
            }
        }
    }
    if !unreadable.is_empty() {
        sqlx::query(
            "UPDATE copy_jobs SET lease_owner = NULL, lease_expires_at = NULL,
                    next_attempt_at = now() + make_interval(secs => $2)
              WHERE id = ANY($1)",
        )
        .bind(unreadable)
        .bind(UNREADABLE_RETRY.as_secs_f64())
        .execute(store.pool())
        .await?;
    }
    Ok(jobs)
}
