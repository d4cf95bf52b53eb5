//! One group commit: a batch of writes stored by a handful of statements, however many writes it holds.
//!
//! In one transaction, under the audit chain's lock: read what the writes depend on (the copies their idempotency
//! tokens name, the copies to cancel, locked, the destination accounts' queue depths, and the chain's head), decide
//! every write in the order it arrived, hash the batch's audit rows in that order, then append the audit rows with
//! the new copies and their history, and cancel, each as one statement over arrays.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use sqlx::{Connection, PgConnection, Postgres, Transaction};
use uuid::Uuid;

use super::{Done, NewCopy, Op};
use crate::domain::{CopyId, CopyRequest, CopyState, RolloutId};
use crate::store::audit::chain::{self, RowContent};
use crate::store::audit::{grpc_code, AuditRecord, AuditRow};
use crate::store::jobs::{CancelOutcome, CopyJob, CreateOutcome, JobRow, Report};
use crate::store::{locks, StoreError};
use crate::telemetry::TraceParent;

/// Opens a batch's transaction and takes the chain's lock in it, waiting while another replica's batch holds it.
pub(super) async fn begin(conn: &mut PgConnection) -> Result<Transaction<'_, Postgres>, StoreError> {
    // BEGIN and the lock in one round trip; the lock's key is a constant of ours, so it can be spelled in the text.
    Ok(conn.begin_with(format!("BEGIN; SELECT pg_advisory_xact_lock({})", locks::AUDIT_CHAIN)).await?)
}

/// Stores `ops` in one transaction. `Err` when the batch failed as a whole (nothing of it is stored); otherwise one
/// answer per op, in order, each an error only when that op alone could not be done (a row it needs that does not
/// parse).
/// The transaction is [`begin`]'s.
pub(super) async fn commit(
    mut tx: Transaction<'_, Postgres>,
    ops: Vec<Op>,
) -> Result<Vec<Result<Done, StoreError>>, StoreError> {
    let answers = write(&mut tx, ops).await?;
    tx.commit().await?;
    Ok(answers)
}

/// [`commit`]'s writes, in `tx`, which holds the chain's lock, without committing: the answers hold once the
/// caller commits.
pub(super) async fn write(tx: &mut PgConnection, ops: Vec<Op>) -> Result<Vec<Result<Done, StoreError>>, StoreError> {
    let (head, known) = Known::read(&mut *tx, &ops).await?;
    let mut plan = Plan::decide(ops, known);
    let rows = chain_rows(&head, &plan.audit);
    for job in &mut plan.new_jobs {
        job.audit_id = rows[job.audit].content.id;
    }
    let calls: Vec<Option<Uuid>> = plan.audit.iter().map(|(record, _)| record.call).collect();
    let inserted = insert(&mut *tx, &rows, &calls, &plan.new_jobs).await?;
    let cancelled = cancel(&mut *tx, &plan.cancels).await?;
    Ok(plan.answer(&rows, inserted, cancelled))
}

/// What the batch's writes depend on, read under the chain lock.
struct Known {
    /// What the batch's (principal, idempotency token) pairs name: stored copies, and, as the batch is decided,
    /// copies it creates.
    by_token: HashMap<(String, String), Named>,
    /// The copies to cancel, locked until commit.
    to_cancel: HashMap<CopyId, Result<CopyJob, String>>,
    /// Queued copies per destination account.
    depth: HashMap<String, i64>,
    /// Each op's audit request as PostgreSQL prints its jsonb (as verification reads it back), in op order.
    printed: Vec<Option<String>>,
    /// The batch's calls already on record (`audit_calls`), with their rows' ids.
    recorded: HashMap<Uuid, i64>,
}

/// The chain's last id and hash (none while it is empty), and the time its next rows carry, read under its lock:
/// along the chain, time only moves forward.
#[derive(Debug)]
struct Head {
    last_id: i64,
    last_hash: Option<Vec<u8>>,
    occurred_at: DateTime<Utc>,
}

/// `last id, last hash, now, printed requests, accounts, their depths, copies named by the batch's tokens, the
/// batch's calls already on record and their rows`.
type HeadRow = (
    Option<i64>,
    Option<Vec<u8>>,
    DateTime<Utc>,
    Vec<Option<String>>,
    Vec<String>,
    Vec<i64>,
    Vec<Uuid>,
    Vec<Uuid>,
    Vec<i64>,
);

/// The chain's head and the time, with the requests ($1) as PostgreSQL prints them and those of the batch's calls
/// ($2) already on record: for a batch of audit rows only. The calls are looked up one index probe each, as the
/// tokens are in [`HEAD_AND_DEPTHS`] (and for the same reason: a generic plan made while the table was empty must
/// not scan it whole once it holds every call ever made).
const HEAD: &str = "SELECT last.id, last.hash, clock_timestamp(),
        ARRAY(SELECT r::jsonb::text FROM unnest($1::text[]) WITH ORDINALITY AS t (r, n) ORDER BY n),
        '{}'::text[], '{}'::int8[], '{}'::uuid[],
        ARRAY(SELECT c.call_id FROM unnest($2::uuid[]) AS t (call) CROSS JOIN LATERAL
                (SELECT call_id FROM audit_calls WHERE call_id = t.call LIMIT 1) AS c ORDER BY c.call_id),
        ARRAY(SELECT c.audit_id FROM unnest($2::uuid[]) AS t (call) CROSS JOIN LATERAL
                (SELECT call_id, audit_id FROM audit_calls WHERE call_id = t.call LIMIT 1) AS c ORDER BY c.call_id)
   FROM (SELECT 1) AS one
   LEFT JOIN (SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1) AS last ON TRUE";

/// [`HEAD`] (the calls are $5 here), and for a batch that asks for copies: the queue depths of their accounts ($2)
/// and the ids of the stored copies that their (principal, idempotency token) pairs ($3, $4) name. One round trip for all of it: the batch
/// waits on each of its round trips, and so does every caller in it. It also takes the copy events' lock
/// ([`locks::COPY_EVENTS`], spelled out in decimal: PostgreSQL 15 reads no hex literals), since the batch's insert
/// records the new copies' first events; a test checks the two keys agree.
///
/// The token lookup is one index probe per pair, whatever the planner believes of the table. A plain join of the
/// arrays with `copy_jobs` got a generic plan while the table was new and kept it: a hash join over a seq scan of
/// every job, for every batch (seen with auto_explain during the accept benchmark: over 2 ms a batch after 15,000
/// copies, and growing). `LIMIT 1` keeps the subquery from being flattened into such a join; the unique key
/// `(principal, idempotency_token)` means it drops nothing.
const HEAD_AND_DEPTHS: &str = "SELECT last.id, last.hash, clock_timestamp(),
        ARRAY(SELECT r::jsonb::text FROM unnest($1::text[]) WITH ORDINALITY AS t (r, n) ORDER BY n),
        ARRAY(SELECT account FROM account_queue_depth WHERE account = ANY($2) ORDER BY account),
        ARRAY(SELECT queued FROM account_queue_depth WHERE account = ANY($2) ORDER BY account),
        ARRAY(SELECT j.id FROM unnest($3::text[], $4::text[]) AS t (principal, token)
                CROSS JOIN LATERAL (SELECT c.id FROM copy_jobs AS c
                                     WHERE c.principal = t.principal AND c.idempotency_token = t.token
                                     LIMIT 1) AS j),
        ARRAY(SELECT c.call_id FROM unnest($5::uuid[]) AS t (call) CROSS JOIN LATERAL
                (SELECT call_id FROM audit_calls WHERE call_id = t.call LIMIT 1) AS c ORDER BY c.call_id),
        ARRAY(SELECT c.audit_id FROM unnest($5::uuid[]) AS t (call) CROSS JOIN LATERAL
                (SELECT call_id, audit_id FROM audit_calls WHERE call_id = t.call LIMIT 1) AS c ORDER BY c.call_id)
   FROM (SELECT pg_advisory_xact_lock(4850183668482004564)) AS copy_events_lock
   LEFT JOIN (SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1) AS last ON TRUE";

impl Known {
    /// What `ops` depend on, and the chain's head.
    async fn read(tx: &mut PgConnection, ops: &[Op]) -> Result<(Head, Known), StoreError> {
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
        let mut to_cancel = HashMap::new();
        if !cancel_ids.is_empty() {
            // The cancellations will record events: the copy events' lock before the rows' (see
            // `locks::COPY_EVENTS`).
            sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(locks::COPY_EVENTS).execute(&mut *tx).await?;
            let rows: Vec<JobRow> = sqlx::query_as("SELECT * FROM copy_jobs WHERE id = ANY($1) ORDER BY id FOR UPDATE")
                .bind(&cancel_ids)
                .fetch_all(&mut *tx)
                .await?;
            for row in rows {
                let id = CopyId::from(row.id());
                to_cancel.insert(id, CopyJob::try_from(row).map_err(|e| e.to_string()));
            }
        }
        // The chain's head, the requests as PostgreSQL prints them, the queue depths and the copies the tokens name,
        // in one statement (the depth table is named only when a copy is asked for, so writing audit rows needs
        // nothing newer).
        let requests: Vec<Option<String>> =
            ops.iter().map(|op| op.audit().request.as_ref().map(|value| value.to_string())).collect();
        let calls: Vec<Uuid> = ops.iter().filter_map(|op| op.audit().call).collect();
        let head = if accounts.is_empty() {
            sqlx::query_as(HEAD).bind(&requests).bind(&calls)
        } else {
            let head = sqlx::query_as(HEAD_AND_DEPTHS).bind(&requests).bind(&accounts).bind(&principals);
            head.bind(&tokens).bind(&calls)
        };
        let (last_id, last_hash, occurred_at, printed, depth_accounts, depths, named, recorded, recorded_rows): HeadRow =
            head.fetch_one(&mut *tx).await?;
        let recorded = recorded.into_iter().zip(recorded_rows).collect();
        // Replays are rare: only then are the copies they name read whole.
        let mut by_token = HashMap::new();
        if !named.is_empty() {
            let rows: Vec<JobRow> =
                sqlx::query_as("SELECT * FROM copy_jobs WHERE id = ANY($1)").bind(&named).fetch_all(&mut *tx).await?;
            for row in rows {
                let key = row.idempotency_key();
                let named = match CopyJob::try_from(row) {
                    Ok(job) => Named::Stored(Box::new(job)),
                    Err(err) => Named::Unreadable(err.to_string()),
                };
                by_token.insert(key, named);
            }
        }
        let head = Head { last_id: last_id.unwrap_or(0), last_hash, occurred_at };
        let depth = depth_accounts.into_iter().zip(depths).collect();
        Ok((head, Known { by_token, to_cancel, depth, printed, recorded }))
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
    rollout: Option<(RolloutId, i32)>,
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
    /// The call's row was written before (its first write's outcome was unknown to its caller): that row's id.
    AlreadyRecorded(i64),
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
    /// A copy this batch creates, as an index into [`Plan::new_jobs`].
    New(usize),
    /// A stored copy whose row does not parse.
    Unreadable(String),
}

struct Plan {
    answers: Vec<Answer>,
    /// The audit rows to append, each with its request as PostgreSQL prints it.
    audit: Vec<(AuditRecord, Option<String>)>,
    new_jobs: Vec<NewJob>,
    cancels: Vec<Cancel>,
}

impl Plan {
    /// Decides every op in arrival order, as if each had been committed alone before the next.
    fn decide(ops: Vec<Op>, mut known: Known) -> Plan {
        let printed = std::mem::take(&mut known.printed);
        let mut plan = Plan { answers: Vec::new(), audit: Vec::new(), new_jobs: Vec::new(), cancels: Vec::new() };
        let mut cancelled_here: HashSet<CopyId> = HashSet::new();
        for (op, printed) in ops.into_iter().zip(printed) {
            let answer = match op {
                Op::Append(record) => match record.call.and_then(|call| known.recorded.get(&call)) {
                    Some(&id) => Answer::AlreadyRecorded(id),
                    None => Answer::Appended { audit: plan.push_audit(record, printed) },
                },
                Op::Create(new) => {
                    let NewCopy { request, principal, max_queued, mut audit, trace, rollout } = *new;
                    let digest = request.digest().to_vec();
                    let key = request.idempotency_token().map(|t| (principal.clone(), t.as_str().to_owned()));
                    match key.as_ref().and_then(|key| known.by_token.get(key)) {
                        Some(Named::Unreadable(why)) => Answer::Unreadable(why.clone()),
                        Some(Named::Stored(job)) => {
                            if job.request_digest != digest {
                                Answer::Mismatch((**job).clone())
                            } else {
                                audit.copy_id = Some(job.id);
                                append_reason(&mut audit, REPLAYED);
                                plan.push_audit(audit, printed);
                                Answer::Replayed((**job).clone())
                            }
                        }
                        Some(&Named::New(index)) => {
                            if plan.new_jobs[index].digest != digest {
                                Answer::MismatchNew { job: index }
                            } else {
                                audit.copy_id = Some(plan.new_jobs[index].id);
                                append_reason(&mut audit, REPLAYED);
                                plan.push_audit(audit, printed);
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
                                let audit = plan.push_audit(audit, printed);
                                let job = plan.new_jobs.len();
                                plan.new_jobs.push(NewJob {
                                    id,
                                    principal,
                                    request,
                                    digest,
                                    trace,
                                    audit,
                                    audit_id: 0,
                                    rollout,
                                });
                                if let Some(key) = key {
                                    known.by_token.insert(key, Named::New(job));
                                }
                                Answer::Created { job }
                            }
                        }
                    }
                }
                Op::Cancel { id, reason, mut audit } => match known.to_cancel.get(&id) {
                    None => Answer::NotFound,
                    Some(Err(why)) => Answer::Unreadable(why.clone()),
                    Some(Ok(job)) if cancelled_here.contains(&id) || job.state == CopyState::Cancelled => {
                        Answer::AlreadyCancelled(job.clone())
                    }
                    Some(Ok(job)) if job.state != CopyState::Queued => Answer::TooLate(job.clone()),
                    Some(Ok(_)) => {
                        append_reason(&mut audit, "cancelled");
                        plan.push_audit(audit, printed);
                        let cancel = plan.cancels.len();
                        plan.cancels.push(Cancel { id, reason });
                        cancelled_here.insert(id);
                        Answer::Cancelled { cancel }
                    }
                },
            };
            plan.answers.push(answer);
        }
        plan
    }

    fn push_audit(&mut self, record: AuditRecord, printed: Option<String>) -> usize {
        self.audit.push((record, printed));
        self.audit.len() - 1
    }

    /// Each op's answer, from what the statements returned.
    fn answer(
        self,
        rows: &[AuditRow],
        inserted: Vec<CopyJob>,
        cancelled: Vec<CopyJob>,
    ) -> Vec<Result<Done, StoreError>> {
        let created = |job: usize| inserted[job].clone();
        self.answers
            .into_iter()
            .map(|answer| {
                Ok(match answer {
                    Answer::Appended { audit } => Done::Appended(rows[audit].content.id),
                    Answer::AlreadyRecorded(id) => Done::Appended(id),
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

/// The batch's audit rows as the chain will hold them: numbered on from the chain's head, stamped with the time read
/// under its lock, and hashed in order.
fn chain_rows(head: &Head, records: &[(AuditRecord, Option<String>)]) -> Vec<AuditRow> {
    let mut prev_hash = head.last_hash.clone();
    let mut rows = Vec::with_capacity(records.len());
    for (id, (record, request)) in (head.last_id + 1..).zip(records) {
        let content = RowContent {
            id,
            occurred_at: head.occurred_at,
            principal: record.principal.clone(),
            authn: record.authn.clone(),
            peer: record.peer.clone(),
            rpc: record.rpc.clone(),
            decision: record.decision.as_str().to_owned(),
            reason: record.reason.clone(),
            grpc_code: grpc_code::stored_name(record.grpc_code).to_owned(),
            request: request.clone(),
            request_digest: record.request_digest.clone(),
            copy_id: record.copy_id.map(|id| id.as_uuid()),
            policy_ids: record.policy_ids.clone(),
            prev_hash: prev_hash.take(),
        };
        let hash = chain::hash(&content).to_vec();
        prev_hash = Some(hash.clone());
        rows.push(AuditRow { content, hash });
    }
    rows
}

/// The audit rows of a batch, from arrays ($1, $3–$15) and one time ($2).
const INSERT_AUDIT: &str = "
    INSERT INTO audit_log
        (id, occurred_at, principal, authn, peer, rpc, decision, reason, grpc_code, request, request_digest, copy_id,
         policy_ids, prev_hash, hash)
    SELECT a.id, $2, a.principal, a.authn, a.peer, a.rpc, a.decision, a.reason, a.grpc_code, a.request::jsonb,
           a.request_digest, a.copy_id,
           ARRAY(SELECT p FROM jsonb_array_elements_text(a.policy_ids::jsonb) WITH ORDINALITY AS x (p, n) ORDER BY n),
           a.prev_hash, a.hash
      FROM unnest($1::int8[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
                  $10::text[], $11::bytea[], $12::uuid[], $13::text[], $14::bytea[], $15::bytea[])
        AS a (id, principal, authn, peer, rpc, decision, reason, grpc_code, request, request_digest, copy_id,
              policy_ids, prev_hash, hash)";

/// Each audit row's call ($1 the rows' ids, `${0}` their calls) on record, in `audit_calls`.
fn calls_cte(param: usize) -> String {
    format!(
        "calls AS (INSERT INTO audit_calls (call_id, audit_id)
                   SELECT c.call, c.id FROM unnest($1::int8[], ${param}::uuid[]) AS c (id, call)
                    WHERE c.call IS NOT NULL)"
    )
}

/// The audit rows of a batch ([`INSERT_AUDIT`]) with their calls ($16).
static INSERT_AUDIT_AND_CALLS: LazyLock<String> = LazyLock::new(|| format!("WITH {} {INSERT_AUDIT}", calls_cte(16)));

/// The audit rows, the new copies ($16–$30, $32, $33, $35–$37; state $31) and their first history rows, in one
/// statement, with the rows' calls ($34).
/// Foreign keys are checked at the statement's end, when all three are in. It returns only what PostgreSQL chose
/// (the columns' defaults): the rest of each copy is what the batch sent, so it is not read back and parsed again
/// (parsing the returned rows was a third of the writer's time in the accept benchmark).
static INSERT_AUDIT_AND_COPIES: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH {}, audit AS ({INSERT_AUDIT}),
              events AS (INSERT INTO copy_events (copy_id, to_state) SELECT e.id, $31 FROM unnest($16::uuid[]) AS e (id))
         INSERT INTO copy_jobs
             (id, principal, idempotency_token, request_digest, source_project_arn, source_project_version_arn,
              destination_project_arn, version_name, s3_bucket, s3_key_prefix, tags, kms_key_id,
              source_account, destination_account, region, state, trace_parent, audit_id, delete_after_secs,
              rollout_id, rollout_index)
         SELECT t.id, t.principal, t.token, t.digest, t.source_project, t.source_version, t.destination_project,
                t.version_name, t.bucket, t.key_prefix, t.tags::jsonb, t.kms_key_id, t.source_account,
                t.destination_account, t.region, $31, t.trace_parent, t.audit_id, t.delete_after_secs, t.rollout_id,
                t.rollout_index
           FROM unnest($16::uuid[], $17::text[], $18::text[], $19::bytea[], $20::text[], $21::text[], $22::text[],
                       $23::text[], $24::text[], $25::text[], $26::text[], $27::text[], $28::text[], $29::text[],
                       $30::text[], $32::text[], $33::int8[], $35::int8[], $36::uuid[], $37::int4[])
             AS t (id, principal, token, digest, source_project, source_version, destination_project, version_name,
                   bucket, key_prefix, tags, kms_key_id, source_account, destination_account, region, trace_parent,
                   audit_id, delete_after_secs, rollout_id, rollout_index)
         RETURNING id, attempts, next_attempt_at, created_at, updated_at",
        calls_cte(34)
    )
});

/// Appends the audit rows and inserts the new copies (each already naming its audit row) with their first history
/// rows, in one statement; returns the copies in `jobs`' order. A batch without new copies names no copy table, so
/// appending audit rows needs nothing but the audit log.
async fn insert(
    tx: &mut PgConnection,
    rows: &[AuditRow],
    calls: &[Option<Uuid>],
    jobs: &[NewJob],
) -> Result<Vec<CopyJob>, StoreError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let column = |f: fn(&RowContent) -> Option<String>| rows.iter().map(|r| f(&r.content)).collect::<Vec<_>>();
    let statement = if jobs.is_empty() { INSERT_AUDIT_AND_CALLS.as_str() } else { INSERT_AUDIT_AND_COPIES.as_str() };
    let mut query = sqlx::query_as::<_, Defaults>(statement)
        .bind(rows.iter().map(|r| r.content.id).collect::<Vec<_>>())
        .bind(rows[0].content.occurred_at)
        .bind(column(|r| r.principal.clone()))
        .bind(column(|r| Some(r.authn.clone())))
        .bind(column(|r| r.peer.clone()))
        .bind(column(|r| Some(r.rpc.clone())))
        .bind(column(|r| Some(r.decision.clone())))
        .bind(column(|r| r.reason.clone()))
        .bind(column(|r| Some(r.grpc_code.clone())))
        .bind(column(|r| r.request.clone()))
        .bind(rows.iter().map(|r| r.content.request_digest.clone()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.content.copy_id).collect::<Vec<_>>())
        .bind(
            rows.iter().map(|r| serde_json::Value::from(r.content.policy_ids.clone()).to_string()).collect::<Vec<_>>(),
        )
        .bind(rows.iter().map(|r| r.content.prev_hash.clone()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.hash.clone()).collect::<Vec<_>>());
    if !jobs.is_empty() {
        let text = |f: fn(&CopyRequest) -> String| jobs.iter().map(|j| f(&j.request)).collect::<Vec<_>>();
        query = query
            .bind(jobs.iter().map(|j| j.id.as_uuid()).collect::<Vec<_>>())
            .bind(jobs.iter().map(|j| j.principal.clone()).collect::<Vec<_>>())
            .bind(jobs.iter().map(|j| j.request.idempotency_token().map(|t| t.to_string())).collect::<Vec<_>>())
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
            .bind(jobs.iter().map(|j| j.audit_id).collect::<Vec<_>>());
    }
    // Then: $16 after the audit rows alone, $34 after the copies.
    query = query.bind(calls.to_vec());
    if !jobs.is_empty() {
        let delete_after = |j: &NewJob| j.request.delete_after().map(|d| d.as_secs() as i64);
        query = query.bind(jobs.iter().map(delete_after).collect::<Vec<_>>());
        query = query.bind(jobs.iter().map(|j| j.rollout.map(|(id, _)| id.as_uuid())).collect::<Vec<_>>());
        query = query.bind(jobs.iter().map(|j| j.rollout.map(|(_, index)| index)).collect::<Vec<_>>());
    }
    let mut defaults: HashMap<Uuid, Defaults> =
        query.fetch_all(&mut *tx).await?.into_iter().map(|d| (d.0, d)).collect();
    jobs.iter()
        .map(|job| {
            let (_, attempts, next_attempt_at, created_at, updated_at) = defaults
                .remove(&job.id.as_uuid())
                .ok_or_else(|| StoreError::Corrupt(format!("copy {} was not inserted", job.id)))?;
            Ok(CopyJob {
                id: job.id,
                principal: job.principal.clone(),
                request: job.request.clone(),
                request_digest: job.digest.clone(),
                state: CopyState::Queued,
                report: Report::default(),
                attempts: u32::try_from(attempts)
                    .map_err(|_| StoreError::Corrupt(format!("copy {}: attempts {attempts}", job.id)))?,
                next_attempt_at,
                lease: None,
                created_at,
                updated_at,
                submitted_at: None,
                completed_at: None,
                expires_at: None,
                audit_id: Some(job.audit_id),
                trace_parent: job.trace.clone(),
                rollout: job.rollout.map(|(id, _)| id),
            })
        })
        .collect()
}

/// What a new copy's row holds that the batch did not send: `id` (to match it up), `attempts`, `next_attempt_at`,
/// `created_at`, `updated_at`.
type Defaults = (Uuid, i32, DateTime<Utc>, DateTime<Utc>, DateTime<Utc>);

/// Moves the copies to cancel from QUEUED to CANCELLED (they are locked, and were QUEUED when read) and records the
/// transitions, in one statement; returns them in `cancels`' order.
async fn cancel(tx: &mut PgConnection, cancels: &[Cancel]) -> Result<Vec<CopyJob>, StoreError> {
    if cancels.is_empty() {
        return Ok(Vec::new());
    }
    CopyState::Queued.transition(CopyState::Cancelled)?;
    // The copy events' lock is held since the copies were read (`Known::read`).
    let cancelled: Vec<JobRow> = sqlx::query_as(
        "WITH cancelled AS (
             UPDATE copy_jobs SET state = $3, completed_at = now(), updated_at = now()
              WHERE id = ANY($1) AND state = $4
              RETURNING *
         ),
         events AS (
             INSERT INTO copy_events
                 (copy_id, from_state, to_state, rekognition_status, rekognition_status_message,
                  destination_version_arn, error_code, error_message, detail, expiry_error_code,
                  expiry_error_message)
             SELECT c.id, $4, c.state, c.rekognition_status, c.rekognition_status_message,
                    c.destination_version_arn, c.error_code, c.error_message, r.detail, c.expiry_error_code,
                    c.expiry_error_message
               FROM cancelled AS c JOIN unnest($1::uuid[], $2::text[]) AS r (id, detail) ON r.id = c.id
         )
         SELECT * FROM cancelled",
    )
    .bind(cancels.iter().map(|c| c.id.as_uuid()).collect::<Vec<_>>())
    .bind(cancels.iter().map(|c| c.reason.clone()).collect::<Vec<_>>())
    .bind(CopyState::Cancelled)
    .bind(CopyState::Queued)
    .fetch_all(&mut *tx)
    .await?;
    in_order(cancelled, cancels.iter().map(|c| c.id), "changed under its row lock")
}

/// `rows`, parsed, in the order of `ids`; a missing one is an error saying `what` of it.
fn in_order(rows: Vec<JobRow>, ids: impl Iterator<Item = CopyId>, what: &str) -> Result<Vec<CopyJob>, StoreError> {
    let mut by_id: HashMap<Uuid, CopyJob> = HashMap::with_capacity(rows.len());
    for row in rows {
        let id = row.id();
        by_id.insert(id, CopyJob::try_from(row)?);
    }
    ids.map(|id| by_id.remove(&id.as_uuid()).ok_or_else(|| StoreError::Corrupt(format!("copy {id} {what}")))).collect()
}

#[cfg(test)]
mod tests {
    use sqlx::PgPool;

    use super::*;
    use crate::devenv::{test_cluster, unique_db_name};
    use crate::domain::{RawCopyRequest, RawOutputConfig};
    use crate::store::audit::Decision;
    use crate::store::Store;

    /// One batch on a connection of `pool`'s.
    async fn commit_on(pool: &PgPool, ops: Vec<Op>) -> Result<Vec<Result<Done, StoreError>>, StoreError> {
        let mut conn = pool.acquire().await.unwrap();
        let tx = begin(&mut conn).await?;
        let done = commit(tx, ops).await;
        done
    }

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
            call: None,
        }
    }

    fn create(version: &str, token: &str, max_queued: i64) -> Op {
        create_in("222222222222", version, token, max_queued)
    }

    /// A copy into `account`'s project `q`.
    fn create_in(account: &str, version: &str, token: &str, max_queued: i64) -> Op {
        let request = CopyRequest::parse(RawCopyRequest {
            source_project_arn: "arn:aws:rekognition:us-east-1:111111111111:project/p/1".into(),
            source_project_version_arn: "arn:aws:rekognition:us-east-1:111111111111:project/p/version/v1/2".into(),
            destination_project_arn: format!("arn:aws:rekognition:us-east-1:{account}:project/q/3"),
            version_name: version.into(),
            output_config: Some(RawOutputConfig { s3_bucket: "bucket".into(), s3_key_prefix: String::new() }),
            idempotency_token: token.into(),
            ..Default::default()
        })
        .expect("a valid request");
        let audit = record("CopyModelVersion", None);
        Op::Create(Box::new(NewCopy {
            request,
            principal: "alice".into(),
            max_queued,
            audit,
            trace: None,
            rollout: None,
        }))
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

    /// The destination account's queue depth, as its counter row says.
    async fn queued(pool: &PgPool) -> i64 {
        sqlx::query_scalar("SELECT queued FROM account_queue_depth WHERE account = '222222222222'")
            .fetch_one(pool)
            .await
            .unwrap()
    }

    async fn count(pool: &PgPool, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT count(*) FROM {table}")).fetch_one(pool).await.unwrap()
    }

    /// The insert triggers run once per statement (migration 20261130000002): a batch into two accounts must still
    /// move each account's counter by its own copies, and wake the dispatchers of both, once each.
    #[tokio::test]
    async fn a_batch_into_two_accounts_counts_and_announces_each_account() {
        let pool = database().await;
        let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await.unwrap();
        listener.listen("modelcopy_jobs_queued").await.unwrap();
        let ops = vec![
            create_in("222222222222", "v-1", "t-1", 10),
            create_in("333333333333", "v-1", "t-2", 10),
            create_in("222222222222", "v-2", "t-3", 10),
            create_in("222222222222", "v-3", "t-4", 2), // one too many for 222222222222
        ];
        let done = commit_on(&pool, ops).await.unwrap();
        assert!(matches!(done[3], Ok(Done::Created(CreateOutcome::QueueFull { depth: 2 }))), "{:?}", done[3]);
        let depths: Vec<(String, i64)> = sqlx::query_as("SELECT account, queued FROM account_queue_depth ORDER BY 1")
            .fetch_all(&pool)
            .await
            .unwrap();
        assert_eq!(depths, [("222222222222".to_owned(), 2), ("333333333333".to_owned(), 1)]);
        let mut announced = Vec::new();
        while let Ok(Ok(notification)) =
            tokio::time::timeout(std::time::Duration::from_millis(500), listener.recv()).await
        {
            announced.push(notification.payload().to_owned());
        }
        announced.sort();
        assert_eq!(announced, ["222222222222", "333333333333"]);
    }

    /// A call whose first write's outcome its caller could not know (the connection lost during COMMIT) is written
    /// again, as UNAVAILABLE, by the audit layer. Before, both rows were kept when the first had landed.
    #[tokio::test]
    async fn a_call_is_on_record_once_however_often_its_row_is_written() {
        let pool = database().await;
        let call = Some(Uuid::new_v4());
        let with_call = |rpc: &str, code: tonic::Code| AuditRecord { call, grpc_code: code, ..record(rpc, None) };
        let Op::Create(mut new) = create("v-once", "t-once", 10) else { unreachable!("create makes a Create") };
        new.audit = with_call("CopyModelVersion", tonic::Code::Ok);
        let first = vec![Op::Create(new)];
        let Ok(Done::Created(CreateOutcome::Created(job))) = &commit_on(&pool, first).await.unwrap()[0] else {
            panic!("created")
        };
        let again = vec![Op::Append(with_call("CopyModelVersion", tonic::Code::Unavailable))];
        let done = commit_on(&pool, again).await.unwrap();
        assert!(matches!(done[0], Ok(Done::Appended(id)) if Some(id) == job.audit_id), "{:?}", done[0]);
        assert_eq!(count(&pool, "audit_log").await, 1, "one row for the call");
        // Another call's row is written as ever, and the chain holds.
        let other = AuditRecord { call: Some(Uuid::new_v4()), ..record("GetCopy", None) };
        commit_on(&pool, vec![Op::Append(other)]).await.unwrap();
        assert_eq!(count(&pool, "audit_log").await, 2);
        assert_eq!(chain_is_intact(&pool).await, 2);
    }

    #[test]
    fn the_head_statement_takes_the_copy_events_lock() {
        assert!(HEAD_AND_DEPTHS.contains(&format!("pg_advisory_xact_lock({})", locks::COPY_EVENTS)));
    }

    #[tokio::test]
    async fn the_token_lookup_probes_the_index_even_on_a_table_never_analysed() {
        let pool = database().await;
        let mut conn = pool.acquire().await.unwrap();
        // The plan a long-lived connection keeps: generic, made while copy_jobs is new and without statistics.
        sqlx::query("SET plan_cache_mode = force_generic_plan").execute(&mut *conn).await.unwrap();
        let prepare = format!("PREPARE head (text[], text[], text[], text[], uuid[]) AS {HEAD_AND_DEPTHS}");
        sqlx::raw_sql(&prepare).execute(&mut *conn).await.unwrap();
        let explain = "EXPLAIN EXECUTE head ('{}', '{222222222222}', '{alice}', '{t-1}', '{}')";
        let plan: Vec<String> = sqlx::query_scalar(explain).fetch_all(&mut *conn).await.unwrap();
        let plan = plan.join("\n");
        assert!(plan.contains("Index Scan using copy_jobs_idempotency"), "{plan}");
        assert!(!plan.contains("Seq Scan on copy_jobs"), "{plan}");
        let explain = "EXPLAIN EXECUTE head ('{}', '{}', '{}', '{}', ARRAY[gen_random_uuid()])";
        let plan: Vec<String> = sqlx::query_scalar(explain).fetch_all(&mut *conn).await.unwrap();
        let plan = plan.join("\n");
        assert!(plan.contains("Index Scan using audit_calls_pkey"), "{plan}");
        assert!(!plan.contains("Seq Scan on audit_calls"), "{plan}");
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
        assert!(commit_on(&pool, ops).await.is_err());
        assert_eq!((count(&pool, "audit_log").await, count(&pool, "copy_jobs").await), (0, 0));
        assert_eq!(count(&pool, "copy_events").await, 0);

        // The same batch without the bad row is stored whole, chained in arrival order.
        let ops =
            vec![Op::Append(record("GetCopy", None)), create("v-a", "t-a", 10), Op::Append(record("ListCopies", None))];
        let done = commit_on(&pool, ops).await.unwrap();
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
        let done = commit_on(&pool, ops).await.unwrap();
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
        assert_eq!(queued(&pool).await, 2, "the counter follows the inserts");

        // A later batch: a replay of a stored copy, a cancellation, and the same cancellation again.
        let cancel = |id| Op::Cancel { id, reason: Some("not needed".into()), audit: record("CancelCopy", None) };
        let done = commit_on(&pool, vec![create("v-1", "t-1", 2), cancel(first.id), cancel(first.id)]).await.unwrap();
        let Ok(Done::Created(CreateOutcome::Replayed(stored))) = &done[0] else { panic!("{:?}", done[0]) };
        assert_eq!(stored, first, "a new copy is answered exactly as it was stored (the replay reads the row back)");
        assert!(
            matches!(&done[1], Ok(Done::Cancelled(CancelOutcome::Cancelled(job))) if job.state == CopyState::Cancelled)
        );
        assert!(matches!(&done[2], Ok(Done::Cancelled(CancelOutcome::AlreadyCancelled(_)))));
        assert_eq!(chain_is_intact(&pool).await, 5);
        assert_eq!(queued(&pool).await, 1, "a cancelled copy leaves the queue");
        let detail: Option<String> =
            sqlx::query_scalar("SELECT detail FROM copy_events WHERE copy_id = $1 AND to_state = 'CANCELLED'")
                .bind(first.id.as_uuid())
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(detail.as_deref(), Some("not needed"));
    }
}
