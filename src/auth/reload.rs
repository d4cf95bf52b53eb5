//! Keeping what is read from files (the policies, the JWKS) up to date while the service runs: read again every
//! interval (the reader decides whether the content changed) and on SIGHUP (always), until shutdown.
//!
//! Why one loop for both: an operator rotates keys and edits policies the same way (a new file, a ConfigMap that
//! changes in place, a SIGHUP), and expects both to follow alike.

use std::time::Duration;

use tokio::task::JoinHandle;
use tracing::warn;

use crate::shutdown::Shutdown;

/// Calls `reload(force)` every `interval` (if any) with `force` false and on each SIGHUP with `force` true, on the
/// blocking pool (reading files blocks), until `shutdown`. SIGHUP is listened for before this returns, so that a
/// SIGHUP sent after start-up can no longer end the process.
pub fn keep_reloading(
    what: &'static str,
    interval: Option<Duration>,
    mut shutdown: Shutdown,
    reload: impl Fn(bool) + Clone + Send + Sync + 'static,
) -> JoinHandle<()> {
    let mut hangup = hangup_signal(what);
    tokio::spawn(async move {
        let mut ticker = interval.map(|every| {
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker
        });
        loop {
            let force = tokio::select! {
                _ = shutdown.wait() => return,
                _ = tick(&mut ticker) => false,
                _ = hangup.recv() => true,
            };
            let reload = reload.clone();
            if let Err(err) = tokio::task::spawn_blocking(move || reload(force)).await {
                warn!(%err, what, "reload task failed");
            }
        }
    })
}

async fn tick(ticker: &mut Option<tokio::time::Interval>) {
    match ticker {
        Some(ticker) => {
            ticker.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// SIGHUP, where there is such a thing; otherwise a signal that never comes.
struct Hangup(#[cfg(unix)] Option<tokio::signal::unix::Signal>);

fn hangup_signal(what: &'static str) -> Hangup {
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(signal) => Hangup(Some(signal)),
            Err(err) => {
                warn!(%err, what, "cannot listen for SIGHUP; reloading from file changes only");
                Hangup(None)
            }
        }
    }
    #[cfg(not(unix))]
    Hangup()
}

impl Hangup {
    async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(signal) = &mut self.0 {
            if signal.recv().await.is_some() {
                return;
            }
        }
        std::future::pending().await
    }
}
