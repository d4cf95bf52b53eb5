//! The protocol below the SDK: raw HTTP requests for what an SDK never sends, and the admin endpoints.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::helpers::*;

const JSON_1_1: &str = "application/x-amz-json-1.1";

struct RawResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("JSON body")
    }
}

/// One HTTP/1.1 request on a fresh connection (blocking I/O, run off the runtime's thread).
async fn raw(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> RawResponse {
    let mut request = format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").expect("HTTP response");
        let mut lines = head.lines();
        let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        RawResponse { status, headers, body: body.to_owned() }
    })
    .await
    .unwrap()
}

/// An `Authorization` header with a made-up signature: enough for account C, whose key has no secret.
fn authorization(access_key_id: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential={access_key_id}/20261123/{REGION}/rekognition/aws4_request, \
         SignedHeaders=content-type;host;x-amz-target, Signature=0000"
    )
}

/// The headers of a request really signed (by `aws-sigv4`, as the SDK signs) with `secret`.
fn signed_headers(
    addr: SocketAddr,
    target: &str,
    body: &str,
    access_key_id: &str,
    secret: &str,
) -> Vec<(String, String)> {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    let now = std::time::SystemTime::now();
    let amz_date = chrono::DateTime::<chrono::Utc>::from(now).format("%Y%m%dT%H%M%SZ").to_string();
    let headers = vec![
        ("content-type".to_owned(), JSON_1_1.to_owned()),
        ("host".to_owned(), addr.to_string()),
        ("x-amz-date".to_owned(), amz_date),
        ("x-amz-target".to_owned(), target.to_owned()),
    ];
    let identity = aws_credential_types::Credentials::new(access_key_id, secret, None, None, "test").into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name("rekognition")
        .time(now)
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let signable = SignableRequest::new(
        "POST",
        format!("http://{addr}/"),
        headers.iter().map(|(name, value)| (name.as_str(), value.as_str())),
        SignableBody::Bytes(body.as_bytes()),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut all = headers;
    all.extend(instructions.headers().map(|(name, value)| (name.to_owned(), value.to_owned())));
    all.retain(|(name, _)| name != "host");
    all
}

async fn call(sim: &Sim, target: &str, auth: Option<&str>, body: &str) -> RawResponse {
    let mut headers = vec![("content-type", JSON_1_1), ("x-amz-target", target)];
    if let Some(auth) = auth {
        headers.push(("authorization", auth));
    }
    raw(sim.handle.local_addr(), "POST", "/", &headers, body).await
}

fn assert_error(response: &RawResponse, status: u16, name: &str) {
    assert_eq!(response.status, status, "{}", response.body);
    assert_eq!(response.header("x-amzn-errortype"), Some(name));
    assert_eq!(response.header("content-type"), Some(JSON_1_1));
    assert_eq!(response.json()["__type"], name);
    assert!(response.json()["message"].is_string());
}

#[tokio::test]
async fn missing_authorization_is_missing_authentication_token() {
    let sim = Sim::start(Duration::from_secs(2)).await;
    let response = call(&sim, "RekognitionService.DescribeProjects", None, "{}").await;
    assert_error(&response, 400, "MissingAuthenticationTokenException");
}

#[tokio::test]
async fn unknown_target_is_unknown_operation() {
    let sim = Sim::start(Duration::from_secs(2)).await;
    let auth = authorization(KEY_C);
    for target in ["RekognitionService.DetectLabels", "SomethingElse.DescribeProjects", ""] {
        let response = call(&sim, target, Some(&auth), "{}").await;
        assert_error(&response, 400, "UnknownOperationException");
    }
}

#[tokio::test]
async fn malformed_json_is_validation_exception() {
    let sim = Sim::start(Duration::from_secs(2)).await;
    let response = call(&sim, "RekognitionService.DescribeProjects", Some(&authorization(KEY_C)), "{not json").await;
    assert_error(&response, 400, "ValidationException");
    let response =
        call(&sim, "RekognitionService.DescribeProjects", Some(&authorization(KEY_C)), r#"{"MaxResults": "ten"}"#)
            .await;
    assert_error(&response, 400, "ValidationException");
}

#[tokio::test]
async fn success_is_json_with_a_request_id_and_epoch_second_timestamps() {
    let sim = Sim::start(Duration::from_secs(2)).await;
    let response = call(&sim, "RekognitionService.DescribeProjects", Some(&authorization(KEY_C)), "").await;

    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some(JSON_1_1));
    let request_id = response.header("x-amzn-requestid").expect("request id");
    assert!(uuid::Uuid::parse_str(request_id).is_ok());
    let created = &response.json()["ProjectDescriptions"][0]["CreationTimestamp"];
    assert!(created.as_f64().is_some_and(|secs| secs > 1.0e9 && secs < 1.0e10), "{created}");
}

#[tokio::test]
async fn admin_endpoints_inject_faults_list_calls_and_reset() {
    let sim = Sim::start(Duration::from_secs(2)).await;
    let addr = sim.handle.local_addr();
    let json = [("content-type", "application/json")];
    let fault = r#"{"operation": "DescribeProjects", "error": "ThrottlingException", "message": "slow down"}"#;

    let injected = raw(addr, "POST", "/_sim/faults", &json, fault).await;
    assert!((200..300).contains(&injected.status), "{}", injected.body);
    let throttled = call(&sim, "RekognitionService.DescribeProjects", Some(&authorization(KEY_C)), "{}").await;
    assert_error(&throttled, 500, "ThrottlingException");
    assert_eq!(throttled.json()["message"], "slow down");

    let calls = raw(addr, "GET", "/_sim/calls", &[], "").await.json();
    assert_eq!(calls.as_array().map(Vec::len), Some(1));
    assert_eq!(calls[0]["operation"], "DescribeProjects");
    assert_eq!(calls[0]["account_id"], ACCOUNT_C);
    assert_eq!(calls[0]["outcome"], "ThrottlingException");
    let stats = raw(addr, "GET", "/_sim/stats", &[], "").await.json();
    assert_eq!(
        stats,
        serde_json::json!([{
            "account_id": ACCOUNT_C, "operation": "DescribeProjects", "calls": 1,
            "throughput_exceeded": 0, "limit_exceeded": 0, "max_calls_in_one_second": 1
        }])
    );

    let reset = raw(addr, "POST", "/_sim/reset", &[], "").await;
    assert!((200..300).contains(&reset.status));
    assert_eq!(raw(addr, "GET", "/_sim/calls", &[], "").await.json(), serde_json::json!([]));
    assert_eq!(raw(addr, "GET", "/_sim/stats", &[], "").await.json(), serde_json::json!([]));
}

#[tokio::test]
async fn admin_endpoints_set_quotas_and_random_faults() {
    let sim = Sim::start(Duration::from_secs(2)).await;
    let addr = sim.handle.local_addr();
    let json = [("content-type", "application/json")];
    let quotas = r#"{"per_account": {"333333333333": {"rate": {"DescribeProjects": {"per_second": 1, "burst": 1}}}}}"#;

    let put = raw(addr, "PUT", "/_sim/quotas", &json, quotas).await;
    assert!((200..300).contains(&put.status), "{}", put.body);
    assert_eq!(
        raw(addr, "GET", "/_sim/quotas", &[], "").await.json()["per_account"][ACCOUNT_C]["rate"]["DescribeProjects"]
            ["burst"],
        1
    );
    let auth = authorization(KEY_C);
    let first = call(&sim, "RekognitionService.DescribeProjects", Some(&auth), "{}").await;
    assert_eq!(first.status, 200);
    let second = call(&sim, "RekognitionService.DescribeProjects", Some(&auth), "{}").await;
    assert_error(&second, 400, "ProvisionedThroughputExceededException");

    let bad = raw(addr, "PUT", "/_sim/faults/random", &json, r#"{"throttling": 2.0}"#).await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    let put =
        raw(addr, "PUT", "/_sim/faults/random", &json, r#"{"internal_error": 1.0, "operations": ["CreateProject"]}"#)
            .await;
    assert!((200..300).contains(&put.status), "{}", put.body);
    let failed = call(&sim, "RekognitionService.CreateProject", Some(&auth), r#"{"ProjectName": "x"}"#).await;
    assert_error(&failed, 500, "InternalServerError");
}

#[tokio::test]
async fn a_really_signed_request_passes_and_a_tampered_one_is_invalid_signature() {
    let sim = Sim::start(Duration::from_secs(2)).await;
    let addr = sim.handle.local_addr();
    let target = "RekognitionService.DescribeProjects";
    let body = r#"{"MaxResults": 1}"#;
    let headers = signed_headers(addr, target, body, KEY_A, SECRET_A);
    let as_refs: Vec<(&str, &str)> = headers.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();

    let signed = raw(addr, "POST", "/", &as_refs, body).await;
    assert_eq!(signed.status, 200, "{}", signed.body);

    let tampered = raw(addr, "POST", "/", &as_refs, r#"{"MaxResults": 2}"#).await;
    assert_error(&tampered, 400, "InvalidSignatureException");
    assert!(tampered.json()["message"]
        .as_str()
        .unwrap()
        .starts_with("The request signature we calculated does not match"));

    let unsigned = call(&sim, target, Some(&authorization(KEY_A)), body).await;
    assert_error(&unsigned, 400, "IncompleteSignatureException");
}
