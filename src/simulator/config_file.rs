//! The simulator's configuration as a JSON file, for the binary: `rekognition-sim --config sim.json`.
//!
//! Every member is optional; what a file leaves out keeps the value it had (the binary's defaults, which a test
//! harness can then override with flags). Durations are in milliseconds. Example:
//!
//! ```json
//! {
//!   "seed_file": "sim-seed.json",
//!   "copy_durations": {"kind": "uniform", "min_millis": 1000, "max_millis": 5000},
//!   "copy_failure_rate": 0.1,
//!   "rng_seed": 42,
//!   "quotas": {
//!     "default": {"rate": {"CopyProjectVersion": {"per_second": 5, "burst": 5}}, "max_copies_in_progress": 10},
//!     "per_account": {"222222222222": {"rate": {"DescribeProjectVersions": {"per_second": 2, "burst": 2}}}}
//!   },
//!   "faults": {"throttling": 0.05, "drop_response": 0.01, "latency": {"min_millis": 5, "max_millis": 50}}
//! }
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::chance::DurationDistribution;
use super::config::{ConfigError, SimConfig};
use super::faults::RandomFaults;
use super::quota::Quotas;
use super::seed::{SeedFile, SeedProjectPolicy};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimConfigFile {
    pub listen: Option<SocketAddr>,
    /// A seed file, policies included; a relative path is relative to the configuration file's directory.
    pub seed_file: Option<PathBuf>,
    /// Or the seed itself, in the seed file's format.
    pub seed: Option<SeedFile>,
    pub copy_duration_ms: Option<u64>,
    pub copy_durations: Option<DurationDistribution>,
    /// An empty string fails no copy by name.
    pub fail_version_prefix: Option<String>,
    pub copy_failure_rate: Option<f64>,
    pub copy_failure_message: Option<String>,
    pub require_project_policy: Option<bool>,
    /// Added to the policies the seed lists.
    #[serde(default)]
    pub project_policies: Vec<SeedProjectPolicy>,
    pub quotas: Option<Quotas>,
    pub faults: Option<RandomFaults>,
    pub rng_seed: Option<u64>,
    pub call_log_capacity: Option<usize>,
}

impl SimConfigFile {
    pub fn from_json_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: shown.clone(), source })?;
        let mut file: SimConfigFile =
            serde_json::from_str(&text).map_err(|source| ConfigError::Parse { path: shown, source })?;
        if let Some(seed_file) = &file.seed_file {
            if seed_file.is_relative() {
                let base = path.parent().unwrap_or_else(|| Path::new("."));
                file.seed_file = Some(base.join(seed_file));
            }
        }
        Ok(file)
    }

    /// Overrides `config` with every member this file sets.
    pub fn apply_to(self, config: &mut SimConfig) -> Result<(), ConfigError> {
        if self.seed_file.is_some() && self.seed.is_some() {
            return Err(ConfigError::Invalid("give either seed_file or seed, not both".to_owned()));
        }
        let seed = match self.seed_file {
            Some(path) => Some(SeedFile::from_json_file(path)?),
            None => self.seed,
        };
        if let Some(seed) = seed {
            config.seed = seed.seed;
            config.project_policies.extend(seed.policies);
        }
        config.project_policies.extend(self.project_policies);
        set(&mut config.listen, self.listen);
        set(&mut config.copy_duration, self.copy_duration_ms.map(Duration::from_millis));
        if self.copy_durations.is_some() {
            config.copy_durations = self.copy_durations;
        }
        if let Some(prefix) = self.fail_version_prefix {
            config.fail_version_prefix = Some(prefix).filter(|prefix| !prefix.is_empty());
        }
        set(&mut config.copy_failure_rate, self.copy_failure_rate);
        set(&mut config.copy_failure_message, self.copy_failure_message);
        set(&mut config.require_project_policy, self.require_project_policy);
        set(&mut config.quotas, self.quotas);
        set(&mut config.faults, self.faults);
        set(&mut config.rng_seed, self.rng_seed);
        set(&mut config.call_log_capacity, self.call_log_capacity);
        Ok(())
    }
}

fn set<T>(target: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *target = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: serde_json::Value) -> SimConfigFile {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn members_override_and_absent_ones_keep_their_value() {
        let mut config = SimConfig { require_project_policy: true, ..SimConfig::default() };
        parse(serde_json::json!({
            "copy_duration_ms": 250,
            "fail_version_prefix": "",
            "rng_seed": 9,
            "quotas": {"default": {"max_copies_in_progress": 3}},
            "faults": {"throttling": 0.5},
            "seed": {
                "accounts": [{"account_id": "111111111111", "access_key_id": "AKIA1"}],
                "projects": [{"account_id": "111111111111", "region": "us-east-1", "name": "p",
                              "policies": [{"name": "open", "document": {"Statement": {
                                  "Effect": "Allow", "Principal": "*",
                                  "Action": "rekognition:CopyProjectVersion", "Resource": "*"}}}]}]
            }
        }))
        .apply_to(&mut config)
        .unwrap();
        assert_eq!(config.copy_duration, Duration::from_millis(250));
        assert_eq!(config.fail_version_prefix, None);
        assert_eq!(config.rng_seed, 9);
        assert!(config.require_project_policy, "kept");
        assert_eq!(config.quotas.max_copies_in_progress_for("1"), Some(3));
        assert_eq!(config.faults.throttling, 0.5);
        assert_eq!(config.seed.projects.len(), 1);
        assert_eq!(config.project_policies.len(), 1);
        assert!(config.validate().is_ok());
    }

    #[test]
    fn unknown_members_are_rejected() {
        let parsed: Result<SimConfigFile, _> = serde_json::from_value(serde_json::json!({"quota": {}}));
        assert!(parsed.is_err());
    }

    #[test]
    fn seed_and_seed_file_together_are_rejected() {
        let file = SimConfigFile {
            seed_file: Some("x.json".into()),
            seed: Some(SeedFile::default()),
            ..SimConfigFile::default()
        };
        assert!(file.apply_to(&mut SimConfig::default()).is_err());
    }
}
