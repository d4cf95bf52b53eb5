//! Metrics, through OpenTelemetry's metrics API: exported over OTLP to the collector that gets the traces
//! (`[telemetry] otlp_endpoint`), and served for Prometheus to scrape on a port of their own
//! (`[telemetry] metrics_listen_addr`, off by default). Names and units follow OpenTelemetry's semantic conventions
//! (`rpc.server.call.duration` in seconds); the service's own are under `modelcopy.`.
//!
//! The instruments are the process's ([`instruments`]), as the tracing subscriber is: code records into them
//! wherever it is, without a handle passed down to it. The pipeline that reads them is installed once per process,
//! by the first service that starts ([`Pipeline::start`]); without one, recording costs a no-op call. Why process
//! wide: a deployment runs one service per process, and instruments threaded through every component would be a
//! parameter of every constructor for nothing.
//!
//! Per-account figures (queue depth, oldest queued copy, copies in progress) are gauges read from PostgreSQL every
//! few seconds by [`sample_accounts`], not counted in process: every replica reports the account as the database
//! has it, whichever replica leads it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use opentelemetry::metrics::{Counter, Histogram, Meter, UpDownCounter};
use opentelemetry::{global, KeyValue};
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::Resource;
use tracing::{info, warn};

use super::TelemetrySettings;
use crate::shutdown::Shutdown;
use crate::store::Store;

/// Seconds buckets for what takes milliseconds to minutes (calls, waits, commits).
const SECONDS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];
/// Seconds buckets for a copy's life: seconds to a day.
const COPY_SECONDS: &[f64] =
    &[1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0];

/// Every instrument the service records into.
pub struct Instruments {
    /// `rpc.server.call.duration`: from a call's arrival to its answer (a stream: to its opening), by
    /// `rpc.method` and `rpc.grpc.status_code`.
    pub rpc_duration: Histogram<f64>,
    /// `modelcopy.rekognition.calls`: calls to Rekognition by `aws.operation`, `account` and `outcome` (`ok`,
    /// `throttled`, `error`, with `error.type` the AWS error code).
    pub rekognition_calls: Counter<u64>,
    /// `modelcopy.limiter.wait`: how long a call waited for its account's pace, by `aws.operation`.
    pub limiter_wait: Histogram<f64>,
    /// `modelcopy.copies.ended`: copies that reached a final state, by `account` and `state`.
    pub copies_ended: Counter<u64>,
    /// `modelcopy.copy.duration`: from a copy's request to its final state, by `account` and `state`.
    pub copy_duration: Histogram<f64>,
    /// `modelcopy.audit.commit.duration`: one group commit of audited writes, from its first statement to its commit.
    pub audit_commit_duration: Histogram<f64>,
    /// `modelcopy.audit.commit.size`: the calls' writes in one group commit.
    pub audit_commit_size: Histogram<u64>,
    /// `modelcopy.watch.streams`: WatchCopy streams open on this replica.
    pub watch_streams: UpDownCounter<i64>,
}

impl Instruments {
    fn new(meter: &Meter) -> Instruments {
        let seconds = |name: &'static str, description: &'static str, buckets: &[f64]| {
            meter
                .f64_histogram(name)
                .with_unit("s")
                .with_description(description)
                .with_boundaries(buckets.to_vec())
                .build()
        };
        let instruments = Instruments {
            rpc_duration: seconds("rpc.server.call.duration", "gRPC calls served, arrival to answer", SECONDS),
            rekognition_calls: meter
                .u64_counter("modelcopy.rekognition.calls")
                .with_unit("{call}")
                .with_description("Calls to Rekognition, by operation and outcome (throttles included)")
                .build(),
            limiter_wait: seconds("modelcopy.limiter.wait", "Waits for an account's pace before a call", SECONDS),
            copies_ended: meter
                .u64_counter("modelcopy.copies.ended")
                .with_unit("{copy}")
                .with_description("Copies that reached a final state")
                .build(),
            copy_duration: seconds("modelcopy.copy.duration", "A copy's request to its final state", COPY_SECONDS),
            audit_commit_duration: seconds(
                "modelcopy.audit.commit.duration",
                "One group commit of audited writes",
                SECONDS,
            ),
            audit_commit_size: meter
                .u64_histogram("modelcopy.audit.commit.size")
                .with_unit("{call}")
                .with_description("Calls' writes in one group commit")
                .with_boundaries(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0])
                .build(),
            watch_streams: meter
                .i64_up_down_counter("modelcopy.watch.streams")
                .with_unit("{stream}")
                .with_description("WatchCopy streams open")
                .build(),
        };
        let gauge = |name: &'static str, unit: &'static str, description: &'static str, read: fn(&Sample) -> f64| {
            meter
                .f64_observable_gauge(name)
                .with_unit(unit)
                .with_description(description)
                .with_callback(move |observer| {
                    for (account, sample) in accounts().lock().unwrap_or_else(|p| p.into_inner()).iter() {
                        observer.observe(read(sample), &[KeyValue::new("account", account.clone())]);
                    }
                })
                .build()
        };
        // Kept alive by the meter provider, which calls them at each collection.
        let _ = gauge("modelcopy.queue.depth", "{copy}", "Copies queued, per destination account", |s| s.queued);
        let _ = gauge("modelcopy.queue.oldest_age", "s", "Age of the oldest queued copy, per account", |s| s.oldest);
        let _ = gauge("modelcopy.copies.in_progress", "{copy}", "Copies submitted and not ended", |s| s.in_progress);
        instruments
    }
}

/// The process's instruments. Made at first use from the global meter provider: after [`Pipeline::start`] in a
/// service, no-ops in a process that never starts one.
pub fn instruments() -> &'static Instruments {
    static INSTRUMENTS: OnceLock<Instruments> = OnceLock::new();
    INSTRUMENTS.get_or_init(|| Instruments::new(&global::meter(super::SCOPE)))
}

/// One open WatchCopy stream, counted in `modelcopy.watch.streams` until it is dropped with the stream.
pub struct OpenStream(());

impl OpenStream {
    #[allow(clippy::new_without_default)]
    pub fn new() -> OpenStream {
        instruments().watch_streams.add(1, &[]);
        OpenStream(())
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        instruments().watch_streams.add(-1, &[]);
    }
}

/// One account's figures, as last read.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    queued: f64,
    oldest: f64,
    in_progress: f64,
}

fn accounts() -> &'static Mutex<BTreeMap<String, Sample>> {
    static ACCOUNTS: OnceLock<Mutex<BTreeMap<String, Sample>>> = OnceLock::new();
    ACCOUNTS.get_or_init(Default::default)
}

/// How often the per-account gauges are read from the database.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(2);

/// Reads every account's queue and copies in progress every [`SAMPLE_EVERY`] into the gauges, until `shutdown`.
pub async fn sample_accounts(store: Store, mut shutdown: Shutdown) {
    let mut ticker = tokio::time::interval(SAMPLE_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.wait() => return,
        }
        let read = tokio::time::timeout(store.timeout(), crate::store::jobs::account_figures(&store)).await;
        match read {
            Ok(Ok(figures)) => {
                let mut accounts = accounts().lock().unwrap_or_else(|p| p.into_inner());
                accounts.clear();
                for figure in figures {
                    let sample = Sample {
                        queued: figure.queued as f64,
                        oldest: figure.oldest_queued_age.as_secs_f64(),
                        in_progress: figure.in_progress as f64,
                    };
                    accounts.insert(figure.account, sample);
                }
            }
            Ok(Err(err)) => warn!(%err, "cannot read the accounts' figures for the metrics"),
            Err(_) => warn!("the accounts' figures for the metrics took too long to read"),
        }
    }
}

/// The metrics pipeline of the process: the meter provider, and where Prometheus scrapes it.
pub struct Pipeline {
    provider: SdkMeterProvider,
    /// Where `/metrics` is served, if it is.
    pub scrape_addr: Option<SocketAddr>,
}

impl Pipeline {
    /// Installs the process's meter provider as `settings` say: a Prometheus endpoint on `metrics_listen_addr`
    /// and OTLP export to `otlp_endpoint`, each when set. `None` when neither is, or when another service of this
    /// process claimed the pipeline first (tests start many services in one; the first one's settings hold; a
    /// start that fails after claiming ends its service, and the process with it in a deployment).
    pub async fn start(settings: &TelemetrySettings, shutdown: Shutdown) -> anyhow::Result<Option<Pipeline>> {
        // Claimed in one step, so that two services starting at once cannot both install one.
        static CLAIMED: AtomicBool = AtomicBool::new(false);
        if settings.metrics_listen_addr.is_none() && settings.otlp_endpoint.is_none() {
            return Ok(None);
        }
        if CLAIMED.swap(true, Ordering::AcqRel) {
            warn!("a metrics pipeline already runs in this process; this service's metrics settings are not applied");
            return Ok(None);
        }
        let resource = Resource::builder().with_service_name(settings.service_name.clone()).build();
        let mut provider = SdkMeterProvider::builder().with_resource(resource);
        let mut scrape = None;
        if let Some(addr) = settings.metrics_listen_addr {
            let registry = prometheus::Registry::new();
            let exporter = opentelemetry_prometheus::exporter()
                .with_registry(registry.clone())
                .build()
                .context("the Prometheus exporter")?;
            provider = provider.with_reader(exporter);
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("telemetry.metrics_listen_addr {addr}"))?;
            scrape = Some((listener.local_addr()?, registry, listener));
        }
        if let Some(endpoint) = &settings.otlp_endpoint {
            let mut exporter = opentelemetry_otlp::MetricExporter::builder().with_tonic();
            exporter = opentelemetry_otlp::WithExportConfig::with_endpoint(exporter, endpoint.clone());
            if endpoint.starts_with("https://") {
                exporter = opentelemetry_otlp::WithTonicConfig::with_tls_config(
                    exporter,
                    super::export::tls_config(settings)?,
                );
            }
            let exporter =
                exporter.build().context("telemetry.otlp_endpoint: cannot build the OTLP metrics exporter")?;
            let every = Duration::from_millis(settings.metrics_export_interval_ms);
            provider = provider.with_reader(PeriodicReader::builder(exporter).with_interval(every).build());
        }
        let provider = provider.build();
        global::set_meter_provider(provider.clone());
        // Made now, on this provider: the gauges are registered with the instruments, and a scrape before the first
        // call must show them too.
        let _ = instruments();
        let scrape_addr = scrape.as_ref().map(|(addr, ..)| *addr);
        if let Some((addr, registry, listener)) = scrape {
            tokio::spawn(serve_scrapes(listener, registry, shutdown));
            info!(%addr, "metrics served for Prometheus at /metrics");
        }
        Ok(Some(Pipeline { provider, scrape_addr }))
    }

    /// Sends what OTLP has not sent yet, and stops.
    pub async fn shutdown(self) {
        let provider = self.provider;
        match tokio::task::spawn_blocking(move || provider.shutdown()).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => warn!(%err, "metrics not exported at shutdown"),
            Err(err) => warn!(%err, "metrics exporter shutdown did not finish"),
        }
    }
}

/// `GET /metrics` in Prometheus' text format, until `shutdown`.
async fn serve_scrapes(listener: tokio::net::TcpListener, registry: prometheus::Registry, mut shutdown: Shutdown) {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let registry = registry.clone();
            async move {
                let mut text = String::new();
                match prometheus::TextEncoder::new().encode_utf8(&registry.gather(), &mut text) {
                    Ok(()) => (http::StatusCode::OK, [(http::header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], text),
                    Err(err) => (
                        http::StatusCode::INTERNAL_SERVER_ERROR,
                        [(http::header::CONTENT_TYPE, "text/plain")],
                        err.to_string(),
                    ),
                }
            }
        }),
    );
    let served = axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.wait().await }).await;
    if let Err(err) = served {
        warn!(%err, "the metrics endpoint stopped");
    }
}
