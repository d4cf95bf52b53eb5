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
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("JSON body")
    }
}

/// One HTTP/1.1 request on a fresh connection (blocking I/O, run off the runtime's thread).
async fn raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> RawResponse {
    let mut request = format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").expect("HTTP response");
        let mut lines = head.lines();
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        RawResponse {
            status,
            headers,
            body: body.to_owned(),
        }
    })
    .await
    .unwrap()
}

fn authorization(access_key_id: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential={access_key_id}/20261123/{REGION}/rekognition/aws4_request, \
         SignedHeaders=content-type;host;x-amz-target, Signature=0000"
    )
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
    let auth = authorization(KEY_A);
    for target in [
        "RekognitionService.DetectLabels",
        "SomethingElse.DescribeProjects",
        "",
    ] {
        let response = call(&sim, target, Some(&auth), "{}").await;
        assert_error(&response, 400, "UnknownOperationException");
    }
}

#[tokio::test]
async fn malformed_json_is_validation_exception() {
    let sim = Sim::start(Duration::from_secs(2)).await;
    let response = call(
        &sim,
        "RekognitionService.DescribeProjects",
        Some(&authorization(KEY_A)),
        "{not json",
    )
    .await;
    assert_error(&response, 400, "ValidationException");
    let response = call(
        &sim,
        "RekognitionService.DescribeProjects",
        Some(&authorization(KEY_A)),
        r#"{"MaxResults": "ten"}"#,
    )
    .await;
    assert_error(&response, 400, "ValidationException");
}

#[tokio::test]
async fn success_is_json_with_a_request_id_and_epoch_second_timestamps() {
    let sim = Sim::start(Duration::from_secs(2)).await;
    let response = call(
        &sim,
        "RekognitionService.DescribeProjects",
        Some(&authorization(KEY_A)),
        "",
    )
    .await;

    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some(JSON_1_1));
    let request_id = response.header("x-amzn-requestid").expect("request id");
    assert!(uuid::Uuid::parse_str(request_id).is_ok());
    let created = &response.json()["ProjectDescriptions"][0]["CreationTimestamp"];
    assert!(
        created
            .as_f64()
            .is_some_and(|secs| secs > 1.0e9 && secs < 1.0e10),
        "{created}"
    );
}

#[tokio::test]
async fn admin_endpoints_inject_faults_list_calls_and_reset() {
    let sim = Sim::start(Duration::from_secs(2)).await;
    let addr = sim.handle.local_addr();
    let json = [("content-type", "application/json")];
    let fault = r#"{"operation": "DescribeProjects", "error": "ThrottlingException", "message": "slow down"}"#;

    let injected = raw(addr, "POST", "/_sim/faults", &json, fault).await;
    assert!((200..300).contains(&injected.status), "{}", injected.body);
    let throttled = call(
        &sim,
        "RekognitionService.DescribeProjects",
        Some(&authorization(KEY_B)),
        "{}",
    )
    .await;
    assert_error(&throttled, 500, "ThrottlingException");
    assert_eq!(throttled.json()["message"], "slow down");

    let calls = raw(addr, "GET", "/_sim/calls", &[], "").await.json();
    assert_eq!(calls.as_array().map(Vec::len), Some(1));
    assert_eq!(calls[0]["operation"], "DescribeProjects");
    assert_eq!(calls[0]["account_id"], ACCOUNT_B);
    assert_eq!(calls[0]["outcome"], "ThrottlingException");

    let reset = raw(addr, "POST", "/_sim/reset", &[], "").await;
    assert!((200..300).contains(&reset.status));
    assert_eq!(
        raw(addr, "GET", "/_sim/calls", &[], "").await.json(),
        serde_json::json!([])
    );
}
