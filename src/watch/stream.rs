//! One watcher: the current state first, then every change, in order, with nothing skipped.

use std::collections::{HashMap, VecDeque};
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
}

/// Filter watchers start from at most this many live copies.
pub const SNAPSHOT_LIMIT: i64 = 1000;
/// Messages buffered per watcher before the watcher counts as behind and catches up from the database.
const BUFFER: usize = 64;

pub type WatchStream = ReceiverStream<Result<WatchItem, WatchError>>;

/// Watches one copy. Fails at once with [`WatchError::NotFound`] if there is no such copy.
pub async fn watch_copy(store: Store, hub: &WatchHub, id: CopyId) -> Result<WatchStream, WatchError> {
    let rx = hub.subscribe();
    let JobAt { job, last_seq: last } = jobs::get_at(&store, id).await?.ok_or(WatchError::NotFound(id))?;
    let (tx, out) = mpsc::channel(BUFFER);
    let shutdown = hub.shutdown();
    tokio::spawn(async move {
        if let Err(err) = follow_copy(&store, rx, shutdown, &tx, job, last).await {
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
    mut last: i64,
) -> Result<(), WatchError> {
    let mut done = job.state.is_terminal();
    if !send(tx, snapshot(job.clone(), last)).await || done {
        return Ok(());
    }
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
            Ok(HubMessage::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => {
                // Within one copy, sequence order is commit order: reading past `last` misses nothing.
                for event in events::for_copy_after(store, job.id, last).await? {
                    last = event.seq;
                    done = event.to_state.is_terminal();
                    let item = WatchItem {
                        job: event.apply_to(&job),
                        seq: event.seq,
                        previous: event.from_state,
                        occurred_at: event.occurred_at,
                        snapshot: false,
                    };
                    if !send(tx, item).await {
                        return Ok(());
                    }
                }
            }
            Err(broadcast::error::RecvError::Closed) => return Err(WatchError::Closed),
        }
    }
    Ok(())
}

/// Watches every copy matching `filter`: the live ones as they are, then every change, until the client leaves.
pub async fn watch_filter(store: Store, hub: &WatchHub, filter: CopyFilter) -> Result<WatchStream, WatchError> {
    let rx = hub.subscribe();
    let live = jobs::live_at(&store, &filter, SNAPSHOT_LIMIT).await?;
    let (tx, out) = mpsc::channel(BUFFER);
    let shutdown = hub.shutdown();
    tokio::spawn(async move {
        if let Err(err) = follow_filter(&store, rx, shutdown, &tx, filter, live).await {
            let _ = tx.send(Err(err)).await;
        }
    });
    Ok(ReceiverStream::new(out))
}

async fn follow_filter(
    store: &Store,
    mut rx: broadcast::Receiver<HubMessage>,
    mut shutdown: Shutdown,
    tx: &mpsc::Sender<Result<WatchItem, WatchError>>,
    filter: CopyFilter,
    live: Vec<JobAt>,
) -> Result<(), WatchError> {
    let mut seen = Seen::default();
    // Oldest first, as if each had just happened.
    for JobAt { job, last_seq: seq } in live.into_iter().rev() {
        seen.note(&job, seq);
        if !send(tx, snapshot(job, seq)).await {
            return Ok(());
        }
    }
    let mut in_sync_at = Utc::now();
    loop {
        let message = tokio::select! {
            message = rx.recv() => message,
            _ = tx.closed() => return Ok(()),
            _ = shutdown.wait() => return Err(WatchError::Closed),
        };
        match message {
            Ok(HubMessage::Event(stored)) => {
                in_sync_at = stored.event.occurred_at.min(Utc::now());
                let job = &stored.job;
                let fresh = stored.event.seq > seen.get(&job.id);
                let (source, destination) = (job.request.source_account(), job.request.destination_account());
                if fresh && filter.matches(job.state, source, destination, job.created_at) {
                    seen.note(job, stored.event.seq);
                    if !send(tx, change(&stored)).await {
                        return Ok(());
                    }
                }
            }
            Ok(HubMessage::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => {
                // What changed since we were last in step, as it is now (a margin covers commit delays).
                let since = in_sync_at - chrono::Duration::seconds(5);
                in_sync_at = Utc::now();
                for JobAt { job, last_seq: seq } in jobs::changed_since(store, &filter, since, SNAPSHOT_LIMIT).await? {
                    if seq > seen.get(&job.id) {
                        seen.note(&job, seq);
                        if !send(tx, snapshot(job, seq)).await {
                            return Ok(());
                        }
                    }
                }
            }
            Err(broadcast::error::RecvError::Closed) => return Err(WatchError::Closed),
        }
    }
}

/// Where each copy stands for one filter watcher. Copies that ended never change again, so only the most recent
/// [`ENDED_REMEMBERED`] of them are kept (enough to drop late duplicates of their last event).
#[derive(Default)]
struct Seen {
    seq: HashMap<CopyId, i64>,
    ended: VecDeque<CopyId>,
}

const ENDED_REMEMBERED: usize = 10_000;

impl Seen {
    fn get(&self, id: &CopyId) -> i64 {
        self.seq.get(id).copied().unwrap_or(0)
    }

    fn note(&mut self, job: &CopyJob, seq: i64) {
        self.seq.insert(job.id, seq);
        if job.state.is_terminal() {
            self.ended.push_back(job.id);
            if self.ended.len() > ENDED_REMEMBERED {
                if let Some(old) = self.ended.pop_front() {
                    self.seq.remove(&old);
                }
            }
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
