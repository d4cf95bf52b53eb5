//! One group commit: a batch of writes stored by a handful of statements, however many writes it holds.
//!
//! In one transaction, under the audit chain's lock: read what the writes depend on (the copies their idempotency
//! tokens name, the copies to cancel, locked, and the destination accounts' queue depths), decide every write in the
//! order it arrived, read the chain's head, hash the batch's audit rows in that order, then append the audit rows,
//! insert the new copies, cancel, and record their history, each as one statement over arrays.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{Done, NewCopy, Op};
use crate::domain::{CopyId, CopyRequest, CopyState};
use crate::store::audit::chain::{self, RowContent};
use crate::store::audit::{grpc_code, AuditRecord};
use crate::store::jobs::{CancelOutcome, CopyJob, CreateOutcome, JobRow};
use crate::store::{locks, StoreError};
use crate::telemetry::TraceParent;

/// Stores `ops` in one transaction. `Err` when the batch failed as a whole (nothing of it is stored); otherwise one
/// answer per op, in order, each an error only when that op alone could not be done (a row it needs that does not
/// parse).
pub(super) async fn commit(pool: &PgPool, ops: Vec<Op>) -> Result<Vec<Result<Done, StoreError>>, StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(locks::AUDIT_CHAIN).execute(&mut *tx).await?;
    let known = Known::read(&mut tx, &ops).await?;
    let mut plan = Plan::decide(ops, known);
    if !plan.audit.is_empty() {
        let rows = chain_rows(&mut tx, &plan.audit).await?;
        for job in &mut plan.new_jobs {
            job.audit_id = rows[job.audit].id;
        }
        // The audit rows first: a new copy names its audit row (copy_jobs.audit_id references audit_log).
        insert_audit(&mut tx, &rows).await?;
        let inserted = insert_jobs(&mut tx, &plan.new_jobs).await?;
        let cancelled = cancel_jobs(&mut tx, &plan.cancels).await?;
        insert_events(&mut tx, &inserted, &cancelled, &plan.cancels).await?;
        tx.commit().await?;
        return Ok(plan.answer(&rows, inserted, cancelled));
    }
    // Nothing to write (every op was refused): the transaction only read.
    tx.commit().await?;
    Ok(plan.answer(&[], Vec::new(), Vec::new()))
}

/// What the batch's writes depend on, read under the chain lock.
struct Known {
    /// The copies named by the batch's (principal, idempotency token) pairs.
    by_token: HashMap<(String, String), Result<CopyJob, String>>,
    /// The copies to cancel, locked until commit.
    to_cancel: HashMap<CopyId, Result<CopyJob, String>>,
    /// Queued copies per destination account.
    depth: HashMap<String, i64>,
}

impl Known {
    async fn read(tx: &mut PgConnection, ops: &[Op]) -> Result<Known, StoreError> {
        let (mut principals, mut tokens, mut cancel_ids, mut accounts) = (vec![], vec![], vec![], vec![]);
        for op in ops {
            match op {
                Op::Create(new) => {
                    let NewCopy { request, principal, .. } = &**new;
                    if let Some(token) = request.idempotency_token() {
                        principals.push(principal.clone());
                        tokens.push(token.as_str().to_owned());
                    }
                    accounts.push(request.destination_account().as_str().to_owned());
                }
                Op::Cancel { id, .. } => cancel_ids.push(id.as_uuid()),
                Op::Append(_) => {}
            }
        }
        let mut known = Known { by_token: HashMap::new(), to_cancel: HashMap::new(), depth: HashMap::new() };
        if !tokens.is_empty() {
            let rows: Vec<JobRow> = sqlx::query_as(
                "SELECT j.* FROM copy_jobs AS j
                   JOIN unnest($1::text[], $2::text[]) AS t (principal, token)
                     ON j.principal = t.principal AND j.idempotency_token = t.token",
            )
            .bind(&principals)
            .bind(&tokens)
            .fetch_all(&mut *tx)
            .await?;
            for row in rows {
                let key = row.idempotency_key();
                known.by_token.insert(key, CopyJob::try_from(row).map_err(|e| e.to_string()));
            }
        }
        if !cancel_ids.is_empty() {
            let rows: Vec<JobRow> = sqlx::query_as("SELECT * FROM copy_jobs WHERE id = ANY($1) ORDER BY id FOR UPDATE")
                .bind(&cancel_ids)
                .fetch_all(&mut *tx)
                .await?;
            for row in rows {
                let id = CopyId::from(row.id());
                known.to_cancel.insert(id, CopyJob::try_from(row).map_err(|e| e.to_string()));
            }
        }
        if !accounts.is_empty() {
            let depths: Vec<(String, i64)> =
                sqlx::query_as("SELECT account, queued FROM account_queue_depth WHERE account = ANY($1)")
                    .bind(&accounts)
                    .fetch_all(&mut *tx)
                    .await?;
            known.depth.extend(depths);
        }
        Ok(known)
    }
}

/// A copy this batch creates.
struct NewJob {
    id: CopyId,
    principal: String,
    request: CopyRequest,
    digest: Vec<u8>,
    trace: Option<TraceParent>,
    /// Its audit row, as an index into [`Plan::audit`]; the row's id once the chain's head is known.
    audit: usize,
    audit_id: i64,
}

/// A copy this batch cancels.
struct Cancel {
    id: CopyId,
    reason: Option<String>,
}

/// What one op will be answered, once the batch has committed.
enum Answer {
    Appended {
        audit: usize,
    },
    Created {
        job: usize,
    },
    Replayed(CopyJob),
    /// A replay of a copy created earlier in this same batch.
    ReplayedNew {
        job: usize,
    },
    Mismatch(CopyJob),
    MismatchNew {
        job: usize,
    },
    QueueFull {
        depth: i64,
    },
    Cancelled {
        cancel: usize,
    },
    AlreadyCancelled(CopyJob),
    TooLate(CopyJob),
    NotFound,
    Unreadable(String),
}

/// Where an idempotency token leads within the batch.
enum Named {
    Stored(Box<CopyJob>),
    New(usize),
}

struct Plan {
    answers: Vec<Answer>,
    audit: Vec<AuditRecord>,
    new_jobs: Vec<NewJob>,
    cancels: Vec<Cancel>,
}

impl Plan {
    /// Decides every op in arrival order, as if each had been committed alone before the next.
    fn decide(ops: Vec<Op>, mut known: Known) -> Plan {
        let mut plan = Plan { answers: Vec::new(), audit: Vec::new(), new_jobs: Vec::new(), cancels: Vec::new() };
        let mut named: HashMap<(String, String), Named> = HashMap::new();
        let mut cancelled_here: HashMap<CopyId, usize> = HashMap::new();
        for op in ops {
            let answer = match op {
                Op::Append(record) => Answer::Appended { audit: plan.push_audit(record) },
                Op::Create(new) => {
                    let NewCopy { request, principal, max_queued, mut audit, trace } = *new;
                    let digest = request.digest().to_vec();
                    let key = request.idempotency_token().map(|t| (principal.clone(), t.as_str().to_owned()));
                    let earlier = key.as_ref().and_then(|key| match named.get(key) {
                        Some(Named::Stored(job)) => Some(Ok(Named::Stored(job.clone()))),
                        Some(Named::New(job)) => Some(Ok(Named::New(*job))),
                        None => known.by_token.remove(key).map(|read| read.map(|job| Named::Stored(Box::new(job)))),
                    });
                    match earlier {
                        Some(Err(why)) => Answer::Unreadable(why),
                        Some(Ok(Named::Stored(job))) => {
                            if let Some(key) = key {
                                named.insert(key, Named::Stored(job.clone()));
                            }
                            if job.request_digest != digest {
                                Answer::Mismatch(*job)
                            } else {
                                audit.copy_id = Some(job.id);
                                append_reason(&mut audit, REPLAYED);
                                plan.push_audit(audit);
                                Answer::Replayed(*job)
                            }
                        }
                        Some(Ok(Named::New(index))) => {
                            if plan.new_jobs[index].digest != digest {
                                Answer::MismatchNew { job: index }
                            } else {
                                audit.copy_id = Some(plan.new_jobs[index].id);
                                append_reason(&mut audit, REPLAYED);
                                plan.push_audit(audit);
                                Answer::ReplayedNew { job: index }
                            }
                        }
                        None => {
                            let account = request.destination_account().as_str().to_owned();
                            let depth = known.depth.entry(account).or_insert(0);
                            if *depth >= max_queued {
                                Answer::QueueFull { depth: *depth }
                            } else {
                                *depth += 1;
                                let id = CopyId::new();
                                audit.copy_id = Some(id);
                                append_reason(&mut audit, "queued");
                                let audit = plan.push_audit(audit);
                                let job = plan.new_jobs.len();
                                plan.new_jobs.push(NewJob {
                                    id,
                                    principal,
                                    request,
                                    digest,
                                    trace,
                                    audit,
                                    audit_id: 0,
                                });
                                if let Some(key) = key {
                                    named.insert(key, Named::New(job));
                                }
                                Answer::Created { job }
                            }
                        }
                    }
                }
                Op::Cancel { id, reason, mut audit } => match known.to_cancel.get(&id) {
                    None => Answer::NotFound,
                    Some(Err(why)) => Answer::Unreadable(why.clone()),
                    Some(Ok(job)) if cancelled_here.contains_key(&id) || job.state == CopyState::Cancelled => {
                        Answer::AlreadyCancelled(job.clone())
                    }
                    Some(Ok(job)) if job.state != CopyState::Queued => Answer::TooLate(job.clone()),
                    Some(Ok(_)) => {
                        append_reason(&mut audit, "cancelled");
                        plan.push_audit(audit);
                        let cancel = plan.cancels.len();
                        plan.cancels.push(Cancel { id, reason });
                        cancelled_here.insert(id, cancel);
                        Answer::Cancelled { cancel }
                    }
                },
            };
            plan.answers.push(answer);
        }
        plan
    }

    fn push_audit(&mut self, record: AuditRecord) -> usize {
        self.audit.push(record);
        self.audit.len() - 1
    }

    /// Each op's answer, from what the statements returned.
    fn answer(
        self,
        rows: &[RowContent],
        inserted: Vec<CopyJob>,
        cancelled: Vec<CopyJob>,
    ) -> Vec<Result<Done, StoreError>> {
        let created = |job: usize| inserted[job].clone();
        self.answers
            .into_iter()
            .map(|answer| {
                Ok(match answer {
                    Answer::Appended { audit } => Done::Appended(rows[audit].id),
                    Answer::Created { job } => Done::Created(CreateOutcome::Created(created(job))),
                    Answer::Replayed(job) => Done::Created(CreateOutcome::Replayed(job)),
                    Answer::ReplayedNew { job } => Done::Created(CreateOutcome::Replayed(created(job))),
                    Answer::Mismatch(job) => Done::Created(CreateOutcome::TokenMismatch(job)),
                    Answer::MismatchNew { job } => Done::Created(CreateOutcome::TokenMismatch(created(job))),
                    Answer::QueueFull { depth } => Done::Created(CreateOutcome::QueueFull { depth }),
                    Answer::Cancelled { cancel } => {
                        Done::Cancelled(CancelOutcome::Cancelled(cancelled[cancel].clone()))
                    }
                    Answer::AlreadyCancelled(job) => Done::Cancelled(CancelOutcome::AlreadyCancelled(job)),
                    Answer::TooLate(job) => Done::Cancelled(CancelOutcome::TooLate(job)),
                    Answer::NotFound => Done::Cancelled(CancelOutcome::NotFound),
                    Answer::Unreadable(why) => return Err(StoreError::Corrupt(why)),
                })
            })
            .collect()
    }
}

const REPLAYED: &str = "replayed: idempotency token seen before with the same parameters";

fn append_reason(audit: &mut AuditRecord, what: &str) {
    audit.reason = Some(match audit.reason.take() {
        Some(reason) => format!("{reason}; {what}"),
        None => what.to_owned(),
    });
}

/// The chain's last id and hash (none while it is empty), the time read under its lock, and the batch's requests as
/// PostgreSQL prints them.
type ChainHead = (Option<i64>, Option<Vec<u8>>, DateTime<Utc>, Vec<Option<String>>);

/// The batch's audit rows as the chain will hold them: numbered on from the chain's head, stamped with one time read
/// under the lock (along the chain, time only moves forward), their requests printed by PostgreSQL (as verification
/// reads them back), and hashed in order.
async fn chain_rows(tx: &mut PgConnection, records: &[AuditRecord]) -> Result<Vec<RowContent>, StoreError> {
    let requests: Vec<Option<String>> =
        records.iter().map(|r| r.request.as_ref().map(|value| value.to_string())).collect();
    let (last_id, mut prev_hash, occurred_at, printed): ChainHead = sqlx::query_as(
        "SELECT last.id, last.hash, clock_timestamp(),
                    ARRAY(SELECT r::jsonb::text FROM unnest($1::text[]) WITH ORDINALITY AS t (r, n) ORDER BY n)
               FROM (SELECT 1) AS one
               LEFT JOIN (SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1) AS last ON TRUE",
    )
    .bind(&requests)
    .fetch_one(&mut *tx)
    .await?;
    let mut rows = Vec::with_capacity(records.len());
    for (id, (record, request)) in (last_id.unwrap_or(0) + 1..).zip(records.iter().zip(printed)) {
        let content = RowContent {
            id,
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
            prev_hash: prev_hash.take(),
        };
        prev_hash = Some(chain::hash(&content).to_vec());
        rows.push(content);
    }
    Ok(rows)
}

async fn insert_audit(tx: &mut PgConnection, rows: &[RowContent]) -> Result<(), StoreError> {
    let column = |f: fn(&RowContent) -> Option<String>| rows.iter().map(f).collect::<Vec<_>>();
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let hashes: Vec<Vec<u8>> = rows.iter().map(|r| chain::hash(r).to_vec()).collect();
    let policy_ids: Vec<String> =
        rows.iter().map(|r| serde_json::Value::from(r.policy_ids.clone()).to_string()).collect();
    sqlx::query(
        "INSERT INTO audit_log
            (id, occurred_at, principal, authn, peer, rpc, decision, reason, grpc_code, request, request_digest,
             copy_id, policy_ids, prev_hash, hash)
         SELECT t.id, $2, t.principal, t.authn, t.peer, t.rpc, t.decision, t.reason, t.grpc_code, t.request::jsonb,
                t.request_digest, t.copy_id,
                ARRAY(SELECT p FROM jsonb_array_elements_text(t.policy_ids::jsonb) WITH ORDINALITY AS x (p, n)
                       ORDER BY n),
                t.prev_hash, t.hash
           FROM unnest($1::int8[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
                       $10::text[], $11::bytea[], $12::uuid[], $13::text[], $14::bytea[], $15::bytea[])
             AS t (id, principal, authn, peer, rpc, decision, reason, grpc_code, request, request_digest, copy_id,
                   policy_ids, prev_hash, hash)",
    )
    .bind(&ids)
    .bind(rows[0].occurred_at)
    .bind(column(|r| r.principal.clone()))
    .bind(column(|r| Some(r.authn.clone())))
    .bind(column(|r| r.peer.clone()))
    .bind(column(|r| Some(r.rpc.clone())))
    .bind(column(|r| Some(r.decision.clone())))
    .bind(column(|r| r.reason.clone()))
    .bind(column(|r| Some(r.grpc_code.clone())))
    .bind(column(|r| r.request.clone()))
    .bind(rows.iter().map(|r| r.request_digest.clone()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.copy_id).collect::<Vec<_>>())
    .bind(&policy_ids)
    .bind(rows.iter().map(|r| r.prev_hash.clone()).collect::<Vec<_>>())
    .bind(&hashes)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Inserts the new copies, each already carrying its audit row's id; returns them in `jobs`' order.
async fn insert_jobs(tx: &mut PgConnection, jobs: &[NewJob]) -> Result<Vec<CopyJob>, StoreError> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let text = |f: fn(&CopyRequest) -> String| jobs.iter().map(|j| f(&j.request)).collect::<Vec<_>>();
    let rows: Vec<JobRow> = sqlx::query_as(
        "INSERT INTO copy_jobs
            (id, principal, idempotency_token, request_digest, source_project_arn, source_project_version_arn,
             destination_project_arn, version_name, s3_bucket, s3_key_prefix, tags, kms_key_id,
             source_account, destination_account, region, state, trace_parent, audit_id)
         SELECT t.id, t.principal, t.token, t.digest, t.source_project, t.source_version, t.destination_project,
                t.version_name, t.bucket, t.key_prefix, t.tags::jsonb, t.kms_key_id, t.source_account,
                t.destination_account, t.region, $16, t.trace_parent, t.audit_id
           FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bytea[], $5::text[], $6::text[], $7::text[],
                       $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[],
                       $15::text[], $17::text[], $18::int8[])
             AS t (id, principal, token, digest, source_project, source_version, destination_project, version_name,
                   bucket, key_prefix, tags, kms_key_id, source_account, destination_account, region, trace_parent,
                   audit_id)
         RETURNING *",
    )
    .bind(jobs.iter().map(|j| j.id.as_uuid()).collect::<Vec<_>>())
    .bind(jobs.iter().map(|j| j.principal.clone()).collect::<Vec<_>>())
    .bind(jobs.iter().map(|j| j.request.idempotency_token().map(|t| t.as_str().to_owned())).collect::<Vec<_>>())
    .bind(jobs.iter().map(|j| j.digest.clone()).collect::<Vec<_>>())
    .bind(text(|r| r.source_project().to_string()))
    .bind(text(|r| r.source_version().to_string()))
    .bind(text(|r| r.destination_project().to_string()))
    .bind(text(|r| r.version_name().to_string()))
    .bind(text(|r| r.output_config().bucket().to_string()))
    .bind(text(|r| r.output_config().key_prefix().to_string()))
    .bind(text(|r| serde_json::to_value(r.tags()).expect("tags serialize").to_string()))
    .bind(jobs.iter().map(|j| j.request.kms_key_id().map(|k| k.to_string())).collect::<Vec<_>>())
    .bind(text(|r| r.source_account().to_string()))
    .bind(text(|r| r.destination_account().to_string()))
    .bind(text(|r| r.region().to_string()))
    .bind(CopyState::Queued)
    .bind(jobs.iter().map(|j| j.trace.as_ref().map(|t| t.as_str().to_owned())).collect::<Vec<_>>())
    .bind(jobs.iter().map(|j| j.audit_id).collect::<Vec<_>>())
    .fetch_all(&mut *tx)
    .await?;
    let mut by_id: HashMap<Uuid, CopyJob> = HashMap::with_capacity(rows.len());
    for row in rows {
        let id = row.id();
        by_id.insert(id, CopyJob::try_from(row)?);
    }
    jobs.iter()
        .map(|j| {
            by_id.remove(&j.id.as_uuid()).ok_or_else(|| StoreError::Corrupt(format!("copy {} was not inserted", j.id)))
        })
        .collect()
}

/// Moves the copies to cancel from QUEUED to CANCELLED (they are locked, and were QUEUED when read); returns them
/// in `cancels`' order.
async fn cancel_jobs(tx: &mut PgConnection, cancels: &[Cancel]) -> Result<Vec<CopyJob>, StoreError> {
    if cancels.is_empty() {
        return Ok(Vec::new());
    }
    CopyState::Queued.transition(CopyState::Cancelled)?;
    let ids: Vec<Uuid> = cancels.iter().map(|c| c.id.as_uuid()).collect();
    let rows: Vec<JobRow> = sqlx::query_as(
        "UPDATE copy_jobs SET state = $2, completed_at = now(), updated_at = now()
          WHERE id = ANY($1) AND state = $3
          RETURNING *",
    )
    .bind(&ids)
    .bind(CopyState::Cancelled)
    .bind(CopyState::Queued)
    .fetch_all(&mut *tx)
    .await?;
    let mut by_id: HashMap<Uuid, CopyJob> = HashMap::with_capacity(rows.len());
    for row in rows {
        let id = row.id();
        by_id.insert(id, CopyJob::try_from(row)?);
    }
    cancels
        .iter()
        .map(|c| {
            by_id
                .remove(&c.id.as_uuid())
                .ok_or_else(|| StoreError::Corrupt(format!("copy {} changed under its row lock", c.id)))
        })
        .collect()
}

/// One history row per new copy (from nothing to QUEUED) and per cancellation (QUEUED to CANCELLED).
async fn insert_events(
    tx: &mut PgConnection,
    inserted: &[CopyJob],
    cancelled: &[CopyJob],
    cancels: &[Cancel],
) -> Result<(), StoreError> {
    let moves = inserted
        .iter()
        .map(|job| (job, None, None))
        .chain(cancelled.iter().zip(cancels).map(|(job, c)| (job, Some(CopyState::Queued), c.reason.clone())));
    let (mut ids, mut from, mut to, mut status, mut message, mut arn, mut code, mut error, mut detail) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for (job, from_state, why) in moves {
        ids.push(job.id.as_uuid());
        from.push(from_state.map(|s: CopyState| s.as_str()));
        to.push(job.state.as_str());
        status.push(job.report.rekognition_status.as_ref().map(|s| s.as_str().to_owned()));
        message.push(job.report.rekognition_status_message.clone());
        arn.push(job.report.destination_version_arn.as_ref().map(|a| a.to_string()));
        code.push(job.report.error_code.clone());
        error.push(job.report.error_message.clone());
        detail.push(why);
    }
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO copy_events
            (copy_id, from_state, to_state, rekognition_status, rekognition_status_message,
             destination_version_arn, error_code, error_message, detail)
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                              $8::text[], $9::text[])",
    )
    .bind(&ids)
    .bind(&from)
    .bind(&to)
    .bind(&status)
    .bind(&message)
    .bind(&arn)
    .bind(&code)
    .bind(&error)
    .bind(&detail)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use sqlx::PgPool;

    use super::*;
    use crate::devenv::{test_cluster, unique_db_name};
    use crate::domain::{RawCopyRequest, RawOutputConfig};
    use crate::store::audit::Decision;
    use crate::store::Store;

    async fn database() -> PgPool {
        let url = test_cluster().await.create_database(&unique_db_name("batch")).await.expect("a database");
        let pool = PgPool::connect(&url).await.expect("connects");
        Store::from_pool(pool.clone()).migrate().await.expect("migrates");
        pool
    }

    fn record(rpc: &str, reason: Option<&str>) -> AuditRecord {
        AuditRecord {
            principal: Some("alice".into()),
            authn: "dev-metadata".into(),
            peer: None,
            rpc: rpc.into(),
            decision: Decision::Allowed,
            reason: reason.map(str::to_owned),
            grpc_code: tonic::Code::Ok,
            request: Some(serde_json::json!({"b": 1, "a": [true, null]})),
            request_digest: None,
            copy_id: None,
            policy_ids: vec!["p-1".into(), "p,\"2\"".into()],
        }
    }

    fn create(version: &str, token: &str, max_queued: i64) -> Op {
        let request = CopyRequest::parse(RawCopyRequest {
            source_project_arn: "arn:aws:rekognition:us-east-1:111111111111:project/p/1".into(),
            source_project_version_arn: "arn:aws:rekognition:us-east-1:111111111111:project/p/version/v1/2".into(),
            destination_project_arn: "arn:aws:rekognition:us-east-1:222222222222:project/q/3".into(),
            version_name: version.into(),
            output_config: Some(RawOutputConfig { s3_bucket: "bucket".into(), s3_key_prefix: String::new() }),
            idempotency_token: token.into(),
            ..Default::default()
        })
        .expect("a valid request");
        let audit = record("CopyModelVersion", None);
        Op::Create(Box::new(NewCopy { request, principal: "alice".into(), max_queued, audit, trace: None }))
    }

    /// The stored chain: ids from 1 without a gap, each row's hash its content's, each linked to the one before.
    async fn chain_is_intact(pool: &PgPool) -> usize {
        let rows: Vec<crate::store::AuditRow> = sqlx::query_as(
            "SELECT id, occurred_at, principal, authn, peer, rpc, decision, reason, grpc_code, request::text AS request,
                    request_digest, copy_id, policy_ids, prev_hash, hash FROM audit_log ORDER BY id",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        let mut previous: Option<Vec<u8>> = None;
        for (n, row) in rows.iter().enumerate() {
            assert_eq!(row.content.id, n as i64 + 1, "ids run on without a gap");
            assert_eq!(row.content.prev_hash, previous, "row {} links to the row before", row.content.id);
            assert_eq!(row.hash, chain::hash(&row.content).to_vec(), "row {} hashes its content", row.content.id);
            previous = Some(row.hash.clone());
        }
        rows.len()
    }

    async fn count(pool: &PgPool, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT count(*) FROM {table}")).fetch_one(pool).await.unwrap()
    }

    #[tokio::test]
    async fn a_batch_that_fails_stores_none_of_its_writes() {
        let pool = database().await;
        // PostgreSQL refuses a NUL in text: the batch's one statement for audit rows fails, for all of them.
        let ops = vec![
            Op::Append(record("GetCopy", None)),
            create("v-a", "t-a", 10),
            Op::Append(record("GetCopy", Some("nul \u{0} here"))),
            Op::Append(record("ListCopies", None)),
        ];
        assert!(commit(&pool, ops).await.is_err());
        assert_eq!((count(&pool, "audit_log").await, count(&pool, "copy_jobs").await), (0, 0));
        assert_eq!(count(&pool, "copy_events").await, 0);

        // The same batch without the bad row is stored whole, chained in arrival order.
        let ops =
            vec![Op::Append(record("GetCopy", None)), create("v-a", "t-a", 10), Op::Append(record("ListCopies", None))];
        let done = commit(&pool, ops).await.unwrap();
        let ids: Vec<i64> = done
            .iter()
            .map(|d| match d {
                Ok(Done::Appended(id)) => *id,
                Ok(Done::Created(CreateOutcome::Created(job))) => job.audit_id.unwrap(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(ids, [1, 2, 3]);
        assert_eq!(chain_is_intact(&pool).await, 3);
        assert_eq!((count(&pool, "copy_jobs").await, count(&pool, "copy_events").await), (1, 1));
    }

    #[tokio::test]
    async fn a_batch_answers_each_write_as_if_it_had_been_committed_alone_in_order() {
        let pool = database().await;
        let ops = vec![
            create("v-1", "t-1", 2),
            create("v-1", "t-1", 2),     // a retry: the copy just made
            create("v-other", "t-1", 2), // the token with other parameters
            create("v-2", "t-2", 2),     // the second queued copy of the account
            create("v-3", "t-3", 2),     // one too many
        ];
        let done = commit(&pool, ops).await.unwrap();
        let outcome = |i: usize| match &done[i] {
            Ok(Done::Created(outcome)) => outcome,
            other => panic!("{other:?}"),
        };
        let CreateOutcome::Created(first) = outcome(0) else { panic!("{:?}", outcome(0)) };
        assert!(matches!(outcome(1), CreateOutcome::Replayed(job) if job.id == first.id));
        assert!(matches!(outcome(2), CreateOutcome::TokenMismatch(job) if job.id == first.id));
        assert!(matches!(outcome(3), CreateOutcome::Created(job) if job.id != first.id));
        assert!(matches!(outcome(4), CreateOutcome::QueueFull { depth: 2 }));
        // Created, replayed and created leave audit rows; the refusals are audited by the layer once answered.
        assert_eq!(chain_is_intact(&pool).await, 3);
        let depth: i64 = sqlx::query_scalar("SELECT queued FROM account_queue_depth WHERE account = '222222222222'")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(depth, 2, "the counter follows the inserts");

        // A later batch: a replay of a stored copy, a cancellation, and the same cancellation again.
        let cancel = |id| Op::Cancel { id, reason: Some("not needed".into()), audit: record("CancelCopy", None) };
        let done = commit(&pool, vec![create("v-1", "t-1", 2), cancel(first.id), cancel(first.id)]).await.unwrap();
        assert!(matches!(&done[0], Ok(Done::Created(CreateOutcome::Replayed(job))) if job.id == first.id));
        assert!(
            matches!(&done[1], Ok(Done::Cancelled(CancelOutcome::Cancelled(job))) if job.state == CopyState::Cancelled)
        );
        assert!(matches!(&done[2], Ok(Done::Cancelled(CancelOutcome::AlreadyCancelled(_)))));
        assert_eq!(chain_is_intact(&pool).await, 5);
        let depth: i64 = sqlx::query_scalar("SELECT queued FROM account_queue_depth WHERE account = '222222222222'")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(depth, 1, "a cancelled copy leaves the queue");
        let detail: Option<String> =
            sqlx::query_scalar("SELECT detail FROM copy_events WHERE copy_id = $1 AND to_state = 'CANCELLED'")
                .bind(first.id.as_uuid())
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(detail.as_deref(), Some("not needed"));
    }
}
