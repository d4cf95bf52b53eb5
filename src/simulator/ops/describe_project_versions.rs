//! `DescribeProjectVersions`: a project's model versions, newest first, paginated, with their current status.
//!
//! This is what a client polls to follow a copy, so each status is computed from the clock at the time of the call.

use serde::Deserialize;
use serde_json::{json, Value};

use super::Context;
use crate::simulator::arn::ProjectArn;
use crate::simulator::error::ApiError;
use crate::simulator::pagination::{decode_token, encode_token, take_page, Listing};
use crate::simulator::protocol::{epoch_seconds, parse_body};
use crate::simulator::state::{Project, Store, Version};
use crate::simulator::validate::{Checks, NAME, PAGINATION_TOKEN, PROJECT_ARN};

pub const KEY_MEMBERS: &[&str] = &["ProjectArn", "VersionNames", "NextToken", "MaxResults"];

const DEFAULT_MAX_RESULTS: i64 = 100;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Request {
    project_arn: Option<String>,
    version_names: Option<Vec<String>>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

pub fn run(store: &mut Store, context: &Context, body: &[u8]) -> Result<Value, ApiError> {
    let request: Request = parse_body(body)?;
    let mut checks = Checks::new();
    if let Some(arn) = checks.required("projectArn", &request.project_arn) {
        checks.string("projectArn", arn, &PROJECT_ARN);
    }
    if let Some(names) = &request.version_names {
        checks.list("versionNames", names, 1, 10, &NAME);
    }
    checks.optional_string("nextToken", &request.next_token, &PAGINATION_TOKEN);
    if let Some(max_results) = request.max_results {
        checks.range("maxResults", max_results, 1, 100);
    }
    checks.finish()?;

    let arn = ProjectArn::parse(request.project_arn.as_deref().unwrap_or_default())
        .map_err(|err| ApiError::validation(err.to_string()))?;
    let caller = context.caller;
    if arn.key.account_id != caller.account_id {
        return Err(ApiError::access_denied(&caller.account_id, "DescribeProjectVersions", &arn.to_string()));
    }
    let project = store
        .project(&arn)
        .filter(|_| arn.key.region == caller.region)
        .ok_or_else(|| ApiError::not_found(format!("The project {arn} does not exist.")))?;
    let after = request.next_token.as_deref().map(|token| decode_token(Listing::ProjectVersions, token)).transpose()?;

    let max_results = request.max_results.unwrap_or(DEFAULT_MAX_RESULTS) as usize;
    let (page, next) = match &request.version_names {
        // At most ten names: look each up rather than walk the project's versions.
        Some(names) => {
            let mut named: Vec<&Version> = names
                .iter()
                .filter_map(|name| project.version_named(name))
                .filter(|version| after.is_none_or(|after| version.page_key() < after))
                .collect();
            named.sort_by_key(|version| std::cmp::Reverse(version.page_key()));
            named.dedup_by_key(|version| version.seq);
            take_page(named.into_iter(), |version| version.page_key(), max_results)
        }
        None => take_page(project.versions.newest_first(after), |version| version.page_key(), max_results),
    };

    let descriptions: Vec<Value> =
        page.into_iter().map(|version| describe(project, version, context.now_millis)).collect();
    let mut output = json!({ "ProjectVersionDescriptions": descriptions });
    if let Some(next) = next {
        output["NextToken"] = json!(encode_token(Listing::ProjectVersions, next));
    }
    Ok(output)
}

fn describe(project: &Project, version: &Version, now_millis: i64) -> Value {
    let (status, message) = version.lifecycle.status_at(now_millis);
    let mut description = json!({
        "ProjectVersionArn": version.arn.to_string(),
        "CreationTimestamp": epoch_seconds(version.arn.created_millis),
        "Status": status.as_str(),
        "Feature": project.feature,
    });
    let optional = [
        ("StatusMessage", message.map(Value::from)),
        ("SourceProjectVersionArn", version.source_version_arn.clone().map(Value::from)),
        ("OutputConfig", version.output_config.as_ref().map(|config| json!(config))),
        ("KmsKeyId", version.kms_key_id.clone().map(Value::from)),
    ];
    for (member, value) in optional {
        if let Some(value) = value {
            description[member] = value;
        }
    }
    description
}
