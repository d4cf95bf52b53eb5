//! STS `AssumeRole`, enough of it for a client configured with a role to reach Rekognition through the simulator:
//! the awsQuery protocol (a form body, `Action=AssumeRole&Version=2011-06-15&RoleArn=…`, XML answers), signed for
//! `sts`. Any seeded caller may assume any seeded role ([`SeedAccount::roles`](super::SeedAccount)); a role that
//! does not exist is refused `AccessDenied` (HTTP 403) in STS's words, which is what a misconfigured `role_arn`
//! gets from AWS. The temporary credentials act in the role's account until the simulator stops.

use std::sync::LazyLock;
use std::time::SystemTime;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use regex::Regex;

use super::engine::Engine;
use super::error::ErrorCode;
use super::signature::ReceivedRequest;

const NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
/// How long issued credentials say they last (the simulator does not expire them).
const LIFETIME_SECS: i64 = 3600;

static ROLE_NAME: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[\w+=,.@-]{1,64}$").unwrap());
static ROLE_ARN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^arn:aws:iam::(\d{12}):role/(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,64}$").unwrap());
static SESSION_NAME: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[\w+=,.@-]{2,64}$").unwrap());

/// Whether `name` can name an IAM role.
pub fn is_role_name(name: &str) -> bool {
    ROLE_NAME.is_match(name)
}

/// Whether a request without `x-amz-target` is an STS query-protocol call.
pub fn is_sts(request: &ReceivedRequest<'_>) -> bool {
    let form = request.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    request.headers.get("x-amz-target").is_none() && form.starts_with("application/x-www-form-urlencoded")
}

/// Answers one STS call.
pub fn handle(engine: &Engine, request: &ReceivedRequest<'_>, request_id: &str) -> Response {
    let params: Vec<(String, String)> = form_urlencoded::parse(request.body).into_owned().collect();
    let param = |name: &str| params.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str());
    let fail = |status: StatusCode, code: &str, message: &str| error(status, code, message, request_id);
    match param("Action") {
        Some("AssumeRole") => {}
        other => {
            let message = format!("Could not find operation {} for version 2011-06-15", other.unwrap_or_default());
            return fail(StatusCode::BAD_REQUEST, "InvalidAction", &message);
        }
    }
    let caller = match engine.accounts().identify_for(request, SystemTime::now(), "sts") {
        Ok(caller) => caller,
        Err(err) => {
            let code = match err.code {
                ErrorCode::UnrecognizedClient => "InvalidClientTokenId",
                ErrorCode::InvalidSignature => "SignatureDoesNotMatch",
                _ => "IncompleteSignature",
            };
            return fail(StatusCode::FORBIDDEN, code, &err.message);
        }
    };
    let Some(role_arn) = param("RoleArn").filter(|arn| ROLE_ARN.is_match(arn)) else {
        let message = "1 validation error detected: Value at 'roleArn' failed to satisfy constraint: \
                       Member must be a valid IAM role ARN";
        return fail(StatusCode::BAD_REQUEST, "ValidationError", message);
    };
    let Some(session) = param("RoleSessionName").filter(|name| SESSION_NAME.is_match(name)) else {
        let message = "1 validation error detected: Value at 'roleSessionName' failed to satisfy constraint: \
                       Member must satisfy regular expression pattern: [\\w+=,.@-]*";
        return fail(StatusCode::BAD_REQUEST, "ValidationError", message);
    };
    if !engine.accounts().has_role(role_arn) {
        let message = format!(
            "User: arn:aws:iam::{}:user/simulator is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
            caller.account_id
        );
        return fail(StatusCode::FORBIDDEN, "AccessDenied", &message);
    }
    let role_account = ROLE_ARN.captures(role_arn).expect("matched above")[1].to_owned();
    let role_name = role_arn.rsplit('/').next().unwrap_or_default();
    let issued = engine.accounts().issue(&role_account);
    let expiration = chrono::Utc::now() + chrono::Duration::seconds(LIFETIME_SECS);
    let body = format!(
        "<AssumeRoleResponse xmlns=\"{NAMESPACE}\"><AssumeRoleResult>\
         <Credentials><AccessKeyId>{}</AccessKeyId><SecretAccessKey>{}</SecretAccessKey>\
         <SessionToken>{}</SessionToken><Expiration>{}</Expiration></Credentials>\
         <AssumedRoleUser><AssumedRoleId>AROASIMULATOR:{session}</AssumedRoleId>\
         <Arn>arn:aws:sts::{role_account}:assumed-role/{role_name}/{session}</Arn></AssumedRoleUser>\
         </AssumeRoleResult><ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>\
         </AssumeRoleResponse>",
        issued.access_key_id,
        issued.secret_access_key,
        issued.session_token,
        expiration.format("%Y-%m-%dT%H:%M:%SZ"),
    );
    xml(StatusCode::OK, body)
}

fn error(status: StatusCode, code: &str, message: &str, request_id: &str) -> Response {
    let kind = if status.is_server_error() { "Receiver" } else { "Sender" };
    let message = message.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let body = format!(
        "<ErrorResponse xmlns=\"{NAMESPACE}\"><Error><Type>{kind}</Type><Code>{code}</Code>\
         <Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
    );
    xml(status, body)
}

fn xml(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/xml")], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_and_arns_follow_iam() {
        assert!(is_role_name("modelcopy"));
        assert!(!is_role_name("no spaces"));
        assert!(ROLE_ARN.is_match("arn:aws:iam::123456789012:role/modelcopy"));
        assert!(ROLE_ARN.is_match("arn:aws:iam::123456789012:role/team/modelcopy"));
        assert!(!ROLE_ARN.is_match("arn:aws:iam::12345:role/modelcopy"));
    }
}
