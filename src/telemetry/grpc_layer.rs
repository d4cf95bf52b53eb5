//! The server span of every gRPC call: a tower layer, outermost, so that everything the call does (its audit row
//! included) happens inside it.
//!
//! The span continues the caller's trace when the call's metadata carries a W3C `traceparent` (and
//! `tracestate`); a missing or malformed one starts a new trace and is never an error to the caller. It carries
//! the attributes of OpenTelemetry's RPC conventions (`rpc.system`, `rpc.service`, `rpc.method`,
//! `rpc.grpc.status_code`), and the call's [`TraceParent`] goes into the request's extensions for handlers whose
//! work outlives the call (a copy's dispatch).

use std::task::{Context, Poll};

use futures::future::BoxFuture;
use opentelemetry::trace::{Status, TraceContextExt};
use opentelemetry::KeyValue;
use tonic::Code;
use tower::{Layer, Service};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::TraceParent;

#[derive(Debug, Clone, Copy, Default)]
pub struct ServerSpanLayer;

impl<S> Layer<S> for ServerSpanLayer {
    type Service = ServerSpanService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        ServerSpanService { inner }
    }
}

#[derive(Debug, Clone)]
pub struct ServerSpanService<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for ServerSpanService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        let (service, method) = rpc_names(request.uri().path());
        let (service, method) = (service.to_owned(), method.to_owned());
        let span = tracing::info_span!(
            "grpc",
            otel.kind = "server",
            otel.name = %format_args!("{service}/{method}"),
        );
        // Set on the OpenTelemetry span only: the log lines inside the call need not repeat them.
        span.set_attribute("rpc.system", "grpc");
        span.set_attribute("rpc.service", service.clone());
        span.set_attribute("rpc.method", method.clone());
        let caller = TraceParent::extract(request.headers());
        if caller.span().span_context().is_valid() {
            // Fails only for a span already started, which this one is not.
            let _ = span.set_parent(caller.clone());
        }
        // This call's span when it is recorded, else the caller's (exporting off, or this span filtered out), so
        // that a copy remembers at least the trace that asked for it.
        let trace = TraceParent::of(span.context().span().span_context())
            .or_else(|| TraceParent::of(caller.span().span_context()));
        if let Some(trace) = trace {
            request.extensions_mut().insert(trace);
        }

        // The clone that was polled ready is the one to call (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let in_span = span.clone();
        let started = std::time::Instant::now();
        Box::pin(
            async move {
                let response = inner.call(request).await?;
                // As the audit layer reads it: an error travels in the headers of a trailers-only response; a call
                // that succeeded (or a stream that opened) says OK in its trailers later.
                let status = tonic::Status::from_header_map(response.headers());
                let code = status.as_ref().map_or(Code::Ok, |status| status.code());
                span.set_attribute("rpc.grpc.status_code", code as i64);
                let attributes = [
                    KeyValue::new("rpc.system", "grpc"),
                    KeyValue::new("rpc.service", service),
                    KeyValue::new("rpc.method", method),
                    KeyValue::new("rpc.grpc.status_code", code as i64),
                ];
                super::metrics::instruments().rpc_duration.record(started.elapsed().as_secs_f64(), &attributes);
                if is_server_error(code) {
                    let message = status.map(|s| s.message().to_owned()).unwrap_or_default();
                    span.set_status(Status::error(message));
                }
                Ok(response)
            }
            .instrument(in_span),
        )
    }
}

/// `("modelcopy.v1.ModelCopy", "GetCopy")` from `/modelcopy.v1.ModelCopy/GetCopy`; the path as the method of an
/// unknown service for anything else (tonic answers UNIMPLEMENTED to it).
fn rpc_names(path: &str) -> (&str, &str) {
    match path.trim_start_matches('/').split_once('/') {
        Some((service, method)) if !service.is_empty() && !method.is_empty() && !method.contains('/') => {
            (service, method)
        }
        _ => ("unknown", path),
    }
}

/// Codes that say the server failed, which OpenTelemetry's RPC conventions mark as a span error; the caller's
/// mistakes (INVALID_ARGUMENT, NOT_FOUND, …) leave the server span's status unset.
fn is_server_error(code: Code) -> bool {
    matches!(
        code,
        Code::Unknown
            | Code::DeadlineExceeded
            | Code::Unimplemented
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    use tower::ServiceExt;

    const CALLER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    /// Calls a handler behind the layer that answers `code`, and echoes the `TraceParent` the layer left on the
    /// request in a header.
    async fn call(traceparent: Option<&str>, code: Code) -> http::Response<()> {
        let handler = tower::service_fn(move |request: http::Request<()>| async move {
            let mut response = tonic::Status::new(code, "answer").into_http::<()>();
            if let Some(trace) = request.extensions().get::<TraceParent>() {
                response.headers_mut().insert("seen-traceparent", trace.as_str().parse().unwrap());
            }
            Ok::<_, Infallible>(response)
        });
        let mut request = http::Request::builder().uri("/modelcopy.v1.ModelCopy/GetCopy");
        if let Some(traceparent) = traceparent {
            request = request.header("traceparent", traceparent);
        }
        ServerSpanLayer.layer(handler).oneshot(request.body(()).unwrap()).await.unwrap()
    }

    #[tokio::test]
    async fn the_callers_trace_reaches_the_handler() {
        // No exporter is installed in unit tests: the span is a no-op and the caller's context is what remains.
        let response = call(Some(CALLER), Code::Ok).await;
        let seen = response.headers().get("seen-traceparent").expect("a trace parent on the request");
        let seen = TraceParent::parse(seen.to_str().unwrap()).unwrap().span_context();
        assert_eq!(seen.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[tokio::test]
    async fn a_malformed_traceparent_is_ignored_and_the_call_answered() {
        for bad in ["", "00-zz-00f067aa0ba902b7-01", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"] {
            let response = call(Some(bad), Code::NotFound).await;
            assert_eq!(tonic::Status::from_header_map(response.headers()).unwrap().code(), Code::NotFound, "{bad:?}");
            assert!(response.headers().get("seen-traceparent").is_none(), "{bad:?}");
        }
        let response = call(None, Code::Ok).await;
        assert_eq!(tonic::Status::from_header_map(response.headers()).unwrap().code(), Code::Ok);
    }

    #[test]
    fn rpc_names_come_from_the_path() {
        assert_eq!(rpc_names("/modelcopy.v1.ModelCopy/GetCopy"), ("modelcopy.v1.ModelCopy", "GetCopy"));
        assert_eq!(rpc_names("/nonsense"), ("unknown", "/nonsense"));
        assert_eq!(rpc_names("/a/b/c"), ("unknown", "/a/b/c"));
    }

    #[test]
    fn only_the_servers_failures_mark_the_span_an_error() {
        assert!(is_server_error(Code::Internal) && is_server_error(Code::Unavailable));
        assert!(
            !is_server_error(Code::InvalidArgument) && !is_server_error(Code::NotFound) && !is_server_error(Code::Ok)
        );
    }
}
