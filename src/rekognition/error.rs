//! How an AWS error reads for a copy: permanent (the copy fails, with AWS's code and message kept) or transient
//! (retried with backoff). Some transient errors mean the request was not carried out (a throttle), others that it
//! may have been (a timeout, a lost connection, a 5xx); the dispatcher does not tell them apart: before any
//! re-submission it asks Rekognition whether the copy exists, so a copy is never made twice either way.

use aws_sdk_rekognition::config::http::HttpResponse as Response;
use aws_sdk_rekognition::error::{ProvideErrorMetadata, SdkError};

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
            SdkError::DispatchFailure(_) => transient("ConnectionError", &err),
            SdkError::ResponseError(_) => transient("ResponseError", &err),
            SdkError::ConstructionFailure(_) => {
                AwsCallError { code: "ConstructionFailure".into(), message: error_chain(&err), retry: Retry::Permanent }
            }
            _ => transient("UnknownError", &err),
        }
    }
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
