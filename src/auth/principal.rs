//! The authenticated caller.

/// A caller the service has authenticated: a user or a service, with its groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    id: String,
    groups: Vec<String>,
    /// How the identity was established (e.g. "dev-metadata"), recorded with every audit row.
    authn: &'static str,
}

impl Principal {
    pub fn new(id: impl Into<String>, groups: Vec<String>, authn: &'static str) -> Principal {
        Principal {
            id: id.into(),
            groups,
            authn,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn groups(&self) -> &[String] {
        &self.groups
    }

    pub fn authn(&self) -> &'static str {
        self.authn
    }
}
