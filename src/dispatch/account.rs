//! The dispatcher of one account, run by the account's leader: follows running copies in batches and submits
//! queued ones, fairly between principals, never faster than the account's gate allows nor beyond its copies in
//! progress.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_rekognition::Client;
use opentelemetry::trace::TraceContextExt;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tracing::{error, info, warn, Instrument};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::fairness::RoundRobin;
use super::gate::Gate;
use super::step::Look;
use super::{step, Dispatcher};
use crate::domain::{AccountId, CopyId, CopyState, ProjectArn};
use crate::rekognition::status::NEWEST_PAGE;
use crate::rekognition::AccountLimits;
use crate::shutdown::Shutdown;
use crate::store::{jobs, CopyJob, StoreError};

/// DescribeProjectVersions takes at most this many version names per call.
const VERSIONS_PER_DESCRIBE: usize = 10;
/// Running copies looked at per round.
const FOLLOW_PER_ROUND: i64 = 1_000;
/// Expired copies taken per round (each is one call, paced by the account's delete lane).
const EXPIRE_PER_ROUND: i64 = 100;

pub struct AccountDispatcher {
    dispatcher: Dispatcher,
    account: AccountId,
    limits: AccountLimits,
    gate: Arc<Gate>,
    wake: Arc<Notify>,
    fairness: RoundRobin,
    steps: JoinSet<()>,
    /// Running copies that a listing of their project's newest versions did not show (the project has more than a
    /// page of versions, and theirs are older): looked at by name. Forgotten once they end, or when the set grows
    /// past [`BEYOND_REMEMBERED`] (each is then listed once more before it is named again).
    beyond: Arc<Mutex<HashSet<CopyId>>>,
}

/// The most copies remembered as beyond their project's newest page.
const BEYOND_REMEMBERED: usize = 100_000;

impl AccountDispatcher {
    pub fn new(dispatcher: Dispatcher, account: AccountId, limits: AccountLimits, wake: Arc<Notify>) -> Self {
        // A new leader's first call waits a term's length: a previous leader may still be finishing its term.
        let not_before = tokio::time::Instant::now() + dispatcher.term.timeout();
        let gate = Arc::new(Gate::new(&account, &limits, dispatcher.term.clone(), not_before));
        AccountDispatcher {
            dispatcher,
            account,
            limits,
            gate,
            wake,
            fairness: RoundRobin::default(),
            steps: JoinSet::new(),
            beyond: Arc::default(),
        }
    }

    pub async fn run(mut self, mut stop: Shutdown) {
        let Some(client) = self.dispatcher.clients.for_account(&self.account).cloned() else {
            return warn!(account = %self.account, "no Rekognition client for this account");
        };
        loop {
            while let Some(ended) = self.steps.try_join_next() {
                if let Err(err) = ended {
                    let panic = super::supervise::panic_message(err);
                    error!(account = %self.account, %panic, "a dispatch step panicked; its lease will lapse");
                }
            }
            let wait = match self.round(&client).await {
                Ok(wait) => wait,
                Err(err) => {
                    warn!(%err, account = %self.account, "dispatch round failed");
                    self.dispatcher.settings.poll_interval()
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified() => {}
                _ = stop.wait() => break,
            }
        }
        let drained =
            tokio::time::timeout(Duration::from_secs(10), async { while self.steps.join_next().await.is_some() {} });
        if drained.await.is_err() {
            warn!(account = %self.account, "steps still under way at shutdown; their leases will lapse");
        }
        info!(account = %self.account, "no longer dispatching for account");
    }

    /// Starts what the gate allows now; returns how long until there may be more to do.
    async fn round(&mut self, client: &Client) -> Result<Duration, StoreError> {
        let mut wait = self.dispatcher.settings.poll_interval();
        if let Err(until) = self.follow(client).await? {
            wait = wait.min(until);
        }
        if let Err(until) = self.submit(client).await? {
            wait = wait.min(until);
        }
        if let Err(until) = self.expire(client).await? {
            wait = wait.min(until);
        }
        Ok(wait.max(Duration::from_millis(1)))
    }

    /// Looks at the running copies that are due, per destination project, in as few calls as it can: when the
    /// project has more running copies than one call can name (ten), one listing of its newest versions (a
    /// hundred) sees them all, due or not; else, and for copies older than that page, up to ten by name per call,
    /// a call's free places carrying copies of the same project that are not due yet. Either way a copy not due
    /// yet is looked at early at no cost. `Err(wait)` when the gate stopped it before it was done.
    async fn follow(&mut self, client: &Client) -> Result<Result<(), Duration>, StoreError> {
        let store = self.dispatcher.store.clone();
        let store = &store;
        let due = jobs::due_in_state(store, &self.account, CopyState::Copying, FOLLOW_PER_ROUND).await?;
        let mut by_project: BTreeMap<ProjectArn, Vec<CopyJob>> = BTreeMap::new();
        for job in due {
            by_project.entry(job.request.destination_project().clone()).or_default().push(job);
        }
        for (project, due) in by_project {
            let (mut named, listable) = self.split_beyond(due);
            // The project's other running copies, not due yet: a look carries them early at no cost.
            let others = jobs::running_not_due(store, &project, NEWEST_PAGE as i64).await?;
            let (mut spare, others) = self.split_beyond(others);
            if !listable.is_empty() && listable.len() + others.len() > VERSIONS_PER_DESCRIBE {
                let listed: Vec<_> = listable.into_iter().chain(others).take(NEWEST_PAGE).collect();
                if let Err(until) = self.look(client, &project, Look::Newest, &listed).await? {
                    return Ok(Err(until));
                }
            } else {
                named.extend(listable);
                spare.extend(others);
            }
            let free = (VERSIONS_PER_DESCRIBE - named.len() % VERSIONS_PER_DESCRIBE) % VERSIONS_PER_DESCRIBE;
            if !named.is_empty() {
                named.extend(spare.into_iter().take(free));
            }
            for batch in named.chunks(VERSIONS_PER_DESCRIBE) {
                if let Err(until) = self.look(client, &project, Look::Named, batch).await? {
                    return Ok(Err(until));
                }
            }
        }
        Ok(Ok(()))
    }

    /// Splits `jobs` into the copies to look at by name (beyond their project's newest page) and the others.
    fn split_beyond(&self, jobs: Vec<CopyJob>) -> (Vec<CopyJob>, Vec<CopyJob>) {
        let beyond = self.beyond.lock().expect("never held across a panic");
        jobs.into_iter().partition(|job| beyond.contains(&job.id))
    }

    /// Claims `batch` and starts one follow step for it, if the gate allows a call now.
    async fn look(
        &mut self,
        client: &Client,
        project: &ProjectArn,
        look: Look,
        batch: &[CopyJob],
    ) -> Result<Result<(), Duration>, StoreError> {
        let ticket = match self.gate.admit_describe() {
            Ok(ticket) => ticket,
            Err(until) => return Ok(Err(until)),
        };
        let store = &self.dispatcher.store;
        let ids: Vec<_> = batch.iter().map(|job| job.id).collect();
        let claimed = jobs::claim(store, &ids, &self.dispatcher.owner, self.dispatcher.settings.lease()).await?;
        if claimed.is_empty() {
            return Ok(Ok(()));
        }
        let (dispatcher, client) = (self.dispatcher.clone(), client.clone());
        let (project, beyond) = (project.clone(), self.beyond.clone());
        let span = tracing::info_span!("follow", account = %self.account, copies = claimed.len(), ?look);
        link_to_requests(&span, claimed.iter().map(|claimed| &claimed.job));
        self.steps.spawn(
            async move {
                match step::follow(&dispatcher, &client, ticket, &project, look, claimed).await {
                    Ok(followed) => remember_beyond(&beyond, followed),
                    Err(err) => warn!(%err, "follow step failed; its leases will lapse"),
                }
            }
            .instrument(span),
        );
        Ok(Ok(()))
    }

    /// Submits retries first, then queued copies in round-robin order between principals, while the account has
    /// room for copies in progress and the gate allows.
    async fn submit(&mut self, client: &Client) -> Result<Result<(), Duration>, StoreError> {
        let store = &self.dispatcher.store;
        let in_progress = jobs::count_in_progress(store, &self.account).await?;
        let mut room = i64::from(self.limits.max_in_progress) - in_progress;
        if room <= 0 {
            return Ok(Ok(()));
        }
        let mut candidates = jobs::due_in_state(store, &self.account, CopyState::Submitting, room).await?;
        // Each pass takes one copy per principal; passes go on while there is room, queued work and pace.
        while room > 0 {
            if candidates.is_empty() {
                candidates = self.fairness.order(jobs::queued_heads(store, &self.account).await?);
                if candidates.is_empty() {
                    break;
                }
            }
            for job in std::mem::take(&mut candidates) {
                if room == 0 {
                    break;
                }
                let ticket = match self.gate.admit_copy() {
                    Ok(ticket) => ticket,
                    Err(until) => return Ok(Err(until)),
                };
                let lease = self.dispatcher.settings.lease();
                let Some(claimed) = jobs::claim(store, &[job.id], &self.dispatcher.owner, lease).await?.pop() else {
                    continue;
                };
                let job = &claimed.job;
                if job.state == CopyState::Queued {
                    self.fairness.served(&job.principal);
                }
                room -= 1;
                let (dispatcher, client, gate) = (self.dispatcher.clone(), client.clone(), self.gate.clone());
                let span = tracing::info_span!("submit", copy_id = %job.id, principal = %job.principal);
                continue_request_trace(&span, job);
                self.steps.spawn(
                    async move {
                        if let Err(err) = step::submit(&dispatcher, &client, &gate, ticket, claimed).await {
                            warn!(%err, "submit step failed; its lease will lapse");
                        }
                    }
                    .instrument(span),
                );
            }
        }
        Ok(Ok(()))
    }

    /// Deletes the versions of succeeded copies whose `delete_after` has passed, one call each, as the account's
    /// delete lane allows (see [`super::expiry`]).
    async fn expire(&mut self, client: &Client) -> Result<Result<(), Duration>, StoreError> {
        let store = &self.dispatcher.store;
        for job in jobs::due_to_expire(store, &self.account, EXPIRE_PER_ROUND).await? {
            let ticket = match self.gate.admit_delete() {
                Ok(ticket) => ticket,
                Err(until) => return Ok(Err(until)),
            };
            let lease = self.dispatcher.settings.lease();
            let Some(claimed) = jobs::claim(store, &[job.id], &self.dispatcher.owner, lease).await?.pop() else {
                continue;
            };
            let (dispatcher, client) = (self.dispatcher.clone(), client.clone());
            let span = tracing::info_span!("expire", copy_id = %job.id);
            self.steps.spawn(
                async move {
                    if let Err(err) = super::expiry::expire(&dispatcher, &client, ticket, claimed).await {
                        warn!(%err, "expiry step failed; its lease will lapse");
                    }
                }
                .instrument(span),
            );
        }
        Ok(Ok(()))
    }
}

/// After a follow step: the copies a listing did not show are named from now on, and the ones that ended are
/// forgotten.
fn remember_beyond(beyond: &Mutex<HashSet<CopyId>>, followed: step::Followed) {
    let mut beyond = beyond.lock().expect("never held across a panic");
    for id in &followed.ended {
        beyond.remove(id);
    }
    if beyond.len() + followed.unseen.len() > BEYOND_REMEMBERED {
        beyond.clear();
    }
    beyond.extend(followed.unseen);
}

/// Makes a submit step part of the trace of the request that created its copy: a child of that call's span.
///
/// A parent rather than a link because a submission serves exactly one request and is the work that request
/// asked for: in a trace backend the CopyProjectVersion calls (and their retries) then appear under the
/// CopyModelVersion call, however much later they run, and they are recorded exactly when the request's trace is
/// (the sampler follows the parent's decision).
fn continue_request_trace(span: &tracing::Span, job: &CopyJob) {
    if let Some(parent) = &job.trace_parent {
        // Fails only for a span already started; this one has not been entered yet.
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(parent.span_context()));
    }
}

/// Links a follow step to the request of each copy it describes.
///
/// Links rather than a parent because one DescribeProjectVersions call follows up to ten copies, created by as many
/// requests, and a span has one parent; and because following goes on for as long as the copy runs, which would
/// stretch one request's trace over hours of polling. Each request's trace is one link away instead. Follow spans
/// start their own traces, so a sampling ratio below 1 samples them on their own.
fn link_to_requests<'a>(span: &tracing::Span, jobs: impl Iterator<Item = &'a CopyJob>) {
    for parent in jobs.filter_map(|job| job.trace_parent.as_ref()) {
        span.add_link(parent.span_context());
    }
}
