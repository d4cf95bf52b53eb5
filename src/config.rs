//! Typed settings: defaults, then an optional TOML file, then `MODELCOPY_*` environment variables
//! (`MODELCOPY_DISPATCH__POLL_INTERVAL_MS=500`, `MODELCOPY_DATABASE_URL=…`).
//!
//! Everything the service needs to know about an AWS account lives in [`AccountSettings`]; the account's id is
//! checked when the settings load, so a typo fails at start-up rather than at the first copy.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::{Figment, Provider};
use serde::{Deserialize, Serialize};

use crate::admission::AdmissionSettings;
use crate::auth::{AuthSettings, AuthzSettings};
pub use crate::dispatch::DispatchSettings;
use crate::domain::AccountId;
pub use crate::rekognition::{AccountLimits, AccountSettings};
use crate::telemetry::TelemetrySettings;
use crate::watch::WatchSettings;
use crate::web::WebSettings;

/// Unknown keys are refused, in the file and in `MODELCOPY_<SECTION>__<KEY>` variables alike, naming the key: a
/// misspelt `role_arn` must stop the service, not send it to the default credential chain.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Where the gRPC API listens.
    pub listen_addr: SocketAddr,
    /// Where `grpc.health.v1` alone is also served, in plaintext (unset: nowhere but the API's port). For
    /// Kubernetes' gRPC probes, which speak no TLS: with `[auth.tls]`, the API's port cannot answer them. It tells
    /// nothing but whether the replica can work.
    #[serde(default)]
    pub health_listen_addr: Option<SocketAddr>,
    pub database_url: String,
    /// Largest number of pooled database connections this replica opens for reads and dispatch, shared between
    /// the API's reads (half), watch streams (a quarter) and the dispatcher (a quarter), each at least 2, so that no
    /// one of them can starve the others. Beyond them it opens one for its group commit of audited writes and one
    /// per LISTEN (new copies, copy events).
    pub database_max_connections: u32,
    /// How long the service waits on PostgreSQL before it answers UNAVAILABLE: for a connection (from a pool, or a
    /// new one), and for a group commit of audited writes from its first statement to its commit. Without a bound,
    /// a partition that swallows packets holds every call until its client gives up.
    pub database_timeout_ms: u64,
    /// The deadline of a call that brings none shorter (`grpc-timeout`): past it, the call is answered
    /// CANCELLED ("Timeout expired"). For WatchCopy it bounds the start of the stream, not its life. Why: a caller
    /// that sends no deadline (many do not) must not hold a replica's resources for as long as a fault lasts.
    pub request_timeout_ms: u64,
    /// PostgreSQL's `statement_timeout` on every connection of the service's: a statement still running after this
    /// is cancelled by the server, which frees its locks and its backend; nobody waits for its answer any more (the
    /// caller was answered UNAVAILABLE after `database_timeout_ms`). Migrations are exempt (a big table's can take
    /// longer, and run once). 0: none.
    pub statement_timeout_ms: u64,
    /// How long a stop waits for clients to finish their calls (streams included) before it closes their
    /// connections: a client that stops reading must not keep a replica from stopping.
    pub shutdown_grace_ms: u64,
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
    /// `[admission]`: how much one replica takes on, in all and from one caller, before the audit write.
    #[serde(default)]
    pub admission: AdmissionSettings,
    /// `[watch]`: how long the history of changes is kept for watchers that resume.
    #[serde(default)]
    pub watch: WatchSettings,
    /// `[web]`: gRPC-Web, the origins allowed to call from a browser, the dashboard page.
    #[serde(default)]
    pub web: WebSettings,
    /// `[preflight]`: checks with Rekognition before a copy or rollout is queued.
    #[serde(default)]
    pub preflight: crate::preflight::PreflightSettings,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read settings: {0}")]
    Load(#[from] Box<figment::Error>),
    /// Every rule the settings break, one a line, each naming its key.
    #[error("{}", .0.join("\n"))]
    Invalid(Vec<String>),
    #[error("accounts.{account}: {reason}")]
    Account { account: String, reason: String },
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 50051)),
            health_listen_addr: None,
            database_url: "postgres://postgres@127.0.0.1:5432/modelcopy".into(),
            database_max_connections: 16,
            database_timeout_ms: 5_000,
            shutdown_grace_ms: 10_000,
            request_timeout_ms: 30_000,
            statement_timeout_ms: 30_000,
            auth: AuthSettings::default(),
            authz: AuthzSettings::default(),
            dispatch: DispatchSettings::default(),
            accounts: BTreeMap::new(),
            telemetry: TelemetrySettings::default(),
            admission: AdmissionSettings::default(),
            watch: WatchSettings::default(),
            web: WebSettings::default(),
            preflight: Default::default(),
        }
    }
}

impl Settings {
    /// Defaults, overlaid by `file` when given, overlaid by the environment.
    ///
    /// Of the environment, only `MODELCOPY_*` variables that name one of the settings' keys are read as settings:
    /// the same prefix also carries what is not a setting (`MODELCOPY_CONFIG`, the file's path; the CLI's
    /// `MODELCOPY_TOKEN`), and a shell that exports those must not stop the service. Within a section, every key
    /// must be known (`MODELCOPY_DISPATCH__POLL_INTERVL_MS` is refused).
    pub fn load(file: Option<&Path>) -> Result<Settings, SettingsError> {
        Settings::load_with(file, "MODELCOPY_")
    }

    /// [`Settings::load`] with the variables of `prefix` (tests give each its own, as they share one environment).
    fn load_with(file: Option<&Path>, prefix: &str) -> Result<Settings, SettingsError> {
        let defaults = Figment::from(Serialized::defaults(Settings::default()));
        let known: Vec<String> =
            defaults.data().map_err(Box::new)?.into_values().flat_map(|dict| dict.into_keys()).collect();
        let mut figment = defaults;
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        let env = Env::prefixed(prefix).split("__").filter(move |key| {
            let section = key.as_str().split('.').next().and_then(|first| first.split("__").next()).unwrap_or_default();
            known.iter().any(|known| known.eq_ignore_ascii_case(section))
        });
        let settings: Settings = figment.merge(env).extract().map_err(Box::new)?;
        settings.check()?;
        Ok(settings)
    }

    /// Every rule the settings break (not only the first), so that one run of `modelcopy config check` shows all
    /// that needs fixing.
    fn check(&self) -> Result<(), SettingsError> {
        let mut problems = Vec::new();
        // A step holds its job's lease across one Rekognition call: the lease must outlast the call, or another
        // replica could take the job over while the call is still under way.
        if self.dispatch.lease_secs.saturating_mul(1000) < self.dispatch.aws_timeout_ms.saturating_mul(2) {
            problems.push(format!(
                "dispatch.lease_secs ({}) must be at least twice dispatch.aws_timeout_ms ({} ms)",
                self.dispatch.lease_secs, self.dispatch.aws_timeout_ms
            ));
        }
        if self.dispatch.leadership_timeout_ms < self.dispatch.poll_interval_ms.saturating_mul(2) {
            problems.push(format!(
                "dispatch.leadership_timeout_ms ({}) must be at least twice dispatch.poll_interval_ms ({})",
                self.dispatch.leadership_timeout_ms, self.dispatch.poll_interval_ms
            ));
        }
        if self.database_timeout_ms == 0 {
            problems.push("database_timeout_ms must be at least 1".into());
        }
        // The store's own bound must come first: a call the database cannot serve is told UNAVAILABLE (retry),
        // not timed out.
        if self.request_timeout_ms <= self.database_timeout_ms {
            problems.push(format!(
                "request_timeout_ms ({}) must be longer than database_timeout_ms ({})",
                self.request_timeout_ms, self.database_timeout_ms
            ));
        }
        if self.statement_timeout_ms != 0 && self.statement_timeout_ms < self.database_timeout_ms {
            problems.push(format!(
                "statement_timeout_ms ({}) must be 0 (none) or at least database_timeout_ms ({})",
                self.statement_timeout_ms, self.database_timeout_ms
            ));
        }
        if self.shutdown_grace_ms == 0 {
            problems.push("shutdown_grace_ms must be at least 1".into());
        }
        if let Err(err) = self.telemetry.check() {
            problems.push(format!("telemetry: {err}"));
        }
        problems.extend(self.admission.problems());
        problems.extend(self.watch.problems());
        problems.extend(self.web.problems());
        problems.extend(self.preflight.problems());
        for (account, settings) in &self.accounts {
            let mut bad = |reason: String| problems.push(format!("accounts.{account}.{reason}"));
            if settings.region.is_empty() {
                bad("region is required".into());
            }
            if settings.access_key_id.is_some() != settings.secret_access_key.is_some() {
                bad("access_key_id and secret_access_key go together".into());
            }
            let limits = &settings.limits;
            for (name, rate) in [
                ("copy_per_second", limits.copy_per_second),
                ("describe_per_second", limits.describe_per_second),
                ("delete_per_second", limits.delete_per_second),
            ] {
                // `!(0 < rate <= MAX)` rather than `rate <= 0 || rate > MAX`: NaN fails every comparison.
                if !(rate > 0.0 && rate <= AccountLimits::MAX_RATE) {
                    bad(format!(
                        "limits.{name} ({rate}) must be above 0 and at most {} calls per second",
                        AccountLimits::MAX_RATE
                    ));
                }
            }
            for (name, value) in [
                ("burst", limits.burst),
                ("max_in_progress", limits.max_in_progress),
                ("max_queued", limits.max_queued),
            ] {
                if value == 0 {
                    bad(format!("limits.{name} must be at least 1"));
                }
            }
            if !(0.0..0.5).contains(&limits.pacing_margin) {
                bad(format!("limits.pacing_margin ({}) must be at least 0 and below 0.5", limits.pacing_margin));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(SettingsError::Invalid(problems))
        }
    }

    /// The settings as TOML, as `modelcopy config check` prints them: every key with the value in effect, secrets
    /// masked (an account's secret access key, the database URL's password).
    pub fn to_masked_toml(&self) -> String {
        const MASK: &str = "********";
        let mut shown = self.clone();
        shown.database_url = url_password_masked(&self.database_url, MASK).unwrap_or_else(|| MASK.into());
        for account in shown.accounts.values_mut() {
            if account.secret_access_key.is_some() {
                account.secret_access_key = Some(MASK.into());
            }
        }
        toml::to_string(&shown).unwrap_or_else(|err| format!("# the settings cannot be shown as TOML: {err}\n"))
    }
}

/// `url` with its password, if it has one, replaced by `mask`; `None` when it is not a URL at all (then it is not
/// shown).
fn url_password_masked(url: &str, mask: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let (authority, path) = rest.split_once('/').map_or((rest, None), |(a, p)| (a, Some(p)));
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:{mask}@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    Some(match path {
        Some(path) => format!("{scheme}://{authority}/{path}"),
        None => format!("{scheme}://{authority}"),
    })
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
        assert!(err.to_string().contains("limits.copy_per_second"), "{err}");
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
    fn an_unknown_key_is_refused_by_name_at_every_level() {
        let account = "[accounts.111111111111]\nregion = \"us-east-1\"\n";
        for (text, key) in [
            ("listen_adr = \"127.0.0.1:1\"\n".to_owned(), "listen_adr"),
            ("[dispatch]\npoll_intervl_ms = 5\n".to_owned(), "poll_intervl_ms"),
            (format!("{account}rol_arn = \"arn:aws:iam::111111111111:role/r\"\n"), "rol_arn"),
            (format!("{account}limits.copy_per_secnd = 1\n"), "copy_per_secnd"),
            ("[auth]\nmod = \"dev-metadata\"\n".to_owned(), "mod"),
            ("[telemetry]\notlp_endpiont = \"http://127.0.0.1:4317\"\n".to_owned(), "otlp_endpiont"),
        ] {
            let err = with_file(&text).expect_err(key).to_string();
            assert!(err.contains(&format!("`{key}`")), "{key}: {err}");
        }
    }

    #[test]
    fn other_variables_of_the_prefix_are_not_settings_but_a_section_s_unknown_key_is_refused() {
        // Each test its own prefix: the environment is the process's, shared by tests running at once.
        let prefix = "MODELCOPY_TEST_ENV_";
        std::env::set_var(format!("{prefix}CONFIG"), "/etc/modelcopy.toml");
        std::env::set_var(format!("{prefix}TOKEN"), "a-bearer-token");
        std::env::set_var(format!("{prefix}DISPATCH__POLL_INTERVAL_MS"), "75");
        let settings = Settings::load_with(None, prefix).expect("CONFIG and TOKEN are not settings");
        assert_eq!(settings.dispatch.poll_interval_ms, 75, "a section's key is read");
        std::env::set_var(format!("{prefix}DISPATCH__POLL_INTERVL_MS"), "75");
        let err = Settings::load_with(None, prefix).unwrap_err().to_string();
        assert!(err.contains("poll_intervl_ms"), "{err}");
    }

    #[test]
    fn rates_must_be_finite_and_within_reach_and_every_problem_is_named() {
        for rate in ["inf", "nan", "-1.0", "0", "5000.0"] {
            let text = format!("[accounts.111111111111]\nregion = \"us-east-1\"\nlimits.copy_per_second = {rate}\n");
            let err = with_file(&text).expect_err(rate).to_string();
            assert!(err.contains("accounts.111111111111.limits.copy_per_second"), "{rate}: {err}");
        }
        let err = with_file(
            "[dispatch]\nlease_secs = 1\n[accounts.111111111111]\nregion = \"\"\nlimits.burst = 0\nlimits.describe_per_second = inf\n",
        )
        .unwrap_err()
        .to_string();
        for problem in ["dispatch.lease_secs", ".region is required", "limits.burst", "limits.describe_per_second"] {
            assert!(err.contains(problem), "{problem} missing from: {err}");
        }
        assert_eq!(err.lines().count(), 4, "one problem a line: {err}");
    }

    #[test]
    fn the_effective_settings_print_with_secrets_masked_and_load_back() {
        let settings = with_file(
            r#"
            database_url = "postgres://app:hunter2@db.internal:5432/modelcopy"
            [accounts.111111111111]
            region = "us-east-1"
            access_key_id = "AKIAEXAMPLE"
            secret_access_key = "wJalrXUtnFEMI/K7MDENG"
            "#,
        )
        .unwrap();
        let shown = settings.to_masked_toml();
        assert!(!shown.contains("hunter2") && !shown.contains("wJalrXUtnFEMI"), "{shown}");
        assert!(shown.contains("postgres://app:********@db.internal:5432/modelcopy"), "{shown}");
        assert!(shown.contains("poll_interval_ms = 1000"), "defaults are shown: {shown}");
        let again = with_file(&shown).expect("what config check prints loads back");
        assert_eq!(again.to_masked_toml(), shown);
    }

    #[test]
    fn a_database_url_without_a_password_is_shown_as_it_is() {
        assert_eq!(
            url_password_masked("postgres://postgres@127.0.0.1:5432/db", "*").as_deref(),
            Some("postgres://postgres@127.0.0.1:5432/db")
        );
        assert_eq!(url_password_masked("not a url", "*"), None);
    }

    #[test]
    fn half_a_key_pair_is_refused() {
        let err = with_file("[accounts.111111111111]\nregion = \"us-east-1\"\naccess_key_id = \"AKIA\"\n").unwrap_err();
        assert!(err.to_string().contains("go together"), "{err}");
    }
}
