//! One listener per replica on the copy events channel; each change it hears of is read once and handed to the
//! replica's watchers: those up to date through the fan-out registry ([`super::fanout`]), those still starting up
//! through a broadcast they drain when they join.
//!
//! The listener is checked with a heartbeat: every `database_timeout_ms` the hub notifies itself on the channel,
//! and if neither that notification nor anything else has come in within the same time, the hub tells every
//! watcher it lost the database ([`HubMessage::Lost`]: their streams end with UNAVAILABLE, so clients resume) and
//! opens a new listener. Why: on a partition that swallows packets, a LISTEN connection neither errors nor
//! delivers anything, and every watcher of the replica went silent, with no error, for as long as it lasted.
//!
//! When the listener's connection fails (PostgreSQL restarting, a reset), the hub opens a new listener and only
//! *then* reads what it missed from the database, after the last change it handed out, and hands that out as if it
//! had been notified: everything committed before it listens again is in that read, everything after is notified.
//! (It once asked for that read as soon as it saw the failure and left listening again for later; a change
//! committed in between was neither read nor notified, and never sent.) The listener itself never listens again on
//! its own (`store::notifications`): it used to, inside a receive that this loop's heartbeat tick could cancel, and
//! then the loss was never reported and nobody caught up. The read is the hub's, once, rather than every
//! watcher's: ten thousand watchers reading the same rows after each restart would be ten thousand queries.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::time::Instant;
use tracing::warn;

use super::fanout::{Encode, Registry};
use super::{WatchError, WatchItem};
use crate::shutdown::Shutdown;
use crate::store::{events, jobs, Channel, CopyEvent, CopyJob, Listener, Store, StoreError};

/// Changes a starting watcher may fall behind by before it reads them from the database instead.
const CAPACITY: usize = 1024;
/// Changes read per query when the hub catches up.
const CATCH_UP_PAGE: i64 = 500;
/// Watchers starting at once in the replica (see `stream`): enough to keep the watch pool's connections busy.
const STARTING: usize = 32;

/// A stored transition and the copy as it was right after it.
#[derive(Debug)]
pub struct StoredEvent {
    pub event: CopyEvent,
    pub job: CopyJob,
}

impl StoredEvent {
    /// What a watcher is sent of it.
    pub fn item(&self) -> WatchItem {
        WatchItem {
            job: self.job.clone(),
            seq: self.event.seq,
            previous: self.event.from_state,
            occurred_at: self.event.occurred_at,
            snapshot: false,
        }
    }
}

/// What watchers that are still starting up are told.
#[derive(Debug, Clone)]
pub enum HubMessage {
    Event(Arc<StoredEvent>),
    /// The hub lost contact with the database: watchers cannot be kept up to date, and end with an error that
    /// tells their clients to resume.
    Lost,
}

pub struct WatchHub {
    tx: broadcast::Sender<HubMessage>,
    registry: Arc<Registry>,
    encode: Encode,
    /// Encoded changes queued per stream before its client counts as too slow and is cut off.
    stream_buffer: usize,
    /// Turns to start: a watcher reads and sends its start-up only with one (see [`WatchHub::start_turn`]).
    starting: Arc<tokio::sync::Semaphore>,
    /// Watch streams never end by themselves; they end when the service shuts down, so it can.
    shutdown: Shutdown,
}

impl WatchHub {
    /// Listens before it returns, so no change committed after `start` is missed.
    pub async fn start(
        store: Store,
        shutdown: Shutdown,
        encode: Encode,
        stream_buffer: usize,
    ) -> Result<Arc<WatchHub>, StoreError> {
        let listener = store.listen(Channel::CopyEvents).await?;
        let handed_out = events::latest_seq(&store).await?;
        let (tx, _) = broadcast::channel(CAPACITY);
        let registry = Arc::new(Registry::default());
        let hub = Arc::new(WatchHub {
            tx: tx.clone(),
            registry: registry.clone(),
            encode,
            stream_buffer,
            starting: Arc::new(tokio::sync::Semaphore::new(STARTING)),
            shutdown: shutdown.clone(),
        });
        let relay = Relay { store, tx, registry, encode, handed_out };
        tokio::spawn(relay.run(listener, shutdown));
        Ok(hub)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<HubMessage> {
        self.tx.subscribe()
    }

    pub fn shutdown(&self) -> Shutdown {
        self.shutdown.clone()
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn encode(&self, item: &WatchItem) -> crate::proto::encoded::EncodedCopyEvent {
        (self.encode)(item)
    }

    pub fn stream_buffer(&self) -> usize {
        self.stream_buffer
    }

    /// A turn to start a watcher: held from its first read of the database until it joins the fan-out, or until
    /// it must wait for its client to take what it sends.
    ///
    /// Why: when thousands of dashboards connect at once (a replica restarted, a network came back), thousands of
    /// watchers started together, each holding the memory of its whole start-up (10 KB) while it waited for a
    /// connection of the pool; the allocator kept that memory long after they had started (heaptrack: the start-up
    /// tasks were nine tenths of the replica's heap at its peak, 2,000 streams opening). A watcher waiting for its
    /// turn holds little.
    pub async fn start_turn(&self) -> tokio::sync::OwnedSemaphorePermit {
        self.starting.clone().acquire_owned().await.expect("never closed")
    }
}

/// The hub's task: hears of changes, reads them, hands them out.
struct Relay {
    store: Store,
    tx: broadcast::Sender<HubMessage>,
    registry: Arc<Registry>,
    encode: Encode,
    /// The number of the last change handed out (or passed over while nobody watched).
    handed_out: i64,
}

impl Relay {
    fn watched(&self) -> bool {
        self.tx.receiver_count() > 0 || !self.registry.lock().is_empty()
    }

    fn hand_out(&mut self, stored: StoredEvent) {
        let seq = stored.event.seq;
        let stored = Arc::new(stored);
        let mut groups = self.registry.lock();
        // No receivers is fine: nobody is starting up.
        let _ = self.tx.send(HubMessage::Event(stored.clone()));
        groups.deliver(&stored, self.encode);
        drop(groups);
        self.handed_out = self.handed_out.max(seq);
    }

    /// Every watcher is told the replica lost the database; their clients resume, through any replica.
    fn lost(&self) {
        let _ = self.tx.send(HubMessage::Lost);
        self.registry.end_all(|| WatchError::Lost);
    }

    /// Reads and hands out what was committed after the last change handed out. If it cannot, its watchers are
    /// told they lost it (their clients resume from what they received).
    async fn catch_up(&mut self, every: Duration) {
        if !self.watched() {
            return;
        }
        loop {
            let page = tokio::time::timeout(every, events::after(&self.store, self.handed_out, CATCH_UP_PAGE))
                .await
                .unwrap_or(Err(StoreError::TimedOut(every)));
            match page {
                Ok(page) => {
                    let full = page.len() as i64 == CATCH_UP_PAGE;
                    for (event, job) in page {
                        self.hand_out(StoredEvent { event, job });
                    }
                    if !full {
                        return;
                    }
                }
                Err(err) => {
                    warn!(%err, "cannot read the changes missed while not listening; watchers are told");
                    self.lost();
                    return;
                }
            }
        }
    }
}

/// What a heartbeat's payload starts with; the rest names the replica's hub and the beat, so that hubs of other
/// replicas (which receive it too) ignore it.
const HEARTBEAT: &str = "heartbeat:";

impl Relay {
    async fn run(mut self, listener: Listener, mut shutdown: Shutdown) {
        let store = self.store.clone();
        let every = store.timeout();
        let me = format!("{HEARTBEAT}{}:", uuid::Uuid::new_v4().simple());
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut listener = Some(listener);
        // The beat sent and not heard back yet, and when it was sent.
        let mut awaited: Option<(u64, Instant)> = None;
        let mut beats: u64 = 0;
        // When the listener last delivered anything. A beat can come back late behind a burst of events waiting
        // their turn; anything delivered since it was sent shows the connection alive all the same.
        let mut heard = Instant::now();
        loop {
            let received = tokio::select! {
                received = async { listener.as_mut().expect("polled only while listening").try_recv().await },
                    if listener.is_some() => received,
                _ = ticker.tick() => {
                    self.registry.sweep();
                    match (&listener, awaited) {
                        (Some(_), Some((_, sent))) if sent.elapsed() < every => {}
                        (Some(_), Some((_, sent))) if heard < sent => {
                            warn!(after = ?every, "copy event listener silent (no heartbeat back); watchers are told");
                            self.lost();
                            listener = None;
                            awaited = None;
                        }
                        // Nothing awaited, or the last beat is late while other notifications keep coming: a new
                        // beat.
                        (Some(_), _) => {
                            beats += 1;
                            awaited = Some((beats, Instant::now()));
                            let (store, payload) = (store.clone(), format!("{me}{beats}"));
                            // Apart from the loop: over a partition, sending it hangs too.
                            tokio::spawn(async move {
                                let _ = tokio::time::timeout(every, store.notify(Channel::CopyEvents, &payload)).await;
                            });
                        }
                        // Whatever was committed while nobody listened is read from the database.
                        (None, _) => listener = self.listen_again(every).await,
                    }
                    continue;
                }
                _ = shutdown.wait() => {
                    self.registry.end_all(|| WatchError::Closed);
                    return;
                }
            };
            if let Ok(Some(_)) = received {
                heard = Instant::now();
            }
            match received {
                Ok(Some(payload)) if payload.starts_with(HEARTBEAT) => {
                    if awaited.is_some_and(|(beat, _)| payload == format!("{me}{beat}")) {
                        awaited = None;
                    }
                }
                Ok(Some(payload)) => {
                    let Ok(seq) = payload.parse::<i64>() else {
                        warn!(payload, "ignoring a malformed copy event notification");
                        continue;
                    };
                    if seq <= self.handed_out {
                        continue;
                    }
                    // Nobody watching: reading the event would be wasted. A watcher that starts after this check
                    // reads its starting state after this event was committed, so it misses nothing.
                    if !self.watched() {
                        self.handed_out = seq;
                        continue;
                    }
                    // Bounded: a read that hangs on a partition would keep the heartbeat from being checked.
                    let loaded = tokio::time::timeout(every, load(&store, seq))
                        .await
                        .unwrap_or(Err(StoreError::TimedOut(every)));
                    match loaded {
                        Ok(Some(event)) => self.hand_out(event),
                        Ok(None) => warn!(seq, "notified of an event that is not stored"),
                        Err(err) => {
                            warn!(%err, seq, "cannot read a notified event; reading what was missed");
                            self.catch_up(every).await;
                        }
                    }
                }
                // The connection dropped, or failed: listen again on a new one, then catch up.
                Ok(None) | Err(_) => {
                    if let Err(err) = received {
                        warn!(%err, "copy event listener failed; listening again");
                    }
                    awaited = None;
                    listener = self.listen_again(every).await;
                    if listener.is_none() {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        }
    }

    /// A new listener, and then (only then) what was committed before it listened, read from the database. `None`
    /// if it cannot listen within `every`: the watchers are told they lost the database.
    async fn listen_again(&mut self, every: Duration) -> Option<Listener> {
        match tokio::time::timeout(every, self.store.listen(Channel::CopyEvents)).await {
            Ok(Ok(new)) => {
                self.catch_up(every).await;
                Some(new)
            }
            Ok(Err(err)) => {
                warn!(%err, "cannot listen for copy events yet; watchers are told, and it retries");
                self.lost();
                None
            }
            Err(_) => {
                warn!(after = ?every, "cannot listen for copy events yet; watchers are told, and it retries");
                self.lost();
                None
            }
        }
    }
}

async fn load(store: &Store, seq: i64) -> Result<Option<StoredEvent>, StoreError> {
    let Some(event) = events::by_seq(store, seq).await? else {
        return Ok(None);
    };
    let Some(job) = jobs::get(store, event.copy_id).await? else {
        return Ok(None);
    };
    let job = event.apply_to(&job);
    Ok(Some(StoredEvent { event, job }))
}
