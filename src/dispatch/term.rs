//! A leader's term: how long this replica may go on calling Rekognition for the accounts it leads without hearing
//! from its leadership session, and how long a new leader waits before its first call.
//!
//! The account's advisory lock proves leadership only while its session lives, and a replica learns that its
//! session died only when it next asks: a failover (or PostgreSQL ending a session it believes dead) frees the lock
//! at once for another replica, while the old leader, its check hanging on a partition or not yet due, would go
//! on calling. Two leaders would then share one account's quota. So:
//!
//! - the term runs until `timeout` after the *sending* of the last check that came back (the session was alive at
//!   some moment after that), and every call to Rekognition is refused once it has run out ([`Term::is_valid`],
//!   checked by the gate right before a call leaves); a check that does not come back within `timeout` ends the
//!   replica's leadership altogether;
//! - a new leader lets `timeout` pass before its first call (its gate starts that far ahead), so that a previous
//!   leader, whose session died before this one's lock was granted, has stopped by then.
//!
//! The checks go every poll interval, which the settings keep at most half the timeout, so a live leader's term
//! never runs out between two checks.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

pub struct Term {
    timeout: Duration,
    valid_until: Mutex<Option<Instant>>,
}

impl Term {
    /// A term not yet begun: nothing may be called until a check comes back.
    pub fn new(timeout: Duration) -> Term {
        Term { timeout, valid_until: Mutex::new(None) }
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A check sent at `sent` came back: the term runs until `timeout` after it.
    pub fn confirmed(&self, sent: Instant) {
        let mut valid_until = self.valid_until.lock().expect("never held across a panic");
        let until = sent + self.timeout;
        *valid_until = Some(valid_until.map_or(until, |earlier| earlier.max(until)));
    }

    /// The session is gone: the term ends now.
    pub fn ended(&self) {
        *self.valid_until.lock().expect("never held across a panic") = None;
    }

    /// Whether a call to Rekognition may leave now.
    pub fn is_valid(&self) -> bool {
        self.valid_until.lock().expect("never held across a panic").is_some_and(|until| Instant::now() < until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_term_runs_from_the_sending_of_the_last_check_that_came_back() {
        let term = Term::new(Duration::from_secs(10));
        assert!(!term.is_valid(), "not before a first check");
        let sent = Instant::now();
        tokio::time::sleep(Duration::from_secs(3)).await; // the check took 3 s to come back
        term.confirmed(sent);
        tokio::time::sleep(Duration::from_millis(6_999)).await;
        assert!(term.is_valid());
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert!(!term.is_valid(), "10 s after the check was sent, not after it came back");
        term.confirmed(Instant::now());
        assert!(term.is_valid());
        term.ended();
        assert!(!term.is_valid());
    }
}
