//! Serving the simulator over HTTP, and the handle tests and the binary hold on to it.
//!
//! [`start`] binds first and serves in a spawned task, so the address is known (and connectable) as soon as it
//! returns. The server stops on [`SimHandle::shutdown`] or when the last handle is dropped — a test that forgets to
//! stop its simulator does not leave it running.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::admin;
use super::config::SimConfig;
use super::engine::Engine;
use super::observe::{CallRecord, Fault};
use super::protocol::respond;

/// A running simulator. Clones share it.
#[derive(Clone)]
pub struct SimHandle {
    engine: Arc<Engine>,
    local_addr: SocketAddr,
    stop: Arc<watch::Sender<bool>>,
    stopped: watch::Receiver<bool>,
}

/// Checks the seed, binds `config.listen` and serves until shut down.
pub async fn start(config: SimConfig) -> io::Result<SimHandle> {
    config
        .seed
        .validate()
        .map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err))?;
    let engine = Arc::new(Engine::new(&config));
    let listener = TcpListener::bind(config.listen).await?;
    let local_addr = listener.local_addr()?;
    let (stop, mut stop_requested) = watch::channel(false);
    let (stopped_tx, stopped) = watch::channel(false);

    let app = Router::new()
        .route("/", post(aws))
        .merge(admin::routes())
        .with_state(engine.clone());
    tokio::spawn(async move {
        // Resolves on shutdown() and also when every handle (and so the sender) is gone.
        let signal = async move {
            let _ = stop_requested.wait_for(|stop| *stop).await;
        };
        if let Err(err) = axum::serve(listener, app)
            .with_graceful_shutdown(signal)
            .await
        {
            tracing::error!(error = %err, "rekognition simulator stopped on an error");
        }
        tracing::info!(%local_addr, "rekognition simulator stopped");
        let _ = stopped_tx.send(true);
    });
    tracing::info!(%local_addr, "rekognition simulator listening");
    Ok(SimHandle {
        engine,
        local_addr,
        stop: Arc::new(stop),
        stopped,
    })
}

async fn aws(State(engine): State<Arc<Engine>>, headers: HeaderMap, body: Bytes) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    respond(&engine.handle(&headers, &body), &request_id)
}

impl SimHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://127.0.0.1:PORT`, for an SDK's `endpoint_url`.
    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// Every request received since the start (or the last reset), in arrival order.
    pub fn calls(&self) -> Vec<CallRecord> {
        self.engine.calls()
    }

    /// How many requests named `operation` were received (attempts, not SDK calls: retries count).
    pub fn call_count(&self, operation: &str) -> usize {
        self.engine.call_count(operation)
    }

    /// The next `count` calls of `operation` (optionally only for one account) fail with `error`
    /// (ThrottlingException / InternalServerError → 500, the others 400) before doing anything.
    pub fn inject_fault(&self, fault: Fault) {
        self.engine.inject_fault(fault);
    }

    /// Clears the call log and pending faults; the projects and versions stay.
    pub fn reset_observations(&self) {
        self.engine.reset_observations();
    }

    /// Stops accepting connections and lets requests in flight finish.
    pub fn shutdown(&self) {
        self.stop.send_replace(true);
    }

    /// Waits until the server has stopped (after [`SimHandle::shutdown`]).
    pub async fn stopped(&self) {
        let mut stopped = self.stopped.clone();
        let _ = stopped.wait_for(|stopped| *stopped).await;
    }
}
