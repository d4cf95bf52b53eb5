//! Every PostgreSQL advisory lock key the service takes, in one place, so that no two uses can meet.
//!
//! Keys are 64-bit; each use has its own fixed high bytes in ASCII: "MC" for an account's dispatch leadership
//! (the 12-digit account id fills the low bytes, far below the prefix), "AUDIT_CH" for the audit chain and
//! "COPY_EVT" for the order of copy events.

use crate::domain::AccountId;

/// The key of the transaction-scoped lock that serializes appends to the audit chain (see [`super::audit`]):
/// ASCII "AUDIT_CH" read as a big-endian integer.
pub const AUDIT_CHAIN: i64 = 0x4155_4449_545F_4348;

/// The key of the transaction-scoped lock every transaction that records a copy event holds from taking the
/// event's sequence number until it commits: ASCII "COPY_EVT". Why: a sequence hands out numbers as transactions
/// ask, not as they commit, so without it a watcher that has seen event N could later find an event below N that
/// committed after it, and catching up "after N" would skip that one. Held this way, events commit in the order of
/// their numbers, and "every event after N" is exact.
///
/// Lock order, in every transaction: the audit chain's lock, then this one, then rows (copies, queue counters).
/// A dispatcher's transition that locked its copy's row first (and, through the queue counter's trigger, the
/// account's counter row) deadlocked with a group commit that held this lock and waited for that counter.
pub const COPY_EVENTS: i64 = 0x434F_5059_5F45_5654;

/// The prefix of the leadership keys: "MC" in the two high bytes.
const LEADERSHIP_PREFIX: i64 = 0x4D43 << 48;

/// The key of the lock whose holder dispatches for `account`. An account id is 12 ASCII digits (at most
/// 999,999,999,999 < 2^40), so every account has its own key and none reaches into the prefix.
pub fn leadership(account: &AccountId) -> i64 {
    let id: i64 = account.as_str().parse().expect("an account id is 12 ASCII digits");
    LEADERSHIP_PREFIX | id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_account_has_its_own_key() {
        let key = |id: &str| leadership(&AccountId::parse(id).unwrap());
        assert_ne!(key("111111111111"), key("111111111112"));
        assert_eq!(key("999999999999") & 0xFFFF_FFFF_FFFF, 999_999_999_999);
        assert_eq!(key("000000000000") >> 48, 0x4D43);
    }

    #[test]
    fn the_audit_key_spells_its_name_and_is_no_account_s() {
        assert_eq!(&AUDIT_CHAIN.to_be_bytes(), b"AUDIT_CH");
        assert_eq!(&COPY_EVENTS.to_be_bytes(), b"COPY_EVT");
        assert_ne!(COPY_EVENTS >> 48, LEADERSHIP_PREFIX >> 48);
        assert_ne!(AUDIT_CHAIN >> 48, LEADERSHIP_PREFIX >> 48);
    }
}
