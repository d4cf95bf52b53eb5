//! Which copies one caller may see: the same policies, asked once per copy, for answers that hold many copies
//! (a page of ListCopies, the events of a WatchCopy).
//!
//! It holds the authorizer rather than the policies of the moment, so a watch that runs for hours follows a policy
//! change from its next event on.

use std::sync::Arc;

use super::{Action, Authorizer, AuthzDecision, Principal, Resource};
use crate::store::CopyJob;

#[derive(Clone)]
pub struct Visibility {
    authorizer: Arc<dyn Authorizer>,
    principal: Principal,
    action: Action,
}

impl Visibility {
    pub fn new(authorizer: Arc<dyn Authorizer>, principal: Principal, action: Action) -> Visibility {
        Visibility { authorizer, principal, action }
    }

    /// The decision on one copy.
    pub fn decide(&self, job: &CopyJob) -> AuthzDecision {
        self.authorizer.authorize(&self.principal, self.action, &Resource::copy(job))
    }

    pub fn sees(&self, job: &CopyJob) -> bool {
        self.decide(job).allowed
    }
}
