//! The service's life cycle of a copy, as one explicit state machine.
//!
//! Every allowed transition is listed in [`CopyState::can_become`]; the store refuses any other, and each
//! transition is one row of the copy's history. `SUBMITTING` is entered, and committed, *before*
//! CopyProjectVersion is called: that commit is the point after which a copy can no longer be cancelled.
//!
//! A copy *ends* in SUCCEEDED, FAILED or CANCELLED ([`CopyState::is_terminal`]): nothing more happens to the copy
//! itself. A succeeded copy with a `delete_after` has one more step, its version's deletion, which the service
//! makes when that time has passed: SUCCEEDED -> EXPIRED once deleted, or SUCCEEDED -> SUCCEEDED recording that
//! Rekognition refused (see `dispatch::expiry`).

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CopyState {
    /// Stored, waiting for its turn.
    Queued,
    /// Being sent to Rekognition; transient errors are retried in this state.
    Submitting,
    /// Accepted by Rekognition and followed with DescribeProjectVersions.
    Copying,
    /// Rekognition reported COPYING_COMPLETED.
    Succeeded,
    /// Refused by Rekognition, or it reported COPYING_FAILED.
    Failed,
    /// Cancelled before submission.
    Cancelled,
    /// Succeeded, then its version was deleted by the service once its `delete_after` had passed.
    Expired,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a copy cannot go from {from} to {to}")]
pub struct IllegalTransition {
    pub from: CopyState,
    pub to: CopyState,
}

impl CopyState {
    pub const ALL: [CopyState; 7] = [
        CopyState::Queued,
        CopyState::Submitting,
        CopyState::Copying,
        CopyState::Succeeded,
        CopyState::Failed,
        CopyState::Cancelled,
        CopyState::Expired,
    ];

    /// The states a copy is still in while it may change: [`CopyState::is_terminal`]'s complement.
    pub const LIVE: [CopyState; 3] = [CopyState::Queued, CopyState::Submitting, CopyState::Copying];

    /// The states of a copy that has ended. Only a succeeded copy's expiry moves it on (see the module's notes).
    pub fn is_terminal(self) -> bool {
        matches!(self, CopyState::Succeeded | CopyState::Failed | CopyState::Cancelled | CopyState::Expired)
    }

    /// The one place that says which transitions exist.
    ///
    /// `Copying -> Copying` records a change of Rekognition's own status or message while the copy runs.
    /// `Submitting -> Succeeded` covers a copy found already complete when a submission is confirmed.
    /// `Succeeded -> Expired` is the deletion of its version; `Succeeded -> Succeeded` records a refused one.
    pub fn can_become(self, next: CopyState) -> bool {
        use CopyState::*;
        matches!(
            (self, next),
            (Queued, Submitting)
                | (Queued, Cancelled)
                | (Submitting, Copying)
                | (Submitting, Succeeded)
                | (Submitting, Failed)
                | (Copying, Copying)
                | (Copying, Succeeded)
                | (Copying, Failed)
                | (Succeeded, Succeeded)
                | (Succeeded, Expired)
        )
    }

    pub fn transition(self, next: CopyState) -> Result<CopyState, IllegalTransition> {
        if self.can_become(next) {
            Ok(next)
        } else {
            Err(IllegalTransition { from: self, to: next })
        }
    }

    /// The spelling stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            CopyState::Queued => "QUEUED",
            CopyState::Submitting => "SUBMITTING",
            CopyState::Copying => "COPYING",
            CopyState::Succeeded => "SUCCEEDED",
            CopyState::Failed => "FAILED",
            CopyState::Cancelled => "CANCELLED",
            CopyState::Expired => "EXPIRED",
        }
    }
}

impl fmt::Display for CopyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for CopyState {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl FromStr for CopyState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CopyState::ALL.into_iter().find(|state| state.as_str() == s).ok_or_else(|| format!("unknown copy state {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::CopyState::*;
    use super::*;

    #[test]
    fn queued_copy_can_be_submitted_or_cancelled_only() {
        let next: Vec<_> = CopyState::ALL.into_iter().filter(|s| Queued.can_become(*s)).collect();
        assert_eq!(next, vec![Submitting, Cancelled]);
    }

    #[test]
    fn submitted_copy_cannot_be_cancelled() {
        assert!(Submitting.transition(Cancelled).is_err());
        assert!(Copying.transition(Cancelled).is_err());
    }

    #[test]
    fn ended_copies_move_only_by_expiring() {
        for from in CopyState::ALL.into_iter().filter(|s| s.is_terminal()) {
            for to in CopyState::ALL {
                let expiry = from == Succeeded && matches!(to, Succeeded | Expired);
                assert_eq!(from.can_become(to), expiry, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn copying_reaches_an_end() {
        assert_eq!(Copying.transition(Succeeded), Ok(Succeeded));
        assert_eq!(Copying.transition(Failed), Ok(Failed));
        assert!(Copying.transition(Queued).is_err());
    }

    #[test]
    fn live_states_are_exactly_those_not_terminal() {
        let live: Vec<_> = CopyState::ALL.into_iter().filter(|s| !s.is_terminal()).collect();
        assert_eq!(live, CopyState::LIVE);
    }

    #[test]
    fn database_spelling_round_trips() {
        for state in CopyState::ALL {
            assert_eq!(state.as_str().parse::<CopyState>(), Ok(state));
        }
        assert!("queued".parse::<CopyState>().is_err());
    }
}
