//! Deciding whether a principal may take an action on a resource. The decision carries its reason and the ids of
//! the policies that made it, for the audit log.
//!
//! A trait, so that tests can put a fixed answer in place of the policies ([`super::PolicyStore`] in service).

use super::{Action, Principal, Resource};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthzDecision {
    pub allowed: bool,
    pub reason: String,
    pub policy_ids: Vec<String>,
}

pub trait Authorizer: Send + Sync + 'static {
    fn authorize(&self, principal: &Principal, action: Action, resource: &Resource) -> AuthzDecision;
}
