//! `ListProjectPolicies`: the policies attached to one of the caller's projects, in name order, paginated
//! (at most 5 a page, 5 by default, as documented).

use serde::Deserialize;
use serde_json::{json, Value};

use super::{owned_project, Context, Operation};
use crate::simulator::arn::ProjectArn;
use crate::simulator::error::ApiError;
use crate::simulator::pagination::{decode_name_token, encode_name_token, take_page, Listing};
use crate::simulator::protocol::{epoch_seconds, parse_body};
use crate::simulator::state::{Policy, Store};
use crate::simulator::validate::{Checks, PAGINATION_TOKEN, PROJECT_ARN};

pub const KEY_MEMBERS: &[&str] = &["ProjectArn", "NextToken", "MaxResults"];

const DEFAULT_MAX_RESULTS: i64 = 5;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Request {
    project_arn: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

pub fn run(store: &mut Store, context: &Context, body: &[u8]) -> Result<Value, ApiError> {
    let request: Request = parse_body(body)?;
    let mut checks = Checks::new();
    if let Some(arn) = checks.required("projectArn", &request.project_arn) {
        checks.string("projectArn", arn, &PROJECT_ARN);
    }
    checks.optional_string("nextToken", &request.next_token, &PAGINATION_TOKEN);
    if let Some(max_results) = request.max_results {
        checks.range("maxResults", max_results, 1, 5);
    }
    checks.finish()?;
    let arn = ProjectArn::parse(request.project_arn.as_deref().unwrap_or_default())
        .map_err(|err| ApiError::validation(err.to_string()))?;
    let after =
        request.next_token.as_deref().map(|token| decode_name_token(Listing::ProjectPolicies, token)).transpose()?;

    let project = owned_project(store, context, Operation::ListProjectPolicies, &arn)?;
    let policies =
        project.policies.values().filter(|policy| after.as_deref().is_none_or(|after| policy.name.as_str() > after));
    let max_results = request.max_results.unwrap_or(DEFAULT_MAX_RESULTS) as usize;
    let (page, next) = take_page(policies, |policy| policy.name.clone(), max_results);

    let described: Vec<Value> = page.into_iter().map(|policy| describe(&arn, policy)).collect();
    let mut output = json!({ "ProjectPolicies": described });
    if let Some(next) = next {
        output["NextToken"] = json!(encode_name_token(Listing::ProjectPolicies, &next));
    }
    Ok(output)
}

fn describe(project: &ProjectArn, policy: &Policy) -> Value {
    json!({
        "ProjectArn": project.to_string(),
        "PolicyName": policy.name,
        "PolicyRevisionId": policy.revision_id,
        "PolicyDocument": policy.text,
        "CreationTimestamp": epoch_seconds(policy.created_millis),
        "LastUpdatedTimestamp": epoch_seconds(policy.updated_millis),
    })
}
