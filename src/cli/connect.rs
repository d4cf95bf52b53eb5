//! The channel to the server and the credentials every call carries.
//!
//! Credentials are attached by one interceptor rather than by each command, so no call can go out without them.
//! Both header values are checked when the CLI starts, before anything is sent: a principal or token that cannot
//! be a header is the user's mistake to fix, not a transport error to puzzle over.
//!
//! An `https://` endpoint trusts only the CA named with `--ca-cert` (the service's certificates come from a
//! private CA, not the public web's), and presents `--client-cert` / `--client-key` for mutual TLS.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
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
    #[error("endpoint {0:?} uses https: name the CA that signed the server's certificate with --ca-cert")]
    CaCertRequired(String),
    #[error("--ca-cert, --client-cert and --client-key need an https:// endpoint, not {0:?}")]
    TlsNeedsHttps(String),
    #[error("--client-cert and --client-key go together")]
    HalfAClientIdentity,
    #[error("cannot read {flag} {path}")]
    Unreadable {
        flag: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot set up TLS for {endpoint}")]
    Tls {
        endpoint: String,
        #[source]
        source: tonic::transport::Error,
    },
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
    /// Sent as `grpc-timeout` on every unary call (not on a watch, which lasts as long as it is wanted): a call the
    /// server cannot finish in time is ended by it, not left hanging.
    deadline: Option<Duration>,
}

/// The API's methods that stream their answers: they get no deadline.
const STREAMING: &[&str] = &["WatchCopy"];

impl CallMetadata {
    pub fn new(principal: Option<&str>, token: Option<&str>) -> Result<Self, ConnectError> {
        let principal = non_empty(principal)
            .map(|p| MetadataValue::try_from(p).map_err(|_| ConnectError::InvalidPrincipal))
            .transpose()?;
        let authorization = non_empty(token)
            .map(|t| {
                let mut value =
                    MetadataValue::try_from(format!("Bearer {t}")).map_err(|_| ConnectError::InvalidToken)?;
                // Keeps the token out of Debug output and logs.
                value.set_sensitive(true);
                Ok(value)
            })
            .transpose()?;
        Ok(Self { principal, authorization, deadline: None })
    }

    /// The same headers, and `deadline` on every unary call.
    pub fn with_deadline(self, deadline: Duration) -> Self {
        Self { deadline: Some(deadline), ..self }
    }
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.is_empty())
}

impl Interceptor for CallMetadata {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        // The generated client names the method in the request's extensions.
        let method = request.extensions().get::<tonic::GrpcMethod>().map(|method| method.method());
        if let Some(deadline) = self.deadline.filter(|_| method.is_some_and(|method| !STREAMING.contains(&method))) {
            request.set_timeout(deadline);
        }
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

/// The TLS material for an `https://` endpoint, as PEM text.
#[derive(Clone, Default)]
pub struct TlsOptions {
    /// The CA that signed the server's certificate; the only one trusted.
    ca_cert: Option<String>,
    /// The client's certificate and private key, for mutual TLS.
    identity: Option<(String, String)>,
}

impl std::fmt::Debug for TlsOptions {
    // The client's private key stays out of Debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsOptions")
            .field("ca_cert", &self.ca_cert.is_some())
            .field("identity", &self.identity.is_some())
            .finish()
    }
}

impl TlsOptions {
    pub fn from_pem(ca_cert: Option<String>, identity: Option<(String, String)>) -> Self {
        TlsOptions { ca_cert, identity }
    }

    /// Reads the files named by `--ca-cert`, `--client-cert` and `--client-key`.
    pub fn from_files(
        ca_cert: Option<&Path>,
        client_cert: Option<&Path>,
        client_key: Option<&Path>,
    ) -> Result<Self, ConnectError> {
        let read = |flag: &'static str, path: &Path| {
            std::fs::read_to_string(path).map_err(|source| ConnectError::Unreadable {
                flag,
                path: path.to_owned(),
                source,
            })
        };
        let ca_cert = ca_cert.map(|p| read("--ca-cert", p)).transpose()?;
        let identity = match (client_cert, client_key) {
            (Some(cert), Some(key)) => Some((read("--client-cert", cert)?, read("--client-key", key)?)),
            (None, None) => None,
            _ => return Err(ConnectError::HalfAClientIdentity),
        };
        Ok(TlsOptions { ca_cert, identity })
    }

    fn is_empty(&self) -> bool {
        self.ca_cert.is_none() && self.identity.is_none()
    }
}

/// Connects to `endpoint` (for example `http://127.0.0.1:50051`) and returns a client that sends `metadata`.
pub async fn connect(endpoint: &str, metadata: CallMetadata) -> Result<Client, ConnectError> {
    connect_tls(endpoint, metadata, &TlsOptions::default()).await
}

/// Connects like [`connect`], over TLS with `tls` when `endpoint` is `https://…`.
pub async fn connect_tls(endpoint: &str, metadata: CallMetadata, tls: &TlsOptions) -> Result<Client, ConnectError> {
    let mut channel = Endpoint::from_shared(endpoint.to_owned())
        .map_err(|source| ConnectError::InvalidEndpoint { endpoint: endpoint.to_owned(), source })?
        .connect_timeout(CONNECT_TIMEOUT);
    if endpoint.starts_with("https://") {
        // Without a CA to trust, tonic would fail the handshake obscurely.
        let ca_cert = tls.ca_cert.as_ref().ok_or_else(|| ConnectError::CaCertRequired(endpoint.to_owned()))?;
        let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca_cert));
        if let Some((cert, key)) = &tls.identity {
            config = config.identity(Identity::from_pem(cert, key));
        }
        channel =
            channel.tls_config(config).map_err(|source| ConnectError::Tls { endpoint: endpoint.to_owned(), source })?;
    } else if !tls.is_empty() {
        return Err(ConnectError::TlsNeedsHttps(endpoint.to_owned()));
    }
    let channel = channel
        .connect()
        .await
        .map_err(|source| ConnectError::Unreachable { endpoint: endpoint.to_owned(), source })?;
    Ok(ModelCopyClient::with_interceptor(channel, metadata))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(metadata: CallMetadata) -> tonic::metadata::MetadataMap {
        let mut metadata = metadata;
        metadata.call(Request::new(())).expect("the interceptor never refuses").metadata().clone()
    }

    fn headers_of(metadata: CallMetadata, method: &'static str) -> tonic::metadata::MetadataMap {
        let mut metadata = metadata;
        let mut request = Request::new(());
        request.extensions_mut().insert(tonic::GrpcMethod::new("modelcopy.v1.ModelCopy", method));
        metadata.call(request).expect("the interceptor never refuses").metadata().clone()
    }

    #[test]
    fn unary_calls_carry_the_deadline_and_a_watch_does_not() {
        let metadata = CallMetadata::new(Some("alice"), None).unwrap().with_deadline(Duration::from_secs(30));
        for unary in ["CopyModelVersion", "GetCopy", "ListCopies", "CancelCopy", "ListAuditEvents"] {
            let sent = headers_of(metadata.clone(), unary);
            assert_eq!(sent.get("grpc-timeout").map(|v| v.to_str().unwrap()), Some("30000000u"), "{unary}");
        }
        assert!(headers_of(metadata, "WatchCopy").get("grpc-timeout").is_none());
        let without = CallMetadata::new(Some("alice"), None).unwrap();
        assert!(headers_of(without, "GetCopy").get("grpc-timeout").is_none());
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
        assert!(matches!(CallMetadata::new(Some("al\nice"), None), Err(ConnectError::InvalidPrincipal)));
        assert!(matches!(CallMetadata::new(None, Some("tok\0en")), Err(ConnectError::InvalidToken)));
    }

    #[tokio::test]
    async fn https_needs_a_ca_and_tls_needs_https() {
        let result = connect("https://127.0.0.1:1", CallMetadata::default()).await;
        assert!(matches!(result, Err(ConnectError::CaCertRequired(_))));
        let tls = TlsOptions::from_pem(Some("ca".into()), None);
        let result = connect_tls("http://127.0.0.1:1", CallMetadata::default(), &tls).await;
        assert!(matches!(result, Err(ConnectError::TlsNeedsHttps(_))));
    }

    #[test]
    fn a_client_certificate_needs_its_key() {
        let result = TlsOptions::from_files(None, Some(Path::new("client.pem")), None);
        assert!(matches!(result, Err(ConnectError::HalfAClientIdentity)));
        let result = TlsOptions::from_files(Some(Path::new("/nonexistent/ca.pem")), None, None);
        assert!(matches!(result, Err(ConnectError::Unreadable { flag: "--ca-cert", .. })));
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
