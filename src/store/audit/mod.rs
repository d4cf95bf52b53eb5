//! The audit log in PostgreSQL: appending hash-chained rows, and reading them back for verification and reports.
//!
//! Everything that describes a row lives here too, on the store's floor, because the store writes and reads it:
//! the [`AuditRecord`] a call leaves ([`record`]), how its gRPC code is spelled ([`grpc_code`]), the hash that chains
//! rows ([`chain`]), and the compliance reports' questions and answers ([`AuditFilter`], [`summary`]). What sits
//! above the store (the tower layer that writes a row for every call, the slot a call fills in, the verifier) is in
//! [`crate::audit`].
//!
//! Appending is serialized by one transaction-scoped advisory lock, [`locks::AUDIT_CHAIN`]: a writer holds it from
//! reading the last row until its transaction ends, so each row's `prev_hash` is the hash of the row committed just
//! before it, ids follow commit order without gaps, and a row whose transaction rolls back leaves no trace. Audited
//! commits therefore happen one at a time, which is why they are grouped: one commit carries every write that queued
//! up meanwhile ([`super::writer`]).

use chrono::{DateTime, Utc};
use sqlx::{FromRow, QueryBuilder};

pub mod chain;
pub mod filter;
pub mod grpc_code;
pub mod record;
pub mod summary;

pub use filter::AuditFilter;
pub use record::{AuditRecord, Decision};

use self::chain::RowContent;
use self::summary::{Period, SummaryRow};
use super::writer::{Done, Op};
use super::{Store, StoreError};
use crate::domain::CopyState;

/// The columns of an [`AuditRow`], with the request in its canonical text (see [`chain`]).
const COLUMNS: &str = "id, occurred_at, principal, authn, peer, rpc, decision, reason, grpc_code, \
                       request::text AS request, request_digest, copy_id, policy_ids, prev_hash, hash";

/// An audit row as stored.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct AuditRow {
    #[sqlx(flatten)]
    pub content: RowContent,
    pub hash: Vec<u8>,
}

/// Appends `record` to the chain, committed before this returns: the audit layer's write, for a call whose record
/// did not commit with a change of its own. It goes through the store's group commit, with the writes of other calls.
pub async fn append(store: &Store, record: &AuditRecord) -> Result<i64, StoreError> {
    match store.writer.write(Op::Append(record.clone())).await? {
        Done::Appended(id) => Ok(id),
        other => Err(StoreError::Corrupt(format!("the writer answered an audit row with {other:?}"))),
    }
}

/// Up to `limit` rows after id `after`, in chain (id) order: one batch of a verification.
pub async fn chain_batch(store: &Store, after: i64, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
    Ok(sqlx::query_as(&format!("SELECT {COLUMNS} FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2"))
        .bind(after)
        .bind(limit)
        .fetch_all(store.pool())
        .await?)
}

/// ListAuditEvents' page token: the id of the last row of the previous page. Rows are listed in id order, which
/// is commit order, so a row appended while someone pages is on a later page, never skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditPageToken(pub i64);

const TOKEN_PREFIX: &str = "a1.";

impl AuditPageToken {
    pub fn encode(&self) -> String {
        format!("{TOKEN_PREFIX}{}", self.0)
    }

    pub fn decode(token: &str) -> Option<AuditPageToken> {
        let id: i64 = token.strip_prefix(TOKEN_PREFIX)?.parse().ok()?;
        (id >= 0).then_some(AuditPageToken(id))
    }
}

/// Rows matching `filter`, oldest first, at most `limit`, after `after`.
pub async fn list(
    store: &Store,
    filter: &AuditFilter,
    after: Option<AuditPageToken>,
    limit: i64,
) -> Result<Vec<AuditRow>, StoreError> {
    let mut query = QueryBuilder::new(format!("SELECT {COLUMNS} FROM audit_log AS a WHERE TRUE"));
    if let Some(after) = after {
        query.push(" AND a.id > ").push_bind(after.0);
    }
    if let Some(after) = filter.occurred_after {
        query.push(" AND a.occurred_at >= ").push_bind(after);
    }
    if let Some(before) = filter.occurred_before {
        query.push(" AND a.occurred_at < ").push_bind(before);
    }
    if let Some(principal) = &filter.principal {
        query.push(" AND a.principal = ").push_bind(principal.clone());
    }
    if let Some(action) = &filter.action {
        query.push(" AND a.rpc = ").push_bind(action.clone());
    }
    if !filter.decisions.is_empty() {
        let names: Vec<&'static str> = filter.decisions.iter().map(|d| d.as_str()).collect();
        query.push(" AND a.decision = ANY(").push_bind(names).push(")");
    }
    if let Some(account) = &filter.account {
        let account = account.as_str().to_owned();
        query.push(" AND (EXISTS (SELECT 1 FROM copy_jobs AS j WHERE j.id = a.copy_id AND ");
        query.push_bind(account.clone()).push(" IN (j.source_account, j.destination_account))");
        query.push(" OR ").push_bind(account.clone()).push(
            " IN (split_part(a.request->>'source_project_arn', ':', 5),
                  split_part(a.request->>'source_project_version_arn', ':', 5),
                  split_part(a.request->>'destination_project_arn', ':', 5),
                  a.request->'filter'->>'source_account_id',
                  a.request->'filter'->>'destination_account_id',
                  a.request->'filter'->>'account_id')",
        );
        // A rollout names its destinations in an array (its copies' rows are found through the copies).
        query.push(
            " OR EXISTS (SELECT 1 FROM jsonb_array_elements(
                    CASE WHEN jsonb_typeof(a.request->'destinations') = 'array'
                         THEN a.request->'destinations' ELSE '[]'::jsonb END) AS d
                  WHERE split_part(d->>'destination_project_arn', ':', 5) = ",
        );
        query.push_bind(account).push("))");
    }
    query.push(" ORDER BY a.id LIMIT ").push_bind(limit);
    Ok(query.build_query_as().fetch_all(store.pool()).await?)
}

/// The summary of CopyModelVersion records in `[from, to)` per `period` (see [`summary`] for what
/// each count means), oldest period first; at most `limit` rows.
pub async fn summarize(
    store: &Store,
    period: Period,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    limit: i64,
) -> Result<Vec<SummaryRow>, StoreError> {
    Ok(sqlx::query_as(
        "WITH requests AS (
             SELECT a.occurred_at, a.principal, a.decision, j.state,
                    COALESCE(j.audit_id = a.id, FALSE) AS created,
                    COALESCE(j.source_account,
                             NULLIF(split_part(a.request->>'source_project_version_arn', ':', 5), ''),
                             NULLIF(split_part(a.request->>'source_project_arn', ':', 5), '')) AS source_account,
                    COALESCE(j.destination_account,
                             NULLIF(split_part(a.request->>'destination_project_arn', ':', 5), '')) AS destination_account
               FROM audit_log AS a
               LEFT JOIN copy_jobs AS j ON j.id = a.copy_id
              -- A rollout's copies count as requests each (their rows name them); the rollout's own row counts
              -- only when it was refused (then no copy row exists).
              WHERE (a.rpc = 'CopyModelVersion'
                     OR (a.rpc = 'CreateRollout' AND (a.copy_id IS NOT NULL OR a.decision <> 'ALLOWED')))
                AND ($2::timestamptz IS NULL OR a.occurred_at >= $2)
                AND ($3::timestamptz IS NULL OR a.occurred_at < $3)
         )
         SELECT date_trunc($1, occurred_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS period_start,
                COALESCE(principal, '') AS principal,
                COALESCE(source_account, '') AS source_account,
                COALESCE(destination_account, '') AS destination_account,
                count(*) FILTER (WHERE decision = 'ALLOWED' AND created) AS allowed,
                count(*) FILTER (WHERE decision = 'ALLOWED' AND NOT created) AS replayed,
                count(*) FILTER (WHERE decision = 'DENIED') AS denied,
                count(*) FILTER (WHERE decision = 'INVALID') AS invalid,
                count(*) FILTER (WHERE decision = 'FAILED') AS errored,
                count(*) FILTER (WHERE created AND state = $5) AS succeeded,
                count(*) FILTER (WHERE created AND state = $6) AS failed,
                count(*) FILTER (WHERE created AND state = $7) AS cancelled,
                count(*) FILTER (WHERE created AND state = $8) AS expired
           FROM requests
          GROUP BY 1, 2, 3, 4
          ORDER BY 1, 2, 3, 4
          LIMIT $4",
    )
    .bind(period.as_sql())
    .bind(from)
    .bind(to)
    .bind(limit)
    .bind(CopyState::Succeeded)
    .bind(CopyState::Failed)
    .bind(CopyState::Cancelled)
    .bind(CopyState::Expired)
    .fetch_all(store.pool())
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_refuse_others() {
        let token = AuditPageToken(42);
        assert_eq!(AuditPageToken::decode(&token.encode()), Some(token));
        for bad in ["", "a1.", "a1.x", "a1.-1", "42", "v1.1.00000000000000000000000000000000"] {
            assert_eq!(AuditPageToken::decode(bad), None, "{bad}");
        }
    }
}
