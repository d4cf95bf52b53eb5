//! The database side of dispatch leadership: one dedicated session per replica, on which it takes each account's
//! advisory lock (see [`crate::dispatch`] for why a lock and not a shared rate-limit row).
//!
//! The session is taken out of the pool for good: a lock belongs to the session that took it, and a pooled
//! connection could be handed to another task, or closed, while it still held the locks. Dropping the
//! [`Leadership`] ends the session, which releases every lock at once; so does the death of the replica.

use std::time::Duration;

use sqlx::PgConnection;

use super::{locks, Store, StoreError};
use crate::domain::AccountId;

/// One replica's session for leadership. Dropping it ends the session and releases every lock it holds. Every
/// exchange on it is bounded by the timeout it was opened with ([`StoreError::TimedOut`]): a leader must learn that
/// it cannot reach its session within its term, not after TCP gives up.
pub struct Leadership {
    session: PgConnection,
    timeout: Duration,
}

impl Leadership {
    /// A session of its own, on which PostgreSQL probes the replica after `timeout` of silence: a partitioned
    /// leader's session (and with it its locks) is then ended within about twice `timeout`, so that another replica
    /// can take its accounts over, instead of when the operating system gives up on the connection (hours).
    pub async fn open(store: &Store, timeout: Duration) -> Result<Leadership, StoreError> {
        tokio::time::timeout(timeout, Leadership::open_now(store, timeout))
            .await
            .unwrap_or(Err(StoreError::TimedOut(timeout)))
    }

    async fn open_now(store: &Store, timeout: Duration) -> Result<Leadership, StoreError> {
        let mut session = store.pool().acquire().await?.detach();
        let idle = timeout.as_secs().max(1);
        let interval = (timeout.as_secs() / 3).max(1);
        sqlx::query(
            "SELECT set_config('tcp_keepalives_idle', $1, false), set_config('tcp_keepalives_interval', $2, false),
                    set_config('tcp_keepalives_count', '3', false)",
        )
        .bind(idle.to_string())
        .bind(interval.to_string())
        .execute(&mut session)
        .await?;
        Ok(Leadership { session, timeout })
    }

    /// True if this session now leads `account` (or already did).
    pub async fn try_lead(&mut self, account: &AccountId) -> Result<bool, StoreError> {
        let key = locks::leadership(account);
        let lead = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(key).fetch_one(&mut self.session);
        Ok(tokio::time::timeout(self.timeout, lead).await.map_err(|_| StoreError::TimedOut(self.timeout))??)
    }

    /// Proves the session, and so every lock it holds, is still alive.
    pub async fn check(&mut self) -> Result<(), StoreError> {
        let check = sqlx::query("SELECT 1").execute(&mut self.session);
        tokio::time::timeout(self.timeout, check).await.map_err(|_| StoreError::TimedOut(self.timeout))??;
        Ok(())
    }
}
