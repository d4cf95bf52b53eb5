//! `CopyProjectVersion`: starts a copy of a model version into a destination project.
//!
//! The rules, in the order they are applied: the caller must own the destination project (cross-account copies
//! are allowed for now — project policies are a later issue); source and destination must be in the same region;
//! the destination project, the source project and the source version (within the source project) must exist; the
//! version name must be free in the destination. The new version is `COPYING_IN_PROGRESS` for the configured copy
//! duration, then `COPYING_COMPLETED` — or `COPYING_FAILED` when its name starts with the failure prefix.

use serde::Deserialize;
use serde_json::{json, Value};

use super::Context;
use crate::simulator::arn::{ProjectArn, ProjectVersionArn};
use crate::simulator::error::ApiError;
use crate::simulator::lifecycle::{CopyOutcome, Lifecycle};
use crate::simulator::protocol::parse_body;
use crate::simulator::state::{OutputConfig, Store, Tags, Version};
use crate::simulator::validate::{
    Checks, KMS_KEY_ID, NAME, PROJECT_ARN, PROJECT_VERSION_ARN, S3_BUCKET, S3_KEY_PREFIX,
};

pub const KEY_MEMBERS: &[&str] = &[
    "SourceProjectArn",
    "SourceProjectVersionArn",
    "DestinationProjectArn",
    "VersionName",
];

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Request {
    source_project_arn: Option<String>,
    source_project_version_arn: Option<String>,
    destination_project_arn: Option<String>,
    version_name: Option<String>,
    output_config: Option<OutputConfig>,
    tags: Option<Tags>,
    kms_key_id: Option<String>,
}

/// A request that passed the model's constraints.
struct Checked {
    source_project: ProjectArn,
    source_version: ProjectVersionArn,
    destination_project: ProjectArn,
    version_name: String,
    output_config: OutputConfig,
    kms_key_id: Option<String>,
}

pub fn run(store: &mut Store, context: &Context, body: &[u8]) -> Result<Value, ApiError> {
    let request = check(parse_body(body)?)?;
    let caller = context.caller;
    let destination = &request.destination_project;

    if destination.key.account_id != caller.account_id {
        return Err(ApiError::access_denied(
            &caller.account_id,
            "CopyProjectVersion",
            &destination.to_string(),
        ));
    }
    if request.source_project.key.region != destination.key.region {
        return Err(ApiError::invalid_parameter(format!(
            "The source project ({}) and the destination project ({}) must be in the same AWS Region.",
            request.source_project.key.region, destination.key.region
        )));
    }
    if destination.key.region != caller.region {
        return Err(ApiError::not_found(format!(
            "The destination project {destination} is not in the region called ({}).",
            caller.region
        )));
    }
    let destination_project = store.project(destination).ok_or_else(|| {
        ApiError::not_found(format!(
            "The destination project {destination} does not exist."
        ))
    })?;
    let source_project = store.project(&request.source_project).ok_or_else(|| {
        ApiError::not_found(format!(
            "The source project {} does not exist.",
            request.source_project
        ))
    })?;
    source_project
        .version(&request.source_version)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "The source model version {} does not exist in project {}.",
                request.source_version, request.source_project
            ))
        })?;
    if destination_project
        .version_named(&request.version_name)
        .is_some()
    {
        return Err(ApiError::in_use(format!(
            "A model version named {} already exists in project {destination}.",
            request.version_name
        )));
    }

    let arn = ProjectVersionArn::new(
        destination.key.clone(),
        request.version_name.clone(),
        context.now_millis,
    );
    let outcome = if context.copy.fails(&request.version_name) {
        CopyOutcome::Fails {
            message: format!(
                "The model version copy failed: the simulator fails copies to version names starting with {:?}.",
                context.copy.fail_version_prefix.as_deref().unwrap_or_default()
            ),
        }
    } else {
        CopyOutcome::Completes
    };
    let version = Version {
        arn: arn.clone(),
        seq: store.next_seq(),
        lifecycle: Lifecycle::Copy {
            done_at_millis: context
                .now_millis
                .saturating_add(context.copy.duration_millis),
            outcome,
        },
        source_version_arn: Some(request.source_version.to_string()),
        output_config: Some(request.output_config),
        kms_key_id: request.kms_key_id,
    };
    store
        .project_mut(destination)
        .expect("the destination project was found above under the same lock")
        .versions
        .push(version);
    Ok(json!({ "ProjectVersionArn": arn.to_string() }))
}

fn check(request: Request) -> Result<Checked, ApiError> {
    let mut checks = Checks::new();
    let arns = [
        (
            "sourceProjectArn",
            &request.source_project_arn,
            &PROJECT_ARN,
        ),
        (
            "sourceProjectVersionArn",
            &request.source_project_version_arn,
            &PROJECT_VERSION_ARN,
        ),
        (
            "destinationProjectArn",
            &request.destination_project_arn,
            &PROJECT_ARN,
        ),
        ("versionName", &request.version_name, &NAME),
    ];
    for (path, value, shape) in arns {
        if let Some(value) = checks.required(path, value) {
            checks.string(path, value, shape);
        }
    }
    if let Some(output) = checks.required("outputConfig", &request.output_config) {
        checks.optional_string("outputConfig.s3Bucket", &output.s3_bucket, &S3_BUCKET);
        checks.optional_string(
            "outputConfig.s3KeyPrefix",
            &output.s3_key_prefix,
            &S3_KEY_PREFIX,
        );
    }
    checks.optional_string("kmsKeyId", &request.kms_key_id, &KMS_KEY_ID);
    checks.tags("tags", &request.tags);
    checks.finish()?;

    // The constraints above include the ARN grammars, so these parse.
    let project_arn =
        |text: Option<String>| ProjectArn::parse(&text.unwrap_or_default()).map_err(invalid);
    Ok(Checked {
        source_project: project_arn(request.source_project_arn)?,
        source_version: ProjectVersionArn::parse(
            &request.source_project_version_arn.unwrap_or_default(),
        )
        .map_err(invalid)?,
        destination_project: project_arn(request.destination_project_arn)?,
        version_name: request.version_name.unwrap_or_default(),
        output_config: request.output_config.unwrap_or_default(),
        kms_key_id: request.kms_key_id,
    })
}

fn invalid(err: crate::simulator::arn::ArnError) -> ApiError {
    ApiError::validation(err.to_string())
}
