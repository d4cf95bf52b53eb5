//! What watchers start from: a copy together with the number of its latest change. (What a watcher that fell
//! behind missed is read from the events: [`crate::store::events::after`].)

use chrono::{DateTime, Utc};
use sqlx::{FromRow, QueryBuilder};

use super::lifecycle::select_matching;
use super::{parse_all, CopyJob, JobRow};
use crate::domain::{CopyFilter, CopyId, CopyState};
use crate::store::{Store, StoreError};

/// A copy with the sequence number of its latest change, read by one statement so that the two agree. A watcher
/// starts from such a pair and then sends exactly the changes numbered after it; reading the copy and the number
/// apart let a change committed in between be counted as sent while the copy still showed the state before it.
#[derive(Debug, Clone)]
pub struct JobAt {
    pub job: CopyJob,
    pub last_seq: i64,
}

#[derive(FromRow)]
struct JobAtRow {
    #[sqlx(flatten)]
    job: JobRow,
    last_seq: i64,
}

impl TryFrom<JobAtRow> for JobAt {
    type Error = StoreError;
    fn try_from(row: JobAtRow) -> Result<JobAt, StoreError> {
        Ok(JobAt { job: row.job.try_into()?, last_seq: row.last_seq })
    }
}

/// A copy whose changes were pruned is as new as the pruning mark: every change it had is at or below the mark,
/// every later one will be above it (so a watcher's catch-up from there misses nothing, and is not refused).
const SELECT_JOBS_AT: &str = "SELECT copy_jobs.*, \
    GREATEST(COALESCE((SELECT MAX(seq) FROM copy_events e WHERE e.copy_id = copy_jobs.id), 0), \
             (SELECT through_seq FROM copy_events_pruned)) AS last_seq FROM copy_jobs";

/// One copy as it is now, with its latest change's number (see [`JobAt`]).
pub async fn get_at(store: &Store, id: CopyId) -> Result<Option<JobAt>, StoreError> {
    let mut query = QueryBuilder::new(SELECT_JOBS_AT);
    query.push(" WHERE id = ").push_bind(id.as_uuid());
    let row: Option<JobAtRow> = query.build_query_as().fetch_optional(store.pool()).await?;
    row.map(JobAt::try_from).transpose()
}

/// Where a page of live copies starts: after this copy, in creation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveCursor {
    created_at: DateTime<Utc>,
    id: CopyId,
}

impl LiveCursor {
    pub fn after(job: &CopyJob) -> LiveCursor {
        LiveCursor { created_at: job.created_at, id: job.id }
    }
}

/// A page of the live copies matching `filter`, oldest first (after `cursor`, when given), at most `limit`, each
/// with its latest change's number. Paged by key, so a watcher's snapshot of any size is read a page at a time,
/// through the partial index of live copies.
pub async fn live_page(
    store: &Store,
    filter: &CopyFilter,
    cursor: Option<LiveCursor>,
    limit: i64,
) -> Result<Vec<JobAt>, StoreError> {
    let mut query = select_matching(SELECT_JOBS_AT, filter);
    query.push(" AND state = ANY(").push_bind(CopyState::LIVE.to_vec()).push(")");
    if let Some(LiveCursor { created_at, id }) = cursor {
        query.push(" AND (created_at, id) > (").push_bind(created_at).push(", ").push_bind(id.as_uuid()).push(")");
    }
    query.push(" ORDER BY created_at, id LIMIT ").push_bind(limit);
    parse_all(query.build_query_as::<JobAtRow>().fetch_all(store.pool()).await?)
}
