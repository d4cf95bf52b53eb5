//! Which audit records a compliance query covers (ListAuditEvents). Every field that is set must match.
//!
//! It is a question the store answers in SQL ([`super::list`]), so it sits with the store.

use chrono::{DateTime, Utc};

use super::Decision;
use crate::domain::AccountId;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Inclusive.
    pub occurred_after: Option<DateTime<Utc>>,
    /// Exclusive.
    pub occurred_before: Option<DateTime<Utc>>,
    /// Who called, exactly as recorded.
    pub principal: Option<String>,
    /// The RPC (`CopyModelVersion`, …). Any name: calls to RPCs that do not exist are recorded too.
    pub action: Option<String>,
    /// Any of these; empty means any decision.
    pub decisions: Vec<Decision>,
    /// An account the call concerned, as source or destination: the copy's, or, for a request that named no
    /// stored copy (a refused one, a list), the accounts in its ARNs or filter.
    pub account: Option<AccountId>,
}
