//! Establishing who is calling.

use std::sync::LazyLock;

use regex::Regex;

use super::Principal;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AuthError(pub String);

pub trait Authenticator: Send + Sync + 'static {
    fn authenticate(&self, headers: &http::HeaderMap) -> Result<Principal, AuthError>;
}

/// Development only: trusts the principal the caller names in `x-modelcopy-principal` (and groups, comma
/// separated, in `x-modelcopy-groups`). Every audit row it produces says `dev-metadata`.
#[derive(Debug, Default, Clone)]
pub struct DevMetadataAuthenticator;

pub const PRINCIPAL_HEADER: &str = "x-modelcopy-principal";
pub const GROUPS_HEADER: &str = "x-modelcopy-groups";

static NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9@._:/+=-]{1,256}$").unwrap());

impl Authenticator for DevMetadataAuthenticator {
    fn authenticate(&self, headers: &http::HeaderMap) -> Result<Principal, AuthError> {
        let value = |name: &str| {
            headers.get(name).map(|v| {
                v.to_str()
                    .map_err(|_| AuthError(format!("{name} is not text")))
            })
        };
        let id = value(PRINCIPAL_HEADER).transpose()?.ok_or_else(|| {
            AuthError(format!(
                "no credentials: send the {PRINCIPAL_HEADER} metadata (dev mode)"
            ))
        })?;
        if !NAME.is_match(id) {
            return Err(AuthError(format!(
                "{PRINCIPAL_HEADER} must be 1 to 256 characters of [A-Za-z0-9@._:/+=-]"
            )));
        }
        let groups = match value(GROUPS_HEADER).transpose()? {
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .map(str::to_owned)
                .collect(),
            None => Vec::new(),
        };
        if let Some(bad) = groups.iter().find(|g| !NAME.is_match(g)) {
            return Err(AuthError(format!(
                "group {bad:?} in {GROUPS_HEADER} is not a valid name"
            )));
        }
        Ok(Principal::new(id, groups, "dev-metadata"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (http::HeaderName::from_static(k), v.parse().unwrap()))
            .collect()
    }

    #[test]
    fn no_principal_is_no_credentials() {
        let err = DevMetadataAuthenticator
            .authenticate(&headers(&[]))
            .unwrap_err();
        assert!(err.0.contains("no credentials"));
    }

    #[test]
    fn principal_and_groups_are_read() {
        let p = DevMetadataAuthenticator
            .authenticate(&headers(&[
                (PRINCIPAL_HEADER, "alice@example.com"),
                (GROUPS_HEADER, "team-a, ops"),
            ]))
            .unwrap();
        assert_eq!(p.id(), "alice@example.com");
        assert_eq!(p.groups(), ["team-a", "ops"]);
        assert_eq!(p.authn(), "dev-metadata");
    }

    #[test]
    fn odd_names_are_refused() {
        assert!(DevMetadataAuthenticator
            .authenticate(&headers(&[(PRINCIPAL_HEADER, "a b")]))
            .is_err());
        assert!(DevMetadataAuthenticator
            .authenticate(&headers(&[(PRINCIPAL_HEADER, "a"), (GROUPS_HEADER, "x y")]))
            .is_err());
    }
}
