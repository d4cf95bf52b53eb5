//! How an AWS error reads for a copy: permanent (the copy fails, with AWS's code and message kept) or transient
//! (retried with backoff). Some transient errors mean the request was not carried out (a throttle), others that it
//! may have been (a timeout, a lost connection, a 5xx); the dispatcher does not tell them apart: before any
//! re-submission it asks Rekognition whether the copy exists, so a copy is never made twice either way.
//!
//! Credentials are resolved inside the SDK's call, so a failure to get them (the role cannot be assumed, no
//! credentials anywhere) comes back as a *dispatch failure*, like a lost connection. Read that way, a wrong
//! `role_arn` was retried for ever, each job holding one of its account's places. So the error's chain is searched
//! for the credentials provider's error first: STS refusing (AccessDenied, a malformed role) fails the copy at once
//! with STS's code (`sts:AccessDenied`) and message; no credentials at all, or a configuration the provider calls
//! invalid, fails it too (`CredentialsError`); a provider that timed out, or an STS that could not be reached or
//! was busy, is transient (and bounded by `max_attempts`, like every transient failure).

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_rekognition::config::http::HttpResponse as Response;
use aws_sdk_rekognition::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sts::operation::assume_role::AssumeRoleError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    Permanent,
    Transient,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct AwsCallError {
    pub code: String,
    pub message: String,
    pub retry: Retry,
}

/// Errors that are AWS saying "not now".
const THROTTLES: &[&str] = &[
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "LimitExceededException",
    "TooManyRequestsException",
];
/// Errors of the service itself.
const SERVER_FAULTS: &[&str] = &["InternalServerError", "ServiceUnavailable", "ServiceUnavailableException"];

impl AwsCallError {
    pub fn is_permanent(&self) -> bool {
        self.retry == Retry::Permanent
    }

    /// The call was not made: this replica's leader term had run out (see `dispatch::term`). Transient: the
    /// account's next leader makes it.
    pub fn not_leader() -> AwsCallError {
        AwsCallError {
            code: "NotLeader".into(),
            message: "not sent: this replica could not confirm it still leads the account".into(),
            retry: Retry::Transient,
        }
    }

    /// Whether the call failed for want of credentials (an AssumeRole refused, none found): says nothing of the
    /// copy itself.
    pub fn is_credentials(&self) -> bool {
        self.code == "CredentialsError" || self.code.starts_with("sts:")
    }

    /// Whether this is [`AwsCallError::not_leader`]: no call was made, so it is no failure of the copy.
    pub fn is_not_leader(&self) -> bool {
        self.code == "NotLeader"
    }

    /// AWS saying "not so fast": the caller's pace must slow down at once.
    pub fn is_throttle(&self) -> bool {
        THROTTLES.contains(&self.code.as_str())
    }

    /// Sorts a service error by its code, falling back on its HTTP status for codes not listed.
    pub fn from_service(code: Option<&str>, message: Option<&str>, http_status: u16) -> AwsCallError {
        let code = code.unwrap_or("UnknownError").to_owned();
        let transient =
            THROTTLES.contains(&code.as_str()) || SERVER_FAULTS.contains(&code.as_str()) || http_status >= 500;
        let retry = if transient { Retry::Transient } else { Retry::Permanent };
        AwsCallError { code, message: message.unwrap_or_default().to_owned(), retry }
    }
}

impl<E: ProvideErrorMetadata + std::error::Error + 'static> From<SdkError<E, Response>> for AwsCallError {
    fn from(err: SdkError<E, Response>) -> Self {
        let transient = |code: &str, err: &dyn std::error::Error| AwsCallError {
            code: code.to_owned(),
            message: error_chain(err),
            retry: Retry::Transient,
        };
        match &err {
            SdkError::ServiceError(service) => AwsCallError::from_service(
                service.err().code(),
                service.err().message(),
                service.raw().status().as_u16(),
            ),
            SdkError::TimeoutError(_) => transient("Timeout", &err),
            SdkError::DispatchFailure(_) => {
                credentials_failure(&err).unwrap_or_else(|| transient("ConnectionError", &err))
            }
            SdkError::ResponseError(_) => transient("ResponseError", &err),
            SdkError::ConstructionFailure(_) => {
                AwsCallError { code: "ConstructionFailure".into(), message: error_chain(&err), retry: Retry::Permanent }
            }
            _ => transient("UnknownError", &err),
        }
    }
}

/// What a call's failure to get credentials means for the copy, if that is why it failed.
fn credentials_failure(err: &(dyn std::error::Error + 'static)) -> Option<AwsCallError> {
    let mut cause = Some(err);
    let credentials = loop {
        let current = cause?;
        if let Some(credentials) = current.downcast_ref::<CredentialsError>() {
            break credentials;
        }
        cause = current.source();
    };
    let message = error_chain(credentials);
    let (code, retry) = match credentials {
        CredentialsError::ProviderTimedOut(_) => ("CredentialsError".to_owned(), Retry::Transient),
        CredentialsError::ProviderError(_) => match sts_refusal(credentials) {
            Some((code, http_status)) => {
                let refused = AwsCallError::from_service(Some(&code), None, http_status);
                (format!("sts:{code}"), refused.retry)
            }
            // STS not reached, or a provider other than AssumeRole failing: try again later.
            None => ("CredentialsError".to_owned(), Retry::Transient),
        },
        _ => ("CredentialsError".to_owned(), Retry::Permanent),
    };
    Some(AwsCallError { code, message, retry })
}

/// STS's error code and HTTP status, when STS answered the AssumeRole with an error.
fn sts_refusal(credentials: &CredentialsError) -> Option<(String, u16)> {
    let mut cause = std::error::Error::source(credentials);
    while let Some(current) = cause {
        if let Some(SdkError::ServiceError(refused)) = current.downcast_ref::<SdkError<AssumeRoleError, Response>>() {
            return Some((refused.err().code().unwrap_or("UnknownError").to_owned(), refused.raw().status().as_u16()));
        }
        cause = current.source();
    }
    None
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issue_s_permanent_errors_fail_the_copy() {
        for code in [
            "AccessDeniedException",
            "InvalidParameterException",
            "ResourceNotFoundException",
            "ResourceInUseException",
            "ServiceQuotaExceededException",
        ] {
            assert!(AwsCallError::from_service(Some(code), None, 400).is_permanent(), "{code}");
        }
    }

    #[test]
    fn throttles_are_retried() {
        for code in ["ThrottlingException", "ProvisionedThroughputExceededException", "LimitExceededException"] {
            let err = AwsCallError::from_service(Some(code), Some("slow down"), 400);
            assert_eq!(err.retry, Retry::Transient, "{code}");
            assert_eq!(err.message, "slow down");
        }
    }

    #[test]
    fn server_faults_are_retried() {
        let err = AwsCallError::from_service(Some("InternalServerError"), None, 500);
        assert_eq!(err.retry, Retry::Transient);
        let err = AwsCallError::from_service(Some("SomethingNew"), None, 503);
        assert_eq!(err.retry, Retry::Transient);
        let err = AwsCallError::from_service(Some("SomethingNew"), None, 400);
        assert!(err.is_permanent());
    }
}
