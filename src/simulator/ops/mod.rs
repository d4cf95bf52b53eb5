//! The operations the simulator answers, one file each.
//!
//! Each operation decodes its request, checks the model's constraints (all violations at once, as
//! `ValidationException`), then applies Rekognition's rules in the order AWS does: who may act, what must exist,
//! what must be free. Operations are synchronous functions of the store, the caller and the time, so the server
//! can run them while holding the store's lock without awaiting anything.

mod copy_project_version;
mod create_project;
mod delete_project_policy;
mod delete_project_version;
mod describe_project_versions;
mod describe_projects;
mod list_project_policies;
mod policy_target;
mod put_project_policy;

use serde_json::Value;

use super::config::CopyBehaviour;
use super::error::{ApiError, ErrorCode};
use super::identity::Caller;
use super::observe::PlannedCopy;
use super::state::Store;

/// What an operation knows about the call besides its body.
pub struct Context<'a> {
    pub caller: &'a Caller,
    /// The time of the call, in epoch milliseconds: creation times and copy progress are read off it.
    pub now_millis: i64,
    pub copy: &'a CopyBehaviour,
    /// The quota on copies in progress in the caller's account, if any.
    pub max_copies_in_progress: Option<u32>,
}

/// An operation's answer, and what the call log should know about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub body: Value,
    /// Set by a copy that started.
    pub copy: Option<PlannedCopy>,
}

impl From<Value> for Output {
    fn from(body: Value) -> Self {
        Output { body, copy: None }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    CreateProject,
    DescribeProjects,
    CopyProjectVersion,
    DescribeProjectVersions,
    DeleteProjectVersion,
    PutProjectPolicy,
    ListProjectPolicies,
    DeleteProjectPolicy,
}

impl Operation {
    const ALL: [Operation; 8] = [
        Operation::CreateProject,
        Operation::DescribeProjects,
        Operation::CopyProjectVersion,
        Operation::DescribeProjectVersions,
        Operation::DeleteProjectVersion,
        Operation::PutProjectPolicy,
        Operation::ListProjectPolicies,
        Operation::DeleteProjectPolicy,
    ];

    pub fn from_name(name: &str) -> Result<Self, ApiError> {
        Self::ALL.into_iter().find(|operation| operation.name() == name).ok_or_else(|| {
            ApiError::new(ErrorCode::UnknownOperation, format!("The simulator does not model operation {name:?}."))
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Operation::CreateProject => "CreateProject",
            Operation::DescribeProjects => "DescribeProjects",
            Operation::CopyProjectVersion => "CopyProjectVersion",
            Operation::DescribeProjectVersions => "DescribeProjectVersions",
            Operation::DeleteProjectVersion => "DeleteProjectVersion",
            Operation::PutProjectPolicy => "PutProjectPolicy",
            Operation::ListProjectPolicies => "ListProjectPolicies",
            Operation::DeleteProjectPolicy => "DeleteProjectPolicy",
        }
    }

    /// The request members that say what a call is about; the call log keeps them.
    fn key_members(self) -> &'static [&'static str] {
        match self {
            Operation::CreateProject => create_project::KEY_MEMBERS,
            Operation::DescribeProjects => describe_projects::KEY_MEMBERS,
            Operation::CopyProjectVersion => copy_project_version::KEY_MEMBERS,
            Operation::DescribeProjectVersions => describe_project_versions::KEY_MEMBERS,
            Operation::DeleteProjectVersion => delete_project_version::KEY_MEMBERS,
            Operation::PutProjectPolicy => put_project_policy::KEY_MEMBERS,
            Operation::ListProjectPolicies => list_project_policies::KEY_MEMBERS,
            Operation::DeleteProjectPolicy => delete_project_policy::KEY_MEMBERS,
        }
    }

    /// The key members present in a body, as a JSON object (null when the body is not a JSON object).
    pub fn key_params(self, body: &[u8]) -> Value {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(members)) => Value::Object(
                self.key_members()
                    .iter()
                    .filter_map(|name| members.get(*name).map(|value| ((*name).to_owned(), value.clone())))
                    .collect(),
            ),
            _ => Value::Null,
        }
    }

    pub fn run(self, store: &mut Store, context: &Context, body: &[u8]) -> Result<Output, ApiError> {
        let plain = |result: Result<Value, ApiError>| result.map(Output::from);
        match self {
            Operation::CreateProject => plain(create_project::run(store, context, body)),
            Operation::DescribeProjects => plain(describe_projects::run(store, context, body)),
            Operation::CopyProjectVersion => copy_project_version::run(store, context, body),
            Operation::DescribeProjectVersions => plain(describe_project_versions::run(store, context, body)),
            Operation::DeleteProjectVersion => plain(delete_project_version::run(store, context, body)),
            Operation::PutProjectPolicy => plain(put_project_policy::run(store, context, body)),
            Operation::ListProjectPolicies => plain(list_project_policies::run(store, context, body)),
            Operation::DeleteProjectPolicy => plain(delete_project_policy::run(store, context, body)),
        }
    }
}

/// The project a policy operation names, which the caller must own and which must exist in the caller's region.
///
/// Policies are managed by the project's owner only; another account gets `AccessDeniedException` whether or not
/// the project exists, as IAM would answer before looking.
pub fn owned_project<'a>(
    store: &'a mut Store,
    context: &Context,
    operation: Operation,
    arn: &super::arn::ProjectArn,
) -> Result<&'a mut super::state::Project, ApiError> {
    let caller = context.caller;
    if arn.key.account_id != caller.account_id {
        return Err(ApiError::access_denied(&caller.account_id, operation.name(), &arn.to_string()));
    }
    if arn.key.region != caller.region {
        return Err(ApiError::not_found(format!("The project {arn} does not exist.")));
    }
    store.project_mut(arn).ok_or_else(|| ApiError::not_found(format!("The project {arn} does not exist.")))
}
