//! CopyProjectVersion: asks Rekognition to start copying one model version.

use aws_sdk_rekognition::types::OutputConfig;
use aws_sdk_rekognition::Client;

use super::AwsCallError;
use crate::store::CopyJob;

/// Starts the copy described by `job`; answers the new version's ProjectVersionArn.
pub async fn start_copy(client: &Client, job: &CopyJob) -> Result<String, AwsCallError> {
    let output = OutputConfig::builder().s3_bucket(&job.s3_bucket);
    let output = if job.s3_key_prefix.is_empty() { output } else { output.s3_key_prefix(&job.s3_key_prefix) };
    let tags = (!job.tags.0.is_empty()).then(|| job.tags.0.clone().into_iter().collect());
    let answer = client
        .copy_project_version()
        .source_project_arn(&job.source_project_arn)
        .source_project_version_arn(&job.source_project_version_arn)
        .destination_project_arn(&job.destination_project_arn)
        .version_name(&job.version_name)
        .output_config(output.build())
        .set_tags(tags)
        .set_kms_key_id(job.kms_key_id.clone())
        .send()
        .await?;
    answer.project_version_arn().map(str::to_owned).ok_or_else(|| AwsCallError {
        code: "MissingProjectVersionArn".into(),
        message: "CopyProjectVersion answered without a ProjectVersionArn".into(),
        retry: super::Retry::Transient { ambiguous: true },
    })
}
