//! `[authz]`: where the Cedar policies and their schema are, and how often they are checked for changes.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

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
