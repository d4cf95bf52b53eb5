//! A W3C trace context in its `traceparent` text: how a trace reaches the service (gRPC metadata), and how a copy
//! job remembers the request that created it (a column), so that the work done for the copy later can be tied to
//! that request's trace.

use std::collections::HashMap;

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{SpanContext, TraceContextExt};
use opentelemetry::Context;
use opentelemetry_sdk::propagation::TraceContextPropagator;

/// A valid `traceparent` (`00-<trace id>-<parent id>-<flags>`, non-zero ids). Holding one means the ids are good;
/// anything else a caller sends is ignored rather than refused, as the W3C specification asks of a receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceParent(String);

impl TraceParent {
    /// The trace context in `headers` (`traceparent`, with `tracestate` carried along), or none when absent or
    /// malformed.
    pub fn extract(headers: &http::HeaderMap) -> Context {
        TraceContextPropagator::new().extract(&HeaderExtractor(headers))
    }

    /// Reads a stored or received `traceparent`; `None` unless it is well-formed with non-zero ids.
    pub fn parse(text: &str) -> Option<TraceParent> {
        let carrier = HashMap::from([("traceparent".to_owned(), text.to_owned())]);
        TraceParent::of(TraceContextPropagator::new().extract(&carrier).span().span_context())
    }

    /// The `traceparent` that names `span` (the span is the parent of what follows from it); `None` for an
    /// invalid (empty) span context.
    pub fn of(span: &SpanContext) -> Option<TraceParent> {
        if !span.is_valid() {
            return None;
        }
        let cx = Context::new().with_remote_span_context(span.clone());
        let mut carrier = HashMap::new();
        TraceContextPropagator::new().inject_context(&cx, &mut carrier);
        carrier.remove("traceparent").map(TraceParent)
    }

    /// The span this names, as a remote parent or link.
    pub fn span_context(&self) -> SpanContext {
        let carrier = HashMap::from([("traceparent".to_owned(), self.0.clone())]);
        TraceContextPropagator::new().extract(&carrier).span().span_context().clone()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TraceParent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// gRPC metadata read as a propagation carrier (ASCII values only; a binary or non-ASCII value reads as absent).
struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|key| key.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (key, value) in pairs {
            map.insert(http::HeaderName::from_static(key), http::HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn a_well_formed_traceparent_reads_back_as_written() {
        let parent = TraceParent::parse(GOOD).expect("valid");
        assert_eq!(parent.as_str(), GOOD);
        let span = parent.span_context();
        assert_eq!(span.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(span.span_id().to_string(), "00f067aa0ba902b7");
        assert!(span.is_sampled() && span.is_remote());
        assert_eq!(TraceParent::of(&span), Some(parent));
    }

    #[test]
    fn malformed_or_zero_ids_are_ignored() {
        for bad in [
            "",
            "garbage",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad:?}");
        }
        assert_eq!(TraceParent::of(&SpanContext::empty_context()), None);
    }

    #[test]
    fn metadata_gives_the_callers_context_and_tracestate() {
        let cx = TraceParent::extract(&headers(&[("traceparent", GOOD), ("tracestate", "vendor=abc")]));
        let span = cx.span().span_context().clone();
        assert_eq!(span.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(span.trace_state().get("vendor"), Some("abc"));
    }

    #[test]
    fn bad_or_missing_metadata_gives_an_empty_context() {
        for headers in
            [headers(&[]), headers(&[("traceparent", "not-a-traceparent")]), headers(&[("tracestate", "vendor=abc")])]
        {
            assert!(!TraceParent::extract(&headers).span().span_context().is_valid(), "{headers:?}");
        }
        let mut binary = http::HeaderMap::new();
        binary.insert("traceparent", http::HeaderValue::from_bytes(b"00-\xff").unwrap());
        assert!(!TraceParent::extract(&binary).span().span_context().is_valid());
    }
}
