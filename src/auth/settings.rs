//! Everything `auth` reads from the settings file, owned here so that `auth` never looks up into `config`, which
//! only gathers these sections into its `Settings`, beside the others.
//!
//! `[auth]` says how callers prove who they are: `[auth.tls]` (the server's certificate, and the CA whose client
//! certificates identify callers) and `[auth.jwt]` (the keys, issuer and audience that bearer tokens must match).
//! Both are optional so that a deployment configures the one it uses, or both; start-up refuses a service that has
//! neither unless development mode was asked for by name (see [`super::chain::from_settings`]).
//!
//! `[authz]` says where the Cedar policies that decide every call are, and how often they are checked for changes.

use std::path::PathBuf;

use jsonwebtoken::Algorithm;
use serde::{Deserialize, Serialize};

/// `[auth]`: how callers are established.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// `authenticated` (the default): every call carries a client certificate or a bearer JWT, as `tls` / `jwt`
    /// configure; start-up fails when neither is. `dev-metadata`: the principal is whatever the
    /// `x-modelcopy-principal` metadata says — development only, and only when set explicitly.
    #[serde(default)]
    pub mode: AuthMode,
    /// `[auth.tls]`: serve over TLS; with `client_ca_file`, client certificates identify callers.
    #[serde(default)]
    pub tls: Option<TlsSettings>,
    /// `[auth.jwt]`: bearer JWTs checked against a JWKS file.
    #[serde(default)]
    pub jwt: Option<JwtSettings>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMode {
    #[default]
    Authenticated,
    DevMetadata,
}

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
    /// The JSON Web Key Set (`{"keys": [...]}`) holding the issuer's public keys, read at start-up and again when it
    /// changes (see `reload_interval_ms`).
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
    /// How often `jwks_file` is read again for new keys, in milliseconds (it is also read on SIGHUP); 0: on SIGHUP
    /// only.
    #[serde(default = "default_jwks_reload_interval_ms")]
    pub reload_interval_ms: u64,
}

fn default_jwks_reload_interval_ms() -> u64 {
    10_000
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

/// `[authz]`: the Cedar policies and their schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthzSettings {
    /// A `.cedar` file, or a directory whose `*.cedar` files together make the policy set. Required: there is no
    /// built-in policy, and without one every call would be denied.
    pub policies: Option<PathBuf>,
    /// The Cedar schema the policies are validated against. Unset, the schema built into the service (a copy of
    /// `deploy/policies/modelcopy.cedarschema`), which describes exactly the entities the service sends.
    pub schema: Option<PathBuf>,
    /// How often the files are checked for changes, in milliseconds; 0 reloads on SIGHUP only.
    pub reload_interval_ms: u64,
}

impl Default for AuthzSettings {
    fn default() -> Self {
        AuthzSettings { policies: None, schema: None, reload_interval_ms: 1_000 }
    }
}
