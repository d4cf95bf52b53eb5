//! The tower layer that authenticates every call before a handler sees it, and hands the handler the authorizer.
//!
//! It sits inside the audit layer, so a refusal here is still recorded: it names the principal (when known) in
//! the call's audit slot and answers UNAUTHENTICATED itself. The admission layer, outside the audit layer, has
//! already authenticated the call (to know whose limits it counts against) and passes the result on as
//! [`Authenticated`]: a call is authenticated once. Authorization needs the decoded, validated request
//! (a copy's route, its owner), so handlers ask the authorizer themselves (`Call::authorize`).

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::{BoxFuture, FutureExt};
use tonic::Status;
use tower::{Layer, Service};

use super::{AuthError, Authenticator, Authorizer, Principal};
use crate::audit::AuditSlot;

/// The result of authenticating a call, computed once by an outer layer (admission) and carried in the request's
/// extensions to this one.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Result<Principal, AuthError>);

#[derive(Clone)]
pub struct AuthLayer {
    authenticator: Arc<dyn Authenticator>,
    authorizer: Arc<dyn Authorizer>,
}

impl AuthLayer {
    pub fn new(authenticator: Arc<dyn Authenticator>, authorizer: Arc<dyn Authorizer>) -> Self {
        AuthLayer { authenticator, authorizer }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AuthService { inner, layer: self.clone() }
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
                request.extensions_mut().insert(self.layer.authorizer.clone());
                self.inner.call(request).boxed()
            }
            Err(status) => futures::future::ready(Ok(status.into_http())).boxed(),
        }
    }
}

impl<S> AuthService<S> {
    fn check<B>(&self, request: &http::Request<B>, slot: Option<&AuditSlot>) -> Result<Principal, Status> {
        let authenticated = match request.extensions().get::<Authenticated>() {
            Some(Authenticated(result)) => result.clone(),
            None => self.layer.authenticator.authenticate(request.headers(), request.extensions()),
        };
        let principal = authenticated.map_err(|err| {
            if let Some(slot) = slot {
                slot.set_authn(err.authn);
            }
            Status::unauthenticated(err.message)
        })?;
        if let Some(slot) = slot {
            slot.set_principal(principal.id(), principal.authn());
        }
        Ok(principal)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::auth::authenticator::PRINCIPAL_HEADER;
    use crate::auth::{Action, AuthzDecision, DevMetadataAuthenticator, Resource};

    struct AllowAll;
    impl Authorizer for AllowAll {
        fn authorize(&self, _: &Principal, _: Action, _: &Resource) -> AuthzDecision {
            AuthzDecision { allowed: true, reason: "test".into(), policy_ids: vec![] }
        }
    }

    /// Runs one request through the layer around a service that counts the calls reaching it with what a handler
    /// needs: the principal and the authorizer.
    async fn call(
        authorizer: Arc<dyn Authorizer>,
        principal: Option<&str>,
    ) -> (http::Response<String>, usize, AuditSlot) {
        let reached = Arc::new(AtomicUsize::new(0));
        let counter = reached.clone();
        let inner = tower::service_fn(move |req: http::Request<()>| {
            let extensions = req.extensions();
            if extensions.get::<Principal>().is_some() && extensions.get::<Arc<dyn Authorizer>>().is_some() {
                counter.fetch_add(1, Ordering::SeqCst);
            }
            futures::future::ready(Ok::<_, std::convert::Infallible>(http::Response::new(String::new())))
        });
        let mut service = AuthLayer::new(Arc::new(DevMetadataAuthenticator), authorizer).layer(inner);
        let slot = AuditSlot::open("GetCopy", None);
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
    async fn a_call_without_credentials_is_unauthenticated() {
        let (response, reached, slot) = call(Arc::new(AllowAll), None).await;
        assert_eq!(grpc_code(&response), Some(tonic::Code::Unauthenticated));
        assert_eq!(reached, 0);
        // The refusal's audit row says which means refused it, here loudly unauthenticated dev mode.
        assert_eq!(slot.snapshot().authn, "dev-metadata (UNAUTHENTICATED)");
    }

    #[tokio::test]
    async fn an_allowed_call_reaches_the_handler() {
        let (response, reached, slot) = call(Arc::new(AllowAll), Some("alice")).await;
        assert_eq!(grpc_code(&response), None);
        assert_eq!(reached, 1);
        assert_eq!(slot.snapshot().authn, "dev-metadata (UNAUTHENTICATED)");
    }
}
