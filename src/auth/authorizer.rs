//! Deciding whether a principal may take an action. The decision carries its reason and the ids of the policies
//! that made it, for the audit log.

use super::{Action, Principal};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthzDecision {
    pub allowed: bool,
    pub reason: String,
    pub policy_ids: Vec<String>,
}

pub trait Authorizer: Send + Sync + 'static {
    fn authorize(&self, principal: &Principal, action: Action) -> AuthzDecision;
}

/// Allows everything. A stand-in until policies exist; its reason says so in every audit row.
#[derive(Debug, Default, Clone)]
pub struct AllowAll;

impl Authorizer for AllowAll {
    fn authorize(&self, _principal: &Principal, _action: Action) -> AuthzDecision {
        AuthzDecision {
            allowed: true,
            reason: "allow-all (no policies configured)".into(),
            policy_ids: Vec::new(),
        }
    }
}
