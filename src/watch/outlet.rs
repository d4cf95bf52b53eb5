//! A watcher's way out: a bounded queue of encoded events to its stream, and the reason it ended, if it did not
//! end cleanly.
//!
//! Why bounded and never awaited by the fan-out: one replica feeds thousands of streams from one task; waiting for
//! the slowest would hold up every other, and queueing without bound would let one stalled client grow the
//! replica's memory. A watcher whose queue is full is cut off instead ([`super::WatchError::SlowConsumer`]): its
//! stream delivers what was queued, then ends with a status that tells the client where to resume from.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::Stream;
use tokio::sync::mpsc;

use super::WatchError;
use crate::proto::encoded::EncodedCopyEvent;

/// Why a stream ended, set before its queue's sender is dropped.
type End = Arc<Mutex<Option<WatchError>>>;

/// The sending side, held by the watcher's start-up task and then by the fan-out.
pub struct Outlet {
    tx: mpsc::Sender<EncodedCopyEvent>,
    end: End,
}

/// What became of an event offered to a watcher.
#[derive(Debug, PartialEq, Eq)]
pub enum Offer {
    Queued,
    /// The client has gone.
    Gone,
    /// The queue is full: the client is not reading fast enough.
    Full,
}

impl Outlet {
    /// An outlet and the stream it feeds, which holds at most `capacity` events not yet taken by the transport.
    pub fn pair(capacity: usize) -> (Outlet, WatchStream) {
        let (tx, rx) = mpsc::channel(capacity);
        let end = End::default();
        (Outlet { tx, end: end.clone() }, WatchStream { rx, end, finished: false })
    }

    /// Queues `event` if there is room, without waiting.
    pub fn offer(&self, event: EncodedCopyEvent) -> Offer {
        match self.tx.try_send(event) {
            Ok(()) => Offer::Queued,
            Err(mpsc::error::TrySendError::Full(_)) => Offer::Full,
            Err(mpsc::error::TrySendError::Closed(_)) => Offer::Gone,
        }
    }

    /// Queues `event`, waiting for room: for the watcher's own start-up (its snapshot and catch-up), where waiting
    /// holds up nobody else. False once the client has gone.
    pub async fn send(&self, event: EncodedCopyEvent) -> bool {
        self.tx.send(event).await.is_ok()
    }

    /// How many events the queue holds.
    pub fn capacity(&self) -> usize {
        self.tx.max_capacity()
    }

    pub fn is_gone(&self) -> bool {
        self.tx.is_closed()
    }

    /// Resolves when the client has gone.
    pub async fn gone(&self) {
        self.tx.closed().await
    }

    /// Ends the stream with `err` after what is queued; the stream ends when the outlet is dropped.
    pub fn end(&self, err: WatchError) {
        *self.end.lock().expect("never held across a panic") = Some(err);
    }
}

/// What a watch call answers: the encoded events, then, if the watch ended with an error, that error.
pub struct WatchStream {
    rx: mpsc::Receiver<EncodedCopyEvent>,
    end: End,
    finished: bool,
}

impl Stream for WatchStream {
    type Item = Result<EncodedCopyEvent, WatchError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.finished {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(event)) => Poll::Ready(Some(Ok(event))),
            Poll::Ready(None) => {
                self.finished = true;
                let end = self.end.lock().expect("never held across a panic").take();
                Poll::Ready(end.map(Err))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;
    use crate::proto::CopyEvent;

    fn event(seq: u64) -> EncodedCopyEvent {
        EncodedCopyEvent::new(&CopyEvent { sequence: seq, ..CopyEvent::default() })
    }

    #[tokio::test]
    async fn a_full_outlet_refuses_and_its_stream_gives_what_was_queued_then_the_reason() {
        let (outlet, mut stream) = Outlet::pair(2);
        assert_eq!(outlet.offer(event(1)), Offer::Queued);
        assert_eq!(outlet.offer(event(2)), Offer::Queued);
        assert_eq!(outlet.offer(event(3)), Offer::Full);
        outlet.end(WatchError::SlowConsumer { last_sent: 2, buffer: 2 });
        drop(outlet);
        assert_eq!(stream.next().await.unwrap().unwrap(), event(1));
        assert_eq!(stream.next().await.unwrap().unwrap(), event(2));
        assert!(matches!(stream.next().await, Some(Err(WatchError::SlowConsumer { last_sent: 2, .. }))));
        assert!(stream.next().await.is_none());
    }

    #[tokio::test]
    async fn an_outlet_dropped_without_a_reason_ends_its_stream_cleanly_and_sees_its_client_go() {
        let (outlet, mut stream) = Outlet::pair(2);
        assert_eq!(outlet.offer(event(1)), Offer::Queued);
        drop(outlet);
        assert!(stream.next().await.unwrap().is_ok());
        assert!(stream.next().await.is_none());

        let (outlet, stream) = Outlet::pair(2);
        assert!(!outlet.is_gone());
        drop(stream);
        assert!(outlet.is_gone());
        assert_eq!(outlet.offer(event(1)), Offer::Gone);
    }
}
