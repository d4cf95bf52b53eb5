//! `DeleteProjectPolicy`: detaches a policy from one of the caller's projects.
//!
//! The policy must exist (`ResourceNotFoundException`); when `PolicyRevisionId` is given it must be the current
//! revision (`InvalidPolicyRevisionIdException`). Copies already started are not affected.

use serde::Deserialize;
use serde_json::{json, Value};

use super::policy_target::PolicyTarget;
use super::{owned_project, Context, Operation};
use crate::simulator::error::ApiError;
use crate::simulator::protocol::parse_body;
use crate::simulator::state::Store;
use crate::simulator::validate::Checks;

pub const KEY_MEMBERS: &[&str] = &["ProjectArn", "PolicyName", "PolicyRevisionId"];

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Request {
    project_arn: Option<String>,
    policy_name: Option<String>,
    policy_revision_id: Option<String>,
}

pub fn run(store: &mut Store, context: &Context, body: &[u8]) -> Result<Value, ApiError> {
    let request: Request = parse_body(body)?;
    let mut checks = Checks::new();
    PolicyTarget::check(&mut checks, &request.project_arn, &request.policy_name, &request.policy_revision_id);
    checks.finish()?;
    let target = PolicyTarget::parse(request.project_arn, request.policy_name, request.policy_revision_id)?;
    let (arn, name) = (&target.project, &target.name);

    let project = owned_project(store, context, Operation::DeleteProjectPolicy, arn)?;
    let policy = project
        .policies
        .get(name)
        .ok_or_else(|| ApiError::not_found(format!("No policy named {name} is attached to project {arn}.")))?;
    target.expect_revision(policy)?;
    project.policies.remove(name);
    Ok(json!({}))
}
