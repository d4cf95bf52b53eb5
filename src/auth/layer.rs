//! The tower layer that authenticates and authorizes every call before a handler sees it.
//!
//! It sits inside the audit layer, so a refusal here is still recorded: it names the principal (when known) in
//! the call's audit slot and answers UNAUTHENTICATED or PERMISSION_DENIED itself.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::{BoxFuture, FutureExt};
use tonic::Status;
use tower::{Layer, Service};

use super::{Action, Authenticator, Authorizer, Principal};
use crate::audit::AuditSlot;

#[derive(Clone)]
pub struct AuthLayer {
    authenticator: Arc<dyn Authenticator>,
    authorizer: Arc<dyn Authorizer>,
}

impl AuthLayer {
    pub fn new(authenticator: Arc<dyn Authenticator>, authorizer: Arc<dyn Authorizer>) -> Self {
        AuthLayer {
            authenticator,
            authorizer,
        }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    layer: AuthLayer,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for AuthService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        let slot = request.extensions().get::<AuditSlot>().cloned();
        match self.check(&request, slot.as_ref()) {
            Ok(principal) => {
                request.extensions_mut().insert(principal);
                self.inner.call(request).boxed()
            }
            Err(status) => futures::future::ready(Ok(status.into_http())).boxed(),
        }
    }
}

impl<S> AuthService<S> {
    fn check<B>(
        &self,
        request: &http::Request<B>,
        slot: Option<&AuditSlot>,
    ) -> Result<Principal, Status> {
        let principal = self
            .layer
            .authenticator
            .authenticate(request.headers())
            .map_err(|err| Status::unauthenticated(err.0))?;
        if let Some(slot) = slot {
            slot.set_principal(principal.id(), principal.authn());
        }
        // Paths of no RPC pass through: the router answers UNIMPLEMENTED, and that is audited too.
        let Some(action) = Action::from_path(request.uri().path()) else {
            return Ok(principal);
        };
        let decision = self.layer.authorizer.authorize(&principal, action);
        if let Some(slot) = slot {
            slot.set_reason(decision.reason.clone());
            slot.set_policies(&decision.policy_ids);
        }
        if decision.allowed {
            Ok(principal)
        } else {
            Err(Status::permission_denied(format!(
                "{} may not {action:?}: {}",
                principal.id(),
                decision.reason
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::audit::{AuditRecord, Decision};
    use crate::auth::authenticator::PRINCIPAL_HEADER;
    use crate::auth::{AuthzDecision, DevMetadataAuthenticator};

    struct DenyAll;
    impl Authorizer for DenyAll {
        fn authorize(&self, _: &Principal, _: Action) -> AuthzDecision {
            AuthzDecision {
                allowed: false,
                reason: "policy p-1 forbids".into(),
                policy_ids: vec!["p-1".into()],
            }
        }
    }

    /// Runs one request through the layer around a service that counts the calls reaching it.
    async fn call(
        authorizer: Arc<dyn Authorizer>,
        principal: Option<&str>,
    ) -> (http::Response<String>, usize, AuditSlot) {
        let reached = Arc::new(AtomicUsize::new(0));
        let counter = reached.clone();
        let inner = tower::service_fn(move |_req: http::Request<()>| {
            counter.fetch_add(1, Ordering::SeqCst);
            futures::future::ready(Ok::<_, std::convert::Infallible>(http::Response::new(
                String::new(),
            )))
        });
        let mut service =
            AuthLayer::new(Arc::new(DevMetadataAuthenticator), authorizer).layer(inner);
        let slot = AuditSlot::new(AuditRecord {
            principal: None,
            authn: "none".into(),
            peer: None,
            rpc: "GetCopy".into(),
            decision: Decision::Allowed,
            reason: None,
            grpc_code: tonic::Code::Ok,
            request: None,
            request_digest: None,
            copy_id: None,
            policy_ids: Vec::new(),
        });
        let mut request = http::Request::builder().uri("/modelcopy.v1.ModelCopy/GetCopy");
        if let Some(principal) = principal {
            request = request.header(PRINCIPAL_HEADER, principal);
        }
        let mut request = request.body(()).unwrap();
        request.extensions_mut().insert(slot.clone());
        let response = service.call(request).await.unwrap();
        (response, reached.load(Ordering::SeqCst), slot)
    }

    fn grpc_code(response: &http::Response<String>) -> Option<tonic::Code> {
        Status::from_header_map(response.headers()).map(|s| s.code())
    }

    #[tokio::test]
    async fn a_denied_call_never_reaches_the_handler_and_the_audit_names_who_and_why() {
        let (response, reached, slot) = call(Arc::new(DenyAll), Some("mallory")).await;
        assert_eq!(grpc_code(&response), Some(tonic::Code::PermissionDenied));
        assert_eq!(reached, 0);
        let record = slot.finish(tonic::Code::PermissionDenied, None);
        assert_eq!(record.principal.as_deref(), Some("mallory"));
        assert_eq!(record.decision, Decision::Denied);
        assert_eq!(record.reason.as_deref(), Some("policy p-1 forbids"));
        assert_eq!(record.policy_ids, ["p-1"]);
    }

    #[tokio::test]
    async fn a_call_without_credentials_is_unauthenticated() {
        let (response, reached, _) = call(Arc::new(crate::auth::AllowAll), None).await;
        assert_eq!(grpc_code(&response), Some(tonic::Code::Unauthenticated));
        assert_eq!(reached, 0);
    }

    #[tokio::test]
    async fn an_allowed_call_reaches_the_handler() {
        let (response, reached, slot) = call(Arc::new(crate::auth::AllowAll), Some("alice")).await;
        assert_eq!(grpc_code(&response), None);
        assert_eq!(reached, 1);
        assert_eq!(slot.snapshot().authn, "dev-metadata");
    }
}
