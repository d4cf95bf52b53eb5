//! DeleteProjectVersion: removes a copied model version once its copy's `delete_after` has passed.

use aws_sdk_rekognition::Client;

use super::AwsCallError;
use crate::domain::{ProjectVersionArn, ProjectVersionStatus};

/// What Rekognition answered a deletion it accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deleted {
    /// Accepted: the version's status now (`DELETING`; Rekognition removes it shortly after).
    Accepted(Option<ProjectVersionStatus>),
    /// The version was gone already (ResourceNotFoundException): whoever deleted it, it is deleted.
    AlreadyGone,
}

/// The error code Rekognition answers for a version that does not exist.
const NOT_FOUND: &str = "ResourceNotFoundException";

/// Deletes `version`. A refusal (a running model: `ResourceInUseException`; no permission) is the caller's to
/// report; this never stops a model.
pub async fn delete_version(client: &Client, version: &ProjectVersionArn) -> Result<Deleted, AwsCallError> {
    match client.delete_project_version().project_version_arn(version.as_str()).send().await {
        Ok(answer) => Ok(Deleted::Accepted(answer.status().cloned())),
        Err(err) => {
            let err = AwsCallError::from(err);
            if err.code == NOT_FOUND {
                Ok(Deleted::AlreadyGone)
            } else {
                Err(err)
            }
        }
    }
}
