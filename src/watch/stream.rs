//! One watcher: the current state first, then every change, in order, with nothing skipped.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::{HubMessage, WatchHub};
use crate::domain::{CopyFilter, CopyId, CopyState};
use crate::shutdown::Shutdown;
use crate::store::{events, jobs, CopyJob, JobAt, Store, StoreError};

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
}

/// Fails with [`WatchError::Pruned`] if events after `after` may have been pruned. Asked after reading them: the
/// mark is raised before events are deleted, so a mark still at or below `after` means what was read was whole.
async fn still_held(store: &Store, after: i64) -> Result<(), WatchError> {
    let through = events::pruned_through(store).await?;
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
            let latest = events::latest_seq(store).await?;
            if after > latest {
                return Err(WatchError::FutureSequence { after, latest });
            }
            still_held(store, after).await?;
        }
        Ok(())
    }
}

/// Filter watchers start from at most this many live copies.
pub const SNAPSHOT_LIMIT: i64 = 1000;
/// Messages buffered per watcher before the watcher counts as behind and catches up from the database.
const BUFFER: usize = 64;

pub type WatchStream = ReceiverStream<Result<WatchItem, WatchError>>;

/// Watches one copy, from its current state or after a change the client has seen. Fails at once with
/// [`WatchError::NotFound`] if there is no such copy.
pub async fn watch_copy(store: Store, hub: &WatchHub, id: CopyId, start: Start) -> Result<WatchStream, WatchError> {
    let rx = hub.subscribe();
    start.check(&store).await?;
    let JobAt { job, last_seq } = jobs::get_at(&store, id).await?.ok_or(WatchError::NotFound(id))?;
    let (tx, out) = mpsc::channel(BUFFER);
    let shutdown = hub.shutdown();
    tokio::spawn(async move {
        if let Err(err) = follow_copy(&store, rx, shutdown, &tx, job, (last_seq, start)).await {
            let _ = tx.send(Err(err)).await;
        }
    });
    Ok(ReceiverStream::new(out))
}

async fn follow_copy(
    store: &Store,
    mut rx: broadcast::Receiver<HubMessage>,
    mut shutdown: Shutdown,
    tx: &mpsc::Sender<Result<WatchItem, WatchError>>,
    job: CopyJob,
    (last_seq, start): (i64, Start),
) -> Result<(), WatchError> {
    let (mut last, mut done) = match start {
        Start::Snapshot => {
            let done = job.state.is_terminal();
            if !send(tx, snapshot(job.clone(), last_seq)).await || done {
                return Ok(());
            }
            (last_seq, done)
        }
        // Ended by the change the client saw, or before: nothing more will come.
        Start::After(after) if job.state.is_terminal() && last_seq <= after => return Ok(()),
        // What came after it, then live.
        Start::After(after) => match catch_up_copy(store, tx, &job, after).await? {
            Some(caught_up) => caught_up,
            None => return Ok(()),
        },
    };
    while !done {
        let message = tokio::select! {
            message = rx.recv() => message,
            _ = tx.closed() => return Ok(()),
            _ = shutdown.wait() => return Err(WatchError::Closed),
        };
        match message {
            Ok(HubMessage::Event(stored)) if stored.event.copy_id == job.id && stored.event.seq > last => {
                last = stored.event.seq;
                done = stored.job.state.is_terminal();
                if !send(tx, change(&stored)).await {
                    return Ok(());
                }
            }
            Ok(HubMessage::Event(_)) => {}
            Ok(HubMessage::Lost) => return Err(WatchError::Lost),
            Ok(HubMessage::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => {
                match catch_up_copy(store, tx, &job, last).await? {
                    Some((caught_up, ended)) => (last, done) = (caught_up.max(last), ended),
                    None => return Ok(()),
                }
            }
            Err(broadcast::error::RecvError::Closed) => return Err(WatchError::Closed),
        }
    }
    Ok(())
}

/// Sends the copy's changes after `last` from the database: the number of the last one sent (`last` if none) and
/// whether the copy has ended; `None` once the client has gone. Within one copy, sequence order is commit order:
/// reading past `last` misses nothing.
async fn catch_up_copy(
    store: &Store,
    tx: &mpsc::Sender<Result<WatchItem, WatchError>>,
    job: &CopyJob,
    mut last: i64,
) -> Result<Option<(i64, bool)>, WatchError> {
    let mut done = false;
    let read = events::for_copy_after(store, job.id, last).await?;
    still_held(store, last).await?;
    for event in read {
        last = event.seq;
        done = event.to_state.is_terminal();
        let item = WatchItem {
            job: event.apply_to(job),
            seq: event.seq,
            previous: event.from_state,
            occurred_at: event.occurred_at,
            snapshot: false,
        };
        if !send(tx, item).await {
            return Ok(None);
        }
    }
    Ok(Some((last, done)))
}

/// Watches every copy matching `filter`: the live ones as they are (or, resuming, every change after the one the
/// client saw), then every change, until the client leaves.
pub async fn watch_filter(
    store: Store,
    hub: &WatchHub,
    filter: CopyFilter,
    start: Start,
) -> Result<WatchStream, WatchError> {
    let rx = hub.subscribe();
    start.check(&store).await?;
    let (floor, live) = match start {
        // Read before the snapshot: every event up to it is in the snapshot, and every later one reaches the
        // watcher from the hub or, if it falls behind, from the events after it.
        Start::Snapshot => {
            let floor = events::latest_seq(&store).await?;
            (floor, Some(jobs::live_at(&store, &filter, SNAPSHOT_LIMIT).await?))
        }
        // No snapshot: the watcher catches up from the events after `after` first, as after a lag.
        Start::After(after) => (after, None),
    };
    let (tx, out) = mpsc::channel(BUFFER);
    let shutdown = hub.shutdown();
    tokio::spawn(async move {
        if let Err(err) = follow_filter(&store, rx, shutdown, &tx, filter, (floor, live)).await {
            let _ = tx.send(Err(err)).await;
        }
    });
    Ok(ReceiverStream::new(out))
}

/// Events read per query while a watcher catches up.
const CATCH_UP_PAGE: i64 = 500;

/// Sends the snapshot, then every event after `floor` that matches, in number order: from the hub while the watcher
/// keeps up, from the events table (page by page, to the end) when it fell behind. Events commit in the order of
/// their numbers (`store::locks::COPY_EVENTS`), so "every event after the last one handled" misses nothing. What it
/// remembers is bounded whatever the filter: the number of the last event handled, and the snapshot's copies' own
/// numbers (at most [`SNAPSHOT_LIMIT`]), to drop the changes the snapshot already showed.
async fn follow_filter(
    store: &Store,
    mut rx: broadcast::Receiver<HubMessage>,
    mut shutdown: Shutdown,
    tx: &mpsc::Sender<Result<WatchItem, WatchError>>,
    filter: CopyFilter,
    (mut floor, live): (i64, Option<Vec<JobAt>>),
) -> Result<(), WatchError> {
    // A resumed watch (no snapshot) starts as one that fell behind: with a catch-up.
    let mut behind = live.is_none();
    let live = live.unwrap_or_default();
    let mut shown: HashMap<CopyId, i64> = HashMap::with_capacity(live.len());
    // Oldest first, as if each had just happened.
    for JobAt { job, last_seq: seq } in live.into_iter().rev() {
        shown.insert(job.id, seq);
        if !send(tx, snapshot(job, seq)).await {
            return Ok(());
        }
    }
    // Whether the event numbered `seq` of copy `job` is sent; `floor` moves past it either way.
    let handle = |seq: i64, job: &CopyJob, floor: &mut i64| {
        if seq <= *floor {
            return false;
        }
        *floor = seq;
        if shown.get(&job.id).is_some_and(|&at| seq <= at) {
            return false;
        }
        filter.matches(job.state, job.request.source_account(), job.request.destination_account(), job.created_at)
    };
    loop {
        let message = if std::mem::take(&mut behind) {
            Ok(HubMessage::Resync)
        } else {
            tokio::select! {
                message = rx.recv() => message,
                _ = tx.closed() => return Ok(()),
                _ = shutdown.wait() => return Err(WatchError::Closed),
            }
        };
        match message {
            Ok(HubMessage::Event(stored)) => {
                if handle(stored.event.seq, &stored.job, &mut floor) && !send(tx, change(&stored)).await {
                    return Ok(());
                }
            }
            Ok(HubMessage::Lost) => return Err(WatchError::Lost),
            Ok(HubMessage::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => loop {
                let page = events::after(store, floor, CATCH_UP_PAGE).await?;
                still_held(store, floor).await?;
                let full = page.len() as i64 == CATCH_UP_PAGE;
                for (event, job) in page {
                    if handle(event.seq, &job, &mut floor) {
                        let item = WatchItem {
                            seq: event.seq,
                            previous: event.from_state,
                            occurred_at: event.occurred_at,
                            snapshot: false,
                            job,
                        };
                        if !send(tx, item).await {
                            return Ok(());
                        }
                    }
                }
                if !full {
                    break;
                }
            },
            Err(broadcast::error::RecvError::Closed) => return Err(WatchError::Closed),
        }
    }
}

fn snapshot(job: CopyJob, seq: i64) -> WatchItem {
    let occurred_at = job.updated_at;
    WatchItem { job, seq, previous: None, occurred_at, snapshot: true }
}

fn change(stored: &Arc<super::StoredEvent>) -> WatchItem {
    WatchItem {
        job: stored.job.clone(),
        seq: stored.event.seq,
        previous: stored.event.from_state,
        occurred_at: stored.event.occurred_at,
        snapshot: false,
    }
}

/// False once the client has gone.
async fn send(tx: &mpsc::Sender<Result<WatchItem, WatchError>>, item: WatchItem) -> bool {
    tx.send(Ok(item)).await.is_ok()
}
