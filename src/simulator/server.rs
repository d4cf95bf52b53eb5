//! Serving the simulator over HTTP, and the handle tests and the binary hold on to it.
//!
//! [`start`] binds first and serves in a spawned task, so the address is known (and connectable) as soon as it
//! returns. The server stops on [`SimHandle::shutdown`] or when the last handle is dropped — a test that forgets to
//! stop its simulator does not leave it running.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::admin;
use super::config::SimConfig;
use super::connection::{Connection, CuttableListener};
use super::engine::Engine;
use super::faults::{Fault, RandomFaults};
use super::observe::CallRecord;
use super::protocol::respond;
use super::quota::Quotas;
use super::signature::ReceivedRequest;
use super::stats::OperationStats;

/// A running simulator. Clones share it.
#[derive(Clone)]
pub struct SimHandle {
    engine: Arc<Engine>,
    local_addr: SocketAddr,
    stop: Arc<watch::Sender<bool>>,
    stopped: watch::Receiver<bool>,
}

/// Checks the configuration, binds `config.listen` and serves until shut down.
pub async fn start(config: SimConfig) -> io::Result<SimHandle> {
    let policies = config.validate().map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err))?;
    let engine = Arc::new(Engine::new(&config, &policies));
    let listener = TcpListener::bind(config.listen).await?;
    let local_addr = listener.local_addr()?;
    let (stop, mut stop_requested) = watch::channel(false);
    let (stopped_tx, stopped) = watch::channel(false);

    let app = Router::new().route("/", post(aws)).merge(admin::routes()).with_state(engine.clone());
    tokio::spawn(async move {
        // Resolves on shutdown() and also when every handle (and so the sender) is gone.
        let signal = async move {
            let _ = stop_requested.wait_for(|stop| *stop).await;
        };
        let service = app.into_make_service_with_connect_info::<Connection>();
        if let Err(err) = axum::serve(CuttableListener::new(listener), service).with_graceful_shutdown(signal).await {
            tracing::error!(error = %err, "rekognition simulator stopped on an error");
        }
        tracing::info!(%local_addr, "rekognition simulator stopped");
        let _ = stopped_tx.send(true);
    });
    tracing::info!(%local_addr, "rekognition simulator listening");
    Ok(SimHandle { engine, local_addr, stop: Arc::new(stop), stopped })
}

async fn aws(
    State(engine): State<Arc<Engine>>,
    ConnectInfo(connection): ConnectInfo<Connection>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let received = ReceivedRequest { method: &method, uri: &uri, headers: &headers, body: &body };
    if super::sts::is_sts(&received) {
        return super::sts::handle(&engine, &received, &request_id);
    }
    if let Some(held) = engine.transit_delay(&headers) {
        tokio::time::sleep(held).await;
    }
    let answer = engine.handle(&received);
    if !answer.latency.is_zero() {
        tokio::time::sleep(answer.latency).await;
    }
    if answer.close_connection {
        // The response below is never written: the cut connection fails the write and hyper closes it.
        connection.cut();
    }
    respond(&answer.result, &request_id)
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
    /// (ThrottlingException / InternalServerError → 500, the others 400) before doing anything — or have their
    /// connection dropped ([`Fault::DROPPED_CONNECTION`], [`Fault::DROPPED_RESPONSE`]).
    pub fn inject_fault(&self, fault: Fault) {
        self.engine.inject_fault(fault);
    }

    /// Holds the next calls of `operation` up in transit, one of `delays` each, before they arrive (are counted by
    /// the quotas and run): a request slowed on its way, which a client's pacing by send time cannot see.
    pub fn hold_in_transit(&self, operation: &str, delays: Vec<std::time::Duration>) {
        self.engine.hold_in_transit(operation, delays);
    }

    /// Clears the call log, the stats and pending injected faults; the world (projects, versions, policies), the
    /// quotas' buckets and the random fault settings stay.
    pub fn reset_observations(&self) {
        self.engine.reset_observations();
    }

    /// Per account and operation: calls received, throttles served (ProvisionedThroughputExceeded +
    /// LimitExceeded, counted separately), and the largest number of calls received in any sliding one-second
    /// window. Sorted by account, then operation.
    pub fn stats(&self) -> Vec<OperationStats> {
        self.engine.stats()
    }

    /// The quotas in force.
    pub fn quotas(&self) -> Quotas {
        self.engine.quotas()
    }

    /// Replaces the quotas; every token bucket starts full. Refuses a rate of zero.
    pub fn set_quotas(&self, quotas: Quotas) -> Result<(), String> {
        self.engine.set_quotas(quotas)
    }

    /// The random fault settings in force.
    pub fn random_faults(&self) -> RandomFaults {
        self.engine.random_faults()
    }

    /// Replaces the random fault settings. Refuses shares outside 0..1 or adding up to more than 1.
    pub fn set_random_faults(&self, faults: RandomFaults) -> Result<(), String> {
        self.engine.set_random_faults(faults)
    }

    /// Sets a version's status from now on (see [`Engine::set_version_status`]): a model started or stopped out of
    /// band.
    pub fn set_version_status(&self, arn: &str, status: &str) -> Result<(), String> {
        self.engine.set_version_status(arn, status)
    }

    /// How many projects the simulator holds (seeded and created).
    pub fn project_count(&self) -> usize {
        self.engine.project_count()
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
