//! One watcher's start: the current state (or, resuming, nothing), then every change after it from the database,
//! then it joins the fan-out ([`super::fanout`]) with nothing skipped and nothing twice.
//!
//! The watcher subscribes to the hub *before* it reads anything, reads its start and then the changes after it,
//! page by page, to the end of the history; then, holding the registry's lock, it takes what the hub sent it
//! meanwhile and joins. Every change is in its read, or in what the hub sent before it joined, or handed to it by
//! the registry after; its floor (the number of the last change it handled) drops what is in two of them. Changes
//! commit in the order of their numbers (`store::locks::COPY_EVENTS`), so "every change after the floor" misses
//! nothing.
//!
//! What a watcher remembers while it starts is bounded by what it watches: its floor, and a filter watcher's
//! snapshot copies with the number each was shown at (to drop the changes the snapshot already showed). Once it
//! has caught up, its floor is past all of those, and it joins with its floor alone.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::{broadcast, OwnedSemaphorePermit};

use super::fanout::{Member, Target, Watcher};
use super::outlet::{Offer, Outlet, WatchStream};
use super::{HubMessage, WatchHub};
use crate::domain::{CopyFilter, CopyId, CopyState};
use crate::proto::encoded::EncodedCopyEvent;
use crate::store::{events, jobs, CopyEvent, CopyJob, JobAt, LiveCursor, Store, StoreError};

/// What a watcher is sent.
#[derive(Debug, Clone)]
pub struct WatchItem {
    /// The copy right after this change (or as it is now, for a snapshot).
    pub job: CopyJob,
    /// The sequence number of the change; for a snapshot, of the latest change it reflects.
    pub seq: i64,
    pub previous: Option<CopyState>,
    pub occurred_at: DateTime<Utc>,
    pub snapshot: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("no copy {0}")]
    NotFound(CopyId),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the service is shutting down")]
    Closed,
    /// The replica lost contact with the database; the client should watch again (through any replica).
    #[error("lost contact with the copy store; watch again")]
    Lost,
    /// A resume from a change that has not happened yet.
    #[error("after_sequence {after} is beyond the latest change, {latest}")]
    FutureSequence { after: i64, latest: i64 },
    /// The changes after `after` are no longer all held: the history before `oldest_held` was pruned.
    #[error(
        "the changes after {after} are no longer all held (the history before {oldest_held} was pruned); watch again \
         without after_sequence, for the current state"
    )]
    Pruned { after: i64, oldest_held: i64 },
    /// The client did not take its events as fast as they came: `buffer` were waiting. It has every change up to
    /// `last_sent`, and resumes after it.
    #[error(
        "this stream fell {buffer} changes behind and was cut off; watch again with after_sequence {last_sent} \
         (the last change sent)"
    )]
    SlowConsumer { last_sent: i64, buffer: usize },
}

/// One read of the database by a starting watcher, bounded by the database timeout. Why bounded: on a partition a
/// query neither fails nor returns, and the hub tells only the watchers that have joined it that it lost the
/// database; a starting watcher would be left in silence. The query's future is boxed, so that the watcher's own
/// future (which lives until it joins) does not carry it.
async fn read<T, Q, F>(store: &Store, query: Q) -> Result<T, WatchError>
where
    Q: FnOnce() -> F,
    F: Future<Output = Result<T, StoreError>>,
{
    let every = store.timeout();
    Ok(tokio::time::timeout(every, Box::pin(query())).await.map_err(|_| StoreError::TimedOut(every))??)
}

/// Fails with [`WatchError::Pruned`] if events after `after` may have been pruned. Asked after reading them: the
/// mark is raised before events are deleted, so a mark still at or below `after` means what was read was whole.
async fn still_held(store: &Store, after: i64) -> Result<(), WatchError> {
    let through = read(store, || events::pruned_through(store)).await?;
    if through > after {
        return Err(WatchError::Pruned { after, oldest_held: through + 1 });
    }
    Ok(())
}

/// Where a watch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// With the current state of what it watches.
    Snapshot,
    /// Right after the change numbered so, which the client has seen: every later change, nothing before.
    After(i64),
}

impl Start {
    /// Refuses a resume from a change that has not happened yet, or from one whose successors were pruned. Read
    /// after the hub is subscribed to, so every change after the latest reaches the watcher from the hub.
    async fn check(self, store: &Store) -> Result<(), WatchError> {
        if let Start::After(after) = self {
            let latest = read(store, || events::latest_seq(store)).await?;
            if after > latest {
                return Err(WatchError::FutureSequence { after, latest });
            }
            still_held(store, after).await?;
        }
        Ok(())
    }
}

/// Live copies read per query for a filter watcher's snapshot.
const SNAPSHOT_PAGE: i64 = 500;
/// Changes read per query while a watcher catches up.
const CATCH_UP_PAGE: i64 = 500;

/// Watches `target`, from its current state or after a change the client has seen (`start`), with the caller's
/// turn to start ([`WatchHub::start_turn`]). One copy: its state, then each change; the stream ends after its last
/// (fails at once with [`WatchError::NotFound`] if there is no such copy). A filter: the matching live copies as
/// they are, then every change, until the client leaves.
pub async fn watch(
    store: Store,
    hub: &Arc<WatchHub>,
    target: Target,
    start: Start,
    watcher: Watcher,
    turn: OwnedSemaphorePermit,
) -> Result<WatchStream, WatchError> {
    let rx = hub.subscribe();
    start.check(&store).await?;
    let (first, floor, copy) = match (&target, start) {
        (Target::Copy(id), _) => {
            let id = *id;
            let JobAt { job, last_seq } =
                read(&store, || jobs::get_at(&store, id)).await?.ok_or(WatchError::NotFound(id))?;
            let floor = match start {
                Start::Snapshot => last_seq,
                Start::After(after) => after,
            };
            (First::Copy { job: Box::new(job.clone()), last_seq, start }, floor, Some(job))
        }
        // Read before the snapshot: every change up to it is in the snapshot, and every later one reaches the
        // watcher from its catch-up or the hub.
        (Target::Filter(filter), Start::Snapshot) => {
            (First::Live(filter.clone()), read(&store, || events::latest_seq(&store)).await?, None)
        }
        (Target::Filter(_), Start::After(after)) => (First::Nothing, after, None),
    };
    let (outlet, stream) = Outlet::pair(hub.stream_buffer());
    let member = Member { target, floor, last_sent: floor, outlet };
    let starting =
        Starting { store, hub: hub.clone(), rx, watcher, member, shown: HashMap::new(), copy, turn: Some(turn) };
    tokio::spawn(starting.run(first));
    Ok(stream)
}

/// What a watcher sends before the changes after its floor.
enum First {
    /// A resumed watch: nothing.
    Nothing,
    /// The live copies matching the filter, as they are.
    Live(CopyFilter),
    /// One copy: as it is (a snapshot), or nothing if it ended by the change the client saw. Boxed: a copy is
    /// many times the size of the other variants.
    Copy { job: Box<CopyJob>, last_seq: i64, start: Start },
}

/// Whether a watcher goes on.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    GoOn,
    /// Its copy ended, or its client went: the stream ends cleanly.
    Over,
}

/// What the hub sent a starting watcher while it read the database.
enum Drained {
    /// All of it handled: the watcher may join.
    Caught,
    Over,
    /// It fell behind: what it must still send (a change its queue had no room for), then read again.
    Behind(Option<EncodedCopyEvent>),
    Failed(WatchError),
}

/// A watcher until it joins the fan-out.
struct Starting {
    store: Store,
    hub: Arc<WatchHub>,
    rx: broadcast::Receiver<HubMessage>,
    watcher: Watcher,
    /// What it will be in the registry: its target, floor, last change sent and outlet.
    member: Member,
    /// The snapshot's copies and the number each was shown at.
    shown: HashMap<CopyId, i64>,
    /// A copy watcher's copy, as first read: each of its events applies to it.
    copy: Option<CopyJob>,
    /// Its turn to start ([`WatchHub::start_turn`]); given back early if it must wait for its client.
    turn: Option<OwnedSemaphorePermit>,
}

impl Starting {
    /// Starts the watcher and has it join the fan-out; if it cannot, its stream ends with the reason.
    async fn run(mut self, first: First) {
        let mut shutdown = self.hub.shutdown();
        let mut step = tokio::select! {
            step = self.begin(first) => step,
            _ = shutdown.wait() => Err(WatchError::Closed),
        };
        loop {
            match step {
                Ok(Next::GoOn) => {}
                Ok(Next::Over) => return,
                Err(err) => return self.member.outlet.end(err),
            }
            let registry = self.hub.clone();
            let mut groups = registry.registry().lock();
            let behind = match self.drain() {
                Drained::Caught => return groups.join(self.watcher, self.member),
                Drained::Over => return,
                Drained::Failed(err) => return self.member.outlet.end(err),
                Drained::Behind(pending) => pending,
            };
            drop(groups);
            step = tokio::select! {
                step = self.fall_back(behind) => step,
                _ = shutdown.wait() => Err(WatchError::Closed),
            };
        }
    }

    async fn begin(&mut self, first: First) -> Result<Next, WatchError> {
        match first {
            First::Nothing => {}
            First::Live(filter) => {
                if self.snapshot(&filter).await? == Next::Over {
                    return Ok(Next::Over);
                }
            }
            First::Copy { job, last_seq, start: Start::Snapshot } => {
                let ended = job.state.is_terminal();
                if self.watcher.viewer.sees(&job) && !self.send(snapshot(*job, last_seq)).await {
                    return Ok(Next::Over);
                }
                if ended {
                    return Ok(Next::Over);
                }
            }
            // Ended by the change the client saw, or before: nothing more will come.
            First::Copy { job, last_seq, start: Start::After(after) }
                if job.state.is_terminal() && last_seq <= after =>
            {
                return Ok(Next::Over);
            }
            First::Copy { .. } => {}
        }
        self.catch_up().await
    }

    /// Sends the live copies matching `filter`, oldest first, a page at a time, and remembers what each showed.
    async fn snapshot(&mut self, filter: &CopyFilter) -> Result<Next, WatchError> {
        let mut cursor = None;
        loop {
            let page = read(&self.store, || jobs::live_page(&self.store, filter, cursor, SNAPSHOT_PAGE)).await?;
            let full = page.len() as i64 == SNAPSHOT_PAGE;
            cursor = page.last().map(|at| LiveCursor::after(&at.job));
            for JobAt { job, last_seq } in page {
                self.shown.insert(job.id, last_seq);
                if self.watcher.viewer.sees(&job) && !self.send(snapshot(job, last_seq)).await {
                    return Ok(Next::Over);
                }
            }
            if !full {
                return Ok(Next::GoOn);
            }
        }
    }

    /// Sends what is pending, then reads again.
    async fn fall_back(&mut self, pending: Option<EncodedCopyEvent>) -> Result<Next, WatchError> {
        if let Some(event) = pending {
            // Its client is slow to take what it is sent: the turn goes back while it waits.
            self.turn = None;
            if !self.member.outlet.send(event).await {
                return Ok(Next::Over);
            }
        }
        self.catch_up().await
    }

    /// Sends every change after the floor that the database holds, to its end.
    async fn catch_up(&mut self) -> Result<Next, WatchError> {
        loop {
            let floor = self.member.floor;
            let (page, full) = match (&self.member.target, &self.copy) {
                (Target::Copy(id), Some(copy)) => {
                    let page = read(&self.store, || events::for_copy_after(&self.store, *id, floor)).await?;
                    (page.into_iter().map(|event| (event.apply_to(copy), event)).collect::<Vec<_>>(), false)
                }
                _ => {
                    let page = read(&self.store, || events::after(&self.store, floor, CATCH_UP_PAGE)).await?;
                    let full = page.len() as i64 == CATCH_UP_PAGE;
                    (page.into_iter().map(|(event, job)| (job, event)).collect(), full)
                }
            };
            still_held(&self.store, floor).await?;
            for (job, event) in page {
                if self.wants(event.seq, &job) && !self.send(change(job.clone(), &event)).await {
                    return Ok(Next::Over);
                }
                if self.member.target.ends_with(&job) {
                    return Ok(Next::Over);
                }
            }
            if !full {
                return Ok(Next::GoOn);
            }
        }
    }

    /// Handles what the hub sent while the watcher read, without waiting (the registry's lock is held).
    fn drain(&mut self) -> Drained {
        loop {
            match self.rx.try_recv() {
                Ok(HubMessage::Event(stored)) => {
                    let seq = stored.event.seq;
                    if seq <= self.member.floor {
                        continue;
                    }
                    if self.wants(seq, &stored.job) {
                        let event = self.hub.encode(&stored.item());
                        match self.member.outlet.offer(event.clone()) {
                            Offer::Queued => self.member.last_sent = seq,
                            Offer::Gone => return Drained::Over,
                            Offer::Full => {
                                self.member.last_sent = seq;
                                return Drained::Behind(Some(event));
                            }
                        }
                    }
                    if self.member.target.ends_with(&stored.job) {
                        return Drained::Over;
                    }
                }
                Ok(HubMessage::Lost) => return Drained::Failed(WatchError::Lost),
                Err(broadcast::error::TryRecvError::Empty) => return Drained::Caught,
                Err(broadcast::error::TryRecvError::Lagged(_)) => return Drained::Behind(None),
                Err(broadcast::error::TryRecvError::Closed) => return Drained::Failed(WatchError::Closed),
            }
        }
    }

    /// Whether the change numbered `seq`, leaving the copy as `job`, is sent: one the watcher follows
    /// ([`Member::follows`], which moves its floor past it either way), that its snapshot did not already show, of
    /// a copy its caller may see.
    fn wants(&mut self, seq: i64, job: &CopyJob) -> bool {
        let follows = self.member.follows(seq, job);
        let shown = self.shown.get(&job.id).is_some_and(|&at| seq <= at);
        follows && !shown && self.watcher.viewer.sees(job)
    }

    /// Queues `item`, waiting for room; false once the client has gone.
    async fn send(&mut self, item: WatchItem) -> bool {
        let seq = item.seq;
        let event = self.hub.encode(&item);
        let sent = match self.member.outlet.offer(event.clone()) {
            Offer::Queued => true,
            Offer::Gone => false,
            // A client slow to take its start-up must not keep others from starting: the turn goes back.
            Offer::Full => {
                self.turn = None;
                self.member.outlet.send(event).await
            }
        };
        if sent && !item.snapshot {
            self.member.last_sent = seq;
        }
        sent
    }
}

fn snapshot(job: CopyJob, seq: i64) -> WatchItem {
    let occurred_at = job.updated_at;
    WatchItem { job, seq, previous: None, occurred_at, snapshot: true }
}

fn change(job: CopyJob, event: &CopyEvent) -> WatchItem {
    WatchItem { job, seq: event.seq, previous: event.from_state, occurred_at: event.occurred_at, snapshot: false }
}
