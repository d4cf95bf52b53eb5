//! What the dispatcher asks of copies whose `delete_after` has passed: which are due to be deleted, and the one
//! write that records a deletion (or Rekognition's refusal) together with the service's audit record of it.
//!
//! The deletion is the service's own action, not a caller's: nobody's request is answered by it, so nothing else
//! would put it on record. Its audit row is written in the same transaction as the copy's transition: a copy is
//! never EXPIRED without the record of who deleted it, and no record claims a deletion that was not stored.

use super::lifecycle::transition_in;
use super::queue::readable;
use super::{Change, CopyJob, JobRow, LeaseToken};
use crate::domain::{AccountId, CopyId, CopyState};
use crate::store::audit::AuditRecord;
use crate::store::{writer, Store, StoreError};

/// `account`'s succeeded copies whose time to be deleted has come, not claimed by anyone and not put off after a
/// refusal, those that expired first first.
pub async fn due_to_expire(store: &Store, account: &AccountId, limit: i64) -> Result<Vec<CopyJob>, StoreError> {
    let rows: Vec<JobRow> = sqlx::query_as(
        "SELECT * FROM copy_jobs
          WHERE destination_account = $1 AND state = $2 AND expires_at IS NOT NULL AND expires_at <= now()
            AND next_attempt_at <= now()
            AND (lease_expires_at IS NULL OR lease_expires_at < now())
          ORDER BY expires_at
          LIMIT $3",
    )
    .bind(account.as_str())
    .bind(CopyState::Succeeded)
    .bind(limit)
    .fetch_all(store.pool())
    .await?;
    readable(store, rows).await
}

/// Records `change` of the succeeded copy `id` (to EXPIRED, or SUCCEEDED again with the refusal) while `token` is
/// still its claim, with `audit` naming the copy, in one transaction. `None` (and nothing written) when the claim
/// is no longer the copy's.
pub async fn record_with_audit(
    store: &Store,
    id: CopyId,
    change: &Change,
    token: &LeaseToken,
    mut audit: AuditRecord,
) -> Result<Option<CopyJob>, StoreError> {
    CopyState::Succeeded.transition(change.to)?;
    let mut conn = store.pool().acquire().await?;
    let mut tx = writer::begin_audited(&mut conn, store.pool().options().get_acquire_timeout()).await?;
    let Some(job) = transition_in(&mut tx, id, CopyState::Succeeded, change, Some(token)).await? else {
        return Ok(None);
    };
    audit.copy_id = Some(id);
    writer::append_in(&mut tx, audit).await?;
    tx.commit().await?;
    Ok(Some(job))
}
