//! The database side of dispatch leadership: one dedicated session per replica, on which it takes each account's
//! advisory lock (see [`crate::dispatch`] for why a lock and not a shared rate-limit row).
//!
//! The session is taken out of the pool for good: a lock belongs to the session that took it, and a pooled
//! connection could be handed to another task, or closed, while it still held the locks. Dropping the
//! [`Leadership`] ends the session, which releases every lock at once; so does the death of the replica.

use sqlx::PgConnection;

use super::{locks, Store, StoreError};
use crate::domain::AccountId;

/// One replica's session for leadership. Dropping it ends the session and releases every lock it holds.
pub struct Leadership {
    session: PgConnection,
}

impl Leadership {
    pub async fn open(store: &Store) -> Result<Leadership, StoreError> {
        Ok(Leadership { session: store.pool().acquire().await?.detach() })
    }

    /// True if this session now leads `account` (or already did).
    pub async fn try_lead(&mut self, account: &AccountId) -> Result<bool, StoreError> {
        let key = locks::leadership(account);
        Ok(sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(key).fetch_one(&mut self.session).await?)
    }

    /// Proves the session, and so every lock it holds, is still alive.
    pub async fn check(&mut self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&mut self.session).await?;
        Ok(())
    }
}
