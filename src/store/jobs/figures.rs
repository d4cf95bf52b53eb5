//! Each destination account's figures for the metrics: copies queued, how long the oldest has waited, copies in
//! progress. Read as the database has them, so every replica reports the same, whichever leads the account.

use std::time::Duration;

use crate::domain::CopyState;
use crate::store::{Store, StoreError};

/// One destination account's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountFigures {
    pub account: String,
    pub queued: i64,
    /// Zero when nothing is queued.
    pub oldest_queued_age: Duration,
    /// Submitting or copying.
    pub in_progress: i64,
}

/// Every account that has had a copy queued. The queue depth is the trigger-kept counter; the oldest queued copy
/// and the copies in progress are read through the partial indexes the dispatcher uses (queued copies, live ones).
pub async fn account_figures(store: &Store) -> Result<Vec<AccountFigures>, StoreError> {
    let rows: Vec<(String, i64, f64, i64)> = sqlx::query_as(
        "SELECT d.account, d.queued,
                COALESCE(EXTRACT(EPOCH FROM now() - (SELECT min(q.created_at) FROM copy_jobs AS q
                                                      WHERE q.destination_account = d.account AND q.state = $1)), 0)::float8,
                (SELECT count(*) FROM copy_jobs AS p WHERE p.destination_account = d.account AND p.state = ANY($2))
           FROM account_queue_depth AS d
          ORDER BY d.account",
    )
    .bind(CopyState::Queued)
    .bind(vec![CopyState::Submitting, CopyState::Copying])
    .fetch_all(store.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|(account, queued, oldest, in_progress)| AccountFigures {
            account,
            queued,
            oldest_queued_age: Duration::from_secs_f64(oldest.max(0.0)),
            in_progress,
        })
        .collect())
}
