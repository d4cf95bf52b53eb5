//! `DeleteProjectVersion`: removes a model version from the caller's project.
//!
//! AWS refuses to delete a model that is running or training (`ResourceInUseException`) and says nothing about a
//! copy in progress; the simulator refuses that too, since the copy is still writing the version. AWS answers
//! `DELETING` and removes the version later; the simulator removes it at once (so its name is free again right
//! away) and answers `DELETING`.

use serde::Deserialize;
use serde_json::{json, Value};

use super::Context;
use crate::simulator::arn::ProjectVersionArn;
use crate::simulator::error::ApiError;
use crate::simulator::lifecycle::VersionStatus;
use crate::simulator::protocol::parse_body;
use crate::simulator::state::Store;
use crate::simulator::validate::{Checks, PROJECT_VERSION_ARN};

pub const KEY_MEMBERS: &[&str] = &["ProjectVersionArn"];

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Request {
    project_version_arn: Option<String>,
}

pub fn run(store: &mut Store, context: &Context, body: &[u8]) -> Result<Value, ApiError> {
    let request: Request = parse_body(body)?;
    let mut checks = Checks::new();
    if let Some(arn) = checks.required("projectVersionArn", &request.project_version_arn) {
        checks.string("projectVersionArn", arn, &PROJECT_VERSION_ARN);
    }
    checks.finish()?;
    let arn = ProjectVersionArn::parse(request.project_version_arn.as_deref().unwrap_or_default())
        .map_err(|err| ApiError::validation(err.to_string()))?;

    let caller = context.caller;
    if arn.project.account_id != caller.account_id {
        return Err(ApiError::access_denied(&caller.account_id, "DeleteProjectVersion", &arn.to_string()));
    }
    let not_found = || ApiError::not_found(format!("The model version {arn} does not exist."));
    if arn.project.region != caller.region {
        return Err(not_found());
    }
    let project = store.project_named_mut(&arn.project).ok_or_else(not_found)?;
    let version = project.version(&arn).ok_or_else(not_found)?;
    let (status, _) = version.lifecycle.status_at(context.now_millis);
    let busy = matches!(
        status,
        VersionStatus::CopyingInProgress
            | VersionStatus::TrainingInProgress
            | VersionStatus::Starting
            | VersionStatus::Running
            | VersionStatus::Stopping
    );
    if busy {
        return Err(ApiError::in_use(format!(
            "The model version {arn} cannot be deleted while its status is {}.",
            status.as_str()
        )));
    }
    project.versions.remove(&arn.version_name);
    Ok(json!({ "Status": VersionStatus::Deleting.as_str() }))
}
