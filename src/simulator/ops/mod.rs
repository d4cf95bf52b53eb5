//! The operations the simulator answers, one file each.
//!
//! Each operation decodes its request, checks the model's constraints (all violations at once, as
//! `ValidationException`), then applies Rekognition's rules in the order AWS does: who may act, what must exist,
//! what must be free. Operations are synchronous functions of the store, the caller and the time, so the server
//! can run them while holding the store's lock without awaiting anything.

mod copy_project_version;
mod create_project;
mod describe_project_versions;
mod describe_projects;

use serde_json::Value;

use super::config::CopyBehaviour;
use super::error::{ApiError, ErrorCode};
use super::identity::Caller;
use super::state::Store;

/// What an operation knows about the call besides its body.
pub struct Context<'a> {
    pub caller: &'a Caller,
    /// The time of the call, in epoch milliseconds: creation times and copy progress are read off it.
    pub now_millis: i64,
    pub copy: &'a CopyBehaviour,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    CreateProject,
    DescribeProjects,
    CopyProjectVersion,
    DescribeProjectVersions,
}

impl Operation {
    const ALL: [Operation; 4] = [
        Operation::CreateProject,
        Operation::DescribeProjects,
        Operation::CopyProjectVersion,
        Operation::DescribeProjectVersions,
    ];

    pub fn from_name(name: &str) -> Result<Self, ApiError> {
        Self::ALL
            .into_iter()
            .find(|operation| operation.name() == name)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::UnknownOperation,
                    format!("The simulator does not model operation {name:?}."),
                )
            })
    }

    pub fn name(self) -> &'static str {
        match self {
            Operation::CreateProject => "CreateProject",
            Operation::DescribeProjects => "DescribeProjects",
            Operation::CopyProjectVersion => "CopyProjectVersion",
            Operation::DescribeProjectVersions => "DescribeProjectVersions",
        }
    }

    /// The request members that say what a call is about; the call log keeps them.
    fn key_members(self) -> &'static [&'static str] {
        match self {
            Operation::CreateProject => create_project::KEY_MEMBERS,
            Operation::DescribeProjects => describe_projects::KEY_MEMBERS,
            Operation::CopyProjectVersion => copy_project_version::KEY_MEMBERS,
            Operation::DescribeProjectVersions => describe_project_versions::KEY_MEMBERS,
        }
    }

    /// The key members present in a body, as a JSON object (null when the body is not a JSON object).
    pub fn key_params(self, body: &[u8]) -> Value {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(members)) => Value::Object(
                self.key_members()
                    .iter()
                    .filter_map(|name| {
                        members
                            .get(*name)
                            .map(|value| ((*name).to_owned(), value.clone()))
                    })
                    .collect(),
            ),
            _ => Value::Null,
        }
    }

    pub fn run(self, store: &mut Store, context: &Context, body: &[u8]) -> Result<Value, ApiError> {
        match self {
            Operation::CreateProject => create_project::run(store, context, body),
            Operation::DescribeProjects => describe_projects::run(store, context, body),
            Operation::CopyProjectVersion => copy_project_version::run(store, context, body),
            Operation::DescribeProjectVersions => {
                describe_project_versions::run(store, context, body)
            }
        }
    }
}
