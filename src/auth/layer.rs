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
