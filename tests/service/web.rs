//! gRPC-Web from a browser's point of view, spoken by hand over HTTP/1.1 on the API's port: the CORS preflight a
//! browser sends first, then the call, framed as gRPC-Web. The call must be admitted, authenticated, authorized
//! and audited exactly as the same call made over native gRPC.

use std::time::Duration;

use modelcopy::proto;
use modelcopy::web::WebSettings;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{Options, TestApp};

const ALLOWED: &str = "http://dash.example.test";

/// Alice may do anything; bob may only read.
const POLICIES: &str = r#"
@id("alice-does-anything")
permit(principal == ModelCopy::User::"alice", action, resource);

@id("bob-reads")
permit(principal == ModelCopy::User::"bob", action == ModelCopy::Action::"ReadCopies", resource);
"#;

/// An HTTP/1.1 response: status, headers (lower-case names), body (de-chunked).
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The gRPC-Web frames: the messages, and the trailers (from the trailer frame, or the headers when the answer
    /// is trailers-only).
    fn grpc(&self) -> (Vec<Vec<u8>>, Vec<(String, String)>) {
        let (mut messages, mut trailers) = (Vec::new(), Vec::new());
        let mut rest = self.body.as_slice();
        while rest.len() >= 5 {
            let flag = rest[0];
            let len = u32::from_be_bytes(rest[1..5].try_into().unwrap()) as usize;
            let frame = &rest[5..5 + len];
            if flag & 0x80 != 0 {
                for line in String::from_utf8_lossy(frame).split("\r\n").filter(|l| !l.is_empty()) {
                    let (name, value) = line.split_once(':').unwrap();
                    trailers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
                }
            } else {
                messages.push(frame.to_vec());
            }
            rest = &rest[5 + len..];
        }
        if trailers.is_empty() {
            trailers = self.headers.iter().filter(|(n, _)| n.starts_with("grpc-")).cloned().collect();
        }
        (messages, trailers)
    }

    fn grpc_status(&self) -> String {
        let (_, trailers) = self.grpc();
        trailers.into_iter().find(|(n, _)| n == "grpc-status").map(|(_, v)| v).unwrap_or_default()
    }
}

/// One request on a connection of its own, answered in full.
async fn http(app: &TestApp, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let addr = app.endpoint.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut raw)).await.unwrap().unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a whole head");
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|line| {
            let (name, value) = line.split_once(':').unwrap();
            (name.trim().to_ascii_lowercase(), value.trim().to_owned())
        })
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers.iter().any(|(n, v)| n == "transfer-encoding" && v.contains("chunked")) {
        body = dechunk(&body);
    }
    Answer { status, headers, body }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let end = raw.windows(2).position(|w| w == b"\r\n").expect("a chunk size");
        let size = usize::from_str_radix(std::str::from_utf8(&raw[..end]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&raw[end + 2..end + 2 + size]);
        raw = &raw[end + 2 + size + 2..];
    }
}

/// A gRPC-Web call of `method` with `message`, from the allowed origin, as `principal` (none: anonymous).
async fn grpc_web(app: &TestApp, method: &str, message: &impl Message, principal: Option<&str>) -> Answer {
    let encoded = message.encode_to_vec();
    let mut framed = vec![0u8];
    framed.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
    framed.extend_from_slice(&encoded);
    let mut headers = vec![
        ("content-type", "application/grpc-web+proto"),
        ("x-grpc-web", "1"),
        ("x-user-agent", "grpc-web-javascript/0.1"),
        ("origin", ALLOWED),
    ];
    if let Some(principal) = principal {
        headers.push((modelcopy::auth::authenticator::PRINCIPAL_HEADER, principal));
    }
    http(app, "POST", &format!("/modelcopy.v1.ModelCopy/{method}"), &headers, &framed).await
}

async fn preflight(app: &TestApp, origin: &str) -> Answer {
    let headers = [
        ("origin", origin),
        ("access-control-request-method", "POST"),
        ("access-control-request-headers", "content-type,x-grpc-web,x-user-agent,x-modelcopy-principal"),
    ];
    http(app, "OPTIONS", "/modelcopy.v1.ModelCopy/ListCopies", &headers, b"").await
}

/// (principal, rpc, decision, grpc_code) of every audit row after `after`, in order.
async fn audit_after(app: &TestApp, after: i64) -> Vec<(Option<String>, String, String, String)> {
    sqlx::query_as("SELECT principal, rpc, decision, grpc_code FROM audit_log WHERE id > $1 ORDER BY id")
        .bind(after)
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

async fn last_audit_id(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COALESCE(max(id), 0) FROM audit_log").fetch_one(&app.pool).await.unwrap()
}

#[tokio::test]
async fn a_grpc_web_call_after_its_preflight_is_authenticated_authorized_and_audited_like_a_native_one() {
    let web = WebSettings { cors_origins: vec![ALLOWED.into()], ..WebSettings::default() };
    let options = Options { web: Some(web), policies: Some(POLICIES.into()), dispatch: false, ..Default::default() };
    let app = TestApp::spawn_with(options).await;

    // The preflight: the allowed origin is told it may send the call with its headers; another origin is not.
    let allowed = preflight(&app, ALLOWED).await;
    assert_eq!(allowed.status, 200);
    assert_eq!(allowed.header("access-control-allow-origin"), Some(ALLOWED));
    let allowed_headers = allowed.header("access-control-allow-headers").unwrap().to_ascii_lowercase();
    for needed in ["content-type", "x-grpc-web", "x-user-agent", "x-modelcopy-principal", "authorization"] {
        assert!(allowed_headers.contains(needed), "{needed} in {allowed_headers}");
    }
    let other = preflight(&app, "http://elsewhere.example.test").await;
    assert_eq!(other.header("access-control-allow-origin"), None, "no CORS grant for another origin");

    // The same four calls, over gRPC-Web and then natively: a copy asked for by alice, listed by alice, refused
    // to bob (reader only), and a list with no credentials.
    let before_web = last_audit_id(&app).await;
    let created = grpc_web(&app, "CopyModelVersion", &app.copy_request("over-web"), Some("alice")).await;
    assert_eq!((created.status, created.grpc_status().as_str()), (200, "0"));
    assert_eq!(created.header("access-control-allow-origin"), Some(ALLOWED));
    assert!(created.header("access-control-expose-headers").unwrap().contains("grpc-status"));
    let (messages, _) = created.grpc();
    let copy = proto::CopyModelVersionResponse::decode(messages[0].as_slice()).unwrap().copy.unwrap();
    let listed = grpc_web(&app, "ListCopies", &proto::ListCopiesRequest::default(), Some("alice")).await;
    assert_eq!(listed.grpc_status(), "0");
    let page = proto::ListCopiesResponse::decode(listed.grpc().0[0].as_slice()).unwrap();
    assert_eq!(page.copies.iter().map(|c| c.copy_id.as_str()).collect::<Vec<_>>(), [copy.copy_id.as_str()]);
    let refused = grpc_web(&app, "CopyModelVersion", &app.copy_request("bob-over-web"), Some("bob")).await;
    assert_eq!(refused.grpc_status(), "7", "PERMISSION_DENIED");
    let anonymous = grpc_web(&app, "ListCopies", &proto::ListCopiesRequest::default(), None).await;
    assert_eq!(anonymous.grpc_status(), "16", "UNAUTHENTICATED");
    let over_web = audit_after(&app, before_web).await;

    let before_native = last_audit_id(&app).await;
    let mut alice = app.client("alice").await;
    alice.copy_model_version(app.copy_request("native")).await.unwrap();
    alice.list_copies(proto::ListCopiesRequest::default()).await.unwrap();
    let mut bob = app.client("bob").await;
    assert_eq!(
        bob.copy_model_version(app.copy_request("bob-native")).await.unwrap_err().code(),
        tonic::Code::PermissionDenied
    );
    let mut anonymous = app.anonymous_client().await;
    assert_eq!(
        anonymous.list_copies(proto::ListCopiesRequest::default()).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );
    let native = audit_after(&app, before_native).await;

    assert_eq!(over_web.len(), 4, "one audit row a call: {over_web:?}");
    assert_eq!(over_web, native, "audited as the same calls made natively");
    assert_eq!(over_web[0].0.as_deref(), Some("alice"));
    assert_eq!(over_web[2].2, "DENIED");
    app.stop().await;
}

#[tokio::test]
async fn without_cors_origins_no_origin_is_granted_and_the_dashboard_is_off_by_default() {
    let app = TestApp::spawn_with(Options { dispatch: false, ..Default::default() }).await;
    let answer = preflight(&app, ALLOWED).await;
    assert_eq!(answer.header("access-control-allow-origin"), None);
    // gRPC-Web itself is on: a same-origin page needs no CORS.
    let listed = grpc_web(&app, "ListCopies", &proto::ListCopiesRequest::default(), Some("alice")).await;
    assert_eq!((listed.status, listed.grpc_status().as_str()), (200, "0"));
    let page = http(&app, "GET", "/dashboard/", &[], b"").await;
    assert!(page.header("content-type").is_none_or(|t| !t.starts_with("text/html")), "no page when it is off");
    app.stop().await;
}

#[tokio::test]
async fn the_dashboard_is_served_from_the_binary_when_turned_on() {
    let web = WebSettings { dashboard: true, ..WebSettings::default() };
    let app = TestApp::spawn_with(Options { web: Some(web), dispatch: false, ..Default::default() }).await;
    let redirect = http(&app, "GET", "/dashboard", &[], b"").await;
    assert_eq!((redirect.status, redirect.header("location")), (308, Some("/dashboard/")));
    let page = http(&app, "GET", "/dashboard/", &[], b"").await;
    assert_eq!((page.status, page.header("content-type")), (200, Some("text/html; charset=utf-8")));
    assert!(page.header("content-security-policy").unwrap().contains("default-src 'self'"));
    assert!(String::from_utf8_lossy(&page.body).contains("./assets/"));
    // The API beside it is unchanged.
    let mut alice = app.client("alice").await;
    alice.list_copies(proto::ListCopiesRequest::default()).await.unwrap();
    app.stop().await;
}
