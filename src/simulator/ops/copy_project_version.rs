//! `CopyProjectVersion`: starts a copy of a model version into a destination project.
//!
//! The rules, in the order they are applied: the caller must own the destination project; source and destination
//! must be in the same region (`InvalidParameterException`); the destination project, the source project and the
//! source version (within the source project) must exist (`ResourceNotFoundException`); the source project's
//! policies must not deny the caller and, when the source is another account's, must allow it
//! (`AccessDeniedException`); the version name must be free in the destination (`ResourceInUseException`); the
//! destination account must be under its quota of copies in progress (`LimitExceededException`).
//!
//! The new version is `COPYING_IN_PROGRESS` for a duration drawn from the configuration, then `COPYING_COMPLETED`
//! or `COPYING_FAILED` as drawn (see [`CopyBehaviour::plan`](crate::simulator::config::CopyBehaviour::plan)).

use serde::Deserialize;
use serde_json::json;

use super::{Context, Output};
use crate::simulator::arn::{ProjectArn, ProjectVersionArn};
use crate::simulator::error::{ApiError, ErrorCode};
use crate::simulator::lifecycle::{CopyOutcome, Lifecycle};
use crate::simulator::observe::PlannedCopy;
use crate::simulator::policy::{evaluate, Verdict, COPY_ACTION};
use crate::simulator::protocol::parse_body;
use crate::simulator::state::{OutputConfig, Store, Tags, Version};
use crate::simulator::validate::{
    Checks, KMS_KEY_ID, NAME, PROJECT_ARN, PROJECT_VERSION_ARN, S3_BUCKET, S3_KEY_PREFIX,
};

pub const KEY_MEMBERS: &[&str] =
    &["SourceProjectArn", "SourceProjectVersionArn", "DestinationProjectArn", "VersionName"];

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

pub fn run(store: &mut Store, context: &Context, body: &[u8]) -> Result<Output, ApiError> {
    let request = check(parse_body(body)?)?;
    let caller = context.caller;
    let destination = &request.destination_project;

    if destination.key.account_id != caller.account_id {
        return Err(ApiError::access_denied(&caller.account_id, "CopyProjectVersion", &destination.to_string()));
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
    let destination_project = store
        .project(destination)
        .ok_or_else(|| ApiError::not_found(format!("The destination project {destination} does not exist.")))?;
    let source_project = store
        .project(&request.source_project)
        .ok_or_else(|| ApiError::not_found(format!("The source project {} does not exist.", request.source_project)))?;
    source_project.version(&request.source_version).ok_or_else(|| {
        ApiError::not_found(format!(
            "The source model version {} does not exist in project {}.",
            request.source_version, request.source_project
        ))
    })?;
    let source_version = request.source_version.to_string();
    let refuse = |reason: &str| {
        ApiError::access_denied_because(&caller.account_id, "CopyProjectVersion", &source_version, reason)
    };
    let same_account = request.source_project.key.account_id == caller.account_id;
    match evaluate(source_project.policy_documents(), &caller.account_id, &source_version) {
        Verdict::ExplicitDeny => {
            return Err(refuse(&format!(
                "with an explicit deny in a resource-based policy (a project policy of {})",
                request.source_project
            )))
        }
        Verdict::NotAllowed if !same_account && context.copy.require_project_policy => {
            return Err(refuse(&format!(
                "because no resource-based policy allows the {COPY_ACTION} action (attach a project policy to {} \
                 with PutProjectPolicy)",
                request.source_project
            )))
        }
        Verdict::Allowed | Verdict::NotAllowed => {}
    }
    if destination_project.version_named(&request.version_name).is_some() {
        return Err(ApiError::in_use(format!(
            "A model version named {} already exists in project {destination}.",
            request.version_name
        )));
    }
    if let Some(max) = context.max_copies_in_progress {
        let in_progress = store.copies_in_progress(&caller.account_id, context.now_millis);
        if in_progress >= max as usize {
            return Err(ApiError::new(
                ErrorCode::LimitExceeded,
                format!(
                    "An Amazon Rekognition service limit was exceeded: account {} already has {in_progress} model \
                     version copies in progress (limit {max}).",
                    caller.account_id
                ),
            ));
        }
    }

    let arn = ProjectVersionArn::new(destination.key.clone(), request.version_name.clone(), context.now_millis);
    let (duration, outcome) = context.copy.plan(destination, &request.version_name);
    let duration_millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    let done_at_millis = context.now_millis.saturating_add(i64::try_from(duration_millis).unwrap_or(i64::MAX));
    let planned = PlannedCopy {
        version_arn: arn.to_string(),
        duration_millis,
        final_status: match outcome {
            CopyOutcome::Completes => "COPYING_COMPLETED",
            CopyOutcome::Fails { .. } => "COPYING_FAILED",
        }
        .to_owned(),
    };
    let version = Version {
        arn: arn.clone(),
        seq: store.next_seq(),
        lifecycle: Lifecycle::Copy { done_at_millis, outcome },
        source_version_arn: Some(source_version),
        output_config: Some(request.output_config),
        kms_key_id: request.kms_key_id,
    };
    store
        .project_mut(destination)
        .expect("the destination project was found above under the same lock")
        .versions
        .insert(version);
    store.copy_started(&caller.account_id, context.now_millis, done_at_millis);
    Ok(Output { body: json!({ "ProjectVersionArn": arn.to_string() }), copy: Some(planned) })
}

fn check(request: Request) -> Result<Checked, ApiError> {
    let mut checks = Checks::new();
    let arns = [
        ("sourceProjectArn", &request.source_project_arn, &PROJECT_ARN),
        ("sourceProjectVersionArn", &request.source_project_version_arn, &PROJECT_VERSION_ARN),
        ("destinationProjectArn", &request.destination_project_arn, &PROJECT_ARN),
        ("versionName", &request.version_name, &NAME),
    ];
    for (path, value, shape) in arns {
        if let Some(value) = checks.required(path, value) {
            checks.string(path, value, shape);
        }
    }
    if let Some(output) = checks.required("outputConfig", &request.output_config) {
        checks.optional_string("outputConfig.s3Bucket", &output.s3_bucket, &S3_BUCKET);
        checks.optional_string("outputConfig.s3KeyPrefix", &output.s3_key_prefix, &S3_KEY_PREFIX);
    }
    checks.optional_string("kmsKeyId", &request.kms_key_id, &KMS_KEY_ID);
    checks.tags("tags", &request.tags);
    checks.finish()?;

    // The constraints above include the ARN grammars, so these parse.
    let project_arn = |text: Option<String>| ProjectArn::parse(&text.unwrap_or_default()).map_err(invalid);
    Ok(Checked {
        source_project: project_arn(request.source_project_arn)?,
        source_version: ProjectVersionArn::parse(&request.source_project_version_arn.unwrap_or_default())
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
