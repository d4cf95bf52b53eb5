//! One page of ListCopies with only the copies the caller may see.
//!
//! The policies are asked per copy, after the database's filter, so a page can come back shorter than asked for.
//! Rows are read in the list's order (newest first) until the page is full or the list ends, but at most about
//! [`MAX_SCANNED`] of them, so a caller who may see little cannot make one call read the whole table. The reads
//! start at a page and a row and double up to [`MAX_BATCH`] rows, so that such a caller's call with a page size of
//! 1 costs a dozen queries, not one per two rows (2,500 before).
//!
//! The page token never names a copy the caller may not see. A full page's token names its last copy, which the
//! caller was just shown. A page cut short by the scan limit stops between two creation instants, once every row of
//! the last instant it examined has been examined (copies committed together share one), and its token names that
//! instant only: "older than this", with no copy's id in it. Either way every row before the token was returned or
//! hidden, so paging neither skips nor repeats a copy, and every page moves on.

use std::collections::BTreeSet;

use crate::auth::Visibility;
use crate::domain::CopyFilter;
use crate::store::{jobs, CopyJob, PageToken, Store, StoreError};

/// Rows examined for one page, at most (and the rest of the creation instant the last of them belongs to).
pub const MAX_SCANNED: usize = 5_000;
/// Rows read by one query, at most.
pub const MAX_BATCH: i64 = 1_000;

pub struct VisiblePage {
    pub copies: Vec<CopyJob>,
    /// Where the next page starts; `None` when the list ended.
    pub next: Option<PageToken>,
    /// Copies examined and not shown.
    pub hidden: usize,
    /// The policies that let the shown copies be seen.
    pub policy_ids: BTreeSet<String>,
}

pub async fn visible_page(
    store: &Store,
    filter: &CopyFilter,
    after: Option<PageToken>,
    page_size: usize,
    visibility: &Visibility,
) -> Result<VisiblePage, StoreError> {
    let token = |job: &CopyJob| PageToken { created_at: job.created_at, id: job.id.as_uuid() };
    let mut batch = page_size as i64 + 1;
    let mut page = VisiblePage { copies: Vec::new(), next: None, hidden: 0, policy_ids: BTreeSet::new() };
    let mut cursor = after;
    let mut scanned = 0;
    loop {
        let rows = jobs::list(store, filter, cursor, batch).await?;
        let ended = (rows.len() as i64) < batch;
        for job in rows {
            if page.copies.len() == page_size {
                // A full page, and at least one more row after it.
                page.next = page.copies.last().map(token);
                return Ok(page);
            }
            let examined_at = cursor.map(|c| c.created_at);
            if scanned >= MAX_SCANNED && examined_at.is_some_and(|at| at != job.created_at) {
                // Every row of the last instant examined was examined: the next page starts before it.
                page.next = examined_at.map(PageToken::before);
                return Ok(page);
            }
            scanned += 1;
            cursor = Some(token(&job));
            let decision = visibility.decide(&job);
            if decision.allowed {
                page.policy_ids.extend(decision.policy_ids);
                page.copies.push(job);
            } else {
                page.hidden += 1;
            }
        }
        if ended {
            return Ok(page);
        }
        batch = (batch * 2).min(MAX_BATCH.max(page_size as i64 + 1));
    }
}
