//! `DeleteProjectPolicy`: detaches a policy from one of the caller's projects.
//!
//! The policy must exist (`ResourceNotFoundException`); when `PolicyRevisionId` is given it must be the current
//! revision (`InvalidPolicyRevisionIdException`). Copies already started are not affected.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{owned_project, Context, Operation};
use crate::simulator::arn::ProjectArn;
use crate::simulator::error::{ApiError, ErrorCode};
use crate::simulator::protocol::parse_body;
use crate::simulator::state::Store;
use crate::simulator::validate::{Checks, POLICY_NAME, POLICY_REVISION_ID, PROJECT_ARN};

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
    if let Some(arn) = checks.required("projectArn", &request.project_arn) {
        checks.string("projectArn", arn, &PROJECT_ARN);
    }
    if let Some(name) = checks.required("policyName", &request.policy_name) {
        checks.string("policyName", name, &POLICY_NAME);
    }
    checks.optional_string("policyRevisionId", &request.policy_revision_id, &POLICY_REVISION_ID);
    checks.finish()?;
    let arn = ProjectArn::parse(request.project_arn.as_deref().unwrap_or_default())
        .map_err(|err| ApiError::validation(err.to_string()))?;
    let name = request.policy_name.unwrap_or_default();

    let project = owned_project(store, context, Operation::DeleteProjectPolicy, &arn)?;
    let policy = project
        .policies
        .get(&name)
        .ok_or_else(|| ApiError::not_found(format!("No policy named {name} is attached to project {arn}.")))?;
    if let Some(revision) = &request.policy_revision_id {
        if *revision != policy.revision_id {
            return Err(ApiError::new(
                ErrorCode::InvalidPolicyRevisionId,
                format!(
                    "The revision id {revision} is not the current revision of policy {name} ({}).",
                    policy.revision_id
                ),
            ));
        }
    }
    project.policies.remove(&name);
    Ok(json!({}))
}
