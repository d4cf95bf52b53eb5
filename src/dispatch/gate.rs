//! An account's pace, as Rekognition receives the calls: one [`Lane`] per operation the dispatcher calls.
//!
//! Only the account's leader calls Rekognition for it (see [`super::leadership`]), so a local pace is a global one.
//! Every attempt goes through here, retries included: the SDK's own retries are off.
//!
//! **Why answers, not send times.** Rekognition counts a call when it *arrives*. Pacing by send time (a GCRA
//! limiter, as this gate did first) keeps calls a period apart as they leave, but a call held up on its way (a
//! busy machine's scheduler, the network) then arrives close to the next one: the fleet run saw three
//! copies within 0.998 s against a quota of 2/s. A call arrives between the moment it is sent and the moment its
//! answer comes back, so a lane sends a call only one period after the *answer* to the previous one: the next
//! call then arrives at least a period after the previous one did, whatever the delays. With a burst of `b`, the
//! lane has `b` slots, each reused `b` periods after its call's answer; any stretch of `t` seconds then receives
//! at most `b + t × rate` calls, which is exactly what a token bucket of `b` refilled at `rate` admits. The cost is
//! one round trip per call: at 2 calls a second and 100 ms per call, 1.8 calls a second at most instead of 2.
//!
//! A throttle answer (ProvisionedThroughputExceeded and the like) backs the lane off at once: its slot waits two
//! periods, the others at least one, before the next call.
//!
//! **Leadership.** A call leaves only while the replica's leader [`Term`] runs, checked right before it leaves: a
//! leader that has not heard from its leadership session for the term's length calls no more, and a new leader's
//! slots start only once a term's length has passed (see [`super::term`]).
//!
//! **Admission.** A round claims a job only with a [`Ticket`] in hand (a slot of the lane, which the step then calls
//! with), so the leader never claims more calls than the lane can send soon: claimed jobs do not pile up behind the
//! pace with their leases running out.

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use opentelemetry::KeyValue;

use super::term::Term;
use crate::domain::AccountId;
use crate::rekognition::{AccountLimits, AwsCallError};

/// One lane per operation: CopyProjectVersion, DescribeProjectVersions and DeleteProjectVersion have quotas of
/// their own.
pub struct Gate {
    copy: Arc<Lane>,
    describe: Arc<Lane>,
    delete: Arc<Lane>,
}

impl Gate {
    /// A gate that starts *spent*, and not before `not_before`: a replica that has just taken an account over
    /// cannot know how recently the previous leader called, so each slot waits its reuse time (and the new leader
    /// its grace) before its first call. Calls leave only while `term` runs.
    pub fn new(account: &AccountId, limits: &AccountLimits, term: Arc<Term>, not_before: Instant) -> Gate {
        let lane = |operation: &'static str, rate: f64| {
            let attributes = [KeyValue::new("aws.operation", operation), KeyValue::new("account", account.to_string())];
            Arc::new(Lane::new(attributes, rate, limits.burst, limits.pacing_margin, term.clone(), not_before))
        };
        Gate {
            copy: lane("CopyProjectVersion", limits.copy_per_second),
            describe: lane("DescribeProjectVersions", limits.describe_per_second),
            delete: lane("DeleteProjectVersion", limits.delete_per_second),
        }
    }

    /// A slot for one more CopyProjectVersion, or how long to wait before asking again.
    pub fn admit_copy(&self) -> Result<Ticket, Duration> {
        self.copy.try_take()
    }

    /// A slot for one more DescribeProjectVersions, or how long to wait before asking again.
    pub fn admit_describe(&self) -> Result<Ticket, Duration> {
        self.describe.try_take()
    }

    /// A slot for one more DeleteProjectVersion (an expired copy's), or how long to wait before asking again.
    pub fn admit_delete(&self) -> Result<Ticket, Duration> {
        self.delete.try_take()
    }

    /// Waits for a slot and makes one DescribeProjectVersions with it, for a step that needs one it was not admitted
    /// with (the look before a re-submission).
    pub async fn describe<T>(&self, call: impl Future<Output = Result<T, AwsCallError>>) -> Result<T, AwsCallError> {
        self.describe.take().await.call(call).await
    }
}

/// The calls of one operation: `burst` slots, each free again `burst` periods after its call's answer.
pub struct Lane {
    /// When each idle slot may next send; a slot out on a [`Ticket`] is not here.
    idle: Mutex<Vec<Instant>>,
    /// A slot came back.
    returned: Notify,
    /// One call per `period`: `(1 + margin) / rate`.
    period: Duration,
    /// How long after its answer a slot sends again: `burst` periods.
    reuse: Duration,
    /// The leader's term: no call leaves once it has run out.
    term: Arc<Term>,
    /// The operation and the account, as the metrics name them.
    attributes: [KeyValue; 2],
}

impl Lane {
    fn new(
        attributes: [KeyValue; 2],
        per_second: f64,
        burst: u32,
        margin: f64,
        term: Arc<Term>,
        not_before: Instant,
    ) -> Lane {
        // Rates are checked to be finite, above zero and at most `AccountLimits::MAX_RATE` when the settings load.
        let period = Duration::from_secs_f64((1.0 + margin) / per_second);
        let burst = burst.max(1);
        let reuse = period * burst;
        let first = (Instant::now() + reuse).max(not_before);
        Lane { idle: Mutex::new(vec![first; burst as usize]), returned: Notify::new(), period, reuse, term, attributes }
    }

    /// The idle slot that may send soonest, or how long to wait before asking again when all are out.
    fn try_take(self: &Arc<Self>) -> Result<Ticket, Duration> {
        let mut idle = self.idle.lock().expect("never held across a panic");
        let soonest = (0..idle.len()).min_by_key(|&i| idle[i]).ok_or(self.period)?;
        let ready_at = idle.swap_remove(soonest);
        Ok(Ticket { lane: self.clone(), ready_at, in_flight: false })
    }

    /// Waits until a slot is idle, and takes it.
    async fn take(self: &Arc<Self>) -> Ticket {
        loop {
            let mut returned = pin!(self.returned.notified());
            returned.as_mut().enable();
            if let Ok(ticket) = self.try_take() {
                return ticket;
            }
            returned.await;
        }
    }

    fn give_back(&self, ready_at: Instant) {
        self.idle.lock().expect("never held across a panic").push(ready_at);
        self.returned.notify_one();
    }

    /// After a throttle answered at `now`: every idle slot waits at least one reuse time from now.
    fn back_off(&self, now: Instant) {
        for ready_at in self.idle.lock().expect("never held across a panic").iter_mut() {
            *ready_at = (*ready_at).max(now + self.reuse);
        }
    }
}

/// One slot of a lane, taken for one call. Dropped unused, the slot goes back as it was; dropped during its call
/// (the step was cancelled), it goes back as if the call had just been answered.
pub struct Ticket {
    lane: Arc<Lane>,
    ready_at: Instant,
    in_flight: bool,
}

impl Ticket {
    /// How long until this slot may send.
    pub fn ready_in(&self) -> Duration {
        self.ready_at.saturating_duration_since(Instant::now())
    }

    /// Waits until the slot may send, makes the call (if the leader's term still runs), and gives the slot back
    /// with the time of the answer.
    pub async fn call<T>(mut self, call: impl Future<Output = Result<T, AwsCallError>>) -> Result<T, AwsCallError> {
        let instruments = crate::telemetry::metrics::instruments();
        instruments.limiter_wait.record(self.ready_in().as_secs_f64(), &self.lane.attributes);
        tokio::time::sleep_until(self.ready_at).await;
        if !self.lane.term.is_valid() {
            return Err(AwsCallError::not_leader());
        }
        self.in_flight = true;
        let result = call.await;
        let answered = Instant::now();
        self.in_flight = false;
        self.ready_at = answered + self.lane.reuse;
        if result.as_ref().is_err_and(AwsCallError::is_throttle) {
            self.ready_at += self.lane.reuse;
            self.lane.back_off(answered);
        }
        let mut attributes = self.lane.attributes.to_vec();
        match &result {
            Ok(_) => attributes.push(KeyValue::new("outcome", "ok")),
            Err(err) => {
                attributes.push(KeyValue::new("outcome", if err.is_throttle() { "throttled" } else { "error" }));
                attributes.push(KeyValue::new("error.type", err.code.clone()));
            }
        }
        instruments.rekognition_calls.add(1, &attributes);
        result
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let ready_at = if self.in_flight { Instant::now() + self.lane.reuse } else { self.ready_at };
        self.lane.give_back(ready_at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(copy_per_second: f64, burst: u32) -> AccountLimits {
        AccountLimits { copy_per_second, burst, pacing_margin: 0.0, ..AccountLimits::default() }
    }

    /// A term confirmed now for an hour.
    fn term() -> Arc<Term> {
        let term = Arc::new(Term::new(Duration::from_secs(3600)));
        term.confirmed(Instant::now());
        term
    }

    fn account() -> AccountId {
        "222222222222".parse().unwrap()
    }

    fn gate(limits: &AccountLimits) -> Gate {
        Gate::new(&account(), limits, term(), Instant::now())
    }

    #[tokio::test(start_paused = true)]
    async fn no_call_leaves_once_the_term_has_run_out_and_a_new_leader_waits_its_grace() {
        let term = Arc::new(Term::new(Duration::from_secs(5)));
        term.confirmed(Instant::now());
        let gate = Gate::new(&account(), &limits(1.0, 1), term.clone(), Instant::now() + Duration::from_secs(5));
        let ticket = gate.admit_copy().unwrap();
        assert_eq!(ticket.ready_in(), Duration::from_secs(5), "the grace, not one period");
        let refused = ticket.call(answered_in(Duration::ZERO)).await.unwrap_err();
        assert_eq!(refused, AwsCallError::not_leader(), "5 s after the last check, the term is over");
        term.confirmed(Instant::now());
        tokio::time::sleep(Duration::from_secs(1)).await;
        gate.admit_copy().unwrap().call(answered_in(Duration::ZERO)).await.expect("within a confirmed term");
    }

    async fn answered_in(delay: Duration) -> Result<(), AwsCallError> {
        tokio::time::sleep(delay).await;
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_gate_waits_before_its_first_call() {
        let gate = gate(&limits(1.0, 1));
        let ticket = gate.admit_copy().expect("one slot");
        assert_eq!(ticket.ready_in(), Duration::from_secs(1));
        assert!(gate.admit_copy().is_err(), "one slot only");
    }

    #[tokio::test(start_paused = true)]
    async fn a_slot_is_used_again_one_period_after_its_answer_not_after_its_send() {
        let gate = gate(&limits(2.0, 1));
        let start = Instant::now();
        gate.admit_copy().unwrap().call(answered_in(Duration::from_millis(300))).await.unwrap();
        // Sent at 0.5 s, answered at 0.8 s: the next send is at 1.3 s, not 1.0 s.
        assert_eq!(start.elapsed(), Duration::from_millis(800));
        let next = gate.admit_copy().unwrap();
        assert_eq!(next.ready_in(), Duration::from_millis(500));
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_sends_that_many_at_once_and_each_slot_waits_burst_periods() {
        let gate = gate(&limits(4.0, 2));
        let (first, second) = (gate.admit_copy().unwrap(), gate.admit_copy().unwrap());
        assert!(gate.admit_copy().is_err());
        assert_eq!(first.ready_in(), Duration::from_millis(500));
        assert_eq!(second.ready_in(), Duration::from_millis(500));
        let (a, b) = tokio::join!(first.call(answered_in(Duration::ZERO)), second.call(answered_in(Duration::ZERO)));
        a.unwrap();
        b.unwrap();
        assert_eq!(gate.admit_copy().unwrap().ready_in(), Duration::from_millis(500));
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttle_backs_the_lane_off_at_once() {
        let gate = gate(&limits(4.0, 2));
        let first = gate.admit_copy().unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let throttle = AwsCallError::from_service(Some("ProvisionedThroughputExceededException"), None, 400);
        let _ = first.call(async { Err::<(), _>(throttle) }).await;
        // The throttled slot waits two reuse times; the idle one, due now, is pushed to one from now.
        let tickets = [gate.admit_copy().unwrap(), gate.admit_copy().unwrap()];
        let mut waits: Vec<_> = tickets.iter().map(Ticket::ready_in).collect();
        waits.sort();
        assert_eq!(waits, [Duration::from_millis(500), Duration::from_millis(1000)]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unused_ticket_gives_its_slot_back_as_it_was_and_a_cancelled_call_as_if_answered() {
        let gate = gate(&limits(1.0, 1));
        drop(gate.admit_copy().unwrap());
        assert_eq!(gate.admit_copy().unwrap().ready_in(), Duration::from_secs(1));
        let cancelled = tokio::time::timeout(
            Duration::from_millis(1500),
            gate.admit_copy().unwrap().call(answered_in(Duration::from_secs(10))),
        );
        assert!(cancelled.await.is_err());
        assert_eq!(gate.admit_copy().unwrap().ready_in(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_describe_waits_for_a_slot_to_come_back() {
        let gate = Arc::new(gate(&AccountLimits { describe_per_second: 2.0, pacing_margin: 0.0, ..limits(1.0, 1) }));
        let held = gate.admit_describe().unwrap();
        let waiting = tokio::spawn({
            let gate = gate.clone();
            async move { gate.describe(answered_in(Duration::ZERO)).await }
        });
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(!waiting.is_finished(), "the only slot is out");
        drop(held);
        waiting.await.unwrap().unwrap();
    }
}
