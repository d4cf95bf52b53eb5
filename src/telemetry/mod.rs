//! All tracing set-up in one place: human-readable logs to stderr, filtered by `RUST_LOG`, and the same spans as
//! OpenTelemetry spans, exported over OTLP while an [`Exporter`] runs (`[telemetry] otlp_endpoint`).
//!
//! The subscriber is process-wide and installed once ([`init`]); its OpenTelemetry layer hands spans to
//! OpenTelemetry's *global* tracer provider as they start. The layer looks at nothing, and the provider does
//! nothing, until an [`Exporter`] installs the exporting provider; the same again after it shuts down. So logging is
//! set up before settings are read, exporting follows the settings of the service that runs, and a process that
//! does not export pays one atomic load per span or event.

mod export;
mod grpc_layer;
mod json;
pub mod metrics;
mod settings;
mod traceparent;

pub use export::Exporter;
pub use grpc_layer::{ServerSpanLayer, ServerSpanService};
pub use json::{JsonLines, LogFormat};
pub use settings::TelemetrySettings;
pub use traceparent::TraceParent;

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::global::{self, BoxedSpan};
use opentelemetry::trace::{SpanBuilder, Tracer};
use tracing::Level;
use tracing_subscriber::filter::{self, LevelFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;

/// The instrumentation scope the service's spans carry.
const SCOPE: &str = "modelcopy";

/// Whether an [`Exporter`] runs in this process.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Installs the global subscriber once; later calls (tests start many apps in one process) do nothing.
///
/// `RUST_LOG` (else `default_filter`) decides what is logged; while exporting, spans (and the events inside them)
/// at INFO and above are traced whatever it says, so that quieting the logs does not cut the traces.
pub fn init(default_filter: &str) {
    init_as(default_filter, LogFormat::Text);
}

/// [`init`], writing log lines in `format`.
pub fn init_as(default_filter: &str, format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let json = JsonLines::default();
    // Always added (a layer that only remembers its subscriber: tracing-subscriber's `Option` of a layer does not
    // pass the subscriber on), behind a filter that lets nothing through: unfiltered, a layer is interested in every
    // callsite, and every DEBUG and TRACE event of every crate would be built and offered to the filtered layers.
    let registrar = json.registrar().with_filter(LevelFilter::OFF);
    let logs = match format {
        LogFormat::Text => logs.boxed(),
        LogFormat::Json => logs.event_format(json).boxed(),
    }
    .with_filter(filter);
    // Asked at every span and event rather than once per call site, since exporting starts and stops.
    let exporting =
        filter::dynamic_filter_fn(|metadata, _| *metadata.level() <= Level::INFO && EXPORTING.load(Ordering::Relaxed))
            .with_max_level_hint(LevelFilter::INFO);
    let spans = tracing_opentelemetry::layer().with_tracer(GlobalTracer).with_filter(exporting);
    let _ = tracing_subscriber::registry().with(registrar).with(logs).with(spans).try_init();
}

fn set_exporting(on: bool) {
    EXPORTING.store(on, Ordering::Relaxed);
}

/// A tracer that asks for the global provider's tracer each time a span starts, rather than keeping the one that
/// was global when the subscriber was installed: the exporting provider comes and goes with the service.
#[derive(Debug, Clone, Copy)]
struct GlobalTracer;

impl Tracer for GlobalTracer {
    type Span = BoxedSpan;

    fn build_with_context(&self, builder: SpanBuilder, parent_cx: &opentelemetry::Context) -> BoxedSpan {
        global::tracer(SCOPE).build_with_context(builder, parent_cx)
    }
}
