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
    InternalServerError,
    InvalidPaginationToken,
    InvalidParameter,
    MissingAuthenticationToken,
    IncompleteSignature,
    ResourceInUse,
    ResourceNotFound,
    Throttling,
    UnknownOperation,
    UnrecognizedClient,
    Validation,
    Other(String),
}

impl ErrorCode {
    const NAMED: [ErrorCode; 12] = [
        ErrorCode::AccessDenied,
        ErrorCode::InternalServerError,
        ErrorCode::InvalidPaginationToken,
        ErrorCode::InvalidParameter,
        ErrorCode::MissingAuthenticationToken,
        ErrorCode::IncompleteSignature,
        ErrorCode::ResourceInUse,
        ErrorCode::ResourceNotFound,
        ErrorCode::Throttling,
        ErrorCode::UnknownOperation,
        ErrorCode::UnrecognizedClient,
        ErrorCode::Validation,
    ];

    /// Accepts the bare name or a namespaced one (`com.amazonaws.rekognition#ThrottlingException`).
    pub fn from_name(name: &str) -> ErrorCode {
        let bare = name.rsplit('#').next().unwrap_or(name);
        Self::NAMED
            .into_iter()
            .find(|code| code.name() == bare)
            .unwrap_or_else(|| ErrorCode::Other(bare.to_owned()))
    }

    pub fn name(&self) -> &str {
        match self {
            ErrorCode::AccessDenied => "AccessDeniedException",
            ErrorCode::InternalServerError => "InternalServerError",
            ErrorCode::InvalidPaginationToken => "InvalidPaginationTokenException",
            ErrorCode::InvalidParameter => "InvalidParameterException",
            ErrorCode::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            ErrorCode::IncompleteSignature => "IncompleteSignatureException",
            ErrorCode::ResourceInUse => "ResourceInUseException",
            ErrorCode::ResourceNotFound => "ResourceNotFoundException",
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
        ApiError {
            code,
            message: message.into(),
        }
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
        assert_eq!(
            ErrorCode::from_name("com.amazonaws.rekognition#ThrottlingException"),
            ErrorCode::Throttling
        );
    }

    #[test]
    fn unknown_names_are_kept() {
        let code = ErrorCode::from_name("LimitExceededException");
        assert_eq!(code.name(), "LimitExceededException");
        assert_eq!(code.http_status(), 400);
    }

    #[test]
    fn server_faults_are_500() {
        assert_eq!(ErrorCode::Throttling.http_status(), 500);
        assert_eq!(ErrorCode::InternalServerError.http_status(), 500);
        assert_eq!(ErrorCode::ResourceNotFound.http_status(), 400);
    }
}
