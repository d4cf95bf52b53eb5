//! `PutProjectPolicy`: attaches a new project policy, or replaces one at a known revision.
//!
//! Without `PolicyRevisionId` the policy must be new (`ResourceAlreadyExistsException` otherwise; at most five per
//! project, `ServiceQuotaExceededException` beyond). With it, the named policy must exist
//! (`ResourceNotFoundException`) at exactly that revision (`InvalidPolicyRevisionIdException`) — optimistic
//! concurrency, as AWS describes it. Every put gives the policy a new revision id. The document must be a valid
//! project policy ([`policy`](crate::simulator::policy)), else `MalformedPolicyDocumentException`.

use serde::Deserialize;
use serde_json::{json, Value};

use super::policy_target::PolicyTarget;
use super::{owned_project, Context, Operation};
use crate::simulator::error::{ApiError, ErrorCode};
use crate::simulator::policy::PolicyDocument;
use crate::simulator::protocol::parse_body;
use crate::simulator::seed::MAX_POLICIES_PER_PROJECT;
use crate::simulator::state::{revision_id, Policy, Store};
use crate::simulator::validate::{Checks, POLICY_DOCUMENT};

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
    PolicyTarget::check(&mut checks, &request.project_arn, &request.policy_name, &request.policy_revision_id);
    if let Some(document) = checks.required("policyDocument", &request.policy_document) {
        checks.string("policyDocument", document, &POLICY_DOCUMENT);
    }
    checks.finish()?;
    let target = PolicyTarget::parse(request.project_arn, request.policy_name, request.policy_revision_id)?;
    let (arn, name) = (&target.project, &target.name);
    let text = request.policy_document.unwrap_or_default();

    let seq = store.next_seq();
    let project = owned_project(store, context, Operation::PutProjectPolicy, arn)?;
    let document = PolicyDocument::parse(&text)?;
    let existing = project.policies.get(name);
    let created_millis = match (&target.revision, existing) {
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
        (Some(_), Some(policy)) => {
            target.expect_revision(policy)?;
            policy.created_millis
        }
    };
    let revision_id = revision_id(arn, name, seq);
    project.policies.insert(
        name.clone(),
        Policy {
            name: name.clone(),
            revision_id: revision_id.clone(),
            text,
            document,
            created_millis,
            updated_millis: context.now_millis,
        },
    );
    Ok(json!({ "PolicyRevisionId": revision_id }))
}
