//! Preflight: before a copy or a rollout is queued, ask Rekognition, with the service's own credentials for the
//! accounts involved, whether the copy can work at all, so that a mistake is a refusal now rather than a copy that
//! waits its turn in the queue and then fails (the AccessDenied an hour later).
//!
//! What is checked (each only where the service holds the credentials it needs; the source account's first):
//! - the source project and version exist, and the version holds a trained model (DescribeProjectVersions in the
//!   source account);
//! - each destination project exists (DescribeProjects in its account);
//! - for each destination in another account, the source project's policies let that account copy the version
//!   (ListProjectPolicies in the source account, read by [`policy::read`]).
//!
//! Only a certain failure refuses: a call that fails (throttled, timed out), a pace spent past `max_wait_ms`, or a
//! policy that hangs on a Condition lets the request through, and the answer says what was not checked. Calls are
//! paced per account across replicas ([`crate::store::pace`]) at `[preflight] per_second`. Checks that passed are
//! believed for `cache_secs`, so a burst of copies of one version into one project costs its calls once.

pub mod policy;
pub mod settings;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_rekognition::Client;

use crate::domain::{AccountId, CopyRequest, ProjectArn, ProjectVersionArn, ProjectVersionStatus};
use crate::rekognition::{projects, status, AwsCallError, Clients};
use crate::store::{pace, Store};
pub use settings::PreflightSettings;

/// What preflight concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every check was made and passed; `note` says what passed without certainty, if anything.
    Passed { note: Option<String> },
    /// Not checked, and why: the request is queued as without preflight.
    Skipped { note: String },
    /// Checks failed: the request is refused.
    Failed(Vec<Violation>),
}

/// One failed check, as a `google.rpc.PreconditionFailure.Violation`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// `SOURCE_PROJECT`, `SOURCE_VERSION`, `DESTINATION_PROJECT` or `PROJECT_POLICY`.
    pub kind: &'static str,
    /// What is missing or wrong: an ARN, or the project and account of a policy.
    pub subject: String,
    pub description: String,
}

/// A check that passed, remembered for a while.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Fact {
    Copyable(ProjectVersionArn),
    ProjectExists(ProjectArn),
    MayCopy(ProjectVersionArn, AccountId),
}

/// Why a check could not be made: the request goes on unchecked.
struct Unchecked(String);

impl From<AwsCallError> for Unchecked {
    fn from(err: AwsCallError) -> Self {
        Unchecked(format!("Rekognition could not be asked ({}: {})", err.code, err.message))
    }
}

/// The statuses of a version that holds a trained model, and so can be copied.
fn copyable(status: &ProjectVersionStatus) -> bool {
    use ProjectVersionStatus as S;
    matches!(
        status,
        S::TrainingCompleted | S::CopyingCompleted | S::Starting | S::Running | S::Stopping | S::Stopped | S::Failed
    )
}

#[derive(Clone)]
pub struct Preflight {
    store: Store,
    clients: Clients,
    settings: PreflightSettings,
    passed: Arc<Mutex<HashMap<Fact, Instant>>>,
}

/// Facts remembered at most; past it, the oldest half is forgotten.
const REMEMBERED: usize = 10_000;

impl Preflight {
    pub fn new(store: Store, clients: Clients, settings: PreflightSettings) -> Preflight {
        Preflight { store, clients, settings, passed: Arc::default() }
    }

    /// Checks `copies` (one copy, or a rollout's, all of one source version). Violations name each destination by
    /// its place, `destinations[i]`, when there are several.
    pub async fn check(&self, copies: &[CopyRequest]) -> Verdict {
        if !self.settings.enabled {
            return Verdict::Skipped { note: "preflight is off on this service".into() };
        }
        let Some(first) = copies.first() else { return Verdict::Passed { note: None } };
        let source_account = first.source_account();
        let Some(source) = self.clients.for_account(source_account) else {
            return Verdict::Skipped {
                note: format!("not checked: this service holds no credentials for source account {source_account}"),
            };
        };
        match self.run(source, copies).await {
            Ok((violations, _)) if !violations.is_empty() => Verdict::Failed(violations),
            Ok((_, notes)) => Verdict::Passed { note: (!notes.is_empty()).then(|| notes.join("; ")) },
            Err(Unchecked(why)) => Verdict::Skipped { note: format!("not checked: {why}") },
        }
    }

    async fn run(&self, source: &Client, copies: &[CopyRequest]) -> Result<(Vec<Violation>, Vec<String>), Unchecked> {
        let first = &copies[0];
        let (version, project) = (first.source_version(), first.source_project());
        let mut violations = Vec::new();
        let mut notes = Vec::new();
        if !self.believed(&Fact::Copyable(version.clone())) {
            match self.source_version(source, project, version).await? {
                Some(violation) => {
                    // Without the source, the other checks say nothing more.
                    return Ok((vec![violation], notes));
                }
                None => self.remember(Fact::Copyable(version.clone())),
            }
        }
        let place = |i: usize| if copies.len() > 1 { format!("destinations[{i}]: ") } else { String::new() };
        let mut destinations: BTreeMap<&ProjectArn, usize> = BTreeMap::new();
        for (i, copy) in copies.iter().enumerate() {
            destinations.entry(copy.destination_project()).or_insert(i);
        }
        for (destination, i) in destinations {
            let fact = Fact::ProjectExists(destination.clone());
            if self.believed(&fact) {
                continue;
            }
            let Some(client) = self.clients.for_account(destination.account()) else {
                notes.push(format!(
                    "{}no credentials for account {} to look for its project",
                    place(i),
                    destination.account()
                ));
                continue;
            };
            self.pace(destination.account()).await?;
            if projects::project_exists(client, destination).await? {
                self.remember(fact);
            } else {
                violations.push(Violation {
                    kind: "DESTINATION_PROJECT",
                    subject: destination.to_string(),
                    description: format!("{}the destination project does not exist: create it first", place(i)),
                });
            }
        }
        let mut accounts: BTreeMap<&AccountId, usize> = BTreeMap::new();
        for (i, copy) in copies.iter().enumerate() {
            if copy.destination_account() != first.source_account() {
                accounts.entry(copy.destination_account()).or_insert(i);
            }
        }
        accounts.retain(|account, _| !self.believed(&Fact::MayCopy(version.clone(), (*account).clone())));
        if !accounts.is_empty() {
            self.pace(first.source_account()).await?;
            let documents = projects::project_policies(source, project).await?;
            for (account, i) in accounts {
                match policy::read(&documents, account, version) {
                    policy::Reading::Allowed => self.remember(Fact::MayCopy(version.clone(), account.clone())),
                    policy::Reading::Uncertain => notes.push(format!(
                        "{}a policy of {project} lets account {account} copy only under a Condition the service \
                         cannot evaluate",
                        place(i)
                    )),
                    policy::Reading::Denied { statement } => violations.push(Violation {
                        kind: "PROJECT_POLICY",
                        subject: format!("{project} (account {account})"),
                        description: format!(
                            "{}a policy statement{} of the source project denies account {account} \
                             rekognition:CopyProjectVersion on {version}: remove it",
                            place(i),
                            statement.map(|sid| format!(" ({sid})")).unwrap_or_default()
                        ),
                    }),
                    policy::Reading::NotAllowed => violations.push(Violation {
                        kind: "PROJECT_POLICY",
                        subject: format!("{project} (account {account})"),
                        description: format!(
                            "{}no policy of the source project lets account {account} copy {version}; add this \
                             statement to one (PutProjectPolicy): {}",
                            place(i),
                            policy::statement_to_add(account, version)
                        ),
                    }),
                }
            }
        }
        Ok((violations, notes))
    }

    /// The source version's violation, if it cannot be copied.
    async fn source_version(
        &self,
        source: &Client,
        project: &ProjectArn,
        version: &ProjectVersionArn,
    ) -> Result<Option<Violation>, Unchecked> {
        self.pace(project.account()).await?;
        let name = crate::domain::VersionName::parse(version.version_name()).map_err(|e| Unchecked(e.to_string()))?;
        let found = match status::describe_versions(source, project, &[&name]).await {
            Ok(found) => found,
            Err(err) if err.code == "ResourceNotFoundException" => {
                return Ok(Some(Violation {
                    kind: "SOURCE_PROJECT",
                    subject: project.to_string(),
                    description: "the source project does not exist (as the source account's credentials see it)"
                        .into(),
                }))
            }
            Err(err) => return Err(err.into()),
        };
        let Some(found) = found.into_iter().find(|v| &v.version_arn == version) else {
            return Ok(Some(Violation {
                kind: "SOURCE_VERSION",
                subject: version.to_string(),
                description: "the source model version does not exist in the source project".into(),
            }));
        };
        match &found.status {
            Some(status) if !copyable(status) => Ok(Some(Violation {
                kind: "SOURCE_VERSION",
                subject: version.to_string(),
                description: format!(
                    "the source model version is {}: only a version that holds a trained model can be copied",
                    status.as_str()
                ),
            })),
            _ => Ok(None),
        }
    }

    /// Waits for the account's next preflight slot, shared by every replica.
    async fn pace(&self, account: &AccountId) -> Result<(), Unchecked> {
        let period = Duration::from_secs_f64(1.0 / self.settings.per_second);
        let max_wait = Duration::from_millis(self.settings.max_wait_ms);
        match pace::take_slot(&self.store, account, period, max_wait).await {
            Ok(Some(wait)) => {
                tokio::time::sleep(wait).await;
                Ok(())
            }
            Ok(None) => Err(Unchecked(format!("account {account}'s preflight calls are spent for now"))),
            Err(err) => Err(Unchecked(format!("the preflight pace could not be read ({err})"))),
        }
    }

    fn believed(&self, fact: &Fact) -> bool {
        let passed = self.passed.lock().expect("never held across a panic");
        let ttl = Duration::from_secs(self.settings.cache_secs);
        passed.get(fact).is_some_and(|at| at.elapsed() < ttl)
    }

    fn remember(&self, fact: Fact) {
        let mut passed = self.passed.lock().expect("never held across a panic");
        if passed.len() >= REMEMBERED {
            let ttl = Duration::from_secs(self.settings.cache_secs);
            passed.retain(|_, at| at.elapsed() < ttl);
        }
        if passed.len() < REMEMBERED {
            passed.insert(fact, Instant::now());
        }
    }
}
