//! Every PostgreSQL advisory lock key the service takes, in one place, so that no two uses can meet.
//!
//! Keys are 64-bit; each use has its own fixed high bytes in ASCII: "MC" for an account's dispatch leadership
//! (the 12-digit account id fills the low bytes, far below the prefix), and the audit chain's own key (see
//! `audit::CHAIN_LOCK_KEY`), which starts "AU".

use crate::domain::AccountId;

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
}
