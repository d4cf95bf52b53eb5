//! The authenticator a service runs with, chosen from `[auth]`, and the order in which it reads credentials.
//!
//! With both JWT and mTLS configured, a bearer token, when the call has one, decides alone (a bad token is
//! refused even on a connection with a good certificate: what a caller sends is what it means to be); without
//! one, the client certificate does. A call with neither is UNAUTHENTICATED, told what this server accepts.
//!
//! Development mode — trusting a principal the caller names — runs only when `[auth] mode = "dev-metadata"` says
//! so; a service with no authentication configured otherwise refuses to start.

use std::sync::Arc;

use tracing::warn;

use super::jwks::JwksStore;
use super::jwt::{bearer_token, JwksError, JWT_AUTHN};
use super::mtls::{peer_certificate, principal_from_certificate};
use super::settings::{AuthMode, AuthSettings};
use super::{AuthError, Authenticator, DevMetadataAuthenticator, Principal};

/// How a refusal for want of any credentials is labelled in the audit log.
pub const NO_CREDENTIALS_AUTHN: &str = "none";

#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    #[error(
        "no authentication is configured: set [auth.jwt] (bearer JWTs) and/or [auth.tls] with client_ca_file \
         (client certificates); or, for development only, [auth] mode = \"dev-metadata\""
    )]
    NothingConfigured,
    #[error(transparent)]
    Jwks(#[from] JwksError),
    #[error("auth.tls: {0}")]
    Tls(String),
}

/// Bearer JWTs and/or client certificates, in the order described above.
pub struct ChainAuthenticator {
    jwt: Option<Arc<JwksStore>>,
    /// Whether client certificates identify callers (the TLS layer verifies them against the client CA).
    mtls: bool,
}

impl ChainAuthenticator {
    pub fn new(jwt: Option<Arc<JwksStore>>, mtls: bool) -> ChainAuthenticator {
        ChainAuthenticator { jwt, mtls }
    }

    fn accepted(&self) -> &'static str {
        match (self.jwt.is_some(), self.mtls) {
            (true, true) => "send a bearer token (authorization: Bearer <JWT>) or connect with a client certificate",
            (true, false) => "send a bearer token (authorization: Bearer <JWT>)",
            _ => "connect with a client certificate",
        }
    }
}

impl Authenticator for ChainAuthenticator {
    fn authenticate(&self, headers: &http::HeaderMap, extensions: &http::Extensions) -> Result<Principal, AuthError> {
        if let Some(token) = bearer_token(headers)? {
            return match &self.jwt {
                Some(jwt) => jwt.verify(token),
                None => Err(AuthError::new(
                    JWT_AUTHN,
                    format!("bearer tokens are not accepted by this server: {}", self.accepted()),
                )),
            };
        }
        if self.mtls {
            if let Some(leaf) = peer_certificate(extensions) {
                return principal_from_certificate(&leaf);
            }
        }
        Err(AuthError::new(NO_CREDENTIALS_AUTHN, format!("no credentials: {}", self.accepted())))
    }
}

/// How callers are authenticated, as `[auth]` asks: the authenticator, and the JWKS it checks tokens with (to be
/// kept up to date while serving, [`JwksStore::watch`]).
pub struct Authentication {
    pub authenticator: Arc<dyn Authenticator>,
    pub jwks: Option<Arc<JwksStore>>,
}

/// The authentication `[auth]` asks for. Reads the JWKS; says loudly when authentication is off.
pub fn from_settings(settings: &AuthSettings) -> Result<Authentication, AuthSetupError> {
    let mtls = settings.tls.as_ref().is_some_and(|tls| tls.client_ca_file.is_some());
    match settings.mode {
        AuthMode::DevMetadata => {
            warn!(
                "AUTHENTICATION IS OFF ([auth] mode = \"dev-metadata\"): every caller is whoever its \
                 x-modelcopy-principal metadata says; audit rows say \"{}\". Never run this in production.",
                super::authenticator::DEV_AUTHN
            );
            if settings.jwt.is_some() || mtls {
                warn!("[auth.jwt] and client certificates are ignored in dev-metadata mode");
            }
            Ok(Authentication { authenticator: Arc::new(DevMetadataAuthenticator), jwks: None })
        }
        AuthMode::Authenticated => {
            let jwt = settings.jwt.as_ref().map(JwksStore::load).transpose()?;
            if jwt.is_none() && !mtls {
                return Err(AuthSetupError::NothingConfigured);
            }
            if jwt.is_some() && settings.tls.is_none() {
                warn!("bearer tokens arrive over plain HTTP/2: configure [auth.tls] unless TLS ends in front of this service");
            }
            Ok(Authentication { authenticator: Arc::new(ChainAuthenticator::new(jwt.clone(), mtls)), jwks: jwt })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::settings::{JwtSettings, TlsSettings};

    fn call(auth: &dyn Authenticator, authorization: Option<&str>) -> Result<Principal, AuthError> {
        let mut headers = http::HeaderMap::new();
        if let Some(value) = authorization {
            headers.insert(http::header::AUTHORIZATION, value.parse().unwrap());
        }
        auth.authenticate(&headers, &http::Extensions::new())
    }

    #[test]
    fn no_credentials_says_what_is_accepted() {
        let err = call(&ChainAuthenticator::new(None, true), None).unwrap_err();
        assert_eq!(err.authn, "none");
        assert!(err.message.starts_with("no credentials"), "{err}");
        assert!(err.message.contains("client certificate"), "{err}");
    }

    #[test]
    fn a_token_where_tokens_are_not_accepted_is_refused() {
        let err = call(&ChainAuthenticator::new(None, true), Some("Bearer abc")).unwrap_err();
        assert!(err.message.contains("not accepted"), "{err}");
    }

    #[test]
    fn nothing_configured_refuses_to_start() {
        let settings = AuthSettings::default();
        assert_eq!(settings.mode, AuthMode::Authenticated, "the default must authenticate");
        let err = from_settings(&settings).err().expect("no authenticator without settings");
        assert!(err.to_string().contains("dev-metadata"), "{err}");
        // TLS without a client CA protects the channel but identifies nobody.
        let tls_only = AuthSettings {
            tls: Some(TlsSettings {
                cert_file: "server.pem".into(),
                key_file: "server.key".into(),
                client_ca_file: None,
                require_client_cert: false,
            }),
            ..AuthSettings::default()
        };
        assert!(matches!(from_settings(&tls_only), Err(AuthSetupError::NothingConfigured)));
    }

    #[test]
    fn dev_mode_only_when_asked_for() {
        let settings = AuthSettings { mode: AuthMode::DevMetadata, ..AuthSettings::default() };
        let auth = from_settings(&settings).unwrap().authenticator;
        let mut headers = http::HeaderMap::new();
        headers.insert("x-modelcopy-principal", "alice".parse().unwrap());
        let principal = auth.authenticate(&headers, &http::Extensions::new()).unwrap();
        assert_eq!(principal.authn(), "dev-metadata (UNAUTHENTICATED)");
    }

    #[test]
    fn an_unreadable_jwks_refuses_to_start() {
        let settings = AuthSettings {
            jwt: Some(JwtSettings {
                jwks_file: "/nonexistent/jwks.json".into(),
                issuer: "https://idp.example".into(),
                audience: vec!["modelcopy".into()],
                groups_claim: "groups".into(),
                kind_claim: None,
                leeway_secs: 30,
                algorithms: vec![jsonwebtoken::Algorithm::ES256],
                reload_interval_ms: 0,
            }),
            ..AuthSettings::default()
        };
        let err = from_settings(&settings).err().expect("refused");
        assert!(err.to_string().contains("/nonexistent/jwks.json"), "{err}");
    }
}
