//! One page of ListCopies with only the copies the caller may see.
//!
//! The policies are asked per copy, after the database's filter, so a page can come back shorter than asked for.
//! Rows are read in the list's order (newest first) until the page is full or the list ends, but at most
//! [`MAX_SCANNED`] of them, so a caller who may see little cannot make one call read the whole table. The page
//! token always names the last row *examined*, or the last row returned when a full page stops early: every row
//! before it was either returned or hidden, so paging neither skips nor repeats a copy, and every page moves on.

use std::collections::BTreeSet;

use crate::auth::Visibility;
use crate::domain::CopyFilter;
use crate::store::{jobs, CopyJob, PageToken, Store, StoreError};

/// Rows examined for one page, at most.
pub const MAX_SCANNED: usize = 5_000;

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
    let token = |job: &CopyJob| PageToken { created_at: job.created_at, id: job.id };
    let batch = page_size as i64 + 1;
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
        if scanned >= MAX_SCANNED {
            page.next = cursor;
            return Ok(page);
        }
    }
}
