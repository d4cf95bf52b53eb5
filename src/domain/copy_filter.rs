//! Which copies a ListCopies or a WatchCopy covers. Every field that is set must match.

use chrono::{DateTime, Utc};

use super::{AccountId, CopyState, RolloutId};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyFilter {
    /// Any of these states; empty means any state.
    pub states: Vec<CopyState>,
    pub source_account: Option<AccountId>,
    pub destination_account: Option<AccountId>,
    /// Inclusive.
    pub created_after: Option<DateTime<Utc>>,
    /// Exclusive.
    pub created_before: Option<DateTime<Utc>>,
    /// Only the copies of this rollout.
    pub rollout: Option<RolloutId>,
}

impl CopyFilter {
    /// The same test the store's SQL makes, for copies seen one by one (watchers).
    pub fn matches(
        &self,
        state: CopyState,
        source_account: &AccountId,
        destination_account: &AccountId,
        created_at: DateTime<Utc>,
        rollout: Option<RolloutId>,
    ) -> bool {
        (self.states.is_empty() || self.states.contains(&state))
            && self.source_account.as_ref().is_none_or(|a| a == source_account)
            && self.destination_account.as_ref().is_none_or(|a| a == destination_account)
            && self.created_after.is_none_or(|t| created_at >= t)
            && self.created_before.is_none_or(|t| created_at < t)
            && self.rollout.is_none_or(|r| rollout == Some(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC_ID: &str = "111111111111";
    const DST_ID: &str = "222222222222";

    fn ids() -> (AccountId, AccountId) {
        (AccountId::parse(SRC_ID).unwrap(), AccountId::parse(DST_ID).unwrap())
    }

    #[test]
    fn a_rollout_filter_matches_its_copies_only() {
        let (src, dst) = ids();
        let rollout = crate::domain::RolloutId::new();
        let filter = CopyFilter { rollout: Some(rollout), ..Default::default() };
        assert!(filter.matches(CopyState::Queued, &src, &dst, Utc::now(), Some(rollout)));
        assert!(!filter.matches(CopyState::Queued, &src, &dst, Utc::now(), Some(crate::domain::RolloutId::new())));
        assert!(!filter.matches(CopyState::Queued, &src, &dst, Utc::now(), None));
    }

    #[test]
    fn empty_filter_matches_everything() {
        let (src, dst) = ids();
        assert!(CopyFilter::default().matches(CopyState::Failed, &src, &dst, Utc::now(), None));
    }

    #[test]
    fn every_set_field_must_match() {
        let filter = CopyFilter {
            states: vec![CopyState::Queued, CopyState::Copying],
            destination_account: Some(AccountId::parse(DST_ID).unwrap()),
            ..Default::default()
        };
        let (src, dst) = ids();
        let now = Utc::now();
        assert!(filter.matches(CopyState::Copying, &src, &dst, now, None));
        assert!(!filter.matches(CopyState::Succeeded, &src, &dst, now, None));
        assert!(!filter.matches(CopyState::Queued, &src, &src, now, None));
    }

    #[test]
    fn time_range_is_half_open() {
        let (src, dst) = ids();
        let t = Utc::now();
        let filter = CopyFilter { created_after: Some(t), created_before: Some(t), ..Default::default() };
        assert!(!filter.matches(CopyState::Queued, &src, &dst, t, None));
        let filter = CopyFilter { created_after: Some(t), ..Default::default() };
        assert!(filter.matches(CopyState::Queued, &src, &dst, t, None));
    }
}
