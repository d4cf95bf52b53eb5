//! The history of every copy: one row per state transition, numbered by an ever-growing sequence.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, Postgres, Transaction};
use uuid::Uuid;

use super::jobs::{Report, ReportRow};
use super::{CopyJob, Store, StoreError};
use crate::domain::{CopyId, CopyState};

/// One transition of one copy, with the copy's changing fields right after it.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyEvent {
    pub seq: i64,
    pub copy_id: CopyId,
    /// `None` for a copy's first event.
    pub from_state: Option<CopyState>,
    pub to_state: CopyState,
    /// The copy's report right after this event.
    pub report: Report,
    pub detail: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

/// A `copy_events` row as PostgreSQL hands it over, parsed into a [`CopyEvent`] before anything else sees it.
#[derive(Debug, FromRow)]
struct EventRow {
    seq: i64,
    copy_id: Uuid,
    from_state: Option<String>,
    to_state: String,
    #[sqlx(flatten)]
    report: ReportRow,
    detail: Option<String>,
    occurred_at: DateTime<Utc>,
}

impl TryFrom<EventRow> for CopyEvent {
    type Error = StoreError;

    fn try_from(row: EventRow) -> Result<CopyEvent, StoreError> {
        let corrupt = |what: String| StoreError::Corrupt(format!("copy_events row {}: {what}", row.seq));
        Ok(CopyEvent {
            seq: row.seq,
            copy_id: CopyId::from(row.copy_id),
            from_state: row.from_state.map(|s| s.parse()).transpose().map_err(corrupt)?,
            to_state: row.to_state.parse().map_err(corrupt)?,
            report: row.report.parse().map_err(corrupt)?,
            detail: row.detail,
            occurred_at: row.occurred_at,
        })
    }
}

impl CopyEvent {
    /// The job as it was right after this event: its fixed fields, with this event's changing ones.
    pub fn apply_to(&self, job: &CopyJob) -> CopyJob {
        let mut job = job.clone();
        job.state = self.to_state;
        job.report = self.report.clone();
        job.updated_at = self.occurred_at;
        job
    }
}

/// Records that `job` (as it now is) came from `from`. `tx` must hold the copy events' lock, taken before any row
/// lock, so that events commit in the order of their numbers (see [`super::locks::COPY_EVENTS`]).
pub(super) async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    job: &CopyJob,
    from: Option<CopyState>,
    detail: Option<&str>,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO copy_events
            (copy_id, from_state, to_state, rekognition_status, rekognition_status_message,
             destination_version_arn, error_code, error_message, detail, expiry_error_code, expiry_error_message)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         RETURNING seq",
    )
    .bind(job.id.as_uuid())
    .bind(from)
    .bind(job.state)
    .bind(job.report.rekognition_status.as_ref().map(|s| s.as_str()))
    .bind(&job.report.rekognition_status_message)
    .bind(job.report.destination_version_arn.as_ref().map(|arn| arn.as_str()))
    .bind(&job.report.error_code)
    .bind(&job.report.error_message)
    .bind(detail)
    .bind(&job.report.expiry_error_code)
    .bind(&job.report.expiry_error_message)
    .fetch_one(&mut **tx)
    .await?)
}

pub async fn by_seq(store: &Store, seq: i64) -> Result<Option<CopyEvent>, StoreError> {
    let row: Option<EventRow> =
        sqlx::query_as("SELECT * FROM copy_events WHERE seq = $1").bind(seq).fetch_optional(store.pool()).await?;
    row.map(CopyEvent::try_from).transpose()
}

/// A copy's events after `after_seq`, oldest first. Transitions of one copy are serialized by its row lock,
/// so within one copy, sequence order is commit order and nothing can appear later below `after_seq`.
pub async fn for_copy_after(store: &Store, copy_id: CopyId, after_seq: i64) -> Result<Vec<CopyEvent>, StoreError> {
    let rows: Vec<EventRow> = sqlx::query_as("SELECT * FROM copy_events WHERE copy_id = $1 AND seq > $2 ORDER BY seq")
        .bind(copy_id.as_uuid())
        .bind(after_seq)
        .fetch_all(store.pool())
        .await?;
    super::parse_all(rows)
}

/// The number at or below which events may have been pruned (0 if none ever was): a watcher that needs events
/// from below it cannot be served them whole.
pub async fn pruned_through(store: &Store) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("SELECT through_seq FROM copy_events_pruned").fetch_one(store.pool()).await?)
}

/// Events deleted per statement while pruning.
const PRUNE_BATCH: i64 = 10_000;

/// Deletes the history older than `keep` (every event numbered at or below the newest that old): the number it is
/// pruned through now, if it moved. The mark is raised, and committed, before any event goes (see
/// [`pruned_through`]); events go in batches, each its own statement.
pub async fn prune(store: &Store, keep: std::time::Duration) -> Result<Option<i64>, StoreError> {
    let through: Option<i64> = sqlx::query_scalar(
        "UPDATE copy_events_pruned SET through_seq = s.through
           FROM (SELECT max(seq) AS through FROM copy_events WHERE occurred_at < now() - make_interval(secs => $1)) AS s
          WHERE s.through > copy_events_pruned.through_seq
          RETURNING copy_events_pruned.through_seq",
    )
    .bind(keep.as_secs_f64())
    .fetch_optional(store.pool())
    .await?;
    let Some(through) = through else { return Ok(None) };
    loop {
        let deleted = sqlx::query(
            "DELETE FROM copy_events WHERE seq IN
               (SELECT seq FROM copy_events WHERE seq <= $1 ORDER BY seq LIMIT $2)",
        )
        .bind(through)
        .bind(PRUNE_BATCH)
        .execute(store.pool())
        .await?
        .rows_affected();
        if (deleted as i64) < PRUNE_BATCH {
            return Ok(Some(through));
        }
    }
}

/// The number of the latest event committed (0 before the first). Events commit in the order of their numbers
/// (see [`super::locks::COPY_EVENTS`]), so every event at or below it is committed and visible from now on.
/// Pruned events count: once the history is pruned through N, the latest is at least N, even with no event left.
pub async fn latest_seq(store: &Store) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT GREATEST((SELECT COALESCE(max(seq), 0) FROM copy_events), (SELECT through_seq FROM copy_events_pruned))",
    )
    .fetch_one(store.pool())
    .await?)
}

/// Up to `limit` events numbered after `after_seq`, in number order (which is commit order), each with its copy as
/// it was right after it: a page of what a watcher that fell behind missed. Nothing numbered after `after_seq` can
/// commit later below the last one returned.
pub async fn after(store: &Store, after_seq: i64, limit: i64) -> Result<Vec<(CopyEvent, CopyJob)>, StoreError> {
    let rows: Vec<EventRow> = sqlx::query_as("SELECT * FROM copy_events WHERE seq > $1 ORDER BY seq LIMIT $2")
        .bind(after_seq)
        .bind(limit)
        .fetch_all(store.pool())
        .await?;
    let events: Vec<CopyEvent> = super::parse_all(rows)?;
    let ids: Vec<Uuid> = events.iter().map(|e| e.copy_id.as_uuid()).collect();
    let jobs = super::jobs::get_many(store, &ids).await?;
    events
        .into_iter()
        .map(|event| match jobs.get(&event.copy_id) {
            Some(job) => {
                let job = event.apply_to(job);
                Ok((event, job))
            }
            None => Err(StoreError::Corrupt(format!("copy_events row {}: no copy {}", event.seq, event.copy_id))),
        })
        .collect()
}
