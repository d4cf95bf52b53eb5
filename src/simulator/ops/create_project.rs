//! `CreateProject`: a new, empty project in the caller's account and region.

use serde::Deserialize;
use serde_json::{json, Value};

use super::Context;
use crate::simulator::arn::{ProjectArn, ProjectKey};
use crate::simulator::error::ApiError;
use crate::simulator::protocol::parse_body;
use crate::simulator::state::{Project, Store, Tags, Versions};
use crate::simulator::validate::{Checks, NAME};

pub const KEY_MEMBERS: &[&str] = &["ProjectName"];

pub const FEATURES: &[&str] = &["CONTENT_MODERATION", "CUSTOM_LABELS"];
const AUTO_UPDATE: &[&str] = &["ENABLED", "DISABLED"];

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Request {
    project_name: Option<String>,
    feature: Option<String>,
    auto_update: Option<String>,
    tags: Option<Tags>,
}

pub fn run(store: &mut Store, context: &Context, body: &[u8]) -> Result<Value, ApiError> {
    let request: Request = parse_body(body)?;
    let mut checks = Checks::new();
    if let Some(name) = checks.required("projectName", &request.project_name) {
        checks.string("projectName", name, &NAME);
    }
    if let Some(feature) = &request.feature {
        checks.one_of("feature", feature, FEATURES);
    }
    if let Some(auto_update) = &request.auto_update {
        checks.one_of("autoUpdate", auto_update, AUTO_UPDATE);
    }
    checks.tags("tags", &request.tags);
    checks.finish()?;

    let key = ProjectKey {
        account_id: context.caller.account_id.clone(),
        region: context.caller.region.clone(),
        name: request.project_name.unwrap_or_default(),
    };
    if store.project_named(&key).is_some() {
        return Err(ApiError::in_use(format!("A project named {} already exists.", key.name)));
    }
    let arn = ProjectArn::new(key, context.now_millis);
    let seq = store.next_seq();
    store.insert_project(Project {
        arn: arn.clone(),
        seq,
        feature: request.feature.unwrap_or_else(|| "CUSTOM_LABELS".to_owned()),
        auto_update: request.auto_update.unwrap_or_else(|| "DISABLED".to_owned()),
        versions: Versions::default(),
        policies: Default::default(),
    });
    Ok(json!({ "ProjectArn": arn.to_string() }))
}
