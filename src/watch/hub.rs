//! One listener per replica on the copy events channel, re-broadcast in process.
//!
//! The listener is checked with a heartbeat: every `database_timeout_ms` the hub notifies itself on the channel,
//! and if neither that notification nor anything else has come in within the same time, the hub tells every
//! watcher it lost the database ([`HubMessage::Lost`]: their streams end with UNAVAILABLE, so clients reconnect)
//! and opens a new listener. Why: on a partition that swallows packets, a LISTEN connection neither errors nor
//! delivers anything, and every watcher of the replica went silent, with no error, for as long as it lasted.
//!
//! When the listener's connection fails (PostgreSQL restarting, a reset), the hub opens a new listener itself and
//! only *then* asks its watchers to catch up ([`HubMessage::Resync`]); if it cannot listen again within the
//! timeout, its watchers are told they lost it. Why: the hub used to ask for the catch-up as soon as it saw the
//! failure, and left listening again to the driver's next read; a change committed between the watchers' catch-up
//! and the new LISTEN was neither read nor notified, and was never sent (the fleet's fault test saw watchers skip
//! copies' QUEUED → SUBMITTING after each restart). The listener itself never listens again on its own
//! (`store::notifications`): it used to, inside a receive that this loop's heartbeat tick could cancel, and then the
//! loss was never reported and nobody caught up (a watcher skipped a change right after a restart, one run in five).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::time::Instant;
use tracing::warn;

use crate::shutdown::Shutdown;
use crate::store::{events, jobs, Channel, CopyEvent, CopyJob, Listener, Store, StoreError};

const CAPACITY: usize = 1024;

/// A stored transition and the copy as it was right after it.
#[derive(Debug)]
pub struct StoredEvent {
    pub event: CopyEvent,
    pub job: CopyJob,
}

#[derive(Debug, Clone)]
pub enum HubMessage {
    Event(Arc<StoredEvent>),
    /// Notifications may have been lost (the listening connection dropped): catch up from the database.
    Resync,
    /// The hub lost contact with the database (its heartbeat did not come back in time): watchers cannot be kept
    /// up to date, and end with an error that tells their clients to reconnect.
    Lost,
}

pub struct WatchHub {
    tx: broadcast::Sender<HubMessage>,
    /// Watch streams never end by themselves; they end when the service shuts down, so it can.
    shutdown: Shutdown,
}

impl WatchHub {
    /// Listens before it returns, so no change committed after `start` is missed.
    pub async fn start(store: Store, shutdown: Shutdown) -> Result<Arc<WatchHub>, StoreError> {
        let listener = store.listen(Channel::CopyEvents).await?;
        let (tx, _) = broadcast::channel(CAPACITY);
        let hub = Arc::new(WatchHub { tx: tx.clone(), shutdown: shutdown.clone() });
        tokio::spawn(relay(store, listener, tx, shutdown));
        Ok(hub)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<HubMessage> {
        self.tx.subscribe()
    }

    pub fn shutdown(&self) -> Shutdown {
        self.shutdown.clone()
    }
}

/// What a heartbeat's payload starts with; the rest names the replica's hub and the beat, so that hubs of other
/// replicas (which receive it too) ignore it.
const HEARTBEAT: &str = "heartbeat:";

async fn relay(store: Store, listener: Listener, tx: broadcast::Sender<HubMessage>, mut shutdown: Shutdown) {
    let every = store.timeout();
    let me = format!("{HEARTBEAT}{}:", uuid::Uuid::new_v4().simple());
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut listener = Some(listener);
    // The beat sent and not heard back yet, and when it was sent.
    let mut awaited: Option<(u64, Instant)> = None;
    let mut beats: u64 = 0;
    // When the listener last delivered anything. A beat can come back late behind a burst of events waiting their
    // turn; anything delivered since it was sent shows the connection alive all the same.
    let mut heard = Instant::now();
    loop {
        let received = tokio::select! {
            received = async { listener.as_mut().expect("polled only while listening").try_recv().await },
                if listener.is_some() => received,
            _ = ticker.tick() => {
                match (&listener, awaited) {
                    (Some(_), Some((_, sent))) if sent.elapsed() < every => {}
                    (Some(_), Some((_, sent))) if heard < sent => {
                        warn!(after = ?every, "copy event listener silent (no heartbeat back); watchers are told");
                        let _ = tx.send(HubMessage::Lost);
                        listener = None;
                        awaited = None;
                    }
                    // Nothing awaited, or the last beat is late while other notifications keep coming: a new beat.
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
                    (None, _) => listener = listen_again(&store, every, &tx).await,
                }
                continue;
            }
            _ = shutdown.wait() => return,
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
                // Nobody watching: reading the event would be wasted. A watcher that subscribes after this check
                // reads its starting state after this event was committed, so it misses nothing.
                if tx.receiver_count() == 0 {
                    continue;
                }
                let Ok(seq) = payload.parse::<i64>() else {
                    warn!(payload, "ignoring a malformed copy event notification");
                    continue;
                };
                // Bounded: a read that hangs on a partition would keep the heartbeat from being checked.
                let loaded =
                    tokio::time::timeout(every, load(&store, seq)).await.unwrap_or(Err(StoreError::TimedOut(every)));
                match loaded {
                    Ok(Some(event)) => {
                        // No receivers is fine: nobody is watching.
                        let _ = tx.send(HubMessage::Event(Arc::new(event)));
                    }
                    Ok(None) => warn!(seq, "notified of an event that is not stored"),
                    Err(err) => {
                        warn!(%err, seq, "cannot read a notified event; watchers will catch up");
                        let _ = tx.send(HubMessage::Resync);
                    }
                }
            }
            // The connection dropped, or failed: listen again on a new one, then have the watchers catch up.
            Ok(None) | Err(_) => {
                if let Err(err) = received {
                    warn!(%err, "copy event listener failed; listening again");
                }
                awaited = None;
                listener = listen_again(&store, every, &tx).await;
                if listener.is_none() {
                    let _ = tx.send(HubMessage::Lost);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }
}

/// A new listener, and then (only then) the watchers told to catch up: everything committed before it listens is
/// in their catch-up, everything after is notified. `None` if it cannot listen within `every`.
async fn listen_again(store: &Store, every: Duration, tx: &broadcast::Sender<HubMessage>) -> Option<Listener> {
    match tokio::time::timeout(every, store.listen(Channel::CopyEvents)).await {
        Ok(Ok(new)) => {
            let _ = tx.send(HubMessage::Resync);
            Some(new)
        }
        Ok(Err(err)) => {
            warn!(%err, "cannot listen for copy events yet; watchers are told, and it retries");
            None
        }
        Err(_) => {
            warn!(after = ?every, "cannot listen for copy events yet; watchers are told, and it retries");
            None
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
