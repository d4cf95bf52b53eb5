//! What the layers around a handler established for its call, and the one way a handler asks whether the caller
//! may do what it asks.

use std::sync::Arc;

use tonic::{Request, Status};

use super::ApiError;
use crate::audit::AuditSlot;
use crate::auth::{Action, Authorizer, AuthzDecision, Principal, Resource, Visibility};

pub struct Call {
    pub principal: Principal,
    pub audit: AuditSlot,
    authorizer: Arc<dyn Authorizer>,
}

impl Call {
    /// The caller, audit slot and authorizer the auth and audit layers put on the request. Their absence means
    /// the service was assembled without those layers, which must never answer a request.
    pub fn of<T>(request: &Request<T>) -> Result<Call, Status> {
        let principal = request.extensions().get::<Principal>().cloned();
        let audit = request.extensions().get::<AuditSlot>().cloned();
        let authorizer = request.extensions().get::<Arc<dyn Authorizer>>().cloned();
        match (principal, audit, authorizer) {
            (Some(principal), Some(audit), Some(authorizer)) => Ok(Call { principal, audit, authorizer }),
            _ => Err(Status::internal("request reached a handler without authentication and audit")),
        }
    }

    /// Whether the caller may take `action` on `resource`; the decision's reason and policies go into the audit
    /// row. Handlers call it once the request is valid (so that bad input is still INVALID_ARGUMENT) and before
    /// they change or reveal anything. Refused: PERMISSION_DENIED naming the action.
    pub fn authorize(&self, action: Action, resource: &Resource) -> Result<(), ApiError> {
        let decision = self.decide(action, resource);
        if decision.allowed {
            return Ok(());
        }
        Err(self.denied(action, &decision))
    }

    /// As [`Call::authorize`], for each of several resources of one call (a rollout's destinations): allowed only
    /// if each is. The audit row names every policy that permitted them, or, on a refusal, the refused one's reason
    /// and policies; `Err` carries the index of the first resource refused.
    pub fn authorize_each(
        &self,
        action: Action,
        resources: impl IntoIterator<Item = Resource>,
    ) -> Result<(), (usize, ApiError)> {
        let mut policies = std::collections::BTreeSet::new();
        for (i, resource) in resources.into_iter().enumerate() {
            let decision = self.decide(action, &resource);
            if !decision.allowed {
                return Err((i, self.denied(action, &decision)));
            }
            policies.extend(decision.policy_ids);
        }
        self.audit.set_policies(&policies.into_iter().collect::<Vec<_>>());
        Ok(())
    }

    fn denied(&self, action: Action, decision: &AuthzDecision) -> ApiError {
        ApiError::PermissionDenied(format!("{} may not {}: {}", self.principal.id(), action.name(), decision.reason))
    }

    /// As [`Call::authorize`], for a stored copy named by the caller. A copy the caller may not see is answered
    /// exactly as a copy that does not exist (`not_found`), so that its existence is not revealed to someone who
    /// may not know of it (copy ids travel in logs and URLs); the audit row still says DENIED, with the reason.
    pub fn authorize_visible(
        &self,
        action: Action,
        resource: &Resource,
        not_found: impl FnOnce() -> ApiError,
    ) -> Result<(), ApiError> {
        let decision = self.decide(action, resource);
        if decision.allowed {
            return Ok(());
        }
        self.audit.set_denied(decision.reason);
        Err(not_found())
    }

    /// Decides `action` for each of many copies (a list, a watch), without recording each decision.
    pub fn visibility(&self, action: Action) -> Visibility {
        Visibility::new(self.authorizer.clone(), self.principal.clone(), action)
    }

    fn decide(&self, action: Action, resource: &Resource) -> AuthzDecision {
        let decision = self.authorizer.authorize(&self.principal, action, resource);
        self.audit.set_reason(decision.reason.clone());
        self.audit.set_policies(&decision.policy_ids);
        decision
    }
}
