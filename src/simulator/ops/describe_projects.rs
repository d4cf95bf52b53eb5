//! `DescribeProjects`: the caller's projects in the caller's region, newest first, paginated.

use serde::Deserialize;
use serde_json::{json, Value};

use super::create_project::FEATURES;
use super::Context;
use crate::simulator::error::ApiError;
use crate::simulator::pagination::{decode_token, encode_token, newest_first, Listing};
use crate::simulator::protocol::{epoch_seconds, parse_body};
use crate::simulator::state::{Project, Store};
use crate::simulator::validate::{Checks, NAME, PAGINATION_TOKEN};

pub const KEY_MEMBERS: &[&str] = &["ProjectNames", "NextToken", "MaxResults"];

const DEFAULT_MAX_RESULTS: i64 = 100;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Request {
    next_token: Option<String>,
    max_results: Option<i64>,
    project_names: Option<Vec<String>>,
    features: Option<Vec<String>>,
}

pub fn run(store: &mut Store, context: &Context, body: &[u8]) -> Result<Value, ApiError> {
    let request: Request = parse_body(body)?;
    let mut checks = Checks::new();
    checks.optional_string("nextToken", &request.next_token, &PAGINATION_TOKEN);
    if let Some(max_results) = request.max_results {
        checks.range("maxResults", max_results, 1, 100);
    }
    if let Some(names) = &request.project_names {
        checks.list("projectNames", names, 1, 10, &NAME);
    }
    if let Some(features) = &request.features {
        checks.count("features", features, 1, 2);
        for feature in features {
            checks.one_of("features.member", feature, FEATURES);
        }
    }
    checks.finish()?;

    let after = request
        .next_token
        .as_deref()
        .map(|token| decode_token(Listing::Projects, token))
        .transpose()?;
    let matching: Vec<&Project> = store
        .projects_in(&context.caller.account_id, &context.caller.region)
        .filter(|project| {
            request
                .project_names
                .as_ref()
                .is_none_or(|names| names.contains(&project.arn.key.name))
        })
        .filter(|project| {
            request
                .features
                .as_ref()
                .is_none_or(|features| features.contains(&project.feature))
        })
        .collect();
    let max_results = request.max_results.unwrap_or(DEFAULT_MAX_RESULTS) as usize;
    let (page, next) = newest_first(matching, |project| project.page_key(), after, max_results);

    let descriptions: Vec<Value> = page.into_iter().map(describe).collect();
    let mut output = json!({ "ProjectDescriptions": descriptions });
    if let Some(next) = next {
        output["NextToken"] = json!(encode_token(Listing::Projects, next));
    }
    Ok(output)
}

fn describe(project: &Project) -> Value {
    json!({
        "ProjectArn": project.arn.to_string(),
        "CreationTimestamp": epoch_seconds(project.arn.created_millis),
        "Status": "CREATED",
        "Feature": project.feature,
        "AutoUpdate": project.auto_update,
    })
}
