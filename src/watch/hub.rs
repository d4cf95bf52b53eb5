//! One listener per replica on the copy events channel, re-broadcast in process.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
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

async fn relay(store: Store, mut listener: Listener, tx: broadcast::Sender<HubMessage>, mut shutdown: Shutdown) {
    loop {
        let received = tokio::select! {
            received = listener.try_recv() => received,
            _ = shutdown.wait() => return,
        };
        match received {
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
                match load(&store, seq).await {
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
            // The connection dropped; the next try_recv reconnects and listens again.
            Ok(None) => {
                let _ = tx.send(HubMessage::Resync);
            }
            Err(err) => {
                warn!(%err, "copy event listener failed; retrying");
                let _ = tx.send(HubMessage::Resync);
                tokio::time::sleep(Duration::from_millis(500)).await;
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
