//! How callers prove who they are, as configured: `[auth.tls]` (the server's certificate, and the CA whose client
//! certificates identify callers) and `[auth.jwt]` (the keys, issuer and audience that bearer tokens must match).
//!
//! Both are optional so that a deployment configures the one it uses, or both; start-up refuses a service that has
//! neither unless development mode was asked for by name (see [`super::chain::from_settings`]).

use std::path::PathBuf;

use jsonwebtoken::Algorithm;
use serde::{Deserialize, Serialize};

/// `[auth.tls]`: the API is served over TLS, and with `client_ca_file` client certificates identify callers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM file of the server's certificate (chain).
    pub cert_file: PathBuf,
    /// PEM file of the server's private key.
    pub key_file: PathBuf,
    /// PEM file of the CA certificate(s) whose client certificates identify callers (mutual TLS). Without it no
    /// client is asked for a certificate, and TLS only protects the channel (for bearer tokens).
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    /// Whether the TLS handshake itself refuses a client without a certificate. Off by default: such a client
    /// then reaches the authentication layer, which refuses its calls as UNAUTHENTICATED — in the audit log —
    /// unless it sends a bearer token. (A certificate from another CA is always refused in the handshake.)
    #[serde(default)]
    pub require_client_cert: bool,
}

/// `[auth.jwt]`: bearer tokens (`authorization: Bearer <JWT>`) signed by a key of a JWKS file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtSettings {
    /// The JSON Web Key Set (`{"keys": [...]}`) holding the issuer's public keys, read at start-up.
    pub jwks_file: PathBuf,
    /// The `iss` every token must carry.
    pub issuer: String,
    /// The `aud` values accepted: a token must name at least one of them.
    pub audience: Vec<String>,
    /// The claim listing the caller's groups (an array of strings; absent means no groups).
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// A claim saying `"user"` or `"service"`; unset, or absent from a token, every caller is a user.
    #[serde(default)]
    pub kind_claim: Option<String>,
    /// Clock skew tolerated when checking `exp` and `nbf`, in seconds.
    #[serde(default = "default_leeway_secs")]
    pub leeway_secs: u64,
    /// The signature algorithms accepted (`"RS256"`, `"ES256"`, …); a token signed otherwise is refused.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<Algorithm>,
}

fn default_groups_claim() -> String {
    "groups".into()
}

fn default_leeway_secs() -> u64 {
    30
}

fn default_algorithms() -> Vec<Algorithm> {
    vec![Algorithm::RS256, Algorithm::ES256]
}
