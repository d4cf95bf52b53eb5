//! A pace shared by every replica, for calls that any replica may make (preflight's), unlike the dispatcher's,
//! which only an account's leader makes and paces in memory (`dispatch::gate`).
//!
//! GCRA over one row per account: the row holds the time the account's next call may go (its theoretical arrival
//! time). Taking a slot moves it one period on from itself, or from now if it is past, in one statement; the caller
//! then waits until its slot. Calls of all replicas together go at most one a period, a burst of none. The row's
//! lock serializes takers of one account only, for the length of one UPDATE.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Store, StoreError};
use crate::domain::AccountId;

/// Takes the next slot of `account`'s pace of one call per `period`, unless it is more than `max_wait` away: then
/// nothing is taken and `None` is answered. `Some(wait)`: how long until the slot.
pub async fn take_slot(
    store: &Store,
    account: &AccountId,
    period: Duration,
    max_wait: Duration,
) -> Result<Option<Duration>, StoreError> {
    let slot: Option<(DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
        "INSERT INTO preflight_pace AS p (account, tat) VALUES ($1, clock_timestamp() + make_interval(secs => $2))
         ON CONFLICT (account) DO UPDATE
             SET tat = GREATEST(p.tat, clock_timestamp()) + make_interval(secs => $2)
           WHERE GREATEST(p.tat, clock_timestamp()) <= clock_timestamp() + make_interval(secs => $3)
         RETURNING tat - make_interval(secs => $2), clock_timestamp()",
    )
    .bind(account.as_str())
    .bind(period.as_secs_f64())
    .bind(max_wait.as_secs_f64())
    .fetch_optional(store.pool())
    .await?;
    Ok(slot.map(|(at, now)| (at - now).to_std().unwrap_or_default()))
}
