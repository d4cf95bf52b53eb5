//! Builds the running service from its settings: database (migrated), Rekognition clients, watch hub,
//! dispatcher and gRPC server with its layers, in the order the data path needs them.

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt as _;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::server::NamedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;
use tower::ServiceBuilder;
use tracing::{info, warn};

use crate::admission::{Admission, AdmissionLayer};
use crate::api::ModelCopyService;
use crate::audit::AuditLayer;
use crate::auth::{self, AuthLayer, PolicyStore};
use crate::config::Settings;
use crate::dispatch::Dispatcher;
use crate::health;
use crate::proto::model_copy_server::ModelCopyServer;
use crate::rekognition::Clients;
use crate::shutdown::{self, ShutdownTrigger};
use crate::store::{Role, Store};
use crate::telemetry::{Exporter, ServerSpanLayer};
use crate::watch::WatchHub;

/// The API's server wrapped in its layers, still named as the API for the router (a layered service has no name of
/// its own), so that the layers apply to the API alone.
#[derive(Clone)]
struct Layered<S>(S);

impl<S> NamedService for Layered<S> {
    const NAME: &'static str = <ModelCopyServer<ModelCopyService> as NamedService>::NAME;
}

impl<S, R> tower::Service<R> for Layered<S>
where
    S: tower::Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        self.0.call(request)
    }
}

/// A started service. Dropping it does not stop it: call [`Application::stop`].
pub struct Application {
    addr: SocketAddr,
    /// `health_listen_addr` as bound.
    health_addr: Option<SocketAddr>,
    /// `https` when serving TLS.
    scheme: &'static str,
    store: Store,
    /// The authorization policies in force (reloaded while serving).
    policies: Arc<PolicyStore>,
    trigger: ShutdownTrigger,
    /// How long a stop waits for clients before closing their connections (`shutdown_grace_ms`).
    grace: Duration,
    server: JoinHandle<Result<(), tonic::transport::Error>>,
    dispatcher: JoinHandle<()>,
    /// Exporting traces, when `[telemetry] otlp_endpoint` says where; flushed once serving and dispatching end.
    exporter: Option<Exporter>,
    /// The process's metrics pipeline, when this service installed it.
    metrics: Option<crate::telemetry::metrics::Pipeline>,
}

impl Application {
    /// Connects, migrates, binds `settings.listen_addr` (port 0 picks one) and starts serving and dispatching.
    pub async fn start(settings: Settings) -> anyhow::Result<Application> {
        // First: a service that cannot authenticate its callers must not start anything.
        let auth::chain::Authentication { authenticator, jwks } = auth::chain::from_settings(&settings.auth)?;
        // Likewise one with no valid policies: it would deny everything.
        let policies = PolicyStore::load(&settings.authz).map_err(|err| anyhow::anyhow!("authz: {err}"))?;
        // Before anything that makes spans, so that the first of them are exported too.
        let exporter = Exporter::start(&settings.telemetry)?;
        // Calls that bring no shorter deadline get this one (`request_timeout_ms`).
        let builder = Server::builder()
            .timeout(Duration::from_millis(settings.request_timeout_ms))
            // Browsers speak HTTP/1.1 to a plaintext port (gRPC clients still get HTTP/2).
            .accept_http1(settings.web.needs_http1());
        let tls = settings.auth.tls.as_ref().map(auth::tls::acceptor).transpose()?;
        let timeout = Duration::from_millis(settings.database_timeout_ms);
        let statement_timeout = Duration::from_millis(settings.statement_timeout_ms);
        let store =
            Store::connect(&settings.database_url, settings.database_max_connections, timeout, statement_timeout)
                .await?;
        store.migrate().await?;
        let (trigger, shutdown) = shutdown::channel();
        // The process's metrics pipeline (the first service of a process installs it), and the per-account figures
        // it reports, read from the database.
        let metrics = crate::telemetry::metrics::Pipeline::start(&settings.telemetry, shutdown.clone()).await?;
        if metrics.is_some() {
            tokio::spawn(crate::telemetry::metrics::sample_accounts(store.clone(), shutdown.clone()));
        }

        let timeout = Duration::from_millis(settings.dispatch.aws_timeout_ms);
        let clients = Clients::from_settings(&settings.accounts, timeout).await;
        let hub = WatchHub::start(
            store.for_role(Role::Watch),
            shutdown.clone(),
            crate::api::convert::encoded_event,
            settings.watch.stream_buffer,
        )
        .await?;
        tokio::spawn(crate::watch::retention::keep_pruning(store.clone(), settings.watch.clone(), shutdown.clone()));

        let limits: std::collections::BTreeMap<_, _> =
            settings.accounts.iter().map(|(id, account)| (id.clone(), account.limits.clone())).collect();
        let dispatcher =
            Dispatcher::new(store.for_role(Role::Dispatch), clients.clone(), settings.dispatch.clone(), limits.clone());
        let dispatching = settings.dispatch.enabled.then(|| Arc::new(AtomicBool::new(false)));
        let dispatcher = match &dispatching {
            Some(running) => tokio::spawn(crate::dispatch::supervise::keep_dispatching(
                dispatcher,
                running.clone(),
                shutdown.clone(),
            )),
            None => {
                info!("dispatch disabled: this replica only serves the API");
                tokio::spawn(async {})
            }
        };

        let admission = Admission::new(&settings.admission);
        let layers = ServiceBuilder::new()
            .layer(ServerSpanLayer)
            .layer(AdmissionLayer::new(authenticator.clone(), admission.clone()))
            .layer(AuditLayer::new(store.clone()))
            .layer(AuthLayer::new(authenticator, policies.clone()));
        let listener = TcpListener::bind(settings.listen_addr).await?;
        let addr = listener.local_addr()?;
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        let preflight = crate::preflight::Preflight::new(store.clone(), clients.clone(), settings.preflight.clone());
        let service =
            ModelCopyServer::new(ModelCopyService::new(store.clone(), hub, limits, admission.clone(), preflight));
        // The API behind its layers; health and reflection beside it, without them (see `health`).
        let api = Layered(layers.service(service));
        let (reporter, health) = tonic_health::server::health_reporter();
        tokio::spawn(health::report(reporter, store.clone(), dispatching, shutdown.clone()));
        // Both versions of the reflection service: v1, and v1alpha, which many clients still ask (Python's
        // grpcio-reflection among them; grpcurl falls back to it).
        let reflecting = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        let reflection = reflecting().build_v1().context("the API's descriptors for reflection")?;
        let reflection_v1alpha = reflecting().build_v1alpha().context("the API's descriptors for reflection")?;
        // `grpc.health.v1` alone, in plaintext, when `health_listen_addr` says where (Kubernetes' probes).
        let health_addr = match settings.health_listen_addr {
            Some(addr) => {
                let listener = TcpListener::bind(addr).await.with_context(|| format!("health_listen_addr {addr}"))?;
                let bound = listener.local_addr()?;
                let mut stop = shutdown.clone();
                tokio::spawn(
                    Server::builder()
                        .add_service(health.clone())
                        .serve_with_incoming_shutdown(TcpIncoming::from(listener), async move { stop.wait().await }),
                );
                info!(addr = %bound, "grpc.health.v1 served alone, in plaintext");
                Some(bound)
            }
            None => None,
        };
        policies.watch(shutdown.clone());
        if let Some(jwks) = &jwks {
            jwks.watch(shutdown.clone());
        }
        let mut stop = shutdown.clone();
        let router = builder
            .layer(crate::web::layers(&settings.web))
            .add_service(api)
            .add_service(health)
            .add_service(reflection)
            .add_service(reflection_v1alpha);
        let stopped = async move { stop.wait().await };
        // Either way HTTP/2 writes to a gathered connection (`connection`).
        let server = match tls {
            Some(acceptor) => {
                let incoming = crate::connection::tls(incoming, acceptor, auth::tls::HANDSHAKE_TIMEOUT);
                tokio::spawn(router.serve_with_incoming_shutdown(incoming, stopped))
            }
            None => {
                let incoming = incoming.map(|accepted| accepted.map(crate::connection::Gathered));
                tokio::spawn(router.serve_with_incoming_shutdown(incoming, stopped))
            }
        };
        let scheme = if settings.auth.tls.is_some() { "https" } else { "http" };
        info!(%addr, scheme, "modelcopy serving");
        let grace = Duration::from_millis(settings.shutdown_grace_ms);
        Ok(Application {
            addr,
            health_addr,
            scheme,
            store,
            policies,
            trigger,
            grace,
            server,
            dispatcher,
            exporter,
            metrics,
        })
    }

    /// Where Prometheus scrapes `/metrics` (`[telemetry] metrics_listen_addr`), if this service serves it.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|metrics| metrics.scrape_addr)
    }

    /// Where `grpc.health.v1` alone is served in plaintext (`health_listen_addr`), if anywhere.
    pub fn health_addr(&self) -> Option<SocketAddr> {
        self.health_addr
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL clients connect to, `https://…` when serving TLS.
    pub fn endpoint(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The authorization policies: what is in force, and [`PolicyStore::status`] to follow reloads.
    pub fn policies(&self) -> &Arc<PolicyStore> {
        &self.policies
    }

    /// A handle that stops the service from elsewhere (a signal handler).
    pub fn shutdown_trigger(&self) -> ShutdownTrigger {
        self.trigger.clone()
    }

    /// Runs until the server ends (after a shutdown, or on a fatal error), then waits for the dispatcher, then
    /// flushes the traces still to export. Once a shutdown is fired, clients get the grace period to finish; then
    /// the server is stopped with their connections. Why: a graceful stop waits for every open call, and a watch
    /// stream whose client stopped reading never finishes (its data waits on the client's flow-control window), so
    /// one such client held the replica up for ever.
    pub async fn wait(self) -> anyhow::Result<()> {
        let Application { trigger, grace, mut server, dispatcher, exporter, metrics, .. } = self;
        let mut fired = trigger.subscribe();
        let served = tokio::select! {
            served = &mut server => served,
            _ = fired.wait() => match tokio::time::timeout(grace, &mut server).await {
                Ok(served) => served,
                Err(_) => {
                    warn!(?grace, "clients still held calls open after the shutdown grace; closing their connections");
                    server.abort();
                    Ok(Ok(()))
                }
            },
        };
        trigger.fire();
        let _ = dispatcher.await;
        if let Some(exporter) = exporter {
            exporter.shutdown().await;
        }
        if let Some(metrics) = metrics {
            metrics.shutdown().await;
        }
        served??;
        Ok(())
    }

    /// Stops serving and dispatching, and waits for both.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.trigger.fire();
        self.wait().await
    }
}
