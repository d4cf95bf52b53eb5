//! Which replica dispatches for which account: the holder of that account's PostgreSQL advisory lock.
//!
//! Rekognition's quotas are per account, so the simplest way to keep N replicas inside them is to let exactly one
//! replica call Rekognition for a given account at a time, and pace it with a local limiter. PostgreSQL decides who:
//! an advisory lock per account, held on one dedicated session per replica. A replica that dies (even by SIGKILL)
//! loses its session and with it every lock, at once; another replica takes the account over at its next try.
//! The alternative, a token-bucket row updated on every call, would cost a database round trip per Rekognition call
//! and serialise all replicas on that row for no gain: only one of them can usefully call at a time anyway.

use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, Postgres};

use crate::store::{Store, StoreError};

/// Advisory lock keys of this service: a fixed prefix ("MC" in the high bytes) and the 12-digit account id, which
/// fits well inside the remaining bits, so two accounts never share a key.
const KEY_PREFIX: i64 = 0x4D43 << 48;

pub fn lock_key(account: &str) -> Option<i64> {
    let id: i64 = account.parse().ok().filter(|_| account.len() == 12)?;
    Some(KEY_PREFIX | id)
}

/// One replica's session for leadership. Dropping it ends the session and releases every lock it holds.
pub struct Leadership {
    session: PgConnection,
}

impl Leadership {
    /// Takes a connection out of the pool for good: leadership must not return to a pool where another task could
    /// reuse the session holding the locks.
    pub async fn open(store: &Store) -> Result<Leadership, StoreError> {
        let connection: PoolConnection<Postgres> = store.pool().acquire().await?;
        Ok(Leadership { session: connection.detach() })
    }

    /// True if this session now leads `account` (or already did).
    pub async fn try_lead(&mut self, account: &str) -> Result<bool, StoreError> {
        let key = lock_key(account).ok_or_else(|| StoreError::Corrupt(format!("{account:?} is not an account id")))?;
        Ok(sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(key).fetch_one(&mut self.session).await?)
    }

    /// Proves the session, and so every lock it holds, is still alive.
    pub async fn check(&mut self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&mut self.session).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_account_has_its_own_key() {
        let a = lock_key("111111111111").unwrap();
        let b = lock_key("111111111112").unwrap();
        assert_ne!(a, b);
        assert_eq!(lock_key("999999999999").unwrap() & 0xFFFF_FFFF_FFFF, 999_999_999_999);
        assert!(lock_key("12345").is_none());
        assert!(lock_key("abcdefghijkl").is_none());
    }
}
