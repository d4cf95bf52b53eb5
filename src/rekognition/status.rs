//! DescribeProjectVersions: where a copy stands. There is no waiter for copies in any SDK, so copies are followed
//! by describing them until COPYING_COMPLETED or COPYING_FAILED.

use aws_sdk_rekognition::Client;

use super::AwsCallError;

/// Rekognition's view of one model version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionStatus {
    pub version_arn: String,
    /// The ProjectVersionStatus, e.g. COPYING_IN_PROGRESS.
    pub status: String,
    pub message: Option<String>,
    pub source_version_arn: Option<String>,
}

pub const COPYING_COMPLETED: &str = "COPYING_COMPLETED";
pub const COPYING_FAILED: &str = "COPYING_FAILED";

impl VersionStatus {
    /// The version's name, read from its ARN (`…:project/<p>/version/<name>/<timestamp>`).
    pub fn version_name(&self) -> Option<&str> {
        let (_, rest) = self.version_arn.rsplit_once("/version/")?;
        Some(rest.rsplit_once('/')?.0)
    }
}

/// Describes the named versions (at most 10, Rekognition's limit per call) of `project_arn`, in one call: ten
/// versions fit one page, so no NextToken is ever followed (every call must pass the caller's rate limit).
pub async fn describe_versions(
    client: &Client,
    project_arn: &str,
    version_names: &[&str],
) -> Result<Vec<VersionStatus>, AwsCallError> {
    debug_assert!(!version_names.is_empty() && version_names.len() <= 10);
    let mut call = client.describe_project_versions().project_arn(project_arn);
    for name in version_names {
        call = call.version_names(*name);
    }
    let page = call.send().await?;
    Ok(page
        .project_version_descriptions()
        .iter()
        .map(|d| VersionStatus {
            version_arn: d.project_version_arn().unwrap_or_default().to_owned(),
            status: d.status().map(|s| s.as_str().to_owned()).unwrap_or_default(),
            message: d.status_message().map(str::to_owned),
            source_version_arn: d.source_project_version_arn().map(str::to_owned),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_name_comes_from_the_arn() {
        let status = VersionStatus {
            version_arn: "arn:aws:rekognition:us-east-1:111111111111:project/p/version/v.2-x/1700000000000".into(),
            status: "COPYING_COMPLETED".into(),
            message: None,
            source_version_arn: None,
        };
        assert_eq!(status.version_name(), Some("v.2-x"));
    }
}
