//! Log lines as JSON, one object a line, for log pipelines: each carries the trace and span ids of the span it
//! happened in, so that a line leads to its trace and a trace to its lines.
//!
//! Ids come from the OpenTelemetry layer's span (a caller's `traceparent` makes it that trace's): present while
//! spans are traced (an [`super::Exporter`] runs), absent otherwise. Why not tracing-subscriber's own JSON format:
//! it knows `tracing`'s span ids, which are process-local numbers, not the trace's.

use std::fmt;
use std::sync::{Arc, OnceLock};

use opentelemetry::trace::TraceContextExt;
use serde_json::{Map, Value};
use tracing::dispatcher::WeakDispatch;
use tracing::field::{Field, Visit};
use tracing::{Dispatch, Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::Layer;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Registry;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// For a terminal: one readable line an event.
    #[default]
    Text,
    /// One JSON object a line, with the trace's ids.
    Json,
}

/// The JSON line of an event: `timestamp`, `level`, `target`, `message` and its other fields, the enclosing
/// `spans` (outermost first), and `trace_id` / `span_id` when the span is traced.
///
/// The ids are read through the subscriber the lines are written for, which [`JsonLines::registrar`] (a layer of
/// that subscriber) makes known: while an event is dispatched, `tracing`'s lookup of the current subscriber answers
/// none at all (it guards against re-entry), so the span's OpenTelemetry data cannot be found that way.
#[derive(Clone, Default)]
pub struct JsonLines {
    subscriber: Arc<OnceLock<WeakDispatch>>,
}

impl JsonLines {
    /// The layer that tells this format which subscriber it writes for; add it to that subscriber, filtered with
    /// `LevelFilter::OFF` (it needs no span nor event, and unfiltered it would ask for all of them).
    pub fn registrar(&self) -> Registrar {
        Registrar(self.subscriber.clone())
    }
}

/// See [`JsonLines::registrar`].
pub struct Registrar(Arc<OnceLock<WeakDispatch>>);

impl<S: Subscriber> Layer<S> for Registrar {
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        let _ = self.0.set(subscriber.downgrade());
    }
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let metadata = event.metadata();
        let mut line = Map::new();
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        line.insert("timestamp".into(), now.into());
        line.insert("level".into(), metadata.level().as_str().into());
        line.insert("target".into(), metadata.target().into());
        let mut fields = Fields(Map::new());
        event.record(&mut fields);
        line.extend(fields.0);
        // The event's span as the subscriber has it, not as this layer sees it: the log filter (RUST_LOG=warn, say)
        // hides a call's INFO span from this layer, and with it the ids its lines must carry (seen in the fleet's
        // test: an ERROR inside a traced call logged without them).
        let subscriber = self.subscriber.get().and_then(WeakDispatch::upgrade);
        let parent = subscriber.as_ref().and_then(|subscriber| match event.parent() {
            Some(id) => Some(id.clone()),
            None if event.is_contextual() => subscriber.current_span().id().cloned(),
            None => None,
        });
        let registry = subscriber.as_ref().and_then(|subscriber| subscriber.downcast_ref::<Registry>());
        let spans: Option<Vec<Value>> = match (registry, &parent) {
            (Some(registry), Some(id)) => {
                registry.span(id).map(|span| span.scope().from_root().map(|span| Value::from(span.name())).collect())
            }
            _ => ctx.event_scope().map(|scope| scope.from_root().map(|span| Value::from(span.name())).collect()),
        };
        if let Some(spans) = spans {
            line.insert("spans".into(), spans.into());
        }
        if let (Some(subscriber), Some(id)) = (&subscriber, &parent) {
            if let Some(context) = tracing_opentelemetry::get_otel_context(id, subscriber) {
                let span = context.span();
                let ids = span.span_context();
                if ids.is_valid() {
                    line.insert("trace_id".into(), ids.trace_id().to_string().into());
                    line.insert("span_id".into(), ids.span_id().to_string().into());
                }
            }
        }
        writeln!(writer, "{}", Value::Object(line))
    }
}

/// An event's fields as JSON values (numbers and booleans as such, the rest as text).
struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().into(), value.to_string().into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().into(), format!("{value:?}").into());
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// What the subscriber wrote.
    #[derive(Clone, Default)]
    struct Written(Arc<Mutex<Vec<u8>>>);

    impl Write for Written {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// An event inside a span whose caller sent a trace: its line carries that trace's id, its own span's id (a new
    /// one, child of the caller's), its fields and its spans' names.
    #[test]
    fn a_line_carries_the_trace_id_of_the_span_it_happened_in() {
        let written = Written::default();
        let into = written.clone();
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let format = JsonLines::default();
        let subscriber = tracing_subscriber::registry()
            .with(format.registrar().with_filter(tracing_subscriber::filter::LevelFilter::OFF))
            .with(tracing_subscriber::fmt::layer().event_format(format).with_writer(move || into.clone()))
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        let trace_id = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
        let caller = SpanContext::new(
            trace_id,
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("grpc.server", rpc = "GetCopy");
            let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(caller));
            span.in_scope(|| tracing::warn!(copies = 3, ok = true, "something worth a line"));
            tracing::info!("outside any span");
        });
        let text = String::from_utf8(written.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text.lines().map(|line| serde_json::from_str(line).expect(line)).collect();
        assert_eq!(lines.len(), 2, "{text}");
        let inside = &lines[0];
        assert_eq!(inside["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736", "{inside}");
        let span_id = inside["span_id"].as_str().expect("a span id");
        assert_eq!(span_id.len(), 16);
        assert_ne!(span_id, "00f067aa0ba902b7", "the server's own span, not the caller's");
        assert_eq!(inside["level"], "WARN");
        assert_eq!(inside["message"], "something worth a line");
        assert_eq!(inside["copies"], 3);
        assert_eq!(inside["ok"], true);
        assert_eq!(inside["spans"], serde_json::json!(["grpc.server"]));
        let outside = &lines[1];
        assert!(outside.get("trace_id").is_none() && outside.get("spans").is_none(), "{outside}");
    }
}
