//! The history of every copy: one row per state transition, numbered by an ever-growing sequence.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, Postgres, Transaction};
use uuid::Uuid;

use super::{CopyJob, StoreError};
use crate::domain::CopyState;

#[derive(Debug, Clone, FromRow)]
pub struct CopyEventRow {
    pub seq: i64,
    pub copy_id: Uuid,
    #[sqlx(try_from = "Option<String>")]
    pub from_state: OptionalState,
    #[sqlx(try_from = "String")]
    pub to_state: CopyState,
    pub rekognition_status: Option<String>,
    pub rekognition_status_message: Option<String>,
    pub destination_version_arn: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub detail: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

/// A state that may be absent (a copy's first event has none before it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionalState(pub Option<CopyState>);

impl TryFrom<Option<String>> for OptionalState {
    type Error = String;
    fn try_from(value: Option<String>) -> Result<Self, Self::Error> {
        value.map(|s| s.parse()).transpose().map(OptionalState)
    }
}

impl CopyEventRow {
    /// The job as it was right after this event: its fixed fields, with this event's changing ones.
    pub fn apply_to(&self, job: &CopyJob) -> CopyJob {
        let mut job = job.clone();
        job.state = self.to_state;
        job.rekognition_status = self.rekognition_status.clone();
        job.rekognition_status_message = self.rekognition_status_message.clone();
        job.destination_version_arn = self.destination_version_arn.clone();
        job.error_code = self.error_code.clone();
        job.error_message = self.error_message.clone();
        job.updated_at = self.occurred_at;
        job
    }
}

/// Records that `job` (as it now is) came from `from`.
pub(super) async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    job: &CopyJob,
    from: Option<CopyState>,
    detail: Option<&str>,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO copy_events
            (copy_id, from_state, to_state, rekognition_status, rekognition_status_message,
             destination_version_arn, error_code, error_message, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         RETURNING seq",
    )
    .bind(job.id)
    .bind(from.map(|s| s.as_str()))
    .bind(job.state.as_str())
    .bind(&job.rekognition_status)
    .bind(&job.rekognition_status_message)
    .bind(&job.destination_version_arn)
    .bind(&job.error_code)
    .bind(&job.error_message)
    .bind(detail)
    .fetch_one(&mut **tx)
    .await?)
}

pub async fn by_seq(store: &super::Store, seq: i64) -> Result<Option<CopyEventRow>, StoreError> {
    Ok(sqlx::query_as("SELECT * FROM copy_events WHERE seq = $1").bind(seq).fetch_optional(store.pool()).await?)
}

/// A copy's events after `after_seq`, oldest first. Transitions of one copy are serialized by its row lock,
/// so within one copy, sequence order is commit order and nothing can appear later below `after_seq`.
pub async fn for_copy_after(
    store: &super::Store,
    copy_id: Uuid,
    after_seq: i64,
) -> Result<Vec<CopyEventRow>, StoreError> {
    Ok(sqlx::query_as("SELECT * FROM copy_events WHERE copy_id = $1 AND seq > $2 ORDER BY seq")
        .bind(copy_id)
        .bind(after_seq)
        .fetch_all(store.pool())
        .await?)
}
