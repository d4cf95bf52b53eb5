//! The limits themselves: a GCRA rate per caller (`governor`'s keyed limiters, one for principals and one for
//! unauthenticated peers), a semaphore for the replica's calls at once, and a count of each principal's open
//! watch streams.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use tracing::warn;

use super::AdmissionSettings;

/// Who a call is from, as far as admission can tell before anything costly.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Caller {
    /// An authenticated principal's id.
    Principal(String),
    /// The client address of a call without valid credentials (`None`: the connection did not say).
    Peer(Option<IpAddr>),
}

impl std::fmt::Display for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Caller::Principal(id) => write!(f, "principal {id}"),
            Caller::Peer(Some(addr)) => write!(f, "unauthenticated calls from {addr}"),
            Caller::Peer(None) => write!(f, "unauthenticated calls from an unknown address"),
        }
    }
}

/// Why a call was shed, and when to come back.
#[derive(Debug, Clone, PartialEq)]
pub enum Shed {
    /// The caller is over its rate.
    Rate { caller: Caller, per_second: f64, retry_after: Duration },
    /// The replica is working on as many calls as it may.
    Busy { max: u32 },
    /// The principal holds as many watch streams open as it may.
    Streams { principal: String, max: u32 },
}

/// How long a call shed for a busy replica is told to wait: about one call's time.
const BUSY_RETRY: Duration = Duration::from_millis(100);
/// How long a watch shed for too many streams is told to wait.
const STREAMS_RETRY: Duration = Duration::from_secs(5);
/// Keyed limiters forget callers back at a full burst this often (in calls), so that a flood from many addresses
/// cannot grow them without bound.
const FORGET_EVERY: u64 = 4_096;
/// Each shedding caller is logged at most this often, with its count.
const LOG_EVERY: Duration = Duration::from_secs(60);
/// Callers remembered for logging; beyond, the log's memory starts afresh.
const LOGGED_CALLERS: usize = 10_000;

impl Shed {
    /// `RESOURCE_EXHAUSTED`, naming the limit, with a `RetryInfo` saying when to come back.
    pub fn status(&self) -> Status {
        let (message, retry_after) = match self {
            Shed::Rate { caller, per_second, retry_after } => {
                (format!("too many calls: {caller} may make {per_second} a second on this replica"), *retry_after)
            }
            Shed::Busy { max } => {
                (format!("this replica is answering as many calls as it may ({max}); retry"), BUSY_RETRY)
            }
            Shed::Streams { principal, max } => (
                format!("principal {principal} already holds {max} WatchCopy streams open on this replica"),
                STREAMS_RETRY,
            ),
        };
        Status::with_error_details(Code::ResourceExhausted, message, ErrorDetails::with_retry_info(Some(retry_after)))
    }
}

type Keyed<K> = RateLimiter<K, HashMapStateStore<K>, DefaultClock>;

pub struct Admission {
    principals: Keyed<String>,
    peers: Keyed<Option<IpAddr>>,
    settings: AdmissionSettings,
    in_flight: Arc<Semaphore>,
    clock: DefaultClock,
    checks: AtomicU64,
    shed: AtomicU64,
    logged: Mutex<HashMap<Caller, (Instant, u64)>>,
    streams: Mutex<HashMap<String, u32>>,
}

/// A call's place among the replica's calls at once, given back when dropped.
pub struct Permit(#[allow(dead_code)] OwnedSemaphorePermit);

/// One of a principal's open watch streams, given back when dropped (the stream ended, or its client went).
pub struct StreamPlace {
    admission: Arc<Admission>,
    principal: String,
}

impl Drop for StreamPlace {
    fn drop(&mut self) {
        let mut streams = self.admission.streams.lock().expect("never held across a panic");
        if let Some(open) = streams.get_mut(&self.principal) {
            *open -= 1;
            if *open == 0 {
                streams.remove(&self.principal);
            }
        }
    }
}

fn quota(per_second: f64, burst: u32) -> Quota {
    // Settings are checked: a finite rate above zero, a burst of at least one.
    Quota::with_period(Duration::from_secs_f64(1.0 / per_second))
        .expect("a rate above zero")
        .allow_burst(NonZeroU32::new(burst.max(1)).expect("at least one"))
}

impl Admission {
    pub fn new(settings: &AdmissionSettings) -> Arc<Admission> {
        let clock = DefaultClock::default();
        let principal_quota = quota(settings.per_principal_per_second, settings.per_principal_burst);
        let peer_quota = quota(settings.unauthenticated_per_peer_per_second, settings.unauthenticated_per_peer_burst);
        Arc::new(Admission {
            principals: RateLimiter::new(principal_quota, HashMapStateStore::default(), clock.clone()),
            peers: RateLimiter::new(peer_quota, HashMapStateStore::default(), clock.clone()),
            settings: settings.clone(),
            in_flight: Arc::new(Semaphore::new(settings.max_concurrent_calls as usize)),
            clock,
            checks: AtomicU64::new(0),
            shed: AtomicU64::new(0),
            logged: Mutex::new(HashMap::new()),
            streams: Mutex::new(HashMap::new()),
        })
    }

    /// Takes a call from `caller` on, or says why not.
    pub fn admit(&self, caller: &Caller) -> Result<Permit, Shed> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % FORGET_EVERY == FORGET_EVERY - 1 {
            self.principals.retain_recent();
            self.peers.retain_recent();
        }
        let (checked, per_second) = match caller {
            Caller::Principal(id) => (self.principals.check_key(id), self.settings.per_principal_per_second),
            Caller::Peer(addr) => (self.peers.check_key(addr), self.settings.unauthenticated_per_peer_per_second),
        };
        let admitted = match checked {
            Err(not_until) => {
                let retry_after = not_until.wait_time_from(self.clock.now());
                Err(Shed::Rate { caller: caller.clone(), per_second, retry_after })
            }
            Ok(()) => self
                .in_flight
                .clone()
                .try_acquire_owned()
                .map(Permit)
                .map_err(|_| Shed::Busy { max: self.settings.max_concurrent_calls }),
        };
        if admitted.is_err() {
            self.note_shed(caller);
        }
        admitted
    }

    /// One more watch stream for `principal`, or why not.
    pub fn open_stream(self: &Arc<Self>, principal: &str) -> Result<StreamPlace, Shed> {
        let max = self.settings.max_watch_streams_per_principal;
        let mut streams = self.streams.lock().expect("never held across a panic");
        let open = streams.entry(principal.to_owned()).or_insert(0);
        if *open >= max {
            drop(streams);
            self.note_shed(&Caller::Principal(principal.to_owned()));
            return Err(Shed::Streams { principal: principal.to_owned(), max });
        }
        *open += 1;
        Ok(StreamPlace { admission: self.clone(), principal: principal.to_owned() })
    }

    /// Calls shed since the replica started.
    pub fn shed_so_far(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }

    fn note_shed(&self, caller: &Caller) {
        self.shed.fetch_add(1, Ordering::Relaxed);
        let mut logged = self.logged.lock().expect("never held across a panic");
        if logged.len() >= LOGGED_CALLERS && !logged.contains_key(caller) {
            logged.clear();
        }
        let now = Instant::now();
        let (since, count) = logged.entry(caller.clone()).or_insert((now - LOG_EVERY, 0));
        *count += 1;
        if now.duration_since(*since) >= LOG_EVERY {
            warn!(%caller, shed = *count, "shedding calls over this replica's admission limits");
            (*since, *count) = (now, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use tonic_types::StatusExt;

    use super::*;

    fn settings() -> AdmissionSettings {
        AdmissionSettings {
            max_concurrent_calls: 2,
            per_principal_per_second: 1.0,
            per_principal_burst: 3,
            unauthenticated_per_peer_per_second: 1.0,
            unauthenticated_per_peer_burst: 1,
            max_watch_streams_per_principal: 1,
        }
    }

    #[test]
    fn each_principal_has_its_own_burst_and_then_is_told_when_to_come_back() {
        let admission = Admission::new(&AdmissionSettings { max_concurrent_calls: 100, ..settings() });
        let alice = Caller::Principal("alice".into());
        let admitted: Vec<_> = (0..3).map(|_| admission.admit(&alice).expect("within the burst")).collect();
        let shed = admission.admit(&alice).err().expect("beyond the burst");
        let status = shed.status();
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(status.message().contains("principal alice may make 1 a second"), "{}", status.message());
        let retry = status.get_details_retry_info().expect("RetryInfo").retry_delay.expect("a delay");
        assert!(retry > Duration::from_millis(500) && retry <= Duration::from_secs(1), "{retry:?}");
        assert!(admission.admit(&Caller::Principal("bob".into())).is_ok(), "bob is not held up by alice");
        assert_eq!(admission.shed_so_far(), 1);
        drop(admitted);
    }

    #[test]
    fn unauthenticated_calls_are_limited_per_address() {
        let admission = Admission::new(&settings());
        let (one, other) = (Caller::Peer(Some([10, 0, 0, 1].into())), Caller::Peer(Some([10, 0, 0, 2].into())));
        let _first = admission.admit(&one).unwrap();
        let shed = admission.admit(&one).err().unwrap();
        assert!(shed.status().message().contains("unauthenticated calls from 10.0.0.1"), "{shed:?}");
        assert!(admission.admit(&other).is_ok());
    }

    #[test]
    fn beyond_the_calls_at_once_a_call_is_shed_until_one_ends() {
        let admission = Admission::new(&AdmissionSettings { per_principal_burst: 100, ..settings() });
        let alice = Caller::Principal("alice".into());
        let (first, _second) = (admission.admit(&alice).unwrap(), admission.admit(&alice).unwrap());
        assert_eq!(admission.admit(&alice).err(), Some(Shed::Busy { max: 2 }));
        drop(first);
        assert!(admission.admit(&alice).is_ok());
    }

    #[test]
    fn a_principal_s_watch_streams_are_capped_and_given_back_when_they_end() {
        let admission = Admission::new(&settings());
        let open = admission.open_stream("alice").unwrap();
        assert!(matches!(admission.open_stream("alice"), Err(Shed::Streams { max: 1, .. })));
        assert!(admission.open_stream("bob").is_ok());
        drop(open);
        assert!(admission.open_stream("alice").is_ok());
        assert!(admission.streams.lock().unwrap().is_empty(), "nothing kept for principals with no stream");
    }
}
