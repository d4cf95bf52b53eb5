//! A watcher's way out: a bounded queue of encoded events to its stream, and the reason it ended, if it did not
//! end cleanly.
//!
//! Why bounded and never awaited by the fan-out: one replica feeds thousands of streams from one task; waiting for
//! the slowest would hold up every other, and queueing without bound would let one stalled client grow the
//! replica's memory. A watcher whose queue is full is cut off instead ([`super::WatchError::SlowConsumer`]): its
//! stream delivers what was queued, then ends with a status that tells the client where to resume from.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use futures::Stream;

use super::WatchError;
use crate::proto::encoded::EncodedCopyEvent;

/// What the two ends share.
///
/// Why not `tokio::sync::mpsc`: a watch stream mostly sits idle with nothing queued, and there are thousands of
/// them. tokio's bounded channel took about 1.4 KB a stream before its first message (its sides padded to cache
/// lines, a first block of 32 slots) and a fifth of the replica's CPU per delivered change (perf, watch fan-out
/// benchmark at 10,000 streams: semaphore, block list, cache misses over those lines). This is one small struct
/// under one lock, whose queue is allocated only when an event waits in it.
struct Shared {
    queue: VecDeque<EncodedCopyEvent>,
    capacity: usize,
    /// The stream's task, waiting for an event or the end.
    reader: Option<Waker>,
    /// The start-up's task, waiting for room.
    writer: Option<Waker>,
    /// Why the stream ends, set before the outlet is dropped.
    end: Option<WatchError>,
    outlet_dropped: bool,
    stream_dropped: bool,
}

impl Shared {
    /// Queues `event` if the stream is there and has room, and gives back the stream's waker, to wake once the lock
    /// is let go; else gives back the event with why not.
    fn push(&mut self, event: EncodedCopyEvent) -> Result<Option<Waker>, (Offer, EncodedCopyEvent)> {
        if self.stream_dropped {
            return Err((Offer::Gone, event));
        }
        if self.queue.len() >= self.capacity {
            return Err((Offer::Full, event));
        }
        self.queue.push_back(event);
        Ok(self.reader.take())
    }
}

type Link = Arc<Mutex<Shared>>;

fn lock(link: &Link) -> MutexGuard<'_, Shared> {
    link.lock().expect("never held across a panic")
}

fn wake(waker: Option<Waker>) {
    if let Some(waker) = waker {
        waker.wake();
    }
}

/// Keeps `slot` holding a waker that wakes the task of `cx`, cloning it only when it changed.
fn register(slot: &mut Option<Waker>, cx: &Context<'_>) {
    if !slot.as_ref().is_some_and(|waker| waker.will_wake(cx.waker())) {
        *slot = Some(cx.waker().clone());
    }
}

/// The sending side, held by the watcher's start-up task and then by the fan-out.
pub struct Outlet {
    link: Link,
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
        assert!(capacity > 0, "an outlet holds at least one event");
        let link = Arc::new(Mutex::new(Shared {
            queue: VecDeque::new(),
            capacity,
            reader: None,
            writer: None,
            end: None,
            outlet_dropped: false,
            stream_dropped: false,
        }));
        (Outlet { link: link.clone() }, WatchStream { link, finished: false })
    }

    /// Queues `event` if there is room, without waiting.
    pub fn offer(&self, event: EncodedCopyEvent) -> Offer {
        let pushed = lock(&self.link).push(event);
        match pushed {
            // Woken outside the lock, which the stream's task is about to take.
            Ok(reader) => {
                wake(reader);
                Offer::Queued
            }
            Err((why, _)) => why,
        }
    }

    /// Queues `event`, waiting for room: for the watcher's own start-up (its snapshot and catch-up), where waiting
    /// holds up nobody else. False once the client has gone.
    pub async fn send(&self, event: EncodedCopyEvent) -> bool {
        let mut event = Some(event);
        std::future::poll_fn(|cx| {
            let mut shared = lock(&self.link);
            match shared.push(event.take().expect("sent once")) {
                Ok(reader) => {
                    drop(shared);
                    wake(reader);
                    Poll::Ready(true)
                }
                // Registered under the lock that the stream takes to make room: no wake-up is missed.
                Err((Offer::Full, back)) => {
                    event = Some(back);
                    register(&mut shared.writer, cx);
                    Poll::Pending
                }
                Err(_) => Poll::Ready(false),
            }
        })
        .await
    }

    /// How many events the queue holds.
    pub fn capacity(&self) -> usize {
        lock(&self.link).capacity
    }

    pub fn is_gone(&self) -> bool {
        lock(&self.link).stream_dropped
    }

    /// Ends the stream with `err` after what is queued; the stream ends when the outlet is dropped.
    pub fn end(&self, err: WatchError) {
        lock(&self.link).end = Some(err);
    }
}

impl Drop for Outlet {
    fn drop(&mut self) {
        let reader = {
            let mut shared = lock(&self.link);
            shared.outlet_dropped = true;
            shared.reader.take()
        };
        wake(reader);
    }
}

/// What a watch call answers: the encoded events, then, if the watch ended with an error, that error.
pub struct WatchStream {
    link: Link,
    finished: bool,
}

impl Stream for WatchStream {
    type Item = Result<EncodedCopyEvent, WatchError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.finished {
            return Poll::Ready(None);
        }
        let mut shared = lock(&self.link);
        if let Some(event) = shared.queue.pop_front() {
            let writer = shared.writer.take();
            drop(shared);
            wake(writer);
            return Poll::Ready(Some(Ok(event)));
        }
        if shared.outlet_dropped {
            let end = shared.end.take();
            drop(shared);
            self.finished = true;
            return Poll::Ready(end.map(Err));
        }
        register(&mut shared.reader, cx);
        Poll::Pending
    }
}

impl Drop for WatchStream {
    fn drop(&mut self) {
        let (writer, _queued) = {
            let mut shared = lock(&self.link);
            shared.stream_dropped = true;
            (shared.writer.take(), std::mem::take(&mut shared.queue))
        };
        wake(writer);
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

    #[tokio::test]
    async fn a_send_to_a_full_outlet_waits_for_room_and_gives_up_when_the_client_goes() {
        let (outlet, mut stream) = Outlet::pair(1);
        assert_eq!(outlet.offer(event(1)), Offer::Queued);
        let outlet = Arc::new(outlet);
        let sending = tokio::spawn({
            let outlet = outlet.clone();
            async move { outlet.send(event(2)).await }
        });
        tokio::task::yield_now().await;
        assert!(!sending.is_finished(), "no room yet");
        assert_eq!(stream.next().await.unwrap().unwrap(), event(1));
        assert!(sending.await.unwrap(), "the event taken made room");
        assert_eq!(stream.next().await.unwrap().unwrap(), event(2));

        assert_eq!(outlet.offer(event(3)), Offer::Queued);
        let sending = tokio::spawn({
            let outlet = outlet.clone();
            async move { outlet.send(event(4)).await }
        });
        tokio::task::yield_now().await;
        drop(stream);
        assert!(!sending.await.unwrap(), "the client went while it waited");
    }

    #[tokio::test]
    async fn a_waiting_stream_is_woken_by_an_offer_and_by_its_outlet_going() {
        let (outlet, mut stream) = Outlet::pair(4);
        let reading = tokio::spawn(async move {
            let first = stream.next().await;
            let second = stream.next().await;
            (first.map(|item| item.unwrap()), second.is_none())
        });
        tokio::task::yield_now().await;
        assert_eq!(outlet.offer(event(1)), Offer::Queued);
        tokio::task::yield_now().await;
        drop(outlet);
        assert_eq!(reading.await.unwrap(), (Some(event(1)), true));
    }
}
