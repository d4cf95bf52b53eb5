//! The replica's watchers that are up to date, and the delivery of each change to them.
//!
//! Why one registry instead of a task per watcher: with ten thousand streams, every change woke ten thousand tasks,
//! each of which checked the change against its filter, asked the policies whether its caller may see the copy,
//! and encoded the event: the same work ten thousand times (130 µs of CPU per stream per change, measured). Here a
//! change is encoded at most once, and the policies are asked at most once per *viewer* (the callers of one
//! principal share their decisions); each stream then costs a filter test and a queue push.
//!
//! A watcher enters the registry only once it has caught up (`super::stream`), and leaves it when its client goes
//! (noticed at the next change it should get, or by [`Registry::sweep`]), when its one copy ends, or when it
//! cannot keep up ([`super::outlet`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::outlet::{Offer, Outlet};
use super::{StoredEvent, WatchError, WatchItem};
use crate::domain::{CopyFilter, CopyId};
use crate::proto::encoded::EncodedCopyEvent;
use crate::store::CopyJob;

/// Whether a caller may see a copy. The layer that knows callers provides it; the fan-out asks it once per change
/// per [`Watcher::viewer_key`].
pub trait Viewer: Send + Sync {
    fn sees(&self, job: &CopyJob) -> bool;
}

/// Turns a change into the bytes every stream sends; provided by the layer that knows the wire.
pub type Encode = fn(&WatchItem) -> EncodedCopyEvent;

/// Who watches: watchers with equal keys must see the same copies, for they share one decision per change.
#[derive(Clone)]
pub struct Watcher {
    pub viewer_key: String,
    pub viewer: Arc<dyn Viewer>,
}

/// What one watcher follows.
#[derive(Debug, Clone)]
pub enum Target {
    /// One copy, until it ends.
    Copy(CopyId),
    Filter(CopyFilter),
}

impl Target {
    pub fn matches(&self, job: &CopyJob) -> bool {
        match self {
            Target::Copy(id) => job.id == *id,
            Target::Filter(filter) => filter.matches(
                job.state,
                job.request.source_account(),
                job.request.destination_account(),
                job.created_at,
                job.rollout,
            ),
        }
    }

    /// Whether the watch is over once `job` is in its state.
    pub fn ends_with(&self, job: &CopyJob) -> bool {
        matches!(self, Target::Copy(id) if job.id == *id && job.state.is_terminal())
    }
}

/// A watcher in the registry.
pub struct Member {
    pub target: Target,
    /// The number of the last change handled (sent or not): anything at or below it was dealt with.
    pub floor: i64,
    /// The number of the last change sent, which a client that is cut off resumes after.
    pub last_sent: i64,
    pub outlet: Outlet,
}

impl Member {
    /// Whether the change numbered `seq`, leaving the copy as `job`, is one this watcher follows; its floor moves
    /// past it either way, so a change reaching it twice (from the database and from the hub) is handled once.
    pub fn follows(&mut self, seq: i64, job: &CopyJob) -> bool {
        if seq <= self.floor {
            return false;
        }
        self.floor = seq;
        self.target.matches(job)
    }
}

struct Group {
    viewer: Arc<dyn Viewer>,
    members: Vec<Member>,
}

#[derive(Default)]
pub struct Groups {
    by_viewer: HashMap<String, Group>,
}

#[derive(Default)]
pub struct Registry {
    groups: Mutex<Groups>,
}

impl Registry {
    /// Delivery and joining hold this lock: a watcher that joins has every change delivered before it joined in
    /// its own hands (the hub's broadcast, sent under the same lock), and every later one from the registry.
    pub fn lock(&self) -> MutexGuard<'_, Groups> {
        self.groups.lock().expect("never held across a panic")
    }

    /// Drops the watchers whose clients have gone. Between changes nothing else would notice them.
    pub fn sweep(&self) {
        let mut groups = self.lock();
        for group in groups.by_viewer.values_mut() {
            group.members.retain(|member| !member.outlet.is_gone());
        }
        groups.by_viewer.retain(|_, group| !group.members.is_empty());
    }

    /// Ends every watcher's stream with `err` (the replica lost the database, or is shutting down).
    pub fn end_all(&self, err: impl Fn() -> WatchError) {
        let mut groups = self.lock();
        for (_, group) in groups.by_viewer.drain() {
            for member in group.members {
                member.outlet.end(err());
            }
        }
    }
}

impl Groups {
    pub fn join(&mut self, watcher: Watcher, member: Member) {
        let Watcher { viewer_key, viewer } = watcher;
        self.by_viewer.entry(viewer_key).or_insert_with(|| Group { viewer, members: Vec::new() }).members.push(member);
    }

    pub fn is_empty(&self) -> bool {
        self.by_viewer.is_empty()
    }

    /// Offers `stored` to every watcher that has not handled it, follows its target and may see it. Never waits:
    /// a watcher whose queue is full is cut off.
    pub fn deliver(&mut self, stored: &StoredEvent, encode: Encode) {
        let mut encoded: Option<EncodedCopyEvent> = None;
        let (seq, job) = (stored.event.seq, &stored.job);
        for group in self.by_viewer.values_mut() {
            let mut sees: Option<bool> = None;
            let viewer = &group.viewer;
            group.members.retain_mut(|member| {
                if !member.follows(seq, job) {
                    return true;
                }
                if *sees.get_or_insert_with(|| viewer.sees(job)) {
                    let event = encoded.get_or_insert_with(|| encode(&stored.item())).clone();
                    match member.outlet.offer(event) {
                        Offer::Queued => member.last_sent = seq,
                        Offer::Gone => return false,
                        Offer::Full => {
                            let buffer = member.outlet.capacity();
                            member.outlet.end(WatchError::SlowConsumer { last_sent: member.last_sent, buffer });
                            return false;
                        }
                    }
                }
                !member.target.ends_with(job)
            });
        }
        self.by_viewer.retain(|_, group| !group.members.is_empty());
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_viewer.values().map(|group| group.members.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures::StreamExt;

    use super::*;
    use crate::domain::CopyState;
    use crate::store::jobs::tests_support::job;
    use crate::store::{CopyEvent, Report};

    /// Sees everything, and counts how often it was asked.
    struct Counting(AtomicUsize);

    impl Viewer for Counting {
        fn sees(&self, _: &CopyJob) -> bool {
            self.0.fetch_add(1, Ordering::Relaxed);
            true
        }
    }

    thread_local! {
        /// Per test: each runs on its own thread.
        static ENCODED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    fn encode(item: &WatchItem) -> EncodedCopyEvent {
        ENCODED.set(ENCODED.get() + 1);
        EncodedCopyEvent::new(&crate::proto::CopyEvent { sequence: item.seq as u64, ..Default::default() })
    }

    fn stored(seq: i64, job: &CopyJob) -> StoredEvent {
        let event = CopyEvent {
            seq,
            copy_id: job.id,
            from_state: None,
            to_state: job.state,
            report: Report::default(),
            detail: None,
            occurred_at: job.updated_at,
        };
        StoredEvent { event, job: job.clone() }
    }

    fn member(target: Target, capacity: usize) -> (Member, crate::watch::WatchStream) {
        let (outlet, stream) = Outlet::pair(capacity);
        (Member { target, floor: 0, last_sent: 0, outlet }, stream)
    }

    #[tokio::test]
    async fn a_change_is_encoded_once_and_decided_once_per_viewer_however_many_streams() {
        let (alice, bob) = (Arc::new(Counting(AtomicUsize::new(0))), Arc::new(Counting(AtomicUsize::new(0))));
        let mut groups = Groups::default();
        let mut streams = Vec::new();
        for (key, viewer) in [("alice", &alice), ("bob", &bob)] {
            for _ in 0..100 {
                let (member, stream) = member(Target::Filter(CopyFilter::default()), 8);
                let watcher = Watcher { viewer_key: key.into(), viewer: viewer.clone() };
                groups.join(watcher, member);
                streams.push(stream);
            }
        }
        groups.deliver(&stored(7, &job()), encode);
        assert_eq!(ENCODED.get(), 1, "encoded once");
        assert_eq!((alice.0.load(Ordering::Relaxed), bob.0.load(Ordering::Relaxed)), (1, 1), "one decision a viewer");
        for mut stream in streams {
            assert_eq!(stream.next().await.unwrap().unwrap().decode().unwrap().sequence, 7);
        }
    }

    #[tokio::test]
    async fn a_slow_stream_is_cut_off_with_its_last_sequence_and_the_others_get_every_change() {
        let viewer = Arc::new(Counting(AtomicUsize::new(0)));
        let watcher = Watcher { viewer_key: "alice".into(), viewer };
        let mut groups = Groups::default();
        let (slow, mut slow_stream) = member(Target::Filter(CopyFilter::default()), 2);
        let (fast, mut fast_stream) = member(Target::Filter(CopyFilter::default()), 2);
        groups.join(watcher.clone(), slow);
        groups.join(watcher, fast);
        let job = job();
        for seq in 1..=5 {
            groups.deliver(&stored(seq, &job), encode);
            // The fast one reads as changes come; the slow one does not read at all.
            assert_eq!(fast_stream.next().await.unwrap().unwrap().decode().unwrap().sequence, seq as u64);
        }
        assert_eq!(groups.len(), 1, "the slow stream left the registry");
        let mut got = Vec::new();
        while let Some(item) = slow_stream.next().await {
            got.push(item.map(|event| event.decode().unwrap().sequence));
        }
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!((got[0].as_ref().unwrap(), got[1].as_ref().unwrap()), (&1, &2));
        assert!(matches!(got[2], Err(WatchError::SlowConsumer { last_sent: 2, buffer: 2 })), "{:?}", got[2]);
    }

    #[tokio::test]
    async fn a_copy_watcher_leaves_after_its_copy_ends_and_a_gone_client_is_swept() {
        let viewer = Arc::new(Counting(AtomicUsize::new(0)));
        let watcher = Watcher { viewer_key: "alice".into(), viewer };
        let mut groups = Groups::default();
        let mut copy = job();
        let (one, mut one_stream) = member(Target::Copy(copy.id), 8);
        let (other, other_stream) = member(Target::Copy(CopyId::new()), 8);
        groups.join(watcher.clone(), one);
        groups.join(watcher, other);
        groups.deliver(&stored(1, &copy), encode);
        copy.state = CopyState::Succeeded;
        groups.deliver(&stored(2, &copy), encode);
        assert_eq!(groups.len(), 1);
        let seqs: Vec<u64> = one_stream.by_ref().map(|e| e.unwrap().decode().unwrap().sequence).collect().await;
        assert_eq!(seqs, [1, 2], "both changes, then a clean end");

        let registry = Registry { groups: Mutex::new(groups) };
        drop(other_stream);
        registry.sweep();
        assert!(registry.lock().is_empty());
    }
}
