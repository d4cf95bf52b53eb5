//! Typed settings: defaults, then an optional TOML file, then `MODELCOPY_*` environment variables
//! (`MODELCOPY_DISPATCH__POLL_INTERVAL_MS=500`, `MODELCOPY_DATABASE_URL=…`).
//!
//! Everything the service needs to know about an AWS account lives in [`AccountSettings`]; the account's id is
//! checked when the settings load, so a typo fails at start-up rather than at the first copy.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::auth::{AuthSettings, AuthzSettings};
pub use crate::dispatch::DispatchSettings;
use crate::domain::AccountId;
pub use crate::rekognition::{AccountLimits, AccountSettings};
use crate::telemetry::TelemetrySettings;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    /// Where the gRPC API listens.
    pub listen_addr: SocketAddr,
    pub database_url: String,
    /// Largest number of pooled database connections this replica opens for reads and dispatch, shared between
    /// the API's reads (half), watch streams (a quarter) and the dispatcher (a quarter), each at least 2, so that no
    /// one of them can starve the others. Beyond them it opens one for its group commit of audited writes and one
    /// per LISTEN (new copies, copy events).
    pub database_max_connections: u32,
    /// `[auth]`: how callers are established (the section's types are `auth`'s own).
    pub auth: AuthSettings,
    /// `[authz]`: the Cedar policies that decide every call (required: without them nothing is permitted).
    #[serde(default)]
    pub authz: AuthzSettings,
    pub dispatch: DispatchSettings,
    /// Destination (and source) accounts, by 12-digit account id.
    #[serde(deserialize_with = "accounts_by_id")]
    pub accounts: BTreeMap<AccountId, AccountSettings>,
    /// `[telemetry]`: where traces are exported (nowhere by default).
    #[serde(default)]
    pub telemetry: TelemetrySettings,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read settings: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("dispatch: {0}")]
    Dispatch(String),
    #[error("accounts.{account}: {reason}")]
    Account { account: String, reason: String },
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 50051)),
            database_url: "postgres://postgres@127.0.0.1:5432/modelcopy".into(),
            database_max_connections: 16,
            auth: AuthSettings::default(),
            authz: AuthzSettings::default(),
            dispatch: DispatchSettings::default(),
            accounts: BTreeMap::new(),
            telemetry: TelemetrySettings::default(),
        }
    }
}

impl Settings {
    /// Defaults, overlaid by `file` when given, overlaid by the environment.
    pub fn load(file: Option<&Path>) -> Result<Settings, SettingsError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        let settings: Settings = figment.merge(Env::prefixed("MODELCOPY_").split("__")).extract().map_err(Box::new)?;
        settings.check()?;
        Ok(settings)
    }

    fn check(&self) -> Result<(), SettingsError> {
        // A step holds its job's lease across one Rekognition call: the lease must outlast the call, or another
        // replica could take the job over while the call is still under way.
        if self.dispatch.lease_secs * 1000 < 2 * self.dispatch.aws_timeout_ms {
            return Err(SettingsError::Dispatch(format!(
                "lease_secs ({}) must be at least twice aws_timeout_ms ({} ms)",
                self.dispatch.lease_secs, self.dispatch.aws_timeout_ms
            )));
        }
        for (account, settings) in &self.accounts {
            let bad = |reason: &str| SettingsError::Account { account: account.to_string(), reason: reason.into() };
            if settings.region.is_empty() {
                return Err(bad("region is required"));
            }
            if settings.access_key_id.is_some() != settings.secret_access_key.is_some() {
                return Err(bad("access_key_id and secret_access_key go together"));
            }
            let limits = &settings.limits;
            if !(limits.copy_per_second > 0.0 && limits.describe_per_second > 0.0) {
                return Err(bad("limits: rates must be above zero"));
            }
            if limits.burst == 0 || limits.max_in_progress == 0 || limits.max_queued == 0 {
                return Err(bad("limits: burst, max_in_progress and max_queued must be at least 1"));
            }
            if !(0.0..0.5).contains(&limits.pacing_margin) {
                return Err(bad("limits: pacing_margin must be at least 0 and below 0.5"));
            }
        }
        Ok(())
    }
}

/// Reads `[accounts]` keyed by checked account ids; a key that is not one fails the load, naming it.
fn accounts_by_id<'de, D>(deserializer: D) -> Result<BTreeMap<AccountId, AccountSettings>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    BTreeMap::<String, AccountSettings>::deserialize(deserializer)?
        .into_iter()
        .map(|(key, settings)| {
            let id = AccountId::parse(key.as_str()).map_err(|e| {
                serde::de::Error::custom(SettingsError::Account { account: key, reason: e.to_string() })
            })?;
            Ok((id, settings))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::AuthMode;

    fn with_file(text: &str) -> Result<Settings, SettingsError> {
        let dir = std::env::temp_dir().join(format!("modelcopy-settings-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("settings.toml");
        std::fs::write(&file, text).unwrap();
        let loaded = Settings::load(Some(&file));
        std::fs::remove_dir_all(dir).unwrap();
        loaded
    }

    #[test]
    fn file_overrides_defaults_and_keeps_the_rest() {
        let settings = with_file(
            r#"
            listen_addr = "127.0.0.1:6000"
            [dispatch]
            poll_interval_ms = 50
            [accounts.111111111111]
            region = "eu-west-1"
            endpoint_url = "http://127.0.0.1:4000"
            "#,
        )
        .unwrap();
        assert_eq!(settings.listen_addr.port(), 6000);
        assert_eq!(settings.dispatch.poll_interval_ms, 50);
        assert_eq!(settings.dispatch.max_attempts, DispatchSettings::default().max_attempts);
        assert_eq!(settings.accounts["111111111111"].region, "eu-west-1");
    }

    #[test]
    fn the_example_file_loads() {
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/example.toml");
        let settings = Settings::load(Some(&file)).unwrap();
        assert_eq!(settings.accounts.len(), 2);
        assert!(settings.accounts["222222222222"].role_arn.is_some());
        assert!(settings.authz.policies.is_some());
    }

    #[test]
    fn account_ids_are_checked_at_load() {
        let err = with_file("[accounts.1234]\nregion = \"us-east-1\"\n").unwrap_err();
        assert!(err.to_string().contains("accounts.1234"), "{err}");
    }

    #[test]
    fn a_lease_shorter_than_a_call_is_refused() {
        let err = with_file("[dispatch]\nlease_secs = 10\naws_timeout_ms = 30000\n").unwrap_err();
        assert!(err.to_string().contains("lease_secs"), "{err}");
    }

    #[test]
    fn limits_have_defaults_and_are_checked() {
        let settings = with_file("[accounts.111111111111]\nregion = \"us-east-1\"\n").unwrap();
        assert_eq!(settings.accounts["111111111111"].limits, AccountLimits::default());
        let err =
            with_file("[accounts.111111111111]\nregion = \"us-east-1\"\nlimits.copy_per_second = 0\n").unwrap_err();
        assert!(err.to_string().contains("rates"), "{err}");
    }

    #[test]
    fn authentication_is_on_unless_dev_mode_is_named() {
        assert_eq!(with_file("").unwrap().auth.mode, AuthMode::Authenticated);
        let settings = with_file(
            r#"
            [auth.tls]
            cert_file = "server.pem"
            key_file = "server.key"
            client_ca_file = "ca.pem"
            [auth.jwt]
            jwks_file = "jwks.json"
            issuer = "https://idp.example"
            audience = ["modelcopy"]
            algorithms = ["ES256"]
            "#,
        )
        .unwrap();
        let jwt = settings.auth.jwt.unwrap();
        assert_eq!((jwt.groups_claim.as_str(), jwt.algorithms.len()), ("groups", 1));
        assert!(settings.auth.tls.unwrap().client_ca_file.is_some());
        assert_eq!(with_file("[auth]\nmode = \"dev-metadata\"\n").unwrap().auth.mode, AuthMode::DevMetadata);
        let err = with_file("[auth.jwt]\njwks_file = \"j\"\nissuer = \"i\"\naudiance = [\"a\"]\n").unwrap_err();
        assert!(err.to_string().contains("audiance"), "{err}");
    }

    #[test]
    fn half_a_key_pair_is_refused() {
        let err = with_file("[accounts.111111111111]\nregion = \"us-east-1\"\naccess_key_id = \"AKIA\"\n").unwrap_err();
        assert!(err.to_string().contains("go together"), "{err}");
    }
}
