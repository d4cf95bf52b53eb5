//! Rekognition's wire protocol, awsJson1.1: how a request names its operation, and how answers are encoded.
//!
//! Every call is `POST /` with `x-amz-target: RekognitionService.<Operation>` and a JSON body using the model's
//! member names. A success is 200 with a JSON body; an error carries its name twice — in `x-amzn-errortype` and in
//! the body's `__type` — because the Rust SDK reads the header first and botocore the body. Every answer carries an
//! `x-amzn-requestid`, as AWS's do.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde::de::DeserializeOwned;

use super::error::{ApiError, ErrorCode};

pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
pub const TARGET_PREFIX: &str = "RekognitionService.";

/// The operation a request names, without the service prefix (an empty string when there is no target).
pub fn target_operation(headers: &HeaderMap) -> Result<&str, ApiError> {
    let target = headers.get("x-amz-target").and_then(|value| value.to_str().ok()).unwrap_or_default();
    target.strip_prefix(TARGET_PREFIX).filter(|name| !name.is_empty()).ok_or_else(|| {
        ApiError::new(ErrorCode::UnknownOperation, format!("Unknown operation: x-amz-target {target:?}"))
    })
}

/// A header's value as text, when present and printable.
pub fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|value| value.to_str().ok()).map(str::to_owned)
}

/// Decodes a request body; an empty body is an empty object (no members sent).
pub fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) { b"{}".as_slice() } else { body };
    serde_json::from_slice(body).map_err(|err| ApiError::validation(format!("Could not read the request body: {err}")))
}

/// A time as awsJson encodes it: epoch seconds, fractional.
pub fn epoch_seconds(millis: i64) -> serde_json::Value {
    serde_json::Number::from_f64(millis as f64 / 1000.0).map(serde_json::Value::Number).unwrap_or_default()
}

/// The HTTP answer for an operation's result.
pub fn respond(result: &Result<serde_json::Value, ApiError>, request_id: &str) -> Response {
    let (status, error_type, body) = match result {
        Ok(output) => (StatusCode::OK, None, output.clone()),
        Err(err) => (
            StatusCode::from_u16(err.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST),
            Some(err.code.name()),
            serde_json::json!({ "__type": err.code.name(), "message": err.message, "Message": err.message }),
        ),
    };
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static(CONTENT_TYPE));
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", value);
    }
    if let Some(value) = error_type.and_then(|name| HeaderValue::from_str(name).ok()) {
        headers.insert("x-amzn-errortype", value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(target: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-amz-target", HeaderValue::from_str(target).unwrap());
        headers
    }

    #[test]
    fn target_names_the_operation() {
        assert_eq!(target_operation(&headers("RekognitionService.CopyProjectVersion")).unwrap(), "CopyProjectVersion");
    }

    #[test]
    fn other_services_are_unknown() {
        let err = target_operation(&headers("DynamoDB_20120810.GetItem")).unwrap_err();
        assert_eq!(err.code, ErrorCode::UnknownOperation);
        assert!(target_operation(&HeaderMap::new()).is_err());
    }

    #[test]
    fn empty_body_is_an_empty_object() {
        let value: serde_json::Value = parse_body(b"").unwrap();
        assert_eq!(value, serde_json::json!({}));
    }

    #[test]
    fn malformed_body_is_a_validation_error() {
        let err = parse_body::<serde_json::Value>(b"{nope").unwrap_err();
        assert_eq!(err.code, ErrorCode::Validation);
    }

    #[test]
    fn times_are_fractional_epoch_seconds() {
        assert_eq!(epoch_seconds(1_700_000_000_123), serde_json::json!(1_700_000_000.123));
    }

    #[test]
    fn errors_carry_their_name_and_status() {
        let response = respond(&Err(ApiError::new(ErrorCode::Throttling, "slow down")), "req-1");
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()["x-amzn-errortype"], "ThrottlingException");
        assert_eq!(response.headers()["x-amzn-requestid"], "req-1");
        assert_eq!(response.headers()["content-type"], CONTENT_TYPE);
    }
}
