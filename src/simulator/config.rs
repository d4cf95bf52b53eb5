//! How a simulator instance behaves: where it listens, how long copies take, which copies fail, what it starts with.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde::Serialize;

use super::seed::Seed;

#[derive(Debug, Clone, Serialize)]
pub struct SimConfig {
    /// Port 0 picks a free port; [`SimHandle::local_addr`](super::SimHandle::local_addr) tells which.
    pub listen: SocketAddr,
    /// How long a copy stays `COPYING_IN_PROGRESS`.
    pub copy_duration: Duration,
    /// Copies whose `VersionName` starts with this end `COPYING_FAILED`; `None` makes every copy succeed.
    pub fail_version_prefix: Option<String>,
    pub seed: Seed,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            copy_duration: Duration::from_secs(2),
            fail_version_prefix: Some("fail-".to_owned()),
            seed: Seed::default(),
        }
    }
}

/// The part of the configuration the copy operation needs.
#[derive(Debug, Clone)]
pub struct CopyBehaviour {
    pub duration_millis: i64,
    pub fail_version_prefix: Option<String>,
}

impl CopyBehaviour {
    pub fn from_config(config: &SimConfig) -> Self {
        CopyBehaviour {
            duration_millis: i64::try_from(config.copy_duration.as_millis()).unwrap_or(i64::MAX),
            fail_version_prefix: config
                .fail_version_prefix
                .clone()
                .filter(|prefix| !prefix.is_empty()),
        }
    }

    /// Whether a copy to this version name is set up to fail.
    pub fn fails(&self, version_name: &str) -> bool {
        self.fail_version_prefix
            .as_deref()
            .is_some_and(|prefix| version_name.starts_with(prefix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_ones() {
        let config = SimConfig::default();
        assert_eq!(config.listen.to_string(), "127.0.0.1:0");
        assert_eq!(config.copy_duration, Duration::from_secs(2));
        assert_eq!(config.fail_version_prefix.as_deref(), Some("fail-"));
    }

    #[test]
    fn prefix_decides_failure() {
        let behaviour = CopyBehaviour::from_config(&SimConfig::default());
        assert!(behaviour.fails("fail-v1"));
        assert!(!behaviour.fails("v1-fail-"));
    }

    #[test]
    fn empty_prefix_fails_nothing() {
        let config = SimConfig {
            fail_version_prefix: Some(String::new()),
            ..SimConfig::default()
        };
        assert!(!CopyBehaviour::from_config(&config).fails("anything"));
    }
}
