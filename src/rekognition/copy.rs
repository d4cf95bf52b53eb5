//! CopyProjectVersion: asks Rekognition to start copying one model version.

use aws_sdk_rekognition::types::OutputConfig;
use aws_sdk_rekognition::Client;

use super::AwsCallError;
use crate::domain::{CopyRequest, ProjectVersionArn};

/// Starts the copy `request` describes; answers the new version's ProjectVersionArn.
pub async fn start_copy(client: &Client, request: &CopyRequest) -> Result<ProjectVersionArn, AwsCallError> {
    let output = request.output_config();
    let prefix = output.key_prefix();
    let output = OutputConfig::builder()
        .s3_bucket(output.bucket().as_str())
        .set_s3_key_prefix((!prefix.is_empty()).then(|| prefix.as_str().to_owned()));
    let tags = (!request.tags().is_empty()).then(|| request.tags().to_string_map().into_iter().collect());
    let answer = client
        .copy_project_version()
        .source_project_arn(request.source_project().as_str())
        .source_project_version_arn(request.source_version().as_str())
        .destination_project_arn(request.destination_project().as_str())
        .version_name(request.version_name().as_str())
        .output_config(output.build())
        .set_tags(tags)
        .set_kms_key_id(request.kms_key_id().map(|k| k.as_str().to_owned()))
        .send()
        .await?;
    let arn = answer.project_version_arn().ok_or_else(|| AwsCallError {
        code: "MissingProjectVersionArn".into(),
        message: "CopyProjectVersion answered without a ProjectVersionArn".into(),
        retry: super::Retry::Transient,
    })?;
    ProjectVersionArn::parse(arn).map_err(|err| AwsCallError {
        code: "MalformedProjectVersionArn".into(),
        message: format!("CopyProjectVersion answered a ProjectVersionArn that {err}: {arn:?}"),
        retry: super::Retry::Transient,
    })
}
