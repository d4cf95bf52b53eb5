//! The errors the simulator answers with, named exactly as Rekognition names them on the wire.
//!
//! Clients pick the typed exception from the name alone (the `x-amzn-errortype` header or `__type`), and decide
//! whether to retry from the HTTP status, so both live here, in one place: 500 for the server-side faults
//! (`ThrottlingException`, `InternalServerError`, per the API reference), 400 for everything else.

use std::fmt;

/// An error name. The named variants are the ones the simulator raises itself; `Other` carries any name a test
/// injects through a [`Fault`](super::Fault), so that clients can be exercised against errors we never raise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorCode {
    AccessDenied,
    IncompleteSignature,
    InternalServerError,
    InvalidPaginationToken,
    InvalidParameter,
    InvalidPolicyRevisionId,
    InvalidSignature,
    LimitExceeded,
    MalformedPolicyDocument,
    MissingAuthenticationToken,
    ProvisionedThroughputExceeded,
    ResourceAlreadyExists,
    ResourceInUse,
    ResourceNotFound,
    ServiceQuotaExceeded,
    Throttling,
    UnknownOperation,
    UnrecognizedClient,
    Validation,
    Other(String),
}

impl ErrorCode {
    const NAMED: [ErrorCode; 19] = [
        ErrorCode::AccessDenied,
        ErrorCode::IncompleteSignature,
        ErrorCode::InternalServerError,
        ErrorCode::InvalidPaginationToken,
        ErrorCode::InvalidParameter,
        ErrorCode::InvalidPolicyRevisionId,
        ErrorCode::InvalidSignature,
        ErrorCode::LimitExceeded,
        ErrorCode::MalformedPolicyDocument,
        ErrorCode::MissingAuthenticationToken,
        ErrorCode::ProvisionedThroughputExceeded,
        ErrorCode::ResourceAlreadyExists,
        ErrorCode::ResourceInUse,
        ErrorCode::ResourceNotFound,
        ErrorCode::ServiceQuotaExceeded,
        ErrorCode::Throttling,
        ErrorCode::UnknownOperation,
        ErrorCode::UnrecognizedClient,
        ErrorCode::Validation,
    ];

    /// Accepts the bare name or a namespaced one (`com.amazonaws.rekognition#ThrottlingException`).
    pub fn from_name(name: &str) -> ErrorCode {
        let bare = name.rsplit('#').next().unwrap_or(name);
        Self::NAMED.into_iter().find(|code| code.name() == bare).unwrap_or_else(|| ErrorCode::Other(bare.to_owned()))
    }

    pub fn name(&self) -> &str {
        match self {
            ErrorCode::AccessDenied => "AccessDeniedException",
            ErrorCode::IncompleteSignature => "IncompleteSignatureException",
            ErrorCode::InternalServerError => "InternalServerError",
            ErrorCode::InvalidPaginationToken => "InvalidPaginationTokenException",
            ErrorCode::InvalidParameter => "InvalidParameterException",
            ErrorCode::InvalidPolicyRevisionId => "InvalidPolicyRevisionIdException",
            ErrorCode::InvalidSignature => "InvalidSignatureException",
            ErrorCode::LimitExceeded => "LimitExceededException",
            ErrorCode::MalformedPolicyDocument => "MalformedPolicyDocumentException",
            ErrorCode::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            ErrorCode::ProvisionedThroughputExceeded => "ProvisionedThroughputExceededException",
            ErrorCode::ResourceAlreadyExists => "ResourceAlreadyExistsException",
            ErrorCode::ResourceInUse => "ResourceInUseException",
            ErrorCode::ResourceNotFound => "ResourceNotFoundException",
            ErrorCode::ServiceQuotaExceeded => "ServiceQuotaExceededException",
            ErrorCode::Throttling => "ThrottlingException",
            ErrorCode::UnknownOperation => "UnknownOperationException",
            ErrorCode::UnrecognizedClient => "UnrecognizedClientException",
            ErrorCode::Validation => "ValidationException",
            ErrorCode::Other(name) => name,
        }
    }

    /// The HTTP status Rekognition documents for this error.
    pub fn http_status(&self) -> u16 {
        match self {
            ErrorCode::Throttling | ErrorCode::InternalServerError => 500,
            _ => 400,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An error answer: what went wrong, in Rekognition's words, and a message for the human reading the logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { code, message: message.into() }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::Validation, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::ResourceNotFound, message)
    }

    pub fn in_use(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::ResourceInUse, message)
    }

    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::InvalidParameter, message)
    }

    /// The IAM-style refusal AWS gives when the caller's account may not act on a resource.
    pub fn access_denied(caller_account: &str, operation: &str, resource: &str) -> Self {
        ApiError::new(
            ErrorCode::AccessDenied,
            format!(
                "User: arn:aws:iam::{caller_account}:root is not authorized to perform: rekognition:{operation} \
                 on resource: {resource}"
            ),
        )
    }

    /// The same refusal, with IAM's reason appended (`because no resource-based policy allows ...`).
    pub fn access_denied_because(caller_account: &str, operation: &str, resource: &str, reason: &str) -> Self {
        let mut err = ApiError::access_denied(caller_account, operation, resource);
        err.message = format!("{} {reason}", err.message);
        err
    }

    /// The quota refusal: the token bucket of this account and operation is empty.
    pub fn throughput_exceeded() -> Self {
        ApiError::new(
            ErrorCode::ProvisionedThroughputExceeded,
            "The number of requests exceeded your throughput limit. If you want to increase this limit, \
             contact Amazon Rekognition.",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for code in ErrorCode::NAMED {
            assert_eq!(ErrorCode::from_name(code.name()), code);
        }
    }

    #[test]
    fn namespace_prefix_is_ignored() {
        assert_eq!(ErrorCode::from_name("com.amazonaws.rekognition#ThrottlingException"), ErrorCode::Throttling);
    }

    #[test]
    fn unknown_names_are_kept() {
        let code = ErrorCode::from_name("TooManyCooksException");
        assert_eq!(code.name(), "TooManyCooksException");
        assert_eq!(code.http_status(), 400);
    }

    #[test]
    fn quota_errors_are_client_errors() {
        assert_eq!(ErrorCode::ProvisionedThroughputExceeded.http_status(), 400);
        assert_eq!(ErrorCode::LimitExceeded.http_status(), 400);
        assert!(ApiError::throughput_exceeded()
            .message
            .starts_with("The number of requests exceeded your throughput limit."));
    }

    #[test]
    fn server_faults_are_500() {
        assert_eq!(ErrorCode::Throttling.http_status(), 500);
        assert_eq!(ErrorCode::InternalServerError.http_status(), 500);
        assert_eq!(ErrorCode::ResourceNotFound.http_status(), 400);
    }
}
