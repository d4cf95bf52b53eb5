//! The world the simulator starts with: accounts (access keys) and existing projects and versions.
//!
//! A seed is plain data, read from a JSON file by the binary or built in code by tests. Creation times are
//! deterministic — given explicitly, or derived from a fixed instant and the position in the seed — so the ARNs a
//! test or a demo script needs can be computed from the seed alone ([`Seed::project_arn`], [`Seed::version_arn`])
//! and are the same on every start.

use std::collections::HashSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::arn::{is_valid_name, ProjectArn, ProjectKey, ProjectVersionArn};
use super::lifecycle::VersionStatus;

/// 2024-01-01T00:00:00Z: seeded projects without a creation time were "created" from then on.
const DEFAULT_EPOCH_MILLIS: i64 = 1_704_067_200_000;
/// Gap between consecutive seeded projects without a creation time.
const PROJECT_SPACING_MILLIS: i64 = 3_600_000;
/// Gap between a project and its versions, and between consecutive versions, without a creation time.
const VERSION_SPACING_MILLIS: i64 = 60_000;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    #[serde(default)]
    pub accounts: Vec<SeedAccount>,
    #[serde(default)]
    pub projects: Vec<SeedProject>,
}

/// An account and the access key that authenticates as it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedAccount {
    pub account_id: String,
    pub access_key_id: String,
    /// Kept for the signature verification to come; the simulator does not check signatures yet.
    #[serde(default)]
    pub secret_access_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedProject {
    pub account_id: String,
    pub region: String,
    pub name: String,
    /// The creation time in the project's ARN; derived from the seed position when absent.
    #[serde(default)]
    pub created_millis: Option<i64>,
    #[serde(default)]
    pub versions: Vec<SeedVersion>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedVersion {
    pub name: String,
    /// A `ProjectVersionStatus`; `TRAINING_COMPLETED` when absent. Seeded statuses never change.
    #[serde(default)]
    pub status: Option<String>,
    /// The creation time in the version's ARN; derived from the project's when absent.
    #[serde(default)]
    pub created_millis: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("cannot read seed file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("seed file {path} is not a valid seed: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error("invalid seed: {0}")]
    Invalid(String),
}

/// A seeded version with everything resolved.
#[derive(Debug, Clone)]
pub(crate) struct ResolvedVersion {
    pub arn: ProjectVersionArn,
    pub status: VersionStatus,
}

/// A seeded project with everything resolved.
#[derive(Debug, Clone)]
pub(crate) struct ResolvedProject {
    pub arn: ProjectArn,
    pub versions: Vec<ResolvedVersion>,
}

impl Seed {
    /// Reads and checks a seed file.
    pub fn from_json_file(path: impl AsRef<Path>) -> Result<Seed, SeedError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| SeedError::Read {
            path: shown.clone(),
            source,
        })?;
        let seed: Seed = serde_json::from_str(&text).map_err(|source| SeedError::Parse {
            path: shown,
            source,
        })?;
        seed.validate()?;
        Ok(seed)
    }

    /// The ARN the simulator gives a seeded project.
    pub fn project_arn(&self, account_id: &str, region: &str, name: &str) -> Option<String> {
        self.find(account_id, region, name)
            .map(|project| project.arn.to_string())
    }

    /// The ARN the simulator gives a seeded version.
    pub fn version_arn(
        &self,
        account_id: &str,
        region: &str,
        project: &str,
        version: &str,
    ) -> Option<String> {
        let project = self.find(account_id, region, project)?;
        project
            .versions
            .into_iter()
            .find(|v| v.arn.version_name == version)
            .map(|v| v.arn.to_string())
    }

    /// Checks every rule a seed must follow, so that a bad seed fails at start-up, not on the first call.
    pub fn validate(&self) -> Result<(), SeedError> {
        let invalid = |message: String| Err(SeedError::Invalid(message));
        let mut keys = HashSet::new();
        for account in &self.accounts {
            if !is_account_id(&account.account_id) {
                return invalid(format!(
                    "account id {:?} is not 12 digits",
                    account.account_id
                ));
            }
            if account.access_key_id.is_empty() || !keys.insert(&account.access_key_id) {
                return invalid(format!(
                    "access key id {:?} is empty or used twice",
                    account.access_key_id
                ));
            }
        }
        let mut projects = HashSet::new();
        for project in &self.projects {
            if !is_account_id(&project.account_id) {
                return invalid(format!(
                    "project {}: account id is not 12 digits",
                    project.name
                ));
            }
            let region_ok = !project.region.is_empty()
                && project
                    .region
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !region_ok {
                return invalid(format!(
                    "project {}: region {:?} is not a region name",
                    project.name, project.region
                ));
            }
            if !is_valid_name(&project.name) {
                return invalid(format!(
                    "project name {:?} does not match [a-zA-Z0-9_.-]{{1,255}}",
                    project.name
                ));
            }
            if !projects.insert((&project.account_id, &project.region, &project.name)) {
                return invalid(format!(
                    "project {} is seeded twice in one account and region",
                    project.name
                ));
            }
            let mut versions = HashSet::new();
            for version in &project.versions {
                if !is_valid_name(&version.name) || !versions.insert(&version.name) {
                    return invalid(format!(
                        "project {}: version name {:?} is invalid or repeated",
                        project.name, version.name
                    ));
                }
                if let Some(status) = &version.status {
                    if VersionStatus::parse(status).is_none() {
                        return invalid(format!(
                            "version {}: unknown status {status:?}",
                            version.name
                        ));
                    }
                }
            }
            let times = project
                .created_millis
                .into_iter()
                .chain(project.versions.iter().filter_map(|v| v.created_millis));
            if times.into_iter().any(|millis| millis < 0) {
                return invalid(format!(
                    "project {}: creation times must not be negative",
                    project.name
                ));
            }
        }
        Ok(())
    }

    /// Every seeded project with its ARN, versions and statuses worked out. Assumes [`Seed::validate`] passed.
    pub(crate) fn resolve(&self) -> Vec<ResolvedProject> {
        self.projects
            .iter()
            .enumerate()
            .map(|(index, project)| {
                let created_millis = project
                    .created_millis
                    .unwrap_or(DEFAULT_EPOCH_MILLIS + index as i64 * PROJECT_SPACING_MILLIS);
                let key = ProjectKey {
                    account_id: project.account_id.clone(),
                    region: project.region.clone(),
                    name: project.name.clone(),
                };
                let versions = project
                    .versions
                    .iter()
                    .enumerate()
                    .map(|(position, version)| ResolvedVersion {
                        arn: ProjectVersionArn::new(
                            key.clone(),
                            version.name.clone(),
                            version.created_millis.unwrap_or(
                                created_millis + (position as i64 + 1) * VERSION_SPACING_MILLIS,
                            ),
                        ),
                        status: version
                            .status
                            .as_deref()
                            .and_then(VersionStatus::parse)
                            .unwrap_or(VersionStatus::TrainingCompleted),
                    })
                    .collect();
                ResolvedProject {
                    arn: ProjectArn::new(key, created_millis),
                    versions,
                }
            })
            .collect()
    }

    fn find(&self, account_id: &str, region: &str, name: &str) -> Option<ResolvedProject> {
        self.resolve().into_iter().find(|project| {
            let key = &project.arn.key;
            key.account_id == account_id && key.region == region && key.name == name
        })
    }
}

fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed() -> Seed {
        serde_json::from_value(serde_json::json!({
            "accounts": [{"account_id": "111111111111", "access_key_id": "AKIA1"}],
            "projects": [
                {"account_id": "111111111111", "region": "us-east-1", "name": "fixed", "created_millis": 1000,
                 "versions": [{"name": "v1", "created_millis": 2000}, {"name": "v2", "status": "TRAINING_FAILED"}]},
                {"account_id": "111111111111", "region": "us-east-1", "name": "derived"}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn given_creation_times_make_the_arns() {
        let seed = seed();
        assert_eq!(
            seed.project_arn("111111111111", "us-east-1", "fixed")
                .unwrap(),
            "arn:aws:rekognition:us-east-1:111111111111:project/fixed/1000"
        );
        assert_eq!(
            seed.version_arn("111111111111", "us-east-1", "fixed", "v1")
                .unwrap(),
            "arn:aws:rekognition:us-east-1:111111111111:project/fixed/version/v1/2000"
        );
    }

    #[test]
    fn missing_creation_times_are_deterministic() {
        let expected = DEFAULT_EPOCH_MILLIS + PROJECT_SPACING_MILLIS;
        assert_eq!(
            seed()
                .project_arn("111111111111", "us-east-1", "derived")
                .unwrap(),
            format!("arn:aws:rekognition:us-east-1:111111111111:project/derived/{expected}")
        );
        let v2 = seed()
            .version_arn("111111111111", "us-east-1", "fixed", "v2")
            .unwrap();
        assert!(v2.ends_with(&format!(
            "/version/v2/{}",
            1000 + 2 * VERSION_SPACING_MILLIS
        )));
    }

    #[test]
    fn unknown_projects_have_no_arn() {
        assert_eq!(
            seed().project_arn("111111111111", "us-west-2", "fixed"),
            None
        );
        assert_eq!(
            seed().version_arn("111111111111", "us-east-1", "fixed", "v9"),
            None
        );
    }

    #[test]
    fn status_defaults_to_training_completed() {
        let projects = seed().resolve();
        assert_eq!(
            projects[0].versions[0].status,
            VersionStatus::TrainingCompleted
        );
        assert_eq!(
            projects[0].versions[1].status,
            VersionStatus::TrainingFailed
        );
    }

    #[test]
    fn valid_seed_passes() {
        assert!(seed().validate().is_ok());
    }

    #[test]
    fn bad_account_id_is_rejected() {
        let mut seed = seed();
        seed.accounts[0].account_id = "1234".into();
        assert!(seed.validate().is_err());
    }

    #[test]
    fn repeated_access_key_is_rejected() {
        let mut seed = seed();
        seed.accounts.push(seed.accounts[0].clone());
        assert!(seed.validate().is_err());
    }

    #[test]
    fn repeated_project_is_rejected() {
        let mut seed = seed();
        seed.projects.push(seed.projects[0].clone());
        assert!(seed.validate().is_err());
    }

    #[test]
    fn unknown_status_is_rejected() {
        let mut seed = seed();
        seed.projects[0].versions[0].status = Some("DONE".into());
        assert!(seed.validate().is_err());
    }

    #[test]
    fn bad_version_name_is_rejected() {
        let mut seed = seed();
        seed.projects[0].versions[0].name = "has space".into();
        assert!(seed.validate().is_err());
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let parsed: Result<Seed, _> = serde_json::from_str(r#"{"acounts": []}"#);
        assert!(parsed.is_err());
    }
}
