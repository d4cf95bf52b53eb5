//! The compliance summary: per period, principal and route (source and destination account), how many copies
//! were asked for and allowed, denied or refused as invalid, and how the allowed ones ended.
//!
//! It is computed by the database (`SummarizeAudit`, one `GROUP BY date_trunc(…)` over the audit log joined with
//! the copies), not by the client from `ListAuditEvents`: a month of records can be millions of rows, and every
//! copy's outcome would cost the client one more call, while PostgreSQL counts them in one pass next to the data.
//! The answer is small (one row per period, principal and route), so one response carries it. Being computed by
//! the store ([`super::summarize`]), its rows are the store's types.
//!
//! What is counted, for the CopyModelVersion records in the time range (and CreateRollout's: each copy of a rollout
//! as a request of its own, a refused rollout as one request):
//! - a request belongs to the period of its audit record (UTC), and its copy's outcome to the same row, so a row
//!   reads as "of the copies asked for that day, so many succeeded" (the outcome as it stands now);
//! - `allowed` counts requests that created a copy; a retry answered with the same copy is `replayed`;
//! - `denied` (authentication or authorization refused it), `invalid` (the request was refused as it stood:
//!   malformed, a reused idempotency token, a full queue) and `errored` (the service failed) are requests;
//! - `succeeded`, `failed`, `cancelled`, `expired` count the copies those allowed requests created, by their current
//!   state (a succeeded copy deleted after its `delete_after` counts as expired, no longer as succeeded).
//!
//! The route is the copy's when there is one, else read from the request's ARNs; a request refused before its
//! body was read (no credentials) has no route, and neither does a malformed ARN: those count under empty accounts.

use chrono::{DateTime, Utc};
use sqlx::FromRow;

/// How long one row of the summary is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    /// ISO weeks, starting on Monday.
    Week,
    Month,
}

impl Period {
    /// The unit PostgreSQL's `date_trunc` knows it by.
    pub fn as_sql(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
        }
    }
}

/// One row of the summary. Counts are `i64` as PostgreSQL's `count` returns them.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct SummaryRow {
    pub period_start: DateTime<Utc>,
    /// Empty for calls nobody was authenticated for.
    pub principal: String,
    /// Empty when unknown.
    pub source_account: String,
    pub destination_account: String,
    pub allowed: i64,
    pub replayed: i64,
    pub denied: i64,
    pub invalid: i64,
    pub errored: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub cancelled: i64,
    pub expired: i64,
}
