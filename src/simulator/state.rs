//! The simulated world: projects and their model versions, per account and region.
//!
//! Plain data behind one `std::sync::Mutex` (held by the server only while an operation runs, never across an
//! await). Lookups by ARN compare every part of the ARN, creation time included, as AWS does: a project deleted and
//! re-created under the same name has a new ARN, and the old ARN no longer finds it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::arn::{ProjectArn, ProjectKey, ProjectVersionArn};
use super::lifecycle::Lifecycle;
use super::pagination::PageKey;
use super::seed::Seed;

/// `OutputConfig`, as sent and as described.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OutputConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_bucket: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_key_prefix: Option<String>,
}

pub type Tags = BTreeMap<String, String>;

#[derive(Debug, Clone)]
pub struct Project {
    pub arn: ProjectArn,
    /// Breaks ties between equal creation times, so listings have one order.
    pub seq: u64,
    pub feature: String,
    pub auto_update: String,
    pub versions: Vec<Version>,
}

#[derive(Debug, Clone)]
pub struct Version {
    pub arn: ProjectVersionArn,
    pub seq: u64,
    pub lifecycle: Lifecycle,
    /// Set for copies: the version this one was copied from.
    pub source_version_arn: Option<String>,
    pub output_config: Option<OutputConfig>,
    pub kms_key_id: Option<String>,
}

impl Project {
    pub fn page_key(&self) -> PageKey {
        PageKey {
            created_millis: self.arn.created_millis,
            seq: self.seq,
        }
    }

    /// The version with exactly this ARN.
    pub fn version(&self, arn: &ProjectVersionArn) -> Option<&Version> {
        if arn.project != self.arn.key {
            return None;
        }
        self.versions.iter().find(|version| version.arn == *arn)
    }

    pub fn version_named(&self, name: &str) -> Option<&Version> {
        self.versions
            .iter()
            .find(|version| version.arn.version_name == name)
    }
}

impl Version {
    pub fn page_key(&self) -> PageKey {
        PageKey {
            created_millis: self.arn.created_millis,
            seq: self.seq,
        }
    }
}

#[derive(Debug, Default)]
pub struct Store {
    projects: BTreeMap<ProjectKey, Project>,
    last_seq: u64,
}

impl Store {
    /// The seeded world. The seed must have passed [`Seed::validate`].
    pub fn from_seed(seed: &Seed) -> Store {
        let mut store = Store::default();
        for seeded in seed.resolve() {
            let seq = store.next_seq();
            let mut project = Project {
                arn: seeded.arn,
                seq,
                feature: "CUSTOM_LABELS".to_owned(),
                auto_update: "DISABLED".to_owned(),
                versions: Vec::new(),
            };
            for version in seeded.versions {
                project.versions.push(Version {
                    arn: version.arn,
                    seq: store.next_seq(),
                    lifecycle: Lifecycle::Fixed(version.status),
                    source_version_arn: None,
                    output_config: None,
                    kms_key_id: None,
                });
            }
            store.projects.insert(project.arn.key.clone(), project);
        }
        store
    }

    /// A number larger than every one handed out before.
    pub fn next_seq(&mut self) -> u64 {
        self.last_seq += 1;
        self.last_seq
    }

    /// The project with exactly this ARN.
    pub fn project(&self, arn: &ProjectArn) -> Option<&Project> {
        self.projects
            .get(&arn.key)
            .filter(|project| project.arn == *arn)
    }

    pub fn project_mut(&mut self, arn: &ProjectArn) -> Option<&mut Project> {
        self.projects
            .get_mut(&arn.key)
            .filter(|project| project.arn == *arn)
    }

    pub fn project_named(&self, key: &ProjectKey) -> Option<&Project> {
        self.projects.get(key)
    }

    /// Adds a project; the caller has checked that its name is free.
    pub fn insert_project(&mut self, project: Project) {
        self.projects.insert(project.arn.key.clone(), project);
    }

    /// The projects of one account in one region.
    pub fn projects_in<'a>(
        &'a self,
        account_id: &'a str,
        region: &'a str,
    ) -> impl Iterator<Item = &'a Project> + 'a {
        self.projects.values().filter(move |project| {
            project.arn.key.account_id == account_id && project.arn.key.region == region
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::seed::{SeedProject, SeedVersion};

    fn store() -> Store {
        Store::from_seed(&Seed {
            accounts: vec![],
            projects: vec![SeedProject {
                account_id: "111111111111".into(),
                region: "us-east-1".into(),
                name: "p".into(),
                created_millis: Some(1000),
                versions: vec![SeedVersion {
                    name: "v1".into(),
                    status: None,
                    created_millis: Some(2000),
                }],
            }],
        })
    }

    #[test]
    fn project_is_found_by_its_exact_arn_only() {
        let store = store();
        let arn =
            ProjectArn::parse("arn:aws:rekognition:us-east-1:111111111111:project/p/1000").unwrap();
        assert!(store.project(&arn).is_some());
        let recreated =
            ProjectArn::parse("arn:aws:rekognition:us-east-1:111111111111:project/p/1001").unwrap();
        assert!(store.project(&recreated).is_none());
    }

    #[test]
    fn version_is_found_by_its_exact_arn_only() {
        let store = store();
        let project = store
            .projects_in("111111111111", "us-east-1")
            .next()
            .unwrap();
        let arn = "arn:aws:rekognition:us-east-1:111111111111:project/p/version/v1/2000";
        assert!(project
            .version(&ProjectVersionArn::parse(arn).unwrap())
            .is_some());
        let other = arn.replace("/2000", "/2001");
        assert!(project
            .version(&ProjectVersionArn::parse(&other).unwrap())
            .is_none());
    }

    #[test]
    fn projects_are_listed_per_account_and_region() {
        let store = store();
        assert_eq!(store.projects_in("111111111111", "us-east-1").count(), 1);
        assert_eq!(store.projects_in("111111111111", "us-west-2").count(), 0);
        assert_eq!(store.projects_in("222222222222", "us-east-1").count(), 0);
    }
}
