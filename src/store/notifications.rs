//! LISTEN/NOTIFY: how a commit in one replica wakes the others. The channels are those the triggers of
//! `migrations/20261123000001_copy_jobs.sql` notify on, named here and nowhere else in the code.
//!
//! Notifications are delivered at commit, in commit order, to every listening session, and lost while a session is
//! not listening: a listener must treat a dropped connection as "something may have been missed" and catch up from
//! the tables.

use sqlx::postgres::{PgListener, PgPoolOptions};

use super::{Store, StoreError};

/// What a channel announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// A copy event was stored; the payload is its `seq`.
    CopyEvents,
    /// A job was queued; the payload is its destination account.
    JobsQueued,
}

impl Channel {
    fn name(self) -> &'static str {
        match self {
            Channel::CopyEvents => "modelcopy_copy_events",
            Channel::JobsQueued => "modelcopy_jobs_queued",
        }
    }
}

/// A session listening on one channel.
pub struct Listener(PgListener);

impl Store {
    /// Listens on `channel` before it returns: every notification committed from then on is delivered.
    ///
    /// On a connection of its own (a pool of one), not one of the store's: a listener holds its connection for as
    /// long as it lives, and gives it back with an `UNLISTEN *` that, over a partition, held one of the watchers'
    /// two connections for 20 s after the listener was dropped (seen in the fleet's fault test).
    pub async fn listen(&self, channel: Channel) -> Result<Listener, StoreError> {
        let own = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(self.timeout())
            .connect_lazy_with(self.pool().connect_options().as_ref().clone());
        let mut listener = PgListener::connect_with(&own).await?;
        listener.listen(channel.name()).await?;
        Ok(Listener(listener))
    }
}

impl Store {
    /// Sends `payload` on `channel` (delivered to every listener once this commits; here, at once).
    pub async fn notify(&self, channel: Channel, payload: &str) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, $2)").bind(channel.name()).bind(payload).execute(self.pool()).await?;
        Ok(())
    }
}

impl Listener {
    /// The next notification's payload. `Ok(None)` when the connection dropped: notifications may have been lost
    /// meanwhile, and the next call reconnects and listens again.
    pub async fn try_recv(&mut self) -> Result<Option<String>, StoreError> {
        Ok(self.0.try_recv().await?.map(|notification| notification.payload().to_owned()))
    }

    /// The next notification's payload, reconnecting silently when the connection drops (for listeners that only
    /// use notifications to act sooner, and poll anyway).
    pub async fn recv(&mut self) -> Result<String, StoreError> {
        Ok(self.0.recv().await?.payload().to_owned())
    }
}
