//! DescribeProjectVersions: where a copy stands. There is no waiter for copies in any SDK, so copies are followed
//! by describing them until COPYING_COMPLETED or COPYING_FAILED.

use aws_sdk_rekognition::types::ProjectVersionDescription;
use aws_sdk_rekognition::Client;
use tracing::warn;

use super::AwsCallError;
use crate::domain::{ProjectArn, ProjectVersionArn, ProjectVersionStatus, VersionName};

/// Rekognition's view of one model version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionStatus {
    pub version_arn: ProjectVersionArn,
    /// `None` when Rekognition named no status.
    pub status: Option<ProjectVersionStatus>,
    pub message: Option<String>,
    /// The version it was copied from, for a copy.
    pub source_version_arn: Option<ProjectVersionArn>,
}

impl VersionStatus {
    /// Reads one description; `None` (and a warning) when its version ARN is missing or not a version ARN, since
    /// such a version cannot be matched to any copy.
    fn read(description: &ProjectVersionDescription) -> Option<VersionStatus> {
        let arn = description.project_version_arn().unwrap_or_default();
        let version_arn = ProjectVersionArn::parse(arn)
            .map_err(|err| warn!(arn, %err, "DescribeProjectVersions listed a version without a usable ARN"))
            .ok()?;
        Some(VersionStatus {
            version_arn,
            status: description.status().cloned(),
            message: description.status_message().map(str::to_owned),
            source_version_arn: description.source_project_version_arn().and_then(|a| ProjectVersionArn::parse(a).ok()),
        })
    }

    pub fn version_name(&self) -> &str {
        self.version_arn.version_name()
    }
}

/// Describes the named versions (at most 10, Rekognition's limit per call) of `project`, in one call: ten
/// versions fit one page, so no NextToken is ever followed (every call must pass the caller's rate limit).
pub async fn describe_versions(
    client: &Client,
    project: &ProjectArn,
    version_names: &[&VersionName],
) -> Result<Vec<VersionStatus>, AwsCallError> {
    debug_assert!(!version_names.is_empty() && version_names.len() <= 10);
    let mut call = client.describe_project_versions().project_arn(project.as_str());
    for name in version_names {
        call = call.version_names(name.as_str());
    }
    let page = call.send().await?;
    Ok(page.project_version_descriptions().iter().filter_map(VersionStatus::read).collect())
}

/// The newest versions of `project`, as one page of DescribeProjectVersions without version names.
#[derive(Debug, Clone)]
pub struct Newest {
    pub versions: Vec<VersionStatus>,
    /// Older versions exist beyond this page: a version not on it may be one of them.
    pub more: bool,
}

/// Versions listed per call when a project is listed: Rekognition's largest page.
pub const NEWEST_PAGE: usize = 100;

/// Lists the newest [`NEWEST_PAGE`] versions of `project` (Rekognition lists newest first) in one call: when many
/// copies into one project run at once, one call sees them all, where naming them takes a call per ten.
pub async fn describe_newest(client: &Client, project: &ProjectArn) -> Result<Newest, AwsCallError> {
    let page =
        client.describe_project_versions().project_arn(project.as_str()).max_results(NEWEST_PAGE as i32).send().await?;
    Ok(Newest {
        versions: page.project_version_descriptions().iter().filter_map(VersionStatus::read).collect(),
        more: page.next_token().is_some_and(|token| !token.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_description_is_read_into_domain_types() {
        let description = ProjectVersionDescription::builder()
            .project_version_arn("arn:aws:rekognition:us-east-1:111111111111:project/p/version/v.2-x/1700000000000")
            .status(ProjectVersionStatus::CopyingCompleted)
            .build();
        let status = VersionStatus::read(&description).unwrap();
        assert_eq!(status.version_name(), "v.2-x");
        assert_eq!(status.status, Some(ProjectVersionStatus::CopyingCompleted));
    }

    #[test]
    fn a_description_without_a_version_arn_is_skipped() {
        let description = ProjectVersionDescription::builder().status(ProjectVersionStatus::CopyingFailed).build();
        assert_eq!(VersionStatus::read(&description), None);
    }
}
