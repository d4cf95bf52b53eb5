//! The outermost tower layer: every call gets an audit slot, and its row is written before the answer leaves.
//!
//! Each call runs to its end in a task of its own, which writes the row; the caller's side only waits for that task.
//! Why: hyper drops a call's future when the client resets the stream, and tonic drops it when the call's deadline
//! passes. Run in the caller's future, such a call stopped wherever it was and left no row at all, not even for a
//! refusal. In its own task it finishes what it started (a copy it was creating is created, which a retry with the
//! same idempotency token finds), and its row says the caller was gone. A handler that panics is answered INTERNAL,
//! and that is on record too.

use std::panic::AssertUnwindSafe;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use futures::FutureExt;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tonic::Status;
use tower::{Layer, Service};
use tracing::{error, Instrument};

use super::AuditSlot;
use crate::store::audit;
use crate::store::Store;

/// Something an outer layer needs kept for as long as the call runs, not only as long as its caller waits (admission's
/// place for the call among the replica's calls at once): the call's task holds it to its end.
#[derive(Clone)]
pub struct HeldForTheCall(pub std::sync::Arc<dyn std::any::Any + Send + Sync>);

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
        let peer = peer_addr(request.extensions()).map(|addr| addr.to_string());
        let path = request.uri().path();
        let rpc = path.rsplit('/').next().filter(|m| !m.is_empty()).unwrap_or(path).to_owned();
        let slot = AuditSlot::open(rpc, peer);
        request.extensions_mut().insert(slot.clone());

        // The clone that was polled ready is the one to call (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let store = self.store.clone();
        let caller = CallerGone::watch(slot.clone());
        let held = request.extensions().get::<HeldForTheCall>().cloned();
        let call = async move {
            let _held = held;
            let response = match AssertUnwindSafe(inner.call(request)).catch_unwind().await {
                Ok(response) => response?,
                Err(_) => {
                    // The panic itself is logged by the panic hook, with its message and place.
                    error!(rpc = %slot.rpc(), "the handler panicked; answering INTERNAL");
                    Status::internal("the service failed while handling this call").into_http()
                }
            };
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
        };
        let task = tokio::spawn(call.in_current_span());
        Box::pin(async move {
            let finished = task.await;
            caller.answered();
            finished.unwrap_or_else(|err| {
                // Not a panic (caught above): the runtime is shutting down under the call.
                error!(%err, "a call's task ended before it answered");
                Ok(Status::unavailable("the service is shutting down; retry").into_http())
            })
        })
    }
}

/// The client's address, as tonic gives it (over TLS it wraps the TCP connection's info in its own).
pub fn peer_addr(extensions: &http::Extensions) -> Option<std::net::SocketAddr> {
    extensions
        .get::<TcpConnectInfo>()
        .or_else(|| extensions.get::<TlsConnectInfo<TcpConnectInfo>>().map(|tls| tls.get_ref()))
        .and_then(|info| info.remote_addr())
}

/// Marks the call's slot when the caller's side of it is dropped before the answer: the client reset the stream, or
/// its deadline passed.
struct CallerGone {
    slot: Option<AuditSlot>,
}

impl CallerGone {
    fn watch(slot: AuditSlot) -> Self {
        CallerGone { slot: Some(slot) }
    }

    fn answered(mut self) {
        self.slot = None;
    }
}

impl Drop for CallerGone {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            slot.set_caller_gone();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::time::Duration;

    use super::*;
    use crate::devenv::{test_cluster, unique_db_name};
    use crate::store::audit::grpc_code;

    async fn store() -> (Store, sqlx::PgPool) {
        let url = test_cluster().await.create_database(&unique_db_name("audit_layer")).await.expect("a database");
        let pool = sqlx::PgPool::connect(&url).await.expect("connects");
        let store = Store::from_pool(pool.clone());
        store.migrate().await.expect("migrates");
        (store, pool)
    }

    fn request() -> http::Request<()> {
        http::Request::builder().uri("/modelcopy.v1.ModelCopy/GetCopy").body(()).unwrap()
    }

    /// The rows written for GetCopy: (gRPC code, reason).
    async fn rows(pool: &sqlx::PgPool) -> Vec<(String, Option<String>)> {
        sqlx::query_as("SELECT grpc_code, reason FROM audit_log WHERE rpc = 'GetCopy' ORDER BY id")
            .fetch_all(pool)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_handler_that_panics_is_answered_internal_and_audited_once() {
        let (store, pool) = store().await;
        let panics = tower::service_fn(|_: http::Request<()>| async {
            if true {
                panic!("a bug in a handler");
            }
            Ok::<http::Response<String>, Infallible>(http::Response::default())
        });
        let mut service = AuditLayer::new(store.clone()).layer(panics);
        let response = service.call(request()).await.expect("answered, not propagated");
        let status = Status::from_header_map(response.headers()).expect("an error status");
        assert_eq!(status.code(), tonic::Code::Internal);
        let rows = rows(&pool).await;
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0].0, grpc_code::stored_name(tonic::Code::Internal));
    }

    #[tokio::test]
    async fn a_call_whose_caller_goes_away_still_finishes_and_is_audited_once() {
        let (store, pool) = store().await;
        let (finish, finished) = tokio::sync::oneshot::channel::<()>();
        let finished = std::sync::Arc::new(tokio::sync::Mutex::new(Some(finished)));
        let slow = tower::service_fn(move |_: http::Request<()>| {
            let finished = finished.clone();
            async move {
                // Held until the test says so: the caller gives up first.
                if let Some(finished) = finished.lock().await.take() {
                    let _ = finished.await;
                }
                Ok::<_, Infallible>(Status::not_found("no copy 1").into_http::<String>())
            }
        });
        let mut service = AuditLayer::new(store.clone()).layer(slow);
        // The caller's side dropped, as hyper drops it on a reset and tonic when the deadline passes.
        let gave_up = tokio::time::timeout(Duration::from_millis(100), service.call(request())).await;
        assert!(gave_up.is_err(), "the call was still running");
        finish.send(()).unwrap();
        let mut written = Vec::new();
        for _ in 0..100 {
            written = rows(&pool).await;
            if !written.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(written.len(), 1, "one row for the call, written after the caller left: {written:?}");
        let (code, reason) = &written[0];
        assert_eq!(code, grpc_code::stored_name(tonic::Code::NotFound));
        let reason = reason.as_deref().unwrap_or_default();
        assert!(reason.starts_with("no copy 1; ") && reason.ends_with(crate::audit::slot::CALLER_GONE), "{reason}");
    }
}
