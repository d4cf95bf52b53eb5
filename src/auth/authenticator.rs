//! Establishing who is calling.

use std::sync::LazyLock;

use regex::Regex;

use super::Principal;

/// Why a call's caller could not be established, and by which means it tried (for the audit row's `authn`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AuthError {
    /// The means that refused (`jwt`, `mtls`), or what the server accepts when no credentials came.
    pub authn: &'static str,
    /// What the caller is told; it names what was wrong or what to send, never a secret.
    pub message: String,
}

impl AuthError {
    pub fn new(authn: &'static str, message: impl Into<String>) -> AuthError {
        AuthError { authn, message: message.into() }
    }
}

pub trait Authenticator: Send + Sync + 'static {
    /// Establishes who sent a call from what came with it: its metadata (`authorization`, …) and its request
    /// extensions, where tonic puts the connection's verified client certificates (`TlsConnectInfo`).
    fn authenticate(&self, headers: &http::HeaderMap, extensions: &http::Extensions) -> Result<Principal, AuthError>;
}

/// How dev mode's principals are labelled in every audit row: nobody checked who they are.
pub const DEV_AUTHN: &str = "dev-metadata (UNAUTHENTICATED)";

/// Development only: trusts the principal the caller names in `x-modelcopy-principal` (and groups, comma
/// separated, in `x-modelcopy-groups`). Every audit row it produces says so ([`DEV_AUTHN`]).
#[derive(Debug, Default, Clone)]
pub struct DevMetadataAuthenticator;

pub const PRINCIPAL_HEADER: &str = "x-modelcopy-principal";
pub const GROUPS_HEADER: &str = "x-modelcopy-groups";

static NAME: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[A-Za-z0-9@._:/+=-]{1,256}$").unwrap());

impl Authenticator for DevMetadataAuthenticator {
    fn authenticate(&self, headers: &http::HeaderMap, _extensions: &http::Extensions) -> Result<Principal, AuthError> {
        let refuse = |message: String| AuthError::new(DEV_AUTHN, message);
        let value =
            |name: &str| headers.get(name).map(|v| v.to_str().map_err(|_| refuse(format!("{name} is not text"))));
        let id = value(PRINCIPAL_HEADER)
            .transpose()?
            .ok_or_else(|| refuse(format!("no credentials: send the {PRINCIPAL_HEADER} metadata (dev mode)")))?;
        if !NAME.is_match(id) {
            return Err(refuse(format!("{PRINCIPAL_HEADER} must be 1 to 256 characters of [A-Za-z0-9@._:/+=-]")));
        }
        let groups = match value(GROUPS_HEADER).transpose()? {
            Some(list) => list.split(',').map(str::trim).filter(|g| !g.is_empty()).map(str::to_owned).collect(),
            None => Vec::new(),
        };
        if let Some(bad) = groups.iter().find(|g| !NAME.is_match(g)) {
            return Err(refuse(format!("group {bad:?} in {GROUPS_HEADER} is not a valid name")));
        }
        Ok(Principal::new(id, groups, DEV_AUTHN))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        pairs.iter().map(|(k, v)| (http::HeaderName::from_static(k), v.parse().unwrap())).collect()
    }

    fn authenticate(pairs: &[(&'static str, &str)]) -> Result<Principal, AuthError> {
        DevMetadataAuthenticator.authenticate(&headers(pairs), &http::Extensions::new())
    }

    #[test]
    fn no_principal_is_no_credentials() {
        let err = authenticate(&[]).unwrap_err();
        assert!(err.message.contains("no credentials"));
        assert_eq!(err.authn, DEV_AUTHN);
    }

    #[test]
    fn principal_and_groups_are_read() {
        let p = authenticate(&[(PRINCIPAL_HEADER, "alice@example.com"), (GROUPS_HEADER, "team-a, ops")]).unwrap();
        assert_eq!(p.id(), "alice@example.com");
        assert_eq!(p.groups(), ["team-a", "ops"]);
        assert_eq!(p.authn(), "dev-metadata (UNAUTHENTICATED)");
    }

    #[test]
    fn odd_names_are_refused() {
        assert!(authenticate(&[(PRINCIPAL_HEADER, "a b")]).is_err());
        assert!(authenticate(&[(PRINCIPAL_HEADER, "a"), (GROUPS_HEADER, "x y")]).is_err());
    }
}
