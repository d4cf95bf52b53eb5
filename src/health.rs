//! `grpc.health.v1` and server reflection: what load balancers, Kubernetes probes and `grpcurl` ask a gRPC service.
//!
//! Both are served outside the admission, audit and authorization layers: they reveal nothing about copies, and a
//! probe every few seconds must neither need credentials nor write an audit row each time (nor be shed as a flood).
//!
//! The health of `modelcopy.v1.ModelCopy` (and of the server as a whole, the empty service name) is SERVING while the
//! database answers within `database_timeout_ms` and, on a replica that dispatches, the dispatcher runs; NOT_SERVING
//! otherwise. It is checked every `database_timeout_ms`, so a probe reads the last verdict at once. [`LIVENESS`] is
//! SERVING for as long as the replica runs. With `health_listen_addr`, health alone is also served in plaintext on a
//! port of its own, for probes that speak no TLS (`startup`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;
use tracing::warn;

use crate::shutdown::Shutdown;
use crate::store::Store;

/// The service whose health is reported, as clients name it: what a readiness probe asks.
pub const SERVICE: &str = "modelcopy.v1.ModelCopy";

/// What a liveness probe asks: SERVING from start-up until the replica stops, whatever the database does. Why
/// apart: a liveness probe on [`SERVICE`] would have Kubernetes restart every replica while PostgreSQL is away,
/// which brings it back no sooner; a replica out of reach of its database is not ready, not dead.
pub const LIVENESS: &str = "liveness";

/// Whether this replica can do its work now. `dispatching`: whether its dispatcher runs, on a replica that
/// dispatches.
pub async fn status(store: &Store, dispatching: Option<&AtomicBool>) -> ServingStatus {
    let timeout = store.timeout();
    let database = tokio::time::timeout(timeout, store.ping()).await;
    if !matches!(database, Ok(Ok(()))) {
        return ServingStatus::NotServing;
    }
    match dispatching {
        Some(running) if !running.load(Ordering::Relaxed) => ServingStatus::NotServing,
        _ => ServingStatus::Serving,
    }
}

/// Keeps `reporter` up to date until `shutdown`, then reports NOT_SERVING (a stopping replica takes no new calls).
pub async fn report(
    reporter: HealthReporter,
    store: Store,
    dispatching: Option<Arc<AtomicBool>>,
    mut shutdown: Shutdown,
) {
    let every = store.timeout().max(Duration::from_millis(100));
    reporter.set_service_status(LIVENESS, ServingStatus::Serving).await;
    let mut last = None;
    loop {
        let now = status(&store, dispatching.as_deref()).await;
        if last != Some(now) {
            if now == ServingStatus::NotServing {
                warn!("health: NOT_SERVING (the database does not answer in time, or dispatch has stopped)");
            }
            reporter.set_service_status(SERVICE, now).await;
            reporter.set_service_status("", now).await;
            last = Some(now);
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.wait() => break,
        }
    }
    for service in [SERVICE, "", LIVENESS] {
        reporter.set_service_status(service, ServingStatus::NotServing).await;
    }
}
