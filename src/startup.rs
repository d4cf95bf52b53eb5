//! Builds the running service from its settings: database (migrated), Rekognition clients, watch hub,
//! dispatcher and gRPC server with its layers, in the order the data path needs them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;
use tower::ServiceBuilder;
use tracing::info;

use crate::api::ModelCopyService;
use crate::audit::AuditLayer;
use crate::auth::{self, AuthLayer, PolicyStore};
use crate::config::Settings;
use crate::dispatch::Dispatcher;
use crate::proto::model_copy_server::ModelCopyServer;
use crate::rekognition::Clients;
use crate::shutdown::{self, ShutdownTrigger};
use crate::store::{Role, Store};
use crate::telemetry::{Exporter, ServerSpanLayer};
use crate::watch::WatchHub;

/// A started service. Dropping it does not stop it: call [`Application::stop`].
pub struct Application {
    addr: SocketAddr,
    /// `https` when serving TLS.
    scheme: &'static str,
    store: Store,
    /// The authorization policies in force (reloaded while serving).
    policies: Arc<PolicyStore>,
    trigger: ShutdownTrigger,
    server: JoinHandle<Result<(), tonic::transport::Error>>,
    dispatcher: JoinHandle<()>,
    /// Exporting traces, when `[telemetry] otlp_endpoint` says where; flushed once serving and dispatching end.
    exporter: Option<Exporter>,
}

impl Application {
    /// Connects, migrates, binds `settings.listen_addr` (port 0 picks one) and starts serving and dispatching.
    pub async fn start(settings: Settings) -> anyhow::Result<Application> {
        // First: a service that cannot authenticate its callers must not start anything.
        let authenticator = auth::chain::from_settings(&settings.auth)?;
        // Likewise one with no valid policies: it would deny everything.
        let policies = PolicyStore::load(&settings.authz).map_err(|err| anyhow::anyhow!("authz: {err}"))?;
        // Before anything that makes spans, so that the first of them are exported too.
        let exporter = Exporter::start(&settings.telemetry)?;
        let mut builder = Server::builder();
        if let Some(tls) = &settings.auth.tls {
            builder = builder
                .tls_config(auth::tls::server_config(tls)?)
                .context("auth.tls: the certificate and key cannot serve TLS")?;
        }
        let timeout = Duration::from_millis(settings.database_timeout_ms);
        let store = Store::connect(&settings.database_url, settings.database_max_connections, timeout).await?;
        store.migrate().await?;
        let (trigger, shutdown) = shutdown::channel();

        let timeout = Duration::from_millis(settings.dispatch.aws_timeout_ms);
        let clients = Clients::from_settings(&settings.accounts, timeout).await;
        let hub = WatchHub::start(store.for_role(Role::Watch), shutdown.clone()).await?;

        let limits: std::collections::BTreeMap<_, _> =
            settings.accounts.iter().map(|(id, account)| (id.clone(), account.limits.clone())).collect();
        let dispatcher =
            Dispatcher::new(store.for_role(Role::Dispatch), clients, settings.dispatch.clone(), limits.clone());
        let dispatcher = if settings.dispatch.enabled {
            tokio::spawn(dispatcher.run(shutdown.clone()))
        } else {
            info!("dispatch disabled: this replica only serves the API");
            tokio::spawn(async {})
        };

        let layers = ServiceBuilder::new()
            .layer(ServerSpanLayer)
            .layer(AuditLayer::new(store.clone()))
            .layer(AuthLayer::new(authenticator, policies.clone()));
        let listener = TcpListener::bind(settings.listen_addr).await?;
        let addr = listener.local_addr()?;
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        let service = ModelCopyServer::new(ModelCopyService::new(store.clone(), hub, limits));
        policies.watch(shutdown.clone());
        let mut stop = shutdown.clone();
        let server = tokio::spawn(
            builder
                .layer(layers)
                .add_service(service)
                .serve_with_incoming_shutdown(incoming, async move { stop.wait().await }),
        );
        let scheme = if settings.auth.tls.is_some() { "https" } else { "http" };
        info!(%addr, scheme, "modelcopy serving");
        Ok(Application { addr, scheme, store, policies, trigger, server, dispatcher, exporter })
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
    /// flushes the traces still to export.
    pub async fn wait(self) -> anyhow::Result<()> {
        let served = self.server.await;
        self.trigger.fire();
        let _ = self.dispatcher.await;
        if let Some(exporter) = self.exporter {
            exporter.shutdown().await;
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
