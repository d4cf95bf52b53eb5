//! `PutProjectPolicy`: attaches a new project policy, or replaces one at a known revision.
//!
//! Without `PolicyRevisionId` the policy must be new (`ResourceAlreadyExistsException` otherwise; at most five per
//! project, `ServiceQuotaExceededException` beyond). With it, the named policy must exist
//! (`ResourceNotFoundException`) at exactly that revision (`InvalidPolicyRevisionIdException`) — optimistic
//! concurrency, as AWS describes it. Every put gives the policy a new revision id. The document must be a valid
//! project policy ([`policy`](crate::simulator::policy)), else `MalformedPolicyDocumentException`.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{owned_project, Context, Operation};
use crate::simulator::arn::ProjectArn;
use crate::simulator::error::{ApiError, ErrorCode};
use crate::simulator::policy::PolicyDocument;
use crate::simulator::protocol::parse_body;
use crate::simulator::seed::MAX_POLICIES_PER_PROJECT;
use crate::simulator::state::{revision_id, Policy, Store};
use crate::simulator::validate::{Checks, POLICY_DOCUMENT, POLICY_NAME, POLICY_REVISION_ID, PROJECT_ARN};

pub const KEY_MEMBERS: &[&str] = &["ProjectArn", "PolicyName", "PolicyRevisionId"];

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Request {
    project_arn: Option<String>,
    policy_name: Option<String>,
    policy_revision_id: Option<String>,
    policy_document: Option<String>,
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
    if let Some(document) = checks.required("policyDocument", &request.policy_document) {
        checks.string("policyDocument", document, &POLICY_DOCUMENT);
    }
    checks.finish()?;
    let arn = ProjectArn::parse(request.project_arn.as_deref().unwrap_or_default())
        .map_err(|err| ApiError::validation(err.to_string()))?;
    let name = request.policy_name.unwrap_or_default();
    let text = request.policy_document.unwrap_or_default();

    let seq = store.next_seq();
    let project = owned_project(store, context, Operation::PutProjectPolicy, &arn)?;
    let document = PolicyDocument::parse(&text)?;
    let existing = project.policies.get(&name);
    let created_millis = match (&request.policy_revision_id, existing) {
        (None, Some(_)) => {
            return Err(ApiError::new(
                ErrorCode::ResourceAlreadyExists,
                format!(
                    "A policy named {name} is already attached to project {arn}; pass its PolicyRevisionId to \
                     replace it."
                ),
            ))
        }
        (None, None) if project.policies.len() >= MAX_POLICIES_PER_PROJECT => {
            return Err(ApiError::new(
                ErrorCode::ServiceQuotaExceeded,
                format!("Project {arn} already has {MAX_POLICIES_PER_PROJECT} policies, the most a project can have."),
            ))
        }
        (None, None) => context.now_millis,
        (Some(_), None) => {
            return Err(ApiError::not_found(format!("No policy named {name} is attached to project {arn}.")))
        }
        (Some(revision), Some(policy)) if *revision != policy.revision_id => {
            return Err(ApiError::new(
                ErrorCode::InvalidPolicyRevisionId,
                format!(
                    "The revision id {revision} is not the current revision of policy {name} ({}).",
                    policy.revision_id
                ),
            ))
        }
        (Some(_), Some(policy)) => policy.created_millis,
    };
    let revision_id = revision_id(&arn, &name, seq);
    project.policies.insert(
        name.clone(),
        Policy {
            name,
            revision_id: revision_id.clone(),
            text,
            document,
            created_millis,
            updated_millis: context.now_millis,
        },
    );
    Ok(json!({ "PolicyRevisionId": revision_id }))
}
