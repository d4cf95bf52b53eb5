//! How a simulator instance behaves: where it listens, what it starts with, how copies go, its quotas and faults.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde::Serialize;

use super::arn::ProjectArn;
use super::chance::{happens, rng_for, DurationDistribution};
use super::faults::RandomFaults;
use super::lifecycle::CopyOutcome;
use super::observe::DEFAULT_CALL_LOG_CAPACITY;
use super::policy::PolicyDocument;
use super::quota::Quotas;
use super::seed::{checked_policies, Seed, SeedError, SeedProjectPolicy};

#[derive(Debug, Clone, Serialize)]
pub struct SimConfig {
    /// Port 0 picks a free port; [`SimHandle::local_addr`](super::SimHandle::local_addr) tells which.
    pub listen: SocketAddr,
    /// How long a copy stays `COPYING_IN_PROGRESS`, unless `copy_durations` is set.
    pub copy_duration: Duration,
    /// Draws each copy's duration from a distribution instead (seeded by `rng_seed`).
    pub copy_durations: Option<DurationDistribution>,
    /// Copies whose `VersionName` starts with this end `COPYING_FAILED`; `None` fails none by name.
    pub fail_version_prefix: Option<String>,
    /// The share (0 to 1) of the other copies that end `COPYING_FAILED`, drawn per copy (seeded by `rng_seed`).
    pub copy_failure_rate: f64,
    /// The `StatusMessage` of copies failed by `copy_failure_rate`.
    pub copy_failure_message: String,
    pub seed: Seed,
    /// Policies attached to seeded projects at start-up.
    pub project_policies: Vec<SeedProjectPolicy>,
    /// Whether a copy from another account's project needs a project policy allowing it (AWS: always).
    /// Off in [`SimConfig::default`] for code written before policies were modelled; on in the binary.
    pub require_project_policy: bool,
    pub quotas: Quotas,
    pub faults: RandomFaults,
    /// Seeds every random decision (copy durations and failures, random faults).
    pub rng_seed: u64,
    /// The call log keeps the most recent this many calls.
    pub call_log_capacity: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            copy_duration: Duration::from_secs(2),
            copy_durations: None,
            fail_version_prefix: Some("fail-".to_owned()),
            copy_failure_rate: 0.0,
            copy_failure_message: "The model version copy failed (simulated failure).".to_owned(),
            seed: Seed::default(),
            project_policies: Vec::new(),
            require_project_policy: false,
            quotas: Quotas::default(),
            faults: RandomFaults::default(),
            rng_seed: 0,
            call_log_capacity: DEFAULT_CALL_LOG_CAPACITY,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Seed(#[from] SeedError),
    #[error("cannot read configuration file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("configuration file {path} is not a valid simulator configuration: {source}")]
    Parse { path: String, source: serde_json::Error },
    #[error("invalid simulator configuration: {0}")]
    Invalid(String),
}

impl SimConfig {
    /// Checks everything that could otherwise fail on the first call; returns the parsed seeded policies.
    pub fn validate(&self) -> Result<Vec<(SeedProjectPolicy, PolicyDocument)>, ConfigError> {
        self.seed.validate()?;
        let policies = checked_policies(&self.seed, &self.project_policies)?;
        if let Some(durations) = &self.copy_durations {
            durations.validate().map_err(ConfigError::Invalid)?;
        }
        if !(0.0..=1.0).contains(&self.copy_failure_rate) {
            return Err(ConfigError::Invalid(format!(
                "copy_failure_rate {} is not between 0 and 1",
                self.copy_failure_rate
            )));
        }
        self.quotas.validate().map_err(ConfigError::Invalid)?;
        self.faults.validate().map_err(ConfigError::Invalid)?;
        Ok(policies)
    }
}

/// The part of the configuration the copy operation needs.
#[derive(Debug, Clone)]
pub struct CopyBehaviour {
    durations: DurationDistribution,
    fail_version_prefix: Option<String>,
    failure_rate: f64,
    failure_message: String,
    rng_seed: u64,
    pub require_project_policy: bool,
}

impl CopyBehaviour {
    pub fn from_config(config: &SimConfig) -> Self {
        CopyBehaviour {
            durations: config
                .copy_durations
                .clone()
                .unwrap_or_else(|| DurationDistribution::fixed(config.copy_duration)),
            fail_version_prefix: config.fail_version_prefix.clone().filter(|prefix| !prefix.is_empty()),
            failure_rate: config.copy_failure_rate,
            failure_message: config.copy_failure_message.clone(),
            rng_seed: config.rng_seed,
            require_project_policy: config.require_project_policy,
        }
    }

    /// How long a copy to `version_name` in `destination` takes and how it ends. The same seed gives the same
    /// answer for the same destination and name, whenever and in whatever order copies are started.
    pub fn plan(&self, destination: &ProjectArn, version_name: &str) -> (Duration, CopyOutcome) {
        let destination = destination.to_string();
        let mut rng = rng_for(self.rng_seed, &[b"copy", destination.as_bytes(), version_name.as_bytes()]);
        let duration = self.durations.sample(&mut rng);
        let outcome = match &self.fail_version_prefix {
            Some(prefix) if version_name.starts_with(prefix.as_str()) => CopyOutcome::Fails {
                message: format!(
                    "The model version copy failed: the simulator fails copies to version names starting with \
                     {prefix:?}."
                ),
            },
            _ if happens(&mut rng, self.failure_rate) => CopyOutcome::Fails { message: self.failure_message.clone() },
            _ => CopyOutcome::Completes,
        };
        (duration, outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn destination() -> ProjectArn {
        ProjectArn::parse("arn:aws:rekognition:us-east-1:111111111111:project/dest/1000").unwrap()
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        let config = SimConfig::default();
        assert_eq!(config.listen.to_string(), "127.0.0.1:0");
        assert_eq!(config.copy_duration, Duration::from_secs(2));
        assert_eq!(config.fail_version_prefix.as_deref(), Some("fail-"));
        assert!(!config.require_project_policy);
        assert_eq!(config.quotas, Quotas::default());
        assert_eq!(config.call_log_capacity, DEFAULT_CALL_LOG_CAPACITY);
        assert!(config.validate().is_ok());
    }

    #[test]
    fn prefix_decides_failure() {
        let behaviour = CopyBehaviour::from_config(&SimConfig::default());
        assert!(matches!(behaviour.plan(&destination(), "fail-v1").1, CopyOutcome::Fails { .. }));
        assert_eq!(behaviour.plan(&destination(), "v1-fail-").1, CopyOutcome::Completes);
        assert_eq!(behaviour.plan(&destination(), "v1").0, Duration::from_secs(2));
    }

    #[test]
    fn empty_prefix_fails_nothing() {
        let config = SimConfig { fail_version_prefix: Some(String::new()), ..SimConfig::default() };
        assert_eq!(CopyBehaviour::from_config(&config).plan(&destination(), "anything").1, CopyOutcome::Completes);
    }

    #[test]
    fn same_seed_same_plans_and_about_the_configured_share_fails() {
        let config = |rng_seed| SimConfig {
            copy_durations: Some(DurationDistribution::Uniform { min_millis: 100, max_millis: 10_000 }),
            copy_failure_rate: 0.25,
            rng_seed,
            ..SimConfig::default()
        };
        let plans = |rng_seed| {
            let behaviour = CopyBehaviour::from_config(&config(rng_seed));
            (0..400).map(|i| behaviour.plan(&destination(), &format!("v{i}"))).collect::<Vec<_>>()
        };
        let first = plans(1);
        assert_eq!(first, plans(1));
        assert_ne!(first, plans(2));
        let failed = first.iter().filter(|(_, outcome)| matches!(outcome, CopyOutcome::Fails { .. })).count();
        assert!((60..140).contains(&failed), "{failed} of 400 at 25%");
    }

    #[test]
    fn out_of_range_settings_are_rejected() {
        let config = SimConfig { copy_failure_rate: 1.5, ..SimConfig::default() };
        assert!(config.validate().is_err());
        let config = SimConfig {
            project_policies: vec![SeedProjectPolicy::allow_copy("1", "r", "p", "n", "2")],
            ..SimConfig::default()
        };
        assert!(config.validate().is_err(), "policy on a project not in the seed");
    }
}
