//! `DescribeProjects`: the caller's projects in the caller's region, newest first, paginated.

use serde::Deserialize;
use serde_json::{json, Value};

use super::create_project::FEATURES;
use super::Context;
use crate::simulator::arn::ProjectKey;
use crate::simulator::error::ApiError;
use crate::simulator::pagination::{decode_token, encode_token, take_page, Listing};
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

    let after = request.next_token.as_deref().map(|token| decode_token(Listing::Projects, token)).transpose()?;
    let caller = context.caller;
    let wanted_feature =
        |project: &&Project| request.features.as_ref().is_none_or(|features| features.contains(&project.feature));
    let max_results = request.max_results.unwrap_or(DEFAULT_MAX_RESULTS) as usize;
    let (page, next) = match &request.project_names {
        // At most ten names: look each up rather than walk the account's projects.
        Some(names) => {
            let mut named: Vec<&Project> = names
                .iter()
                .filter_map(|name| {
                    store.project_named(&ProjectKey {
                        account_id: caller.account_id.clone(),
                        region: caller.region.clone(),
                        name: name.clone(),
                    })
                })
                .filter(|project| after.is_none_or(|after| project.page_key() < after))
                .filter(wanted_feature)
                .collect();
            named.sort_by_key(|project| std::cmp::Reverse(project.page_key()));
            named.dedup_by_key(|project| project.seq);
            take_page(named.into_iter(), |project| project.page_key(), max_results)
        }
        None => take_page(
            store.projects_in(&caller.account_id, &caller.region, after).filter(wanted_feature),
            |project| project.page_key(),
            max_results,
        ),
    };

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
