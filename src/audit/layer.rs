//! The outermost tower layer: every call gets an audit slot, and its row is written before the answer leaves.

use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tonic::Status;
use tower::{Layer, Service};
use tracing::error;

use super::AuditSlot;
use crate::store::audit;
use crate::store::Store;

#[derive(Clone)]
pub struct AuditLayer {
    store: Store,
}

impl AuditLayer {
    pub fn new(store: Store) -> Self {
        AuditLayer { store }
    }
}

impl<S> Layer<S> for AuditLayer {
    type Service = AuditService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AuditService { inner, store: self.store.clone() }
    }
}

#[derive(Clone)]
pub struct AuditService<S> {
    inner: S,
    store: Store,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for AuditService<S>
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
        // Over TLS, tonic wraps the TCP connection's info in the TLS one.
        let extensions = request.extensions();
        let peer = extensions
            .get::<TcpConnectInfo>()
            .or_else(|| extensions.get::<TlsConnectInfo<TcpConnectInfo>>().map(|tls| tls.get_ref()))
            .and_then(|info| info.remote_addr())
            .map(|addr| addr.to_string());
        let path = request.uri().path();
        let rpc = path.rsplit('/').next().filter(|m| !m.is_empty()).unwrap_or(path).to_owned();
        let slot = AuditSlot::open(rpc, peer);
        request.extensions_mut().insert(slot.clone());

        // The clone that was polled ready is the one to call (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let store = self.store.clone();
        Box::pin(async move {
            let response = inner.call(request).await?;
            if slot.is_written() {
                return Ok(response);
            }
            // Errors travel in the headers of a trailers-only response; a call that succeeded, or a stream that
            // opened, says OK in its trailers later.
            let status = Status::from_header_map(response.headers());
            let record = match &status {
                Some(status) => slot.finish(status.code(), Some(status.message())),
                None => slot.finish(tonic::Code::Ok, None),
            };
            match audit::append(&store, &record).await {
                Ok(_) => Ok(response),
                Err(err) => {
                    error!(%err, rpc = %record.rpc, "cannot write the audit record; refusing to answer");
                    Ok(Status::unavailable("the audit log cannot be written right now; retry later").into_http())
                }
            }
        })
    }
}
