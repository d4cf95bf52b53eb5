//! Group commit: every write that carries an audit row (a new copy, a cancellation, the audit row of any other call)
//! goes through one writer per `Store`, which commits whatever has queued up meanwhile in one transaction, with one
//! disk flush, and answers each call only once that transaction has committed.
//!
//! Why: each such write must hold the audit chain's lock from reading the chain's head until it commits, so writes
//! commit one at a time, and one at a time means one disk flush each; a fleet could never audit more calls than its
//! disk flushes per second. Committing many calls per flush is the way past that (PostgreSQL's own `commit_delay`,
//! Kafka's producer batches and the sequencers of verifiable logs do the same). No delay is added to gather a batch:
//! the writer takes what is waiting, so a lone call commits at once, and under load the calls that arrive while one
//! batch commits form the next.
//!
//! What a caller is promised: its write is durable when it is answered, in a transaction of its own or not. If a
//! batch fails, every call in it is answered with the same error and none of its writes is stored. A caller that goes
//! away after handing its write over does not withdraw it: the write commits with its batch (so a call whose client
//! gave up is still on record, and a retry with the same idempotency token finds its copy).
//!
//! One chain for the whole fleet: each batch takes the chain lock (see [`super::locks::AUDIT_CHAIN`]) for the length
//! of its transaction, so batches of different replicas follow each other on the one chain, ids stay gapless and
//! `audit verify` needs no ordering rule beyond ids.

mod batch;

use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use tokio::sync::{mpsc, oneshot};
use tracing::error;

use super::audit::AuditRecord;
use super::jobs::{CancelOutcome, CreateOutcome};
use super::StoreError;
use crate::domain::{CopyId, CopyRequest, RolloutId};
use crate::telemetry::TraceParent;

/// Writes waiting beyond this many make callers wait to hand theirs over: memory stays bounded under any load.
const QUEUE: usize = 4096;
/// The most writes one transaction takes. Large enough that a flush serves many calls, small enough that one
/// batch's statements stay well under a second.
const MAX_BATCH: usize = 256;

/// The writer's connection, as `pg_stat_activity` names it.
pub const APPLICATION_NAME: &str = "modelcopy-writer";

/// One write handed to the writer.
#[derive(Debug)]
pub(super) enum Op {
    /// The audit row of a call whose answer changed nothing else.
    Append(AuditRecord),
    /// A new copy and its audit row (or a replay of the copy its idempotency token names).
    Create(Box<NewCopy>),
    /// A cancellation and its audit row.
    Cancel { id: CopyId, reason: Option<String>, audit: AuditRecord },
}

/// What PostgreSQL's `text` and `jsonb` cannot hold, and what stands for it in the row.
const NUL: char = '\0';
const NUL_STORED_AS: char = char::REPLACEMENT_CHARACTER;

impl Op {
    /// Replaces every NUL in the op's free text (its audit row, a cancel reason) with U+FFFD. PostgreSQL's `text` and
    /// `jsonb` refuse NUL, and a caller can put one in any free-text field: one such call must not fail the batch
    /// it shares with other callers' writes, so the writer stores what can be stored. (Checked types, such as a
    /// `CopyRequest`, cannot hold a NUL; refusing one in other input is the API's business.)
    fn make_storable(&mut self) {
        let record = match self {
            Op::Append(record) => record,
            Op::Create(new) => &mut new.audit,
            Op::Cancel { reason, audit, .. } => {
                reason.iter_mut().for_each(storable_text);
                audit
            }
        };
        record.principal.iter_mut().for_each(storable_text);
        storable_text(&mut record.authn);
        record.peer.iter_mut().for_each(storable_text);
        storable_text(&mut record.rpc);
        record.reason.iter_mut().for_each(storable_text);
        record.request.iter_mut().for_each(storable_json);
        record.policy_ids.iter_mut().for_each(storable_text);
    }

    /// The audit row this op carries (whether it is written depends on what the op turns out to do).
    fn audit(&self) -> &AuditRecord {
        match self {
            Op::Append(record) => record,
            Op::Create(new) => &new.audit,
            Op::Cancel { audit, .. } => audit,
        }
    }
}

/// A copy asked for, as the writer receives it.
#[derive(Debug)]
pub(super) struct NewCopy {
    pub request: CopyRequest,
    pub principal: String,
    /// The destination account's queue limit.
    pub max_queued: i64,
    pub audit: AuditRecord,
    pub trace: Option<TraceParent>,
    /// The rollout it is part of, and its place among the rollout's destinations.
    pub rollout: Option<(RolloutId, i32)>,
}

/// What became of one write.
#[derive(Debug)]
pub(super) enum Done {
    Appended(i64),
    Created(CreateOutcome),
    Cancelled(CancelOutcome),
}

struct Pending {
    op: Op,
    reply: Reply,
}

/// The handle through which a store's writes reach its writer. The writer ends when the last handle is dropped.
#[derive(Debug, Clone)]
pub(super) struct Writer {
    tx: mpsc::Sender<Pending>,
}

impl Writer {
    /// Starts the writer on a thread of its own with a connection of its own, to the database `pool` connects to
    /// (opened at the first write, and again after a batch fails).
    ///
    /// Why a thread: a batch makes a handful of round trips to PostgreSQL while every caller waits on it, so each of
    /// its wake-ups counts. As a task among the calls' tasks, each wake-up queued behind whatever calls were running:
    /// with 32 callers a batch of 16 took 7.5 ms, on this thread 2.4 ms, and acks per second went from 2,000 to
    /// 5,000 (accept benchmark, BENCHMARKS.md). Why not a pool: returning a connection to an sqlx pool and taking it
    /// again cost another 150 µs a batch (measured: BEGIN + COMMIT through a pool 370 µs, on a connection 210 µs).
    /// Reads, however many, never make an audited write wait for a connection.
    pub(super) fn start(pool: &sqlx::PgPool) -> Writer {
        // Generic plans: the batch's statements are the same few every time, over arrays, and with custom plans
        // PostgreSQL planned each one anew at every batch (an array parameter's known length made the custom plan
        // look cheaper than the generic one, so it never switched): a token lookup took 260 µs planned, 140 µs not.
        // Every statement of the writer is written to be right under a generic plan (see the token lookup's test).
        //
        // The server bounds the writer's transactions too, at the writer's own timeout: a batch whose connection
        // is partitioned away mid-transaction holds the chain's lock, and without `idle_in_transaction_session_timeout`
        // PostgreSQL would keep it (and stop every replica's audited writes) until its TCP keepalive noticed, hours
        // later; `statement_timeout` bounds a batch's wait for the lock on the server's side as well.
        let timeout = pool.options().get_acquire_timeout();
        let millis = timeout.as_millis().max(1).to_string();
        let options = pool
            .connect_options()
            .as_ref()
            .clone()
            .options([
                ("plan_cache_mode", "force_generic_plan"),
                ("idle_in_transaction_session_timeout", millis.as_str()),
                ("statement_timeout", millis.as_str()),
            ])
            .application_name(APPLICATION_NAME);
        let connect = Connect { options, timeout };
        let (tx, rx) = mpsc::channel(QUEUE);
        let started = std::thread::Builder::new().name("modelcopy-writer".into()).spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(run(connect, rx));
            Ok::<_, std::io::Error>(())
        });
        if let Err(err) = started {
            // The receiver is gone with the closure: every write answers WriterStopped.
            error!(%err, "cannot start the audit writer's thread; audited calls will be refused");
        }
        Writer { tx }
    }

    /// Hands `op` over and waits until its batch has committed (or failed).
    pub(super) async fn write(&self, mut op: Op) -> Result<Done, StoreError> {
        op.make_storable();
        let (reply, answer) = oneshot::channel();
        self.tx.send(Pending { op, reply }).await.map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }
}

/// Opens a transaction on `conn` holding the audit chain's lock, for a write that must append its audit row in a
/// transaction of its own making (a copy's expiry: the copy's transition and the service's record of it commit
/// together). Such writes are rare, so they skip the writer's batches; they take the same lock, so the one chain
/// stays in order. Lock order as everywhere: the chain's, then the copy events', then rows.
///
/// Bounded as the writer's own transactions are (see [`Writer::start`]), at `timeout`: a transaction holding the
/// chain's lock must not outlive a lost connection, since every replica's audited writes wait on that lock.
pub(in crate::store) async fn begin_audited(
    conn: &mut PgConnection,
    timeout: Duration,
) -> Result<sqlx::Transaction<'_, sqlx::Postgres>, StoreError> {
    let millis = timeout.as_millis().max(1);
    Ok(conn
        .begin_with(format!(
            "BEGIN; SET LOCAL statement_timeout = {millis}; SET LOCAL idle_in_transaction_session_timeout = {millis};
             SELECT pg_advisory_xact_lock({}); SELECT pg_advisory_xact_lock({})",
            super::locks::AUDIT_CHAIN,
            super::locks::COPY_EVENTS
        ))
        .await?)
}

/// Appends `record` to the chain inside `tx` (opened by [`begin_audited`]); its id. Written as the writer writes
/// one ([`Op::Append`]), NULs made storable, and stored only if the caller commits.
pub(in crate::store) async fn append_in(tx: &mut PgConnection, record: AuditRecord) -> Result<i64, StoreError> {
    match write_in(tx, vec![Op::Append(record)]).await?.pop() {
        Some(Ok(Done::Appended(id))) => Ok(id),
        Some(Err(err)) => Err(err),
        other => Err(StoreError::Corrupt(format!("an audit append was answered with {other:?}"))),
    }
}

/// Writes `ops` inside `tx` (opened by [`begin_audited`]) as one batch of the writer would, in order; stored only if
/// the caller commits. For writes of many parts that stand or fall together (a rollout's copies).
pub(in crate::store) async fn write_in(
    tx: &mut PgConnection,
    mut ops: Vec<Op>,
) -> Result<Vec<Result<Done, StoreError>>, StoreError> {
    ops.iter_mut().for_each(Op::make_storable);
    batch::write(tx, ops).await
}

fn storable_text(text: &mut String) {
    if text.contains(NUL) {
        *text = text.replace(NUL, &NUL_STORED_AS.to_string());
    }
}

fn storable_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(text) => storable_text(text),
        serde_json::Value::Array(items) => items.iter_mut().for_each(storable_json),
        serde_json::Value::Object(fields) => {
            if fields.keys().any(|key| key.contains(NUL)) {
                *fields = std::mem::take(fields)
                    .into_iter()
                    .map(|(mut key, value)| {
                        storable_text(&mut key);
                        (key, value)
                    })
                    .collect();
            }
            fields.values_mut().for_each(storable_json);
        }
        _ => {}
    }
}

/// How the writer reaches PostgreSQL.
struct Connect {
    options: PgConnectOptions,
    /// How long a connection may take to open, and a batch to commit, before the batch fails.
    timeout: Duration,
}

impl Connect {
    async fn open(&self) -> Result<PgConnection, StoreError> {
        match tokio::time::timeout(self.timeout, PgConnection::connect_with(&self.options)).await {
            Ok(connected) => Ok(connected?),
            Err(_) => Err(StoreError::TimedOut(self.timeout)),
        }
    }
}

type Reply = oneshot::Sender<Result<Done, StoreError>>;

async fn run(connect: Connect, mut rx: mpsc::Receiver<Pending>) {
    let mut connection: Option<PgConnection> = None;
    let mut waiting = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut waiting, MAX_BATCH).await > 0 {
        let (mut ops, mut replies): (Vec<Op>, Vec<Reply>) = waiting.drain(..).map(|p| (p.op, p.reply)).unzip();
        let committed = match connection {
            Some(ref mut conn) => commit_within(&connect, conn, &mut rx, &mut ops, &mut replies).await,
            None => match connect.open().await {
                Ok(conn) => commit_within(&connect, connection.insert(conn), &mut rx, &mut ops, &mut replies).await,
                Err(err) => Err(err),
            },
        };
        match committed {
            Ok(done) => {
                for (reply, done) in replies.into_iter().zip(done) {
                    // A caller that went away has nothing to be told; its write stands.
                    let _ = reply.send(done);
                }
            }
            Err(err) => {
                error!(%err, calls = replies.len(), "a group commit failed; none of its writes was stored");
                // The connection may be what failed; the next batch opens a fresh one rather than find out.
                connection = None;
                let shared = std::sync::Arc::new(err);
                for reply in replies {
                    let _ = reply.send(Err(StoreError::Batch(shared.clone())));
                }
            }
        }
    }
}

/// [`commit_arrived`], failed with [`StoreError::TimedOut`] if it has not committed within the timeout. Why: on a
/// network partition that swallows packets, a batch waits for an answer that never comes, and every audited call
/// of the replica waits behind it until its client gives up. Bounded, the calls are answered UNAVAILABLE, the
/// connection is dropped (the failure path opens a new one), and the writer goes on when the database is back.
async fn commit_within(
    connect: &Connect,
    conn: &mut PgConnection,
    rx: &mut mpsc::Receiver<Pending>,
    ops: &mut Vec<Op>,
    replies: &mut Vec<Reply>,
) -> Result<Vec<Result<Done, StoreError>>, StoreError> {
    match tokio::time::timeout(connect.timeout, commit_arrived(conn, rx, ops, replies)).await {
        Ok(committed) => committed,
        Err(_) => Err(StoreError::TimedOut(connect.timeout)),
    }
}

/// Commits `ops` as one batch on `conn`, with whatever else has arrived by the time the chain's lock is taken (its
/// op added to `ops`, its reply to `replies`).
async fn commit_arrived(
    conn: &mut PgConnection,
    rx: &mut mpsc::Receiver<Pending>,
    ops: &mut Vec<Op>,
    replies: &mut Vec<Reply>,
) -> Result<Vec<Result<Done, StoreError>>, StoreError> {
    let started = std::time::Instant::now();
    let tx = batch::begin(conn).await?;
    // What came while the lock was awaited (another replica's batch held it) or taken joins this batch rather than
    // wait for the next: with three replicas taking turns, batches held a third of the calls waiting, and the
    // fleet committed half of what one replica did (three_replicas_benchmark).
    while ops.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(Pending { op, reply }) => {
                ops.push(op);
                replies.push(reply);
            }
            Err(_) => break,
        }
    }
    let size = ops.len() as u64;
    let committed = batch::commit(tx, std::mem::take(ops)).await;
    if let Ok(done) = &committed {
        let instruments = crate::telemetry::metrics::instruments();
        instruments.audit_commit_duration.record(started.elapsed().as_secs_f64(), &[]);
        instruments.audit_commit_size.record(size, &[]);
        for done in done {
            if let Ok(Done::Cancelled(crate::store::CancelOutcome::Cancelled(job))) = done {
                crate::store::jobs::lifecycle::record_ended(job);
            }
        }
    }
    committed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::audit::Decision;

    fn record(text: &str) -> AuditRecord {
        AuditRecord {
            principal: Some(text.into()),
            authn: text.into(),
            peer: Some(text.into()),
            rpc: text.into(),
            decision: Decision::Invalid,
            reason: Some(text.into()),
            grpc_code: tonic::Code::InvalidArgument,
            request: Some(serde_json::json!({ text: [text, { "k": text }], "n": 1 })),
            request_digest: None,
            copy_id: None,
            policy_ids: vec![text.into()],
            call: None,
        }
    }

    #[test]
    fn every_nul_of_a_write_is_stored_as_the_replacement_character() {
        let mut op = Op::Cancel { id: CopyId::new(), reason: Some("a\0b".into()), audit: record("x\0y") };
        op.make_storable();
        let Op::Cancel { reason, audit, .. } = op else { unreachable!() };
        assert_eq!(reason.as_deref(), Some("a\u{FFFD}b"));
        assert_eq!(audit.policy_ids, ["x\u{FFFD}y"]);
        let clean = record("x\u{FFFD}y");
        assert_eq!(
            (audit.principal, audit.authn, audit.peer, audit.rpc, audit.reason, audit.request),
            (clean.principal, clean.authn, clean.peer, clean.rpc, clean.reason, clean.request)
        );
    }

    #[test]
    fn text_without_nul_is_left_as_it_is() {
        let mut op = Op::Append(record("plain é ✓"));
        op.make_storable();
        let Op::Append(stored) = op else { unreachable!() };
        assert_eq!(stored.request, record("plain é ✓").request);
    }
}
