//! The channel to the server and the credentials every call carries.
//!
//! Credentials are attached by one interceptor rather than by each command, so no call can go out without them.
//! Both header values are checked when the CLI starts, before anything is sent: a principal or token that cannot
//! be a header is the user's mistake to fix, not a transport error to puzzle over.

use std::time::Duration;

use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

use crate::proto::model_copy_client::ModelCopyClient;

/// Metadata key of the caller's identity; the server trusts it in dev mode only.
pub const PRINCIPAL_HEADER: &str = "x-modelcopy-principal";

/// A client whose every call carries the CLI's credentials.
pub type Client = ModelCopyClient<InterceptedService<Channel, CallMetadata>>;

/// How long to wait for the server to accept the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("the principal cannot be sent as a gRPC header (visible ASCII only)")]
    InvalidPrincipal,
    #[error("the token cannot be sent as a gRPC header (visible ASCII only)")]
    InvalidToken,
    #[error("endpoint {endpoint:?} is not a valid URI")]
    InvalidEndpoint {
        endpoint: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("endpoint {0:?} uses https, but this build has no TLS support; use http://")]
    TlsUnsupported(String),
    #[error("cannot connect to {endpoint}")]
    Unreachable {
        endpoint: String,
        #[source]
        source: tonic::transport::Error,
    },
}

/// The headers added to every call. Empty strings count as absent, so an empty environment variable sends nothing.
#[derive(Debug, Clone, Default)]
pub struct CallMetadata {
    principal: Option<AsciiMetadataValue>,
    authorization: Option<AsciiMetadataValue>,
}

impl CallMetadata {
    pub fn new(principal: Option<&str>, token: Option<&str>) -> Result<Self, ConnectError> {
        let principal = non_empty(principal)
            .map(|p| MetadataValue::try_from(p).map_err(|_| ConnectError::InvalidPrincipal))
            .transpose()?;
        let authorization = non_empty(token)
            .map(|t| {
                let mut value = MetadataValue::try_from(format!("Bearer {t}"))
                    .map_err(|_| ConnectError::InvalidToken)?;
                // Keeps the token out of Debug output and logs.
                value.set_sensitive(true);
                Ok(value)
            })
            .transpose()?;
        Ok(Self {
            principal,
            authorization,
        })
    }
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.is_empty())
}

impl Interceptor for CallMetadata {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let metadata = request.metadata_mut();
        if let Some(principal) = &self.principal {
            metadata.insert(PRINCIPAL_HEADER, principal.clone());
        }
        if let Some(authorization) = &self.authorization {
            metadata.insert("authorization", authorization.clone());
        }
        Ok(request)
    }
}

/// Connects to `endpoint` (for example `http://127.0.0.1:50051`) and returns a client that sends `metadata`.
pub async fn connect(endpoint: &str, metadata: CallMetadata) -> Result<Client, ConnectError> {
    if endpoint.starts_with("https://") {
        // Without TLS, tonic would speak plain HTTP/2 to a TLS port and fail obscurely.
        return Err(ConnectError::TlsUnsupported(endpoint.to_owned()));
    }
    let channel = Endpoint::from_shared(endpoint.to_owned())
        .map_err(|source| ConnectError::InvalidEndpoint {
            endpoint: endpoint.to_owned(),
            source,
        })?
        .connect_timeout(CONNECT_TIMEOUT)
        .connect()
        .await
        .map_err(|source| ConnectError::Unreachable {
            endpoint: endpoint.to_owned(),
            source,
        })?;
    Ok(ModelCopyClient::with_interceptor(channel, metadata))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(metadata: CallMetadata) -> tonic::metadata::MetadataMap {
        let mut metadata = metadata;
        metadata
            .call(Request::new(()))
            .expect("the interceptor never refuses")
            .metadata()
            .clone()
    }

    #[test]
    fn sends_principal_and_bearer_token() {
        let sent = headers(CallMetadata::new(Some("alice"), Some("s3cret")).unwrap());
        assert_eq!(sent.get(PRINCIPAL_HEADER).unwrap(), "alice");
        assert_eq!(sent.get("authorization").unwrap(), "Bearer s3cret");
    }

    #[test]
    fn sends_nothing_when_absent_or_empty() {
        assert!(headers(CallMetadata::new(None, None).unwrap()).is_empty());
        assert!(headers(CallMetadata::new(Some(""), Some("")).unwrap()).is_empty());
    }

    #[test]
    fn token_is_hidden_from_debug_output() {
        let metadata = CallMetadata::new(None, Some("s3cret")).unwrap();
        assert!(!format!("{metadata:?}").contains("s3cret"));
    }

    #[test]
    fn refuses_values_that_cannot_be_headers() {
        assert!(matches!(
            CallMetadata::new(Some("al\nice"), None),
            Err(ConnectError::InvalidPrincipal)
        ));
        assert!(matches!(
            CallMetadata::new(None, Some("tok\0en")),
            Err(ConnectError::InvalidToken)
        ));
    }

    #[tokio::test]
    async fn refuses_https_without_tls() {
        let result = connect("https://127.0.0.1:1", CallMetadata::default()).await;
        assert!(matches!(result, Err(ConnectError::TlsUnsupported(_))));
    }

    #[tokio::test]
    async fn reports_an_unreachable_server() {
        // Bind then drop a listener to get a loopback port that nothing listens on.
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let result = connect(&format!("http://127.0.0.1:{port}"), CallMetadata::default()).await;
        assert!(matches!(result, Err(ConnectError::Unreachable { .. })));
    }
}
