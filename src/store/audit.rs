//! Writing audit rows, inside whatever transaction or connection the caller holds.

use sqlx::PgExecutor;

use super::StoreError;
use crate::audit::AuditRecord;

pub async fn insert<'e>(
    executor: impl PgExecutor<'e>,
    record: &AuditRecord,
) -> Result<i64, StoreError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO audit_log
            (principal, authn, peer, rpc, decision, reason, grpc_code, request, request_digest, copy_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         RETURNING id",
    )
    .bind(&record.principal)
    .bind(&record.authn)
    .bind(&record.peer)
    .bind(&record.rpc)
    .bind(record.decision.as_str())
    .bind(&record.reason)
    .bind(format!("{:?}", record.grpc_code))
    .bind(&record.request)
    .bind(&record.request_digest)
    .bind(record.copy_id)
    .fetch_one(executor)
    .await?;
    Ok(id)
}
