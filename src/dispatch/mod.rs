//! Dispatch: takes due copy jobs from PostgreSQL and moves each one step along its life.
//!
//! A replica claims jobs under a lease (`FOR UPDATE SKIP LOCKED`), so replicas never work on the same job and a
//! dead replica's jobs return when its lease lapses. One step is one Rekognition call at most: submit a queued job,
//! retry a transient failure, or describe a running copy. Between steps a job rests in the database with the time
//! it is next due, so a job that waits costs nothing but a row.
//!
//! Per-account rate limits slot in at [`step`]: every Rekognition call of a step goes through one place per account.

pub mod backoff;
pub mod step;

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::{Notify, Semaphore};
use tracing::{info, warn, Instrument};

use crate::config::DispatchSettings;
use crate::rekognition::Clients;
use crate::shutdown::Shutdown;
use crate::store::{jobs, Store};

pub use step::Outcome;

/// What a dispatcher needs to work a job.
#[derive(Clone)]
pub struct Dispatcher {
    pub(crate) store: Store,
    pub(crate) clients: Clients,
    pub(crate) settings: DispatchSettings,
    /// This replica's name on the leases it holds.
    pub(crate) owner: String,
}

const QUEUED_CHANNEL: &str = "modelcopy_jobs_queued";

impl Dispatcher {
    pub fn new(store: Store, clients: Clients, settings: DispatchSettings) -> Dispatcher {
        let owner = format!("{}-{}", hostname(), uuid::Uuid::new_v4().simple());
        Dispatcher {
            store,
            clients,
            settings,
            owner,
        }
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Claims and works jobs until `shutdown` fires, then waits (bounded) for the steps under way.
    pub async fn run(self, mut shutdown: Shutdown) {
        let slots = Arc::new(Semaphore::new(self.settings.max_in_flight.max(1)));
        let wake = Arc::new(Notify::new());
        let listener = tokio::spawn(wake_on_new_jobs(
            self.store.clone(),
            wake.clone(),
            shutdown.clone(),
        ));
        info!(owner = %self.owner, "dispatcher started");
        loop {
            let free = slots.available_permits();
            if free > 0 {
                match jobs::claim_due(&self.store, &self.owner, self.settings.lease(), free as i64)
                    .await
                {
                    Ok(claimed) => {
                        for job in claimed {
                            let Ok(permit) = slots.clone().acquire_owned().await else {
                                break;
                            };
                            let dispatcher = self.clone();
                            let span = tracing::info_span!("copy_step", copy_id = %job.id, state = %job.state);
                            tokio::spawn(
                                async move {
                                    match step::run(&dispatcher, job).await {
                                        Ok(outcome) => tracing::debug!(?outcome, "step done"),
                                        Err(err) => warn!(%err, "step failed; the job returns when its lease lapses"),
                                    }
                                    drop(permit);
                                }
                                .instrument(span),
                            );
                        }
                    }
                    Err(err) => warn!(%err, "cannot claim jobs"),
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.settings.poll_interval()) => {}
                _ = wake.notified() => {}
                _ = shutdown.wait() => break,
            }
        }
        listener.abort();
        let all = self.settings.max_in_flight.max(1) as u32;
        if tokio::time::timeout(Duration::from_secs(10), slots.acquire_many(all))
            .await
            .is_err()
        {
            warn!("steps still under way at shutdown; their jobs return when their leases lapse");
        }
        info!(owner = %self.owner, "dispatcher stopped");
    }
}

/// Wakes the dispatch loop when a job is queued, so a new copy need not wait for the next poll.
async fn wake_on_new_jobs(store: Store, wake: Arc<Notify>, mut shutdown: Shutdown) {
    let mut listener = match PgListener::connect_with(store.pool()).await {
        Ok(listener) => listener,
        Err(err) => return warn!(%err, "cannot listen for new jobs; polling only"),
    };
    if let Err(err) = listener.listen(QUEUED_CHANNEL).await {
        return warn!(%err, "cannot listen for new jobs; polling only");
    }
    loop {
        tokio::select! {
            received = listener.recv() => match received {
                Ok(_) => wake.notify_one(),
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
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "modelcopy".into())
}
