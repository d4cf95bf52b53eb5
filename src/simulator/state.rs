//! The simulated world: projects, their model versions and their policies, per account and region.
//!
//! Plain data behind one `std::sync::Mutex` (held by the server only while an operation runs, never across an
//! await). Lookups by ARN compare every part of the ARN, creation time included, as AWS does: a project deleted and
//! re-created under the same name has a new ARN, and the old ARN no longer finds it.
//!
//! Every request touches a handful of items however large the world is: projects are found by key and listed
//! through a per-account-and-region index in newest-first order, versions through a per-project one, and copies in
//! progress are counted from a per-account heap of end times. No request scans all projects or all versions.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::arn::{ProjectArn, ProjectKey, ProjectVersionArn};
use super::lifecycle::Lifecycle;
use super::pagination::PageKey;
use super::policy::PolicyDocument;
use super::seed::{ResolvedProject, SeedProjectPolicy};

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
    pub versions: Versions,
    /// By policy name: `ListProjectPolicies` lists them in name order.
    pub policies: BTreeMap<String, Policy>,
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

/// A project policy as attached to a project.
#[derive(Debug, Clone)]
pub struct Policy {
    pub name: String,
    pub revision_id: String,
    /// The document as the client sent it: `ListProjectPolicies` returns it verbatim.
    pub text: String,
    pub document: PolicyDocument,
    pub created_millis: i64,
    pub updated_millis: i64,
}

/// A project's versions, by name and in newest-first order.
#[derive(Debug, Clone, Default)]
pub struct Versions {
    by_key: BTreeMap<PageKey, Version>,
    by_name: HashMap<String, PageKey>,
}

impl Versions {
    pub fn named(&self, name: &str) -> Option<&Version> {
        self.by_name.get(name).and_then(|key| self.by_key.get(key))
    }

    pub fn named_mut(&mut self, name: &str) -> Option<&mut Version> {
        self.by_name.get(name).and_then(|key| self.by_key.get_mut(key))
    }

    /// Adds a version; the caller has checked that its name is free.
    pub fn insert(&mut self, version: Version) {
        let key = version.page_key();
        self.by_name.insert(version.arn.version_name.clone(), key);
        self.by_key.insert(key, version);
    }

    pub fn remove(&mut self, name: &str) -> Option<Version> {
        let key = self.by_name.remove(name)?;
        self.by_key.remove(&key)
    }

    /// Newest first, starting after `after` (exclusive) when given.
    pub fn newest_first(&self, after: Option<PageKey>) -> impl Iterator<Item = &Version> + '_ {
        let range = match after {
            Some(after) => self.by_key.range(..after),
            None => self.by_key.range(..),
        };
        range.rev().map(|(_, version)| version)
    }
}

impl Project {
    pub fn page_key(&self) -> PageKey {
        PageKey { created_millis: self.arn.created_millis, seq: self.seq }
    }

    /// The version with exactly this ARN.
    pub fn version(&self, arn: &ProjectVersionArn) -> Option<&Version> {
        if arn.project != self.arn.key {
            return None;
        }
        self.versions.named(&arn.version_name).filter(|version| version.arn == *arn)
    }

    pub fn version_named(&self, name: &str) -> Option<&Version> {
        self.versions.named(name)
    }

    pub fn policy_documents(&self) -> impl Iterator<Item = &PolicyDocument> + '_ {
        self.policies.values().map(|policy| &policy.document)
    }
}

impl Version {
    pub fn page_key(&self) -> PageKey {
        PageKey { created_millis: self.arn.created_millis, seq: self.seq }
    }
}

#[derive(Debug, Default)]
pub struct Store {
    projects: HashMap<ProjectKey, Project>,
    /// Per (account, region): each project's page key → its name.
    owners: HashMap<(String, String), BTreeMap<PageKey, String>>,
    /// Per destination account: when each copy still in progress ends (a min-heap).
    copies_in_progress: HashMap<String, BinaryHeap<Reverse<i64>>>,
    last_seq: u64,
}

impl Store {
    /// The seeded world; the seed and policies must have passed validation.
    pub fn from_seed(
        projects: Vec<ResolvedProject>,
        policies: &[(SeedProjectPolicy, PolicyDocument)],
        policies_created_millis: i64,
    ) -> Store {
        let mut store = Store::default();
        for seeded in projects {
            let seq = store.next_seq();
            let mut project = Project {
                arn: seeded.arn,
                seq,
                feature: "CUSTOM_LABELS".to_owned(),
                auto_update: "DISABLED".to_owned(),
                versions: Versions::default(),
                policies: BTreeMap::new(),
            };
            for version in seeded.versions {
                project.versions.insert(Version {
                    arn: version.arn,
                    seq: store.next_seq(),
                    lifecycle: Lifecycle::Fixed(version.status),
                    source_version_arn: None,
                    output_config: None,
                    kms_key_id: None,
                });
            }
            store.insert_project(project);
        }
        for (seeded, document) in policies {
            let key = ProjectKey {
                account_id: seeded.account_id.clone(),
                region: seeded.region.clone(),
                name: seeded.project.clone(),
            };
            let seq = store.next_seq();
            if let Some(project) = store.projects.get_mut(&key) {
                let revision_id = revision_id(&project.arn, &seeded.name, seq);
                project.policies.insert(
                    seeded.name.clone(),
                    Policy {
                        name: seeded.name.clone(),
                        revision_id,
                        text: seeded.document.clone(),
                        document: document.clone(),
                        created_millis: policies_created_millis,
                        updated_millis: policies_created_millis,
                    },
                );
            }
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
        self.projects.get(&arn.key).filter(|project| project.arn == *arn)
    }

    pub fn project_mut(&mut self, arn: &ProjectArn) -> Option<&mut Project> {
        self.projects.get_mut(&arn.key).filter(|project| project.arn == *arn)
    }

    /// The project with this name, whatever its creation time.
    pub fn project_named(&self, key: &ProjectKey) -> Option<&Project> {
        self.projects.get(key)
    }

    pub fn project_named_mut(&mut self, key: &ProjectKey) -> Option<&mut Project> {
        self.projects.get_mut(key)
    }

    /// Adds a project; the caller has checked that its name is free.
    pub fn insert_project(&mut self, project: Project) {
        let key = project.arn.key.clone();
        self.owners
            .entry((key.account_id.clone(), key.region.clone()))
            .or_default()
            .insert(project.page_key(), key.name.clone());
        self.projects.insert(key, project);
    }

    /// The projects of one account in one region, newest first, starting after `after` (exclusive) when given.
    pub fn projects_in<'a>(
        &'a self,
        account_id: &str,
        region: &str,
        after: Option<PageKey>,
    ) -> impl Iterator<Item = &'a Project> + 'a {
        let owner = self.owners.get(&(account_id.to_owned(), region.to_owned()));
        let names = owner.into_iter().flat_map(move |index| {
            let range = match after {
                Some(after) => index.range(..after),
                None => index.range(..),
            };
            range.rev()
        });
        let (account_id, region) = (account_id.to_owned(), region.to_owned());
        names.filter_map(move |(_, name)| {
            self.projects.get(&ProjectKey {
                account_id: account_id.clone(),
                region: region.clone(),
                name: name.clone(),
            })
        })
    }

    /// How many copies into `account_id` are still in progress at `now_millis`.
    pub fn copies_in_progress(&mut self, account_id: &str, now_millis: i64) -> usize {
        let Some(ends) = self.copies_in_progress.get_mut(account_id) else {
            return 0;
        };
        forget_ended(ends, now_millis);
        ends.len()
    }

    /// Remembers a copy into `account_id`, started at `now_millis`, in progress until `done_at_millis`.
    pub fn copy_started(&mut self, account_id: &str, now_millis: i64, done_at_millis: i64) {
        let ends = self.copies_in_progress.entry(account_id.to_owned()).or_default();
        // Ended copies go as new ones come, so the heap holds only copies in progress, quota or not.
        forget_ended(ends, now_millis);
        ends.push(Reverse(done_at_millis));
    }

    pub fn project_count(&self) -> usize {
        self.projects.len()
    }
}

fn forget_ended(ends: &mut BinaryHeap<Reverse<i64>>, now_millis: i64) {
    while ends.peek().is_some_and(|Reverse(end)| *end <= now_millis) {
        ends.pop();
    }
}

/// A policy revision id: 32 hex digits, different for every put of a policy (the sequence number sees to that).
pub fn revision_id(project: &ProjectArn, policy_name: &str, seq: u64) -> String {
    let digest = Sha256::new()
        .chain_update(project.to_string())
        .chain_update([0])
        .chain_update(policy_name)
        .chain_update(seq.to_le_bytes())
        .finalize();
    hex::encode(&digest[..16])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::lifecycle::VersionStatus;
    use crate::simulator::seed::{Seed, SeedProject, SeedVersion};

    fn store() -> Store {
        let seed = Seed {
            accounts: vec![],
            projects: vec![
                SeedProject {
                    account_id: "111111111111".into(),
                    region: "us-east-1".into(),
                    name: "p".into(),
                    created_millis: Some(1000),
                    versions: vec![
                        SeedVersion { name: "v1".into(), status: None, created_millis: Some(2000) },
                        SeedVersion { name: "v2".into(), status: None, created_millis: Some(3000) },
                    ],
                },
                SeedProject {
                    account_id: "111111111111".into(),
                    region: "us-east-1".into(),
                    name: "q".into(),
                    created_millis: Some(5000),
                    versions: vec![],
                },
            ],
        };
        Store::from_seed(seed.resolve(), &[], 0)
    }

    fn project_arn(text: &str) -> ProjectArn {
        ProjectArn::parse(text).unwrap()
    }

    #[test]
    fn project_is_found_by_its_exact_arn_only() {
        let store = store();
        assert!(store.project(&project_arn("arn:aws:rekognition:us-east-1:111111111111:project/p/1000")).is_some());
        assert!(store.project(&project_arn("arn:aws:rekognition:us-east-1:111111111111:project/p/1001")).is_none());
    }

    #[test]
    fn version_is_found_by_its_exact_arn_only() {
        let store = store();
        let project = store.project(&project_arn("arn:aws:rekognition:us-east-1:111111111111:project/p/1000")).unwrap();
        let arn = "arn:aws:rekognition:us-east-1:111111111111:project/p/version/v1/2000";
        assert!(project.version(&ProjectVersionArn::parse(arn).unwrap()).is_some());
        let other = arn.replace("/2000", "/2001");
        assert!(project.version(&ProjectVersionArn::parse(&other).unwrap()).is_none());
    }

    #[test]
    fn projects_are_listed_per_account_and_region_newest_first() {
        let store = store();
        let names = |after| {
            store.projects_in("111111111111", "us-east-1", after).map(|p| p.arn.key.name.clone()).collect::<Vec<_>>()
        };
        assert_eq!(names(None), ["q", "p"]);
        let q = store.projects_in("111111111111", "us-east-1", None).next().unwrap().page_key();
        assert_eq!(names(Some(q)), ["p"]);
        assert_eq!(store.projects_in("111111111111", "us-west-2", None).count(), 0);
        assert_eq!(store.projects_in("222222222222", "us-east-1", None).count(), 0);
    }

    #[test]
    fn versions_list_newest_first_and_can_be_removed() {
        let mut store = store();
        let key = ProjectKey { account_id: "111111111111".into(), region: "us-east-1".into(), name: "p".into() };
        let project = store.project_named_mut(&key).unwrap();
        let names: Vec<&str> = project.versions.newest_first(None).map(|v| v.arn.version_name.as_str()).collect();
        assert_eq!(names, ["v2", "v1"]);
        assert_eq!(
            project.versions.remove("v2").map(|v| v.lifecycle),
            Some(Lifecycle::Fixed(VersionStatus::TrainingCompleted))
        );
        assert!(project.version_named("v2").is_none());
        assert_eq!(project.versions.newest_first(None).count(), 1);
    }

    #[test]
    fn copies_in_progress_end_with_time() {
        let mut store = store();
        store.copy_started("2", 0, 100);
        store.copy_started("2", 0, 200);
        assert_eq!(store.copies_in_progress("2", 50), 2);
        assert_eq!(store.copies_in_progress("2", 100), 1);
        assert_eq!(store.copies_in_progress("2", 250), 0);
        assert_eq!(store.copies_in_progress("3", 0), 0);
        store.copy_started("3", 0, 10);
        store.copy_started("3", 20, 30);
        assert_eq!(store.copies_in_progress.get("3").map(BinaryHeap::len), Some(1), "the ended copy is gone");
    }

    #[test]
    fn revision_ids_are_hex_and_change_with_each_put() {
        let arn = project_arn("arn:aws:rekognition:us-east-1:111111111111:project/p/1000");
        let first = revision_id(&arn, "allow", 1);
        assert_eq!(first.len(), 32);
        assert!(first.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(first, revision_id(&arn, "allow", 2));
    }
}
