//! SigV4 signature verification: sign the received request again with the account's secret and compare.
//!
//! The simulator does not reimplement SigV4: it hands `aws-sigv4` — the signer the Rust SDK itself uses — the
//! request exactly as received (method, path, the headers the client says it signed, the body), with the client's
//! credential scope and `x-amz-date`, and compares the signature that comes out with the one the client sent.
//! Any difference — wrong secret, a header changed on the way, a body that is not the one signed — is a mismatch,
//! answered `InvalidSignatureException` as AWS does. A request older or newer than 15 minutes is refused the same
//! way ("Signature expired"), as AWS does to stop replays.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use axum::http::{HeaderMap, Method, Uri};
use chrono::{DateTime, NaiveDateTime, Utc};

use super::error::{ApiError, ErrorCode};

/// How far a request's `x-amz-date` may be from the simulator's clock.
const MAX_SKEW: Duration = Duration::from_secs(15 * 60);
/// The signing name of the service most calls are for; STS calls are signed for `sts`.
pub const REKOGNITION: &str = "rekognition";

/// A request as received, with everything a signature covers.
pub struct ReceivedRequest<'a> {
    pub method: &'a Method,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub access_key_id: String,
    pub date: String,
    pub region: String,
    pub service: String,
    /// Lower-case header names, as listed.
    pub signed_headers: Vec<String>,
    pub signature: String,
}

impl Authorization {
    /// Reads an `Authorization` header value.
    pub fn parse(header: Option<&str>) -> Result<Self, ApiError> {
        let header = header
            .ok_or_else(|| ApiError::new(ErrorCode::MissingAuthenticationToken, "Missing Authentication Token"))?;
        let incomplete = |what: &str| {
            ApiError::new(
                ErrorCode::IncompleteSignature,
                format!("Authorization header requires a valid '{what}' parameter. Authorization={header}"),
            )
        };
        let params = header.strip_prefix("AWS4-HMAC-SHA256").ok_or_else(|| incomplete("Credential"))?;
        let param =
            |name: &str| params.split(',').map(str::trim).find_map(|param| param.strip_prefix(name)?.strip_prefix('='));
        let credential = param("Credential").ok_or_else(|| incomplete("Credential"))?;
        let [key, date, region, service, "aws4_request"] = credential.split('/').collect::<Vec<_>>()[..] else {
            return Err(incomplete("Credential"));
        };
        if key.is_empty() || region.is_empty() {
            return Err(incomplete("Credential"));
        }
        Ok(Authorization {
            access_key_id: key.to_owned(),
            date: date.to_owned(),
            region: region.to_owned(),
            service: service.to_owned(),
            signed_headers: param("SignedHeaders")
                .unwrap_or_default()
                .split(';')
                .filter(|name| !name.is_empty())
                .map(str::to_ascii_lowercase)
                .collect(),
            signature: param("Signature").unwrap_or_default().to_owned(),
        })
    }
}

/// Checks `authorization` against `request`, signed with `secret_access_key` for `service`, as seen at `now`.
pub fn verify(
    request: &ReceivedRequest<'_>,
    authorization: &Authorization,
    secret_access_key: &str,
    now: SystemTime,
    service: &str,
) -> Result<(), ApiError> {
    let incomplete = |message: &str| ApiError::new(ErrorCode::IncompleteSignature, message);
    if authorization.signed_headers.is_empty() || authorization.signature.is_empty() {
        return Err(incomplete("Authorization header requires 'SignedHeaders' and 'Signature' parameters."));
    }
    let amz_date = header(request.headers, "x-amz-date").ok_or_else(|| {
        incomplete("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
    })?;
    let signed_at = parse_amz_date(amz_date)
        .ok_or_else(|| incomplete(&format!("X-Amz-Date {amz_date:?} is not in the basic ISO 8601 format.")))?;
    check_skew(amz_date, signed_at, now)?;
    if authorization.service != service {
        return Err(invalid(&format!("Credential should be scoped to correct service: '{service}'.")));
    }
    let host = header(request.headers, "host").ok_or_else(|| incomplete("The Host header is missing."))?;

    // The headers the client says it signed, with their values as received (repeated headers joined by commas).
    let mut signed = Vec::with_capacity(authorization.signed_headers.len());
    for name in &authorization.signed_headers {
        let values: Vec<&str> =
            request.headers.get_all(name.as_str()).iter().filter_map(|value| value.to_str().ok()).collect();
        if values.is_empty() {
            return Err(mismatch());
        }
        signed.push((name.as_str(), values.join(",")));
    }
    let path_and_query = request.uri.path_and_query().map_or("/", |path| path.as_str());
    let signable = SignableRequest::new(
        request.method.as_str(),
        format!("http://{host}{path_and_query}"),
        signed.iter().map(|(name, value)| (*name, value.as_str())),
        SignableBody::Bytes(request.body),
    )
    .map_err(|_| mismatch())?;

    let identity =
        Credentials::new(&authorization.access_key_id, secret_access_key, None, None, "rekognition-simulator").into();
    let mut settings = SigningSettings::default();
    // Sign exactly what the client listed: nothing excluded, nothing added but what SigV4 always adds.
    settings.excluded_headers = None;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&authorization.region)
        .name(service)
        .time(signed_at)
        .settings(settings)
        .build()
        .map_err(|_| mismatch())?
        .into();
    let expected = sign(signable, &params).map_err(|_| mismatch())?;
    if expected.signature() == authorization.signature {
        Ok(())
    } else {
        Err(mismatch())
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

fn parse_amz_date(text: &str) -> Option<SystemTime> {
    let naive = NaiveDateTime::parse_from_str(text, "%Y%m%dT%H%M%SZ").ok()?;
    Some(naive.and_utc().into())
}

fn check_skew(amz_date: &str, signed_at: SystemTime, now: SystemTime) -> Result<(), ApiError> {
    let format = |time: SystemTime| DateTime::<Utc>::from(time).format("%Y%m%dT%H%M%SZ").to_string();
    if signed_at + MAX_SKEW < now {
        return Err(invalid(&format!(
            "Signature expired: {amz_date} is now earlier than {} ({} - 15 min.)",
            format(now - MAX_SKEW),
            format(now)
        )));
    }
    if signed_at > now + MAX_SKEW {
        return Err(invalid(&format!(
            "Signature not yet current: {amz_date} is still later than {} ({} + 15 min.)",
            format(now + MAX_SKEW),
            format(now)
        )));
    }
    Ok(())
}

fn invalid(message: &str) -> ApiError {
    ApiError::new(ErrorCode::InvalidSignature, message)
}

fn mismatch() -> ApiError {
    invalid(
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret \
         Access Key and signing method. Consult the service documentation for details.",
    )
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    const KEY: &str = "AKIDEXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const BODY: &[u8] = br#"{"ProjectArn":"x"}"#;

    /// A request signed the way an SDK does, by the same signer, at `at`.
    fn signed_request(secret: &str, at: SystemTime) -> (HeaderMap, String) {
        let amz_date = DateTime::<Utc>::from(at).format("%Y%m%dT%H%M%SZ").to_string();
        let headers = [
            ("content-type", "application/x-amz-json-1.1"),
            ("host", "127.0.0.1:4000"),
            ("x-amz-date", amz_date.as_str()),
            ("x-amz-target", "RekognitionService.DescribeProjects"),
        ];
        let identity = Credentials::new(KEY, secret, None, None, "test").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("rekognition")
            .time(at)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let signable =
            SignableRequest::new("POST", "http://127.0.0.1:4000/", headers.iter().copied(), SignableBody::Bytes(BODY))
                .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(name, HeaderValue::from_str(value).unwrap());
        }
        let authorization = instructions
            .headers()
            .find(|(name, _)| name.eq_ignore_ascii_case("authorization"))
            .map(|(_, value)| value.to_owned())
            .unwrap();
        (map, authorization)
    }

    fn check(headers: &HeaderMap, authorization: &str, body: &[u8], now: SystemTime) -> Result<(), ApiError> {
        let uri: Uri = "/".parse().unwrap();
        let request = ReceivedRequest { method: &Method::POST, uri: &uri, headers, body };
        verify(&request, &Authorization::parse(Some(authorization))?, SECRET, now, REKOGNITION)
    }

    #[test]
    fn the_right_secret_verifies() {
        let now = SystemTime::now();
        let (headers, authorization) = signed_request(SECRET, now);
        assert_eq!(check(&headers, &authorization, BODY, now), Ok(()));
    }

    #[test]
    fn a_wrong_secret_is_invalid_signature() {
        let now = SystemTime::now();
        let (headers, authorization) = signed_request("not-the-secret", now);
        let err = check(&headers, &authorization, BODY, now).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidSignature);
        assert!(err.message.starts_with("The request signature we calculated does not match"));
    }

    #[test]
    fn a_changed_body_or_header_is_invalid_signature() {
        let now = SystemTime::now();
        let (mut headers, authorization) = signed_request(SECRET, now);
        let err = check(&headers, &authorization, br#"{"ProjectArn":"y"}"#, now).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidSignature);
        headers.insert("x-amz-target", HeaderValue::from_static("RekognitionService.CreateProject"));
        assert!(check(&headers, &authorization, BODY, now).is_err());
    }

    #[test]
    fn an_old_request_has_expired() {
        let then = SystemTime::now() - Duration::from_secs(20 * 60);
        let (headers, authorization) = signed_request(SECRET, then);
        let err = check(&headers, &authorization, BODY, SystemTime::now()).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidSignature);
        assert!(err.message.starts_with("Signature expired"), "{}", err.message);
    }

    #[test]
    fn missing_date_is_incomplete() {
        let now = SystemTime::now();
        let (mut headers, authorization) = signed_request(SECRET, now);
        headers.remove("x-amz-date");
        let err = check(&headers, &authorization, BODY, now).unwrap_err();
        assert_eq!(err.code, ErrorCode::IncompleteSignature);
    }

    #[test]
    fn authorization_parts_are_read() {
        let parsed = Authorization::parse(Some(
            "AWS4-HMAC-SHA256 Credential=AKIA1/20261123/eu-west-1/rekognition/aws4_request, \
             SignedHeaders=Host;x-amz-date, Signature=abc",
        ))
        .unwrap();
        assert_eq!(parsed.access_key_id, "AKIA1");
        assert_eq!(parsed.region, "eu-west-1");
        assert_eq!(parsed.signed_headers, ["host", "x-amz-date"]);
        assert_eq!(parsed.signature, "abc");
        assert_eq!(Authorization::parse(Some("Bearer x")).unwrap_err().code, ErrorCode::IncompleteSignature);
        assert_eq!(Authorization::parse(None).unwrap_err().code, ErrorCode::MissingAuthenticationToken);
    }
}
