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
pub struct Listener {
    session: PgListener,
    /// Whether [`Listener::try_recv`] has reported the session lost; from then on it reports nothing else.
    lost: bool,
}

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
        let mut session = PgListener::connect_with(&own).await?;
        // By default a lost session is replaced inside the receive that sees it lost, and the loss reported only
        // once that is done; a receive cancelled meanwhile (the watch hub's select cancels one at each heartbeat
        // tick) left the next one to finish listening again, and the loss was never reported.
        session.eager_reconnect(false);
        session.listen(channel.name()).await?;
        Ok(Listener { session, lost: false })
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
    /// The next notification's payload. `Ok(None)` (or an error) when the session was lost: notifications may have
    /// been lost with it. Once lost, the listener stays so, and answers `Ok(None)` at once: listening again is the
    /// caller's, on a new listener, followed by whatever catching up the caller needs. Cancel-safe: a receive
    /// dropped halfway loses no notification and no report of a loss.
    pub async fn try_recv(&mut self) -> Result<Option<String>, StoreError> {
        if self.lost {
            return Ok(None);
        }
        let received = self.session.try_recv().await;
        self.lost = !matches!(received, Ok(Some(_)));
        Ok(received?.map(|notification| notification.payload().to_owned()))
    }

    /// The next notification's payload, reconnecting silently when the connection drops (for listeners that only
    /// use notifications to act sooner, and poll anyway). Not to be mixed with [`Listener::try_recv`].
    pub async fn recv(&mut self) -> Result<String, StoreError> {
        Ok(self.session.recv().await?.payload().to_owned())
    }
}
