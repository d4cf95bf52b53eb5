//! The audit log in PostgreSQL: appending hash-chained rows, and reading them back for verification and reports.
//!
//! Everything that describes a row lives here too, on the store's floor, because the store writes and reads it:
//! the [`AuditRecord`] a call leaves ([`record`]), how its gRPC code is spelled ([`grpc_code`]), the hash that chains
//! rows ([`chain`]), and the compliance reports' questions and answers ([`AuditFilter`], [`summary`]). What sits
//! above the store (the tower layer that writes a row for every call, the slot a call fills in, the verifier) is in
//! [`crate::audit`].
//!
//! Appending is serialized by one transaction-scoped advisory lock, [`locks::AUDIT_CHAIN`]: the writer holds it from
//! reading the last row until its transaction ends, so each row's `prev_hash` is the hash of the row committed just
//! before it, ids follow commit order without gaps, and a row whose transaction rolls back leaves no trace. The
//! price is that audited commits happen one at a time (each holds the lock for a few statements).

use chrono::{DateTime, Utc};
use sqlx::{FromRow, Postgres, QueryBuilder, Transaction};

pub mod chain;
pub mod filter;
pub mod grpc_code;
pub mod record;
pub mod summary;

pub use filter::AuditFilter;
pub use record::{AuditRecord, Decision};

use self::chain::RowContent;
use self::summary::{Period, SummaryRow};
use super::{locks, Store, StoreError};
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

/// Appends `record` to the chain inside `tx`, and returns its id. The row becomes visible when `tx` commits; until
/// then every other append waits, so keep what follows in `tx` short.
///
/// `tx` must be READ COMMITTED (PostgreSQL's default): the last row is read by a statement that starts after the
/// lock is held, and only that sees the row committed by the previous holder.
pub async fn insert(tx: &mut Transaction<'_, Postgres>, record: &AuditRecord) -> Result<i64, StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(locks::AUDIT_CHAIN).execute(&mut **tx).await?;
    // The time comes from the database, like every other time in it, and is read under the lock: along the chain,
    // time only moves forward (as far as the database clock does). The request is printed by PostgreSQL, as
    // verification will read it back.
    let (last_id, last_hash, occurred_at, request): (Option<i64>, Option<Vec<u8>>, DateTime<Utc>, Option<String>) =
        sqlx::query_as(
            "SELECT last.id, last.hash, clock_timestamp(), $1::jsonb::text
               FROM (SELECT 1) AS one
               LEFT JOIN (SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1) AS last ON TRUE",
        )
        .bind(&record.request)
        .fetch_one(&mut **tx)
        .await?;
    let content = RowContent {
        id: last_id.unwrap_or(0) + 1,
        occurred_at,
        principal: record.principal.clone(),
        authn: record.authn.clone(),
        peer: record.peer.clone(),
        rpc: record.rpc.clone(),
        decision: record.decision.as_str().to_owned(),
        reason: record.reason.clone(),
        grpc_code: grpc_code::stored_name(record.grpc_code).to_owned(),
        request,
        request_digest: record.request_digest.clone(),
        copy_id: record.copy_id.map(|id| id.as_uuid()),
        policy_ids: record.policy_ids.clone(),
        prev_hash: last_hash,
    };
    let hash = chain::hash(&content);
    sqlx::query(
        "INSERT INTO audit_log
            (id, occurred_at, principal, authn, peer, rpc, decision, reason, grpc_code, request, request_digest,
             copy_id, policy_ids, prev_hash, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11, $12, $13, $14, $15)",
    )
    .bind(content.id)
    .bind(content.occurred_at)
    .bind(&content.principal)
    .bind(&content.authn)
    .bind(&content.peer)
    .bind(&content.rpc)
    .bind(&content.decision)
    .bind(&content.reason)
    .bind(&content.grpc_code)
    .bind(&content.request)
    .bind(&content.request_digest)
    .bind(content.copy_id)
    .bind(&content.policy_ids)
    .bind(&content.prev_hash)
    .bind(hash.as_slice())
    .execute(&mut **tx)
    .await?;
    Ok(content.id)
}

/// Appends `record` in a transaction of its own, committed before this returns: the audit layer's write, for a
/// call whose record did not commit with a change of its own.
pub async fn append(store: &Store, record: &AuditRecord) -> Result<i64, StoreError> {
    let mut tx = store.pool().begin().await?;
    let id = insert(&mut tx, record).await?;
    tx.commit().await?;
    Ok(id)
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
        query.push(" OR ").push_bind(account).push(
            " IN (split_part(a.request->>'source_project_arn', ':', 5),
                  split_part(a.request->>'source_project_version_arn', ':', 5),
                  split_part(a.request->>'destination_project_arn', ':', 5),
                  a.request->'filter'->>'source_account_id',
                  a.request->'filter'->>'destination_account_id',
                  a.request->'filter'->>'account_id'))",
        );
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
              WHERE a.rpc = 'CopyModelVersion'
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
                count(*) FILTER (WHERE created AND state = $7) AS cancelled
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
