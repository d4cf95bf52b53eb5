//! How long the history of copy events is kept, and the task that prunes what is older.
//!
//! Why prune: every change of every copy is a row, forever otherwise; the history serves watchers that resume
//! (`after_sequence`), and one that resumes from further back than it is kept is told so (OUT_OF_RANGE) and takes
//! the current state instead. Every replica prunes (the work is idempotent; the mark in `copy_events_pruned` only
//! rises).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::shutdown::Shutdown;
use crate::store::{events, Store};

/// `[watch]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WatchSettings {
    /// How long changes are kept for watchers that resume, in seconds (default a week); 0: kept for ever.
    pub history_retention_secs: u64,
    /// How often older changes are pruned, in seconds.
    pub prune_interval_secs: u64,
    /// Changes queued for one stream before its client counts as too slow: its stream ends (RESOURCE_EXHAUSTED,
    /// with the last sequence sent) and it resumes from there, rather than hold memory or the other streams up.
    pub stream_buffer: usize,
}

impl Default for WatchSettings {
    fn default() -> Self {
        WatchSettings { history_retention_secs: 7 * 24 * 3600, prune_interval_secs: 600, stream_buffer: 1024 }
    }
}

impl WatchSettings {
    /// The settings' mistakes, each naming its key.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.prune_interval_secs == 0 {
            problems.push("watch.prune_interval_secs must be at least 1".into());
        }
        if !(1..=1_000_000).contains(&self.stream_buffer) {
            problems.push("watch.stream_buffer must be 1 to 1000000".into());
        }
        problems
    }
}

/// Prunes the history older than the retention every interval, until `shutdown`; returns at once when the history
/// is kept for ever.
pub async fn keep_pruning(store: Store, settings: WatchSettings, mut shutdown: Shutdown) {
    if settings.history_retention_secs == 0 {
        return;
    }
    let keep = Duration::from_secs(settings.history_retention_secs);
    let mut ticker = tokio::time::interval(Duration::from_secs(settings.prune_interval_secs.max(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.wait() => return,
        }
        match events::prune(&store, keep).await {
            Ok(Some(through)) => info!(through, ?keep, "copy history pruned"),
            Ok(None) => {}
            Err(err) => warn!(%err, "cannot prune the copy history now; trying again later"),
        }
    }
}
