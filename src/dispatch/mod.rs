//! Dispatch: turns queued copy jobs into Rekognition calls, at each account's pace, across all replicas.
//!
//! Every replica runs a [`Dispatcher`]. For each configured account it tries to become that account's leader;
//! the leader runs an [`account::AccountDispatcher`], which alone calls Rekognition for the
//! account, paced by the account's [`gate::Gate`], fair between principals ([`fairness`]), following running
//! copies in batches. Each call is one step of one job ([`step`]), taken under a short lease on the job, so that a
//! job is never worked twice, and a job whose replica died returns when its lease lapses. Succeeded copies whose
//! `delete_after` has passed are deleted the same way, one call each ([`expiry`]).
//!
//! Leadership is the holder of the account's PostgreSQL advisory lock ([`crate::store::leadership`]), on one
//! session per replica. Rekognition's quotas are per account, so the simplest way to keep N replicas inside them
//! is to let exactly one replica call Rekognition for a given account at a time, and pace it with a local limiter.
//! A replica that dies (even by SIGKILL) loses its session and with it every lock, at once; another replica takes
//! the account over at its next try. The alternative, a token-bucket row updated on every call, would cost a
//! database round trip per Rekognition call and serialise all replicas on that row for no gain: only one of them
//! can usefully call at a time anyway.

pub mod account;
pub mod backoff;
pub mod expiry;
pub mod fairness;
pub mod gate;
pub mod schedule;
pub mod settings;
pub mod step;
pub mod supervise;
pub mod term;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::domain::AccountId;
use crate::rekognition::{AccountLimits, Clients};
use crate::shutdown::{self, Shutdown, ShutdownTrigger};
use crate::store::{Channel, Leadership, Store, StoreError};

pub use settings::DispatchSettings;
pub use step::Outcome;

/// What a replica's dispatchers share.
#[derive(Clone)]
pub struct Dispatcher {
    pub(crate) store: Store,
    pub(crate) clients: Clients,
    pub(crate) settings: DispatchSettings,
    pub(crate) accounts: Arc<BTreeMap<AccountId, AccountLimits>>,
    /// This replica's name, the first part of every lease token it holds.
    pub(crate) owner: String,
    /// The panics of this replica's account dispatchers.
    panics: Arc<supervise::Panics>,
    /// How long this replica may still call Rekognition without hearing from its leadership session.
    pub(crate) term: Arc<term::Term>,
}

/// An account this replica leads, and how to stop leading it.
struct Led {
    stop: ShutdownTrigger,
    task: JoinHandle<()>,
}

impl Dispatcher {
    pub fn new(
        store: Store,
        clients: Clients,
        settings: DispatchSettings,
        accounts: BTreeMap<AccountId, AccountLimits>,
    ) -> Dispatcher {
        let owner = format!("{}-{}", hostname(), uuid::Uuid::new_v4().simple());
        let term = Arc::new(term::Term::new(settings.leadership_timeout()));
        Dispatcher { store, clients, settings, accounts: Arc::new(accounts), owner, panics: Arc::default(), term }
    }

    /// How many times `account`'s dispatcher has panicked on this replica (each was logged and restarted).
    pub fn panics(&self, account: &AccountId) -> u32 {
        self.panics.count(account)
    }

    /// Takes the lead of every account it can, dispatches for those, and keeps trying for the others, until
    /// `shutdown` fires. Losing the leadership session stops every account dispatcher of this replica at once.
    pub async fn run(self, mut shutdown: Shutdown) {
        let wakes: Arc<HashMap<AccountId, Arc<Notify>>> =
            Arc::new(self.accounts.keys().map(|a| (a.clone(), Arc::new(Notify::new()))).collect());
        let listener = tokio::spawn(wake_on_new_jobs(self.store.clone(), wakes.clone(), shutdown.clone()));
        let mut session = None;
        let mut led: HashMap<AccountId, Led> = HashMap::new();
        info!(owner = %self.owner, accounts = self.accounts.len(), "dispatcher started");
        loop {
            self.reap(&mut led).await;
            if let Err(err) = self.lead(&mut session, &mut led, &wakes).await {
                // The term ends first: from now on no call leaves, whatever the account dispatchers are doing.
                self.term.ended();
                warn!(%err, "leadership session lost; stopping this replica's account dispatchers");
                session = None;
                stop_all(&mut led).await;
            }
            tokio::select! {
                _ = tokio::time::sleep(self.settings.poll_interval()) => {}
                _ = shutdown.wait() => break,
            }
        }
        listener.abort();
        stop_all(&mut led).await;
        info!(owner = %self.owner, "dispatcher stopped");
    }

    /// One round of leadership: check the session (which extends the term), then try for every account not led
    /// yet. Each exchange with the session is bounded by the term's length (the session is opened with it): one
    /// that does not come back in that time ends the leadership, as a partition would end it.
    async fn lead(
        &self,
        session: &mut Option<Leadership>,
        led: &mut HashMap<AccountId, Led>,
        wakes: &HashMap<AccountId, Arc<Notify>>,
    ) -> Result<(), StoreError> {
        let timeout = self.term.timeout();
        let sent = tokio::time::Instant::now();
        let leadership = match session {
            Some(leadership) => {
                leadership.check().await?;
                leadership
            }
            None => session.insert(Leadership::open(&self.store, timeout).await?),
        };
        self.term.confirmed(sent);
        for (account, limits) in self.accounts.iter() {
            if led.contains_key(account) || !self.panics.may_start(account) {
                continue;
            }
            if !leadership.try_lead(account).await? {
                continue;
            }
            info!(%account, owner = %self.owner, "leading account");
            let (stop, stopped) = shutdown::channel();
            let (dispatcher, account_id, limits, wake) =
                (self.clone(), account.clone(), limits.clone(), wakes[account].clone());
            // Built inside its task, so that even a panic while building it stops this account alone.
            let task = tokio::spawn(async move {
                account::AccountDispatcher::new(dispatcher, account_id, limits, wake).run(stopped).await
            });
            led.insert(account.clone(), Led { stop, task });
        }
        Ok(())
    }

    /// Forgets the account dispatchers that ended, so that the next round starts them again (after a pause, for
    /// one that panicked), and logs each panic with its message.
    async fn reap(&self, led: &mut HashMap<AccountId, Led>) {
        let ended: Vec<AccountId> =
            led.iter().filter(|(_, l)| l.task.is_finished()).map(|(account, _)| account.clone()).collect();
        for account in ended {
            let Some(l) = led.remove(&account) else { continue };
            match l.task.await {
                Ok(()) => self.panics.ended_cleanly(&account),
                Err(err) => {
                    let pause = self.panics.record(&account);
                    let panic = supervise::panic_message(err);
                    error!(%account, %panic, ?pause, "account dispatcher panicked; starting it again after a pause");
                }
            }
        }
    }
}

async fn stop_all(led: &mut HashMap<AccountId, Led>) {
    for (_, l) in led.iter() {
        l.stop.fire();
    }
    for (account, l) in led.drain() {
        if tokio::time::timeout(Duration::from_secs(15), l.task).await.is_err() {
            warn!(%account, "account dispatcher did not stop in time; its leases will lapse");
        }
    }
}

/// Wakes an account's dispatcher when a job is queued for it, so a new copy need not wait for the next poll.
async fn wake_on_new_jobs(store: Store, wakes: Arc<HashMap<AccountId, Arc<Notify>>>, mut shutdown: Shutdown) {
    let mut listener = match store.listen(Channel::JobsQueued).await {
        Ok(listener) => listener,
        Err(err) => return warn!(%err, "cannot listen for new jobs; polling only"),
    };
    loop {
        tokio::select! {
            received = listener.recv() => match received {
                Ok(account) => {
                    if let Some(wake) = wakes.get(account.as_str()) {
                        wake.notify_one();
                    }
                }
                Err(err) => {
                    warn!(%err, "new-job notifications lost; polling until they return");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            },
            _ = shutdown.wait() => return,
        }
    }
}

fn hostname() -> String {
    std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "modelcopy".into())
}
