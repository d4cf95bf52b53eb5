//! Traces leave the service over OTLP: a copy's request and its dispatch are one trace (or one link apart) in what a
//! collector receives. The collector is an in-process OTLP/gRPC receiver on a loopback port.
//!
//! The tracing subscriber is process-wide, so while this test's service exports, spans of the other tests running
//! beside it reach this receiver too: the test picks its own out by its trace id and by links to it.

use std::sync::{Arc, Mutex};

use modelcopy::proto;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::Span;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

use crate::helpers::{Options, TestApp};

/// Every span exported to it.
#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<Exported>>>,
}

/// A span as received, with the `service.name` of the resource it came from.
#[derive(Clone)]
struct Exported {
    service: Option<String>,
    span: Span,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let mut spans = self.spans.lock().unwrap();
        for resource_spans in request.into_inner().resource_spans {
            let attributes = resource_spans.resource.map(|r| r.attributes).unwrap_or_default();
            let service = string_attribute(&attributes, "service.name");
            for scope_spans in resource_spans.scope_spans {
                spans.extend(scope_spans.spans.into_iter().map(|span| Exported { service: service.clone(), span }));
            }
        }
        Ok(Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

/// The global tracer provider is the process's: one exporting service at a time, or one would take the other's
/// spans away when it stops.
static ONE_EXPORTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Starts the receiver on a loopback port, over TLS with `tls` (the certificate and key, PEM); it serves until the
/// test's runtime ends.
async fn start_receiver(tls: Option<(String, String)>) -> (Receiver, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let endpoint = format!("{scheme}://{}", listener.local_addr().unwrap());
    let receiver = Receiver::default();
    let mut builder = tonic::transport::Server::builder();
    if let Some((cert, key)) = tls {
        let identity = tonic::transport::Identity::from_pem(cert, key);
        builder = builder.tls_config(tonic::transport::ServerTlsConfig::new().identity(identity)).unwrap();
    }
    let server =
        builder.add_service(TraceServiceServer::new(receiver.clone())).serve_with_incoming(TcpIncoming::from(listener));
    tokio::spawn(server);
    (receiver, endpoint)
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v: &AnyValue| v.value.as_ref())
}

fn string_attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    match attribute(attributes, key) {
        Some(any_value::Value::StringValue(text)) => Some(text.clone()),
        _ => None,
    }
}

#[tokio::test]
async fn a_copy_request_and_its_dispatch_are_exported_in_the_callers_trace() {
    let _alone = ONE_EXPORTER.lock().await;
    let (receiver, endpoint) = start_receiver(None).await;
    let app = TestApp::spawn_with(Options { otlp_endpoint: Some(endpoint), ..Options::default() }).await;
    let mut client = app.client("alice").await;

    // The caller's trace: ids of its own, so that other tests' spans cannot match.
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let caller_span = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
    let mut request = Request::new(app.copy_request("traced"));
    let traceparent = format!("00-{trace_id}-{caller_span}-01");
    request.metadata_mut().insert("traceparent", traceparent.parse().unwrap());
    request.metadata_mut().insert("tracestate", "caller=yes".parse().unwrap());
    let copy = client.copy_model_version(request).await.unwrap().into_inner().copy.unwrap();
    // A malformed traceparent is no one's business but the tracer's: the call is answered as usual.
    let mut request = Request::new(proto::GetCopyRequest { copy_id: copy.copy_id.clone() });
    request.metadata_mut().insert("traceparent", "00-not-a-trace-01".parse().unwrap());
    client.get_copy(request).await.expect("a malformed traceparent is ignored");
    let ended = app.wait_until_ended(&mut client, &copy.copy_id).await;
    assert_eq!(ended.state(), proto::CopyState::Succeeded);
    let stored: Option<String> = sqlx::query_scalar("SELECT trace_parent FROM copy_jobs WHERE id = $1::uuid")
        .bind(&copy.copy_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    // Stopping the service flushes its exporter: everything it ended is at the receiver when `stop` returns.
    app.stop().await;

    let exported = receiver.spans.lock().unwrap().clone();
    let hex = |bytes: &[u8]| hex::encode(bytes);
    let in_trace: Vec<&Exported> = exported.iter().filter(|e| hex(&e.span.trace_id) == trace_id).collect();
    let Exported { service, span: server } = in_trace
        .iter()
        .find(|e| e.span.name == "modelcopy.v1.ModelCopy/CopyModelVersion")
        .unwrap_or_else(|| panic!("no server span in the caller's trace among {} spans", exported.len()));
    assert_eq!(service.as_deref(), Some("modelcopy"));
    assert_eq!(server.kind(), SpanKind::Server);
    assert_eq!(hex(&server.parent_span_id), caller_span, "the caller's span is the server span's parent");
    assert_eq!(server.trace_state, "caller=yes");
    assert_eq!(string_attribute(&server.attributes, "rpc.system").as_deref(), Some("grpc"));
    assert_eq!(string_attribute(&server.attributes, "rpc.service").as_deref(), Some("modelcopy.v1.ModelCopy"));
    assert_eq!(string_attribute(&server.attributes, "rpc.method").as_deref(), Some("CopyModelVersion"));
    assert_eq!(attribute(&server.attributes, "rpc.grpc.status_code"), Some(&any_value::Value::IntValue(0)));
    let server_span = hex(&server.span_id);

    // The job remembers the call's span, which the dispatch continues from.
    assert_eq!(stored, Some(format!("00-{trace_id}-{server_span}-01")));
    let submit = in_trace
        .iter()
        .map(|e| &e.span)
        .find(|s| s.name == "submit" && string_attribute(&s.attributes, "copy_id") == Some(copy.copy_id.clone()))
        .expect("the copy's submit span, in the caller's trace");
    assert_eq!(hex(&submit.parent_span_id), server_span, "submitting is a child of the request");
    // Following describes copies in batches: its spans link to each copy's request instead.
    let follows = exported
        .iter()
        .map(|e| &e.span)
        .filter(|s| {
            s.name == "follow"
                && s.links.iter().any(|link| hex(&link.trace_id) == trace_id && hex(&link.span_id) == server_span)
        })
        .count();
    assert!(follows >= 1, "no follow span links to the request among {} spans", exported.len());
}

/// A collector behind TLS (`https://`), its certificate checked against `otlp_ca_file`: the spans arrive.
#[tokio::test]
async fn traces_reach_a_collector_over_tls() {
    let _alone = ONE_EXPORTER.lock().await;
    let pki = crate::authn::Pki::new();
    let read = |name: &str| std::fs::read_to_string(pki.path(name)).unwrap();
    let (receiver, endpoint) = start_receiver(Some((read("server.pem"), read("server.key")))).await;
    assert!(endpoint.starts_with("https://"));
    let options =
        Options { otlp_endpoint: Some(endpoint), otlp_ca_file: Some(pki.path("client-ca.pem")), ..Options::default() };
    let app = TestApp::spawn_with(options).await;
    let mut client = app.client("alice").await;
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let mut request = Request::new(proto::ListCopiesRequest::default());
    request.metadata_mut().insert("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01").parse().unwrap());
    client.list_copies(request).await.unwrap();
    app.stop().await;
    let exported = receiver.spans.lock().unwrap().clone();
    let listed = exported
        .iter()
        .find(|e| hex::encode(&e.span.trace_id) == trace_id && e.span.name == "modelcopy.v1.ModelCopy/ListCopies");
    assert!(listed.is_some(), "the call's span, over TLS, among {} spans", exported.len());
}

#[tokio::test]
async fn a_copy_keeps_its_callers_trace_even_when_nothing_is_exported() {
    let app = TestApp::spawn().await;
    let mut client = app.client("alice").await;
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let mut request = Request::new(app.copy_request("traced-quietly"));
    request.metadata_mut().insert("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01").parse().unwrap());
    let copy = client.copy_model_version(request).await.unwrap().into_inner().copy.unwrap();
    let stored: Option<String> = sqlx::query_scalar("SELECT trace_parent FROM copy_jobs WHERE id = $1::uuid")
        .bind(&copy.copy_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    // The caller's own span when this process exports nothing; this service's span in the caller's trace while
    // another test's service exports (the provider is process-wide). The trace is the caller's either way.
    let stored = stored.expect("the caller's trace is kept");
    assert!(stored.starts_with(&format!("00-{trace_id}-")), "{stored}");
    app.stop().await;
}
