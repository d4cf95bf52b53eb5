//! What happens when an account's dispatcher panics: it is logged as an error with its message, counted, and the
//! account's dispatcher is started again after a pause that doubles with each panic in a row (1 s up to a minute),
//! by the replica that still leads the account. Each account's dispatcher runs in a task of its own, built inside
//! that task, so one account's panic stops only that account and never the replica's other accounts or its
//! leadership; before, a panic while starting an account ended the whole dispatcher, silently, while the API kept
//! accepting copies that nobody would ever send.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::task::JoinError;

use crate::domain::AccountId;

const FIRST_PAUSE: Duration = Duration::from_secs(1);
const LONGEST_PAUSE: Duration = Duration::from_secs(60);

/// The panics of this replica's account dispatchers.
#[derive(Default)]
pub struct Panics {
    by_account: Mutex<HashMap<AccountId, Panicked>>,
}

struct Panicked {
    count: u32,
    in_a_row: u32,
    restart_at: Instant,
}

impl Panics {
    /// Records that `account`'s dispatcher panicked with `message`; returns the pause before it is started again.
    pub fn record(&self, account: &AccountId) -> Duration {
        let mut by_account = self.by_account.lock().expect("never held across a panic");
        let panicked =
            by_account.entry(account.clone()).or_insert(Panicked { count: 0, in_a_row: 0, restart_at: Instant::now() });
        panicked.count += 1;
        panicked.in_a_row += 1;
        let pause = FIRST_PAUSE.saturating_mul(1 << (panicked.in_a_row - 1).min(6)).min(LONGEST_PAUSE);
        panicked.restart_at = Instant::now() + pause;
        pause
    }

    /// Whether `account`'s dispatcher may be started now (its pause after a panic, if any, is over).
    pub fn may_start(&self, account: &AccountId) -> bool {
        let by_account = self.by_account.lock().expect("never held across a panic");
        by_account.get(account).is_none_or(|panicked| Instant::now() >= panicked.restart_at)
    }

    /// That `account`'s dispatcher ended without a panic (it was stopped): the next panic pauses it from scratch.
    pub fn ended_cleanly(&self, account: &AccountId) {
        if let Some(panicked) = self.by_account.lock().expect("never held across a panic").get_mut(account) {
            panicked.in_a_row = 0;
        }
    }

    /// How many times `account`'s dispatcher has panicked on this replica.
    pub fn count(&self, account: &AccountId) -> u32 {
        self.by_account.lock().expect("never held across a panic").get(account).map_or(0, |panicked| panicked.count)
    }
}

/// Runs `dispatcher` until `shutdown`, starting it again (after [`FIRST_PAUSE`]) should it ever panic outside an
/// account's task: its leadership session, and with it every account it led, is gone with the panic (the account
/// dispatchers stop when their trigger is dropped), and the new run takes the accounts again from scratch.
///
/// `running` says whether the dispatcher runs now (for the health service): false during the pause after a panic.
pub async fn keep_dispatching(
    dispatcher: super::Dispatcher,
    running: std::sync::Arc<std::sync::atomic::AtomicBool>,
    mut shutdown: crate::shutdown::Shutdown,
) {
    use std::sync::atomic::Ordering;
    loop {
        running.store(true, Ordering::Relaxed);
        let ended = tokio::spawn(dispatcher.clone().run(shutdown.clone())).await;
        running.store(false, Ordering::Relaxed);
        match ended {
            Ok(()) => return,
            Err(err) => {
                let panic = panic_message(err);
                tracing::error!(%panic, pause = ?FIRST_PAUSE, "the dispatcher panicked; starting it again");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(FIRST_PAUSE) => {}
            _ = shutdown.wait() => return,
        }
    }
}

/// The message a panicked task panicked with, as far as it can be read.
pub fn panic_message(err: JoinError) -> String {
    match err.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<&str>()
            .map(|text| text.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into()),
        Err(err) => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_with_each_panic_in_a_row_up_to_a_minute_and_reset_after_a_clean_end() {
        let panics = Panics::default();
        let account = AccountId::parse("111122223333").unwrap();
        assert!(panics.may_start(&account));
        let pauses: Vec<u64> = (0..9).map(|_| panics.record(&account).as_secs()).collect();
        assert_eq!(pauses, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert!(!panics.may_start(&account), "paused");
        assert_eq!(panics.count(&account), 9);
        panics.ended_cleanly(&account);
        assert_eq!(panics.record(&account), FIRST_PAUSE);
        assert_eq!(panics.count(&account), 10, "the count is never reset");
    }

    #[tokio::test]
    async fn the_message_of_a_panic_is_kept() {
        let err = tokio::spawn(async { panic!("rate of {}", f64::INFINITY) }).await.unwrap_err();
        assert_eq!(panic_message(err), "rate of inf");
        let err = tokio::spawn(async { std::panic::panic_any(7_u8) }).await.unwrap_err();
        assert_eq!(panic_message(err), "a panic without a message");
    }
}
