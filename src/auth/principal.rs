//! The authenticated caller.

/// Whether a caller is a person or a workload. Policies treat them apart (a CI service may copy on a schedule,
/// a person may only watch), so authentication says which one it established.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PrincipalKind {
    #[default]
    User,
    Service,
}

/// A caller the service has authenticated: a user or a service, with its groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    id: String,
    kind: PrincipalKind,
    groups: Vec<String>,
    /// How the identity was established (e.g. "dev-metadata"), recorded with every audit row.
    authn: &'static str,
}

impl Principal {
    /// A user; see [`Principal::service`] for workloads.
    pub fn new(id: impl Into<String>, groups: Vec<String>, authn: &'static str) -> Principal {
        Principal { id: id.into(), kind: PrincipalKind::User, groups, authn }
    }

    /// A workload (a platform calling with its own certificate or token).
    pub fn service(id: impl Into<String>, groups: Vec<String>, authn: &'static str) -> Principal {
        Principal { kind: PrincipalKind::Service, ..Principal::new(id, groups, authn) }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn kind(&self) -> PrincipalKind {
        self.kind
    }

    pub fn groups(&self) -> &[String] {
        &self.groups
    }

    pub fn authn(&self) -> &'static str {
        self.authn
    }

    /// Everything the policies may look at, as one string: callers with equal keys get equal decisions, so a
    /// decision made for one may serve the others (the watch fan-out asks once per key and change).
    pub fn key(&self) -> String {
        let kind = match self.kind {
            PrincipalKind::User => "user",
            PrincipalKind::Service => "service",
        };
        // JSON: unambiguous whatever the names hold.
        serde_json::json!([kind, self.authn, self.id, self.groups]).to_string()
    }
}
