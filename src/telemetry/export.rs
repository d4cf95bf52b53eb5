//! Exporting traces: the OTLP/gRPC exporter and tracer provider a running service owns, installed as
//! OpenTelemetry's global provider while it runs, flushed and removed when it stops.
//!
//! The provider belongs to the [`Application`](crate::startup::Application) rather than to the process's set-up
//! because it comes from the service's settings, and because its last spans must be flushed when the service
//! stops. It is nonetheless the process's global provider while it runs (the subscriber is process-wide): one
//! exporting service per process, which is what a deployment runs.

use std::time::Duration;

use anyhow::Context as _;
use opentelemetry::global;
use opentelemetry::trace::noop::NoopTracerProvider;
use opentelemetry_otlp::{SpanExporter, WithExportConfig, WithTonicConfig};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tonic::transport::{Certificate, ClientTlsConfig};
use tracing::{info, warn};

use super::TelemetrySettings;

/// How long one export may take before it is given up (the batch is then dropped, and the service goes on).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// A running trace exporter. Call [`Exporter::shutdown`] to flush what it holds; dropping it (a start that failed
/// half-way) stops exporting without waiting for that.
pub struct Exporter {
    /// `None` once shut down.
    provider: Option<SdkTracerProvider>,
}

impl Exporter {
    /// Starts exporting as `settings` say: `None`, with nothing installed, when no endpoint is set. Fails on
    /// settings that are wrong, naming the field. The exporter connects lazily: a collector that is not up yet
    /// costs the batches sent before it is, not the service's start.
    pub fn start(settings: &TelemetrySettings) -> anyhow::Result<Option<Exporter>> {
        settings.check().map_err(anyhow::Error::msg)?;
        let Some(endpoint) = &settings.otlp_endpoint else {
            return Ok(None);
        };
        let mut exporter =
            SpanExporter::builder().with_tonic().with_endpoint(endpoint.clone()).with_timeout(EXPORT_TIMEOUT);
        if endpoint.starts_with("https://") {
            exporter = exporter.with_tls_config(tls_config(settings)?);
        }
        let exporter = exporter.build().context("telemetry.otlp_endpoint: cannot build the OTLP exporter")?;
        // A caller's sampled flag decides for its trace; new traces are kept at the configured ratio.
        let sampler = Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(settings.sampling_ratio)));
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_sampler(sampler)
            .with_resource(Resource::builder().with_service_name(settings.service_name.clone()).build())
            .build();
        global::set_tracer_provider(provider.clone());
        super::set_exporting(true);
        info!(%endpoint, service_name = %settings.service_name, "exporting traces over OTLP");
        Ok(Some(Exporter { provider: Some(provider) }))
    }

    /// Stops exporting: spans that start from now on are no-ops, and the spans already ended are sent before this
    /// returns (or the export timeout passes).
    pub async fn shutdown(mut self) {
        super::set_exporting(false);
        global::set_tracer_provider(NoopTracerProvider::new());
        let Some(provider) = self.provider.take() else {
            return;
        };
        // The batch processor's own thread sends the last batch and the call waits for it: keep it off the
        // runtime's workers, which the gRPC exporter's connection needs.
        match tokio::task::spawn_blocking(move || provider.shutdown()).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => warn!(%err, "traces not exported at shutdown"),
            Err(err) => warn!(%err, "trace exporter shutdown did not finish"),
        }
    }
}

/// TLS to the collector: its certificate checked against `otlp_ca_file`, else against the system's trusted roots.
pub(super) fn tls_config(settings: &TelemetrySettings) -> anyhow::Result<ClientTlsConfig> {
    Ok(match &settings.otlp_ca_file {
        Some(file) => {
            let pem = std::fs::read_to_string(file)
                .with_context(|| format!("telemetry.otlp_ca_file: cannot read {}", file.display()))?;
            ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem))
        }
        None => ClientTlsConfig::new().with_native_roots(),
    })
}

impl Drop for Exporter {
    fn drop(&mut self) {
        if self.provider.take().is_some() {
            super::set_exporting(false);
            global::set_tracer_provider(NoopTracerProvider::new());
        }
    }
}
