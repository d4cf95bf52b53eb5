//! The outermost layer that decides anything: it establishes the caller (once: the result travels on to the
//! authentication layer in the request's extensions) and sheds what is over the limits, before the audit layer
//! opens the call's slot. A shed call is answered at once, from here.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::{BoxFuture, FutureExt};
use tower::{Layer, Service};

use super::{Admission, Caller};
use crate::audit::layer::peer_addr;
use crate::audit::HeldForTheCall;
use crate::auth::{Authenticated, Authenticator};

#[derive(Clone)]
pub struct AdmissionLayer {
    authenticator: Arc<dyn Authenticator>,
    admission: Arc<Admission>,
}

impl AdmissionLayer {
    pub fn new(authenticator: Arc<dyn Authenticator>, admission: Arc<Admission>) -> Self {
        AdmissionLayer { authenticator, admission }
    }
}

impl<S> Layer<S> for AdmissionLayer {
    type Service = AdmissionService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AdmissionService { inner, layer: self.clone() }
    }
}

#[derive(Clone)]
pub struct AdmissionService<S> {
    inner: S,
    layer: AdmissionLayer,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for AdmissionService<S>
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
        let authenticated = self.layer.authenticator.authenticate(request.headers(), request.extensions());
        let caller = match &authenticated {
            Ok(principal) => Caller::Principal(principal.id().to_owned()),
            Err(_) => Caller::Peer(peer_addr(request.extensions()).map(|addr| addr.ip())),
        };
        match self.layer.admission.admit(&caller) {
            Ok(permit) => {
                request.extensions_mut().insert(Authenticated(authenticated));
                // The place is the call's, not the caller's: the audit layer keeps it until the call has run to its
                // end, even when its caller has gone (a caller that gives up at once must not free the place of a
                // call still running).
                request.extensions_mut().insert(HeldForTheCall(Arc::new(permit)));
                self.inner.call(request).boxed()
            }
            Err(shed) => futures::future::ready(Ok(shed.status().into_http())).boxed(),
        }
    }
}
