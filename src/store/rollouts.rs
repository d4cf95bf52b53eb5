//! Rollouts: a request for one copy per destination, stored as the rollout's row and its copies (ordinary copy
//! jobs carrying `rollout_id`), all in one transaction with their audit rows, or none of it.
//!
//! A rollout's state is not stored: it is read from its copies' states ([`RolloutCounts::state`]), so it can never
//! disagree with them, and no dispatcher step has to update it.
//!
//! Why not through the writer's batches: a rollout must be refused whole when one destination's queue is full, and
//! a batch answers each write on its own. So a rollout opens its own transaction under the audit chain's lock
//! (rollouts are rare beside single copies) and hands the writer's batch logic all of its writes at once
//! ([`writer::write_in`]); any copy refused rolls the whole transaction back.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use uuid::Uuid;

use super::audit::AuditRecord;
use super::jobs::{parse_all, CopyJob, JobRow};
use super::writer::{self, Done, NewCopy, Op};
use super::{CancelOutcome, CreateOutcome, PageToken, Store, StoreError};
use crate::domain::{AccountId, CopyState, DeleteAfter, ProjectArn, ProjectVersionArn, RolloutId, RolloutRequest};
use crate::telemetry::TraceParent;

/// A stored rollout.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollout {
    pub id: RolloutId,
    pub principal: String,
    pub idempotency_token: Option<String>,
    pub request_digest: Vec<u8>,
    pub source_project: ProjectArn,
    pub source_version: ProjectVersionArn,
    pub delete_after: Option<DeleteAfter>,
    pub created_at: DateTime<Utc>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub audit_id: i64,
}

#[derive(Debug, FromRow)]
struct RolloutRow {
    id: Uuid,
    principal: String,
    idempotency_token: Option<String>,
    request_digest: Vec<u8>,
    source_project_arn: String,
    source_project_version_arn: String,
    delete_after_secs: Option<i64>,
    created_at: DateTime<Utc>,
    cancelled_at: Option<DateTime<Utc>>,
    audit_id: i64,
}

impl TryFrom<RolloutRow> for Rollout {
    type Error = StoreError;
    fn try_from(row: RolloutRow) -> Result<Rollout, StoreError> {
        let corrupt = |what: String| StoreError::Corrupt(format!("rollouts row {}: {what}", row.id));
        Ok(Rollout {
            id: RolloutId::from(row.id),
            principal: row.principal,
            idempotency_token: row.idempotency_token,
            request_digest: row.request_digest,
            source_project: ProjectArn::parse(&row.source_project_arn)
                .map_err(|e| corrupt(format!("source_project_arn {e}")))?,
            source_version: ProjectVersionArn::parse(&row.source_project_version_arn)
                .map_err(|e| corrupt(format!("source_project_version_arn {e}")))?,
            delete_after: row
                .delete_after_secs
                .map(DeleteAfter::from_secs)
                .transpose()
                .map_err(|e| corrupt(format!("delete_after_secs {e}")))?,
            created_at: row.created_at,
            cancelled_at: row.cancelled_at,
            audit_id: row.audit_id,
        })
    }
}

/// Where a rollout stands, read from its copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RolloutState {
    Running,
    Succeeded,
    PartiallyFailed,
    Failed,
    Cancelled,
}

/// How many of a rollout's copies are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RolloutCounts {
    pub queued: u32,
    /// Submitting or copying.
    pub running: u32,
    pub succeeded: u32,
    pub failed: u32,
    pub cancelled: u32,
    pub expired: u32,
}

impl RolloutCounts {
    pub fn of<'a>(copies: impl IntoIterator<Item = &'a CopyJob>) -> RolloutCounts {
        let mut counts = RolloutCounts::default();
        for copy in copies {
            let count = match copy.state {
                CopyState::Queued => &mut counts.queued,
                CopyState::Submitting | CopyState::Copying => &mut counts.running,
                CopyState::Succeeded => &mut counts.succeeded,
                CopyState::Failed => &mut counts.failed,
                CopyState::Cancelled => &mut counts.cancelled,
                CopyState::Expired => &mut counts.expired,
            };
            *count += 1;
        }
        counts
    }

    pub fn total(&self) -> u32 {
        self.queued + self.running + self.succeeded + self.failed + self.cancelled + self.expired
    }

    /// Running while any copy has not ended; once all have: cancelled if the rollout was, else by how its copies
    /// ended (an expired copy had succeeded).
    pub fn state(&self, cancelled: bool) -> RolloutState {
        let succeeded = self.succeeded + self.expired;
        if self.queued + self.running > 0 {
            RolloutState::Running
        } else if cancelled {
            RolloutState::Cancelled
        } else if self.failed + self.cancelled == 0 {
            RolloutState::Succeeded
        } else if succeeded > 0 {
            RolloutState::PartiallyFailed
        } else {
            RolloutState::Failed
        }
    }
}

/// A rollout with its copies, in the order of its destinations.
#[derive(Debug, Clone)]
pub struct RolloutWithCopies {
    pub rollout: Rollout,
    pub copies: Vec<CopyJob>,
}

/// What CreateRollout's transaction did.
#[derive(Debug)]
pub enum CreateRolloutOutcome {
    Created(RolloutWithCopies),
    /// The token named an earlier rollout with the same parameters: that one, untouched (its audit row written).
    Replayed(RolloutWithCopies),
    /// The token named an earlier rollout with other parameters: nothing written.
    TokenMismatch(Rollout),
    /// A destination account's queue is full: nothing written.
    QueueFull {
        account: AccountId,
        depth: i64,
    },
}

/// Stores `request` as a rollout of `principal`'s with one queued copy per destination, `audit` (the call's record)
/// and one audit row per copy, in one transaction; or, when its idempotency token was seen before, answers that
/// rollout. `max_queued` is each destination account's queue limit.
pub async fn create_with_audit(
    store: &Store,
    request: &RolloutRequest,
    principal: &str,
    max_queued: impl Fn(&AccountId) -> i64,
    audit: AuditRecord,
    trace: Option<&TraceParent>,
) -> Result<CreateRolloutOutcome, StoreError> {
    let digest = request.digest().to_vec();
    let mut conn = store.pool().acquire().await?;
    let mut tx = writer::begin_audited(&mut conn, store.pool().options().get_acquire_timeout()).await?;
    if let Some(token) = request.idempotency_token() {
        let earlier: Option<RolloutRow> =
            sqlx::query_as("SELECT * FROM rollouts WHERE principal = $1 AND idempotency_token = $2")
                .bind(principal)
                .bind(token.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(earlier) = earlier {
            let earlier = Rollout::try_from(earlier)?;
            if earlier.request_digest != digest {
                return Ok(CreateRolloutOutcome::TokenMismatch(earlier));
            }
            let mut audit = audit;
            audit.reason = Some(format!("replayed rollout {}: idempotency token seen before", earlier.id));
            writer::append_in(&mut tx, audit).await?;
            let copies = copies_of(&mut *tx, earlier.id).await?;
            tx.commit().await?;
            return Ok(CreateRolloutOutcome::Replayed(RolloutWithCopies { rollout: earlier, copies }));
        }
    }

    let id = RolloutId::new();
    let mut ops = Vec::with_capacity(request.copies().len() + 1);
    let mut call = audit.clone();
    call.reason = Some(format!("rollout {id}: {} copies queued", request.copies().len()));
    ops.push(Op::Append(call));
    for (index, copy) in request.copies().iter().enumerate() {
        let mut record = audit.clone();
        record.request = Some(serde_json::json!({ "rollout_id": id.to_string(), "copy": copy.to_json() }));
        record.request_digest = Some(copy.digest().to_vec());
        record.reason = Some(format!("rollout {id}: destinations[{index}]"));
        // Only the call's own row stands for the call (and its retries).
        record.call = None;
        ops.push(Op::Create(Box::new(NewCopy {
            request: copy.clone(),
            principal: principal.to_owned(),
            max_queued: max_queued(copy.destination_account()),
            audit: record,
            trace: trace.cloned(),
            rollout: Some((id, index as i32)),
        })));
    }
    let mut answers = writer::write_in(&mut tx, ops).await?.into_iter();
    let audit_id = match answers.next() {
        Some(Ok(Done::Appended(id))) => id,
        other => return Err(StoreError::Corrupt(format!("a rollout's audit row was answered with {other:?}"))),
    };
    let mut copies = Vec::with_capacity(request.copies().len());
    for (answer, copy) in answers.zip(request.copies()) {
        match answer? {
            Done::Created(CreateOutcome::Created(job)) => copies.push(job),
            Done::Created(CreateOutcome::QueueFull { depth }) => {
                // Dropping the transaction rolls back every copy already written.
                return Ok(CreateRolloutOutcome::QueueFull { account: copy.destination_account().clone(), depth });
            }
            other => return Err(StoreError::Corrupt(format!("a rollout's copy was answered with {other:?}"))),
        }
    }
    let row: RolloutRow = sqlx::query_as(
        "INSERT INTO rollouts
            (id, principal, idempotency_token, request_digest, source_project_arn, source_project_version_arn,
             delete_after_secs, audit_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         RETURNING *",
    )
    .bind(id.as_uuid())
    .bind(principal)
    .bind(request.idempotency_token().map(|t| t.as_str()))
    .bind(&digest)
    .bind(request.source_project().as_str())
    .bind(request.source_version().as_str())
    .bind(request.delete_after().map(|d| d.as_secs() as i64))
    .bind(audit_id)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(CreateRolloutOutcome::Created(RolloutWithCopies { rollout: row.try_into()?, copies }))
}

/// Whether `principal` has a rollout named by `token` (a retry, which preflight need not check again).
pub async fn token_used(store: &Store, principal: &str, token: &str) -> Result<bool, StoreError> {
    Ok(sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM rollouts WHERE principal = $1 AND idempotency_token = $2)")
        .bind(principal)
        .bind(token)
        .fetch_one(store.pool())
        .await?)
}

/// The rollout's copies, in the order of its destinations.
async fn copies_of<'e>(executor: impl sqlx::PgExecutor<'e>, id: RolloutId) -> Result<Vec<CopyJob>, StoreError> {
    let rows: Vec<JobRow> = sqlx::query_as("SELECT * FROM copy_jobs WHERE rollout_id = $1 ORDER BY rollout_index")
        .bind(id.as_uuid())
        .fetch_all(executor)
        .await?;
    parse_all(rows)
}

pub async fn get(store: &Store, id: RolloutId) -> Result<Option<RolloutWithCopies>, StoreError> {
    let row: Option<RolloutRow> =
        sqlx::query_as("SELECT * FROM rollouts WHERE id = $1").bind(id.as_uuid()).fetch_optional(store.pool()).await?;
    let Some(row) = row else { return Ok(None) };
    let rollout = Rollout::try_from(row)?;
    let copies = copies_of(store.pool(), id).await?;
    Ok(Some(RolloutWithCopies { rollout, copies }))
}

/// Rollouts newest first, after `after` (the previous page's last), at most `limit`, each with its copies.
pub async fn list(store: &Store, after: Option<PageToken>, limit: i64) -> Result<Vec<RolloutWithCopies>, StoreError> {
    let rows: Vec<RolloutRow> = sqlx::query_as(
        "SELECT * FROM rollouts
          WHERE ($1::timestamptz IS NULL OR (created_at, id) < ($1, $2))
          ORDER BY created_at DESC, id DESC
          LIMIT $3",
    )
    .bind(after.map(|a| a.created_at))
    .bind(after.map(|a| a.id))
    .bind(limit)
    .fetch_all(store.pool())
    .await?;
    let rollouts: Vec<Rollout> = parse_all(rows)?;
    let ids: Vec<Uuid> = rollouts.iter().map(|r| r.id.as_uuid()).collect();
    let jobs: Vec<JobRow> =
        sqlx::query_as("SELECT * FROM copy_jobs WHERE rollout_id = ANY($1) ORDER BY rollout_id, rollout_index")
            .bind(&ids)
            .fetch_all(store.pool())
            .await?;
    let mut by_rollout: HashMap<RolloutId, Vec<CopyJob>> = HashMap::new();
    for job in parse_all::<CopyJob, _>(jobs)? {
        if let Some(rollout) = job.rollout {
            by_rollout.entry(rollout).or_default().push(job);
        }
    }
    Ok(rollouts
        .into_iter()
        .map(|rollout| {
            let copies = by_rollout.remove(&rollout.id).unwrap_or_default();
            RolloutWithCopies { rollout, copies }
        })
        .collect())
}

/// Marks the rollout cancelled and cancels each of `queued` (its copies the caller may cancel, QUEUED when read),
/// each with its audit row (`audit` for the call itself), in one transaction. A copy submitted meanwhile goes on.
/// The rollout as it is then; `None` if there is no such rollout.
pub async fn cancel_with_audit(
    store: &Store,
    id: RolloutId,
    queued: &[crate::domain::CopyId],
    reason: Option<&str>,
    audit: AuditRecord,
) -> Result<Option<RolloutWithCopies>, StoreError> {
    let mut conn = store.pool().acquire().await?;
    let mut tx = writer::begin_audited(&mut conn, store.pool().options().get_acquire_timeout()).await?;
    let marked: Option<(Uuid,)> =
        sqlx::query_as("UPDATE rollouts SET cancelled_at = COALESCE(cancelled_at, now()) WHERE id = $1 RETURNING id")
            .bind(id.as_uuid())
            .fetch_optional(&mut *tx)
            .await?;
    if marked.is_none() {
        return Ok(None);
    }
    let mut ops = vec![Op::Append(audit.clone())];
    for copy in queued {
        let mut record = audit.clone();
        record.copy_id = Some(*copy);
        record.call = None;
        record.reason = Some(format!("rollout {id} cancelled"));
        ops.push(Op::Cancel { id: *copy, reason: reason.map(str::to_owned), audit: record });
    }
    for answer in writer::write_in(&mut tx, ops).await? {
        match answer? {
            Done::Appended(_) | Done::Cancelled(CancelOutcome::Cancelled(_) | CancelOutcome::TooLate(_)) => {}
            Done::Cancelled(CancelOutcome::AlreadyCancelled(_)) => {}
            other => return Err(StoreError::Corrupt(format!("a rollout's cancellation was answered with {other:?}"))),
        }
    }
    let copies = copies_of(&mut *tx, id).await?;
    let row: RolloutRow =
        sqlx::query_as("SELECT * FROM rollouts WHERE id = $1").bind(id.as_uuid()).fetch_one(&mut *tx).await?;
    tx.commit().await?;
    Ok(Some(RolloutWithCopies { rollout: row.try_into()?, copies }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(queued: u32, running: u32, succeeded: u32, failed: u32, cancelled: u32) -> RolloutCounts {
        RolloutCounts { queued, running, succeeded, failed, cancelled, expired: 0 }
    }

    #[test]
    fn a_rollout_runs_until_every_copy_has_ended_then_reads_as_its_copies_ended() {
        assert_eq!(counts(1, 0, 4, 0, 0).state(false), RolloutState::Running);
        assert_eq!(counts(0, 1, 4, 0, 0).state(true), RolloutState::Running, "cancelled, one copy still going");
        assert_eq!(counts(0, 0, 5, 0, 0).state(false), RolloutState::Succeeded);
        assert_eq!(counts(0, 0, 4, 1, 0).state(false), RolloutState::PartiallyFailed);
        assert_eq!(counts(0, 0, 0, 5, 0).state(false), RolloutState::Failed);
        assert_eq!(counts(0, 0, 2, 0, 3).state(true), RolloutState::Cancelled);
        let expired = RolloutCounts { expired: 2, ..counts(0, 0, 3, 0, 0) };
        assert_eq!(expired.state(false), RolloutState::Succeeded, "expired copies had succeeded");
        assert_eq!(expired.total(), 5);
    }
}
