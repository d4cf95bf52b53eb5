//! The world the simulator starts with: accounts (access keys) and existing projects and versions.
//!
//! A seed is plain data, read from a JSON file by the binary or built in code by tests. Creation times are
//! deterministic — given explicitly, or derived from a fixed instant and the position in the seed — so the ARNs a
//! test or a demo script needs can be computed from the seed alone ([`Seed::project_arn`], [`Seed::version_arn`])
//! and are the same on every start.
//!
//! A seed *file* may also list project policies under each project (`"policies": [{"name", "document"}]`); they
//! are read by [`SeedFile::from_json_file`] and become [`SimConfig::project_policies`](super::SimConfig). The
//! Rust [`Seed`] does not hold them, so that code building a `Seed` literally keeps compiling.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize};

use super::arn::{is_valid_name, ProjectArn, ProjectKey, ProjectVersionArn};
use super::lifecycle::VersionStatus;
use super::policy::{allow_copy_document, PolicyDocument};

/// 2024-01-01T00:00:00Z: seeded projects without a creation time were "created" from then on.
const DEFAULT_EPOCH_MILLIS: i64 = 1_704_067_200_000;
/// Gap between consecutive seeded projects without a creation time.
const PROJECT_SPACING_MILLIS: i64 = 3_600_000;
/// Gap between a project and its versions, and between consecutive versions, without a creation time.
const VERSION_SPACING_MILLIS: i64 = 60_000;

/// Reading a `Seed` from JSON accepts the seed file format and leaves out its policies (see [`SeedFile`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "SeedFileFormat")]
pub struct Seed {
    #[serde(default)]
    pub accounts: Vec<SeedAccount>,
    #[serde(default)]
    pub projects: Vec<SeedProject>,
}

/// An account and the access key that authenticates as it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedAccount {
    pub account_id: String,
    pub access_key_id: String,
    /// When set, every request signed with this key must carry a valid SigV4 signature made with this secret;
    /// when absent, the key id alone identifies the account.
    #[serde(default)]
    pub secret_access_key: Option<String>,
    /// IAM roles of this account (names) that any seeded caller may assume with STS AssumeRole.
    #[serde(default)]
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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

/// A project policy as listed under a project in a seed file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedPolicy {
    pub name: String,
    /// The policy document: JSON text, or a JSON object in a seed file.
    #[serde(deserialize_with = "document_text")]
    pub document: String,
}

/// A project policy to attach at start-up, to the seeded project named by account, region and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedProjectPolicy {
    pub account_id: String,
    pub region: String,
    pub project: String,
    pub name: String,
    /// The policy document, as JSON text (or a JSON object in a configuration file).
    #[serde(deserialize_with = "document_text")]
    pub document: String,
}

impl SeedProjectPolicy {
    /// A policy on `account_id`'s project `project` that lets `trusted_account` copy any of its model versions.
    pub fn allow_copy(account_id: &str, region: &str, project: &str, name: &str, trusted_account: &str) -> Self {
        SeedProjectPolicy {
            account_id: account_id.to_owned(),
            region: region.to_owned(),
            project: project.to_owned(),
            name: name.to_owned(),
            document: allow_copy_document(
                trusted_account,
                &format!("arn:aws:rekognition:{region}:{account_id}:project/{project}"),
            ),
        }
    }
}

/// Everything a seed file holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(from = "SeedFileFormat")]
pub struct SeedFile {
    pub seed: Seed,
    /// The policies listed under the file's projects, in file order.
    pub policies: Vec<SeedProjectPolicy>,
}

impl SeedFile {
    /// Reads and checks a seed file, policies included.
    pub fn from_json_file(path: impl AsRef<Path>) -> Result<SeedFile, SeedError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| SeedError::Read { path: shown.clone(), source })?;
        let format: SeedFileFormat =
            serde_json::from_str(&text).map_err(|source| SeedError::Parse { path: shown, source })?;
        let file = SeedFile::from(format);
        file.seed.validate()?;
        checked_policies(&file.seed, &file.policies)?;
        Ok(file)
    }
}

/// The JSON format of a seed (file): projects may list policies.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedFileFormat {
    #[serde(default)]
    accounts: Vec<SeedAccount>,
    #[serde(default)]
    projects: Vec<SeedFileProject>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedFileProject {
    account_id: String,
    region: String,
    name: String,
    #[serde(default)]
    created_millis: Option<i64>,
    #[serde(default)]
    versions: Vec<SeedVersion>,
    #[serde(default)]
    policies: Vec<SeedPolicy>,
}

impl From<SeedFileFormat> for SeedFile {
    fn from(format: SeedFileFormat) -> Self {
        let mut policies = Vec::new();
        let projects = format
            .projects
            .into_iter()
            .map(|project| {
                policies.extend(project.policies.into_iter().map(|policy| SeedProjectPolicy {
                    account_id: project.account_id.clone(),
                    region: project.region.clone(),
                    project: project.name.clone(),
                    name: policy.name,
                    document: policy.document,
                }));
                SeedProject {
                    account_id: project.account_id,
                    region: project.region,
                    name: project.name,
                    created_millis: project.created_millis,
                    versions: project.versions,
                }
            })
            .collect();
        SeedFile { seed: Seed { accounts: format.accounts, projects }, policies }
    }
}

impl From<SeedFileFormat> for Seed {
    fn from(format: SeedFileFormat) -> Self {
        SeedFile::from(format).seed
    }
}

/// A policy document given as JSON text, or as a JSON value (kept as its compact text).
fn document_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::String(text) => text,
        other => other.to_string(),
    })
}

/// How many policies AWS lets a project have.
pub const MAX_POLICIES_PER_PROJECT: usize = 5;

/// Checks policies against the seed (their project must be seeded, names valid and unique per project, at most
/// five per project, documents valid) and parses their documents.
pub fn checked_policies(
    seed: &Seed,
    policies: &[SeedProjectPolicy],
) -> Result<Vec<(SeedProjectPolicy, PolicyDocument)>, SeedError> {
    let projects: HashSet<(&str, &str, &str)> =
        seed.projects.iter().map(|p| (p.account_id.as_str(), p.region.as_str(), p.name.as_str())).collect();
    let mut names: HashMap<(&str, &str, &str), HashSet<&str>> = HashMap::new();
    policies
        .iter()
        .map(|policy| {
            let project = (policy.account_id.as_str(), policy.region.as_str(), policy.project.as_str());
            let invalid = |why: String| {
                SeedError::Invalid(format!(
                    "policy {:?} of project {} ({}, {}): {why}",
                    policy.name, policy.project, policy.account_id, policy.region
                ))
            };
            if !projects.contains(&project) {
                return Err(invalid("no such project in the seed".to_owned()));
            }
            if !is_policy_name(&policy.name) {
                return Err(invalid("name must be 1 to 128 of [a-zA-Z0-9_.-]".to_owned()));
            }
            let taken = names.entry(project).or_default();
            if !taken.insert(&policy.name) {
                return Err(invalid("name used twice".to_owned()));
            }
            if taken.len() > MAX_POLICIES_PER_PROJECT {
                return Err(invalid(format!("a project has at most {MAX_POLICIES_PER_PROJECT} policies")));
            }
            let document = PolicyDocument::parse(&policy.document).map_err(|err| invalid(err.message))?;
            Ok((policy.clone(), document))
        })
        .collect()
}

/// `ProjectPolicyName`: `[a-zA-Z0-9_.\-]{1,128}`.
pub fn is_policy_name(name: &str) -> bool {
    name.len() <= 128 && is_valid_name(name)
}

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("cannot read seed file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("seed file {path} is not a valid seed: {source}")]
    Parse { path: String, source: serde_json::Error },
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
    /// Reads and checks a seed file, without its policies ([`SeedFile::from_json_file`] keeps them).
    pub fn from_json_file(path: impl AsRef<Path>) -> Result<Seed, SeedError> {
        SeedFile::from_json_file(path).map(|file| file.seed)
    }

    /// The ARN the simulator gives a seeded project.
    pub fn project_arn(&self, account_id: &str, region: &str, name: &str) -> Option<String> {
        self.find(account_id, region, name).map(|project| project.arn.to_string())
    }

    /// The ARN the simulator gives a seeded version.
    pub fn version_arn(&self, account_id: &str, region: &str, project: &str, version: &str) -> Option<String> {
        let project = self.find(account_id, region, project)?;
        project.versions.into_iter().find(|v| v.arn.version_name == version).map(|v| v.arn.to_string())
    }

    /// Checks every rule a seed must follow, so that a bad seed fails at start-up, not on the first call.
    pub fn validate(&self) -> Result<(), SeedError> {
        let invalid = |message: String| Err(SeedError::Invalid(message));
        let mut keys = HashSet::new();
        for account in &self.accounts {
            if !is_account_id(&account.account_id) {
                return invalid(format!("account id {:?} is not 12 digits", account.account_id));
            }
            if account.access_key_id.is_empty() || !keys.insert(&account.access_key_id) {
                return invalid(format!("access key id {:?} is empty or used twice", account.access_key_id));
            }
            if let Some(role) = account.roles.iter().find(|role| !super::sts::is_role_name(role)) {
                return invalid(format!(
                    "account {}: role name {role:?} is not [\\w+=,.@-]{{1,64}}",
                    account.account_id
                ));
            }
        }
        let mut projects = HashSet::new();
        for project in &self.projects {
            if !is_account_id(&project.account_id) {
                return invalid(format!("project {}: account id is not 12 digits", project.name));
            }
            let region_ok = !project.region.is_empty()
                && project.region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !region_ok {
                return invalid(format!("project {}: region {:?} is not a region name", project.name, project.region));
            }
            if !is_valid_name(&project.name) {
                return invalid(format!("project name {:?} does not match [a-zA-Z0-9_.-]{{1,255}}", project.name));
            }
            if !projects.insert((&project.account_id, &project.region, &project.name)) {
                return invalid(format!("project {} is seeded twice in one account and region", project.name));
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
                        return invalid(format!("version {}: unknown status {status:?}", version.name));
                    }
                }
            }
            let times =
                project.created_millis.into_iter().chain(project.versions.iter().filter_map(|v| v.created_millis));
            if times.into_iter().any(|millis| millis < 0) {
                return invalid(format!("project {}: creation times must not be negative", project.name));
            }
        }
        Ok(())
    }

    /// Every seeded project with its ARN, versions and statuses worked out. Assumes [`Seed::validate`] passed.
    pub(crate) fn resolve(&self) -> Vec<ResolvedProject> {
        (0..self.projects.len()).map(|index| self.resolve_project(index)).collect()
    }

    fn resolve_project(&self, index: usize) -> ResolvedProject {
        let project = &self.projects[index];
        let created_millis =
            project.created_millis.unwrap_or(DEFAULT_EPOCH_MILLIS + index as i64 * PROJECT_SPACING_MILLIS);
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
                    version.created_millis.unwrap_or(created_millis + (position as i64 + 1) * VERSION_SPACING_MILLIS),
                ),
                status: version
                    .status
                    .as_deref()
                    .and_then(VersionStatus::parse)
                    .unwrap_or(VersionStatus::TrainingCompleted),
            })
            .collect();
        ResolvedProject { arn: ProjectArn::new(key, created_millis), versions }
    }

    fn find(&self, account_id: &str, region: &str, name: &str) -> Option<ResolvedProject> {
        self.projects
            .iter()
            .position(|project| project.account_id == account_id && project.region == region && project.name == name)
            .map(|index| self.resolve_project(index))
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
            seed.project_arn("111111111111", "us-east-1", "fixed").unwrap(),
            "arn:aws:rekognition:us-east-1:111111111111:project/fixed/1000"
        );
        assert_eq!(
            seed.version_arn("111111111111", "us-east-1", "fixed", "v1").unwrap(),
            "arn:aws:rekognition:us-east-1:111111111111:project/fixed/version/v1/2000"
        );
    }

    #[test]
    fn missing_creation_times_are_deterministic() {
        let expected = DEFAULT_EPOCH_MILLIS + PROJECT_SPACING_MILLIS;
        assert_eq!(
            seed().project_arn("111111111111", "us-east-1", "derived").unwrap(),
            format!("arn:aws:rekognition:us-east-1:111111111111:project/derived/{expected}")
        );
        let v2 = seed().version_arn("111111111111", "us-east-1", "fixed", "v2").unwrap();
        assert!(v2.ends_with(&format!("/version/v2/{}", 1000 + 2 * VERSION_SPACING_MILLIS)));
    }

    #[test]
    fn unknown_projects_have_no_arn() {
        assert_eq!(seed().project_arn("111111111111", "us-west-2", "fixed"), None);
        assert_eq!(seed().version_arn("111111111111", "us-east-1", "fixed", "v9"), None);
    }

    #[test]
    fn status_defaults_to_training_completed() {
        let projects = seed().resolve();
        assert_eq!(projects[0].versions[0].status, VersionStatus::TrainingCompleted);
        assert_eq!(projects[0].versions[1].status, VersionStatus::TrainingFailed);
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

    fn file_with_policy(document: serde_json::Value) -> SeedFile {
        let format: SeedFileFormat = serde_json::from_value(serde_json::json!({
            "projects": [{"account_id": "111111111111", "region": "us-east-1", "name": "fixed",
                          "policies": [{"name": "allow-b", "document": document}]}]
        }))
        .unwrap();
        SeedFile::from(format)
    }

    #[test]
    fn policies_in_a_seed_file_belong_to_their_project() {
        let document = serde_json::json!({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": "222222222222"},
            "Action": "rekognition:CopyProjectVersion", "Resource": "*"}]});
        let file = file_with_policy(document.clone());
        assert_eq!(file.policies.len(), 1);
        assert_eq!(file.policies[0].project, "fixed");
        assert_eq!(file.policies[0].document, document.to_string());
        assert!(checked_policies(&file.seed, &file.policies).is_ok());
        // A Seed read from the same JSON simply has no policies.
        let seed: Seed = serde_json::from_value(serde_json::json!({
            "projects": [{"account_id": "111111111111", "region": "us-east-1", "name": "fixed",
                          "policies": [{"name": "allow-b", "document": "{}"}]}]
        }))
        .unwrap();
        assert_eq!(seed, file.seed);
    }

    #[test]
    fn bad_policies_are_rejected() {
        let file = file_with_policy(serde_json::json!({"Statement": []}));
        assert!(checked_policies(&file.seed, &file.policies).is_err());

        let mut elsewhere = SeedProjectPolicy::allow_copy("111111111111", "us-east-1", "nope", "p", "222222222222");
        assert!(checked_policies(&file.seed, std::slice::from_ref(&elsewhere)).is_err());
        elsewhere.project = "fixed".into();
        assert!(checked_policies(&file.seed, &[elsewhere.clone(), elsewhere.clone()]).is_err());
        let six: Vec<SeedProjectPolicy> =
            (0..6).map(|i| SeedProjectPolicy { name: format!("p{i}"), ..elsewhere.clone() }).collect();
        assert!(checked_policies(&file.seed, &six[..5]).is_ok());
        assert!(checked_policies(&file.seed, &six).is_err());
    }
}
