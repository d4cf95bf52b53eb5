//! DescribeProjects and ListProjectPolicies: what preflight asks of a project before a copy is queued.

use aws_sdk_rekognition::Client;

use super::AwsCallError;
use crate::domain::ProjectArn;

/// Whether `project` exists, as its own account sees it (DescribeProjects filtered by its name).
pub async fn project_exists(client: &Client, project: &ProjectArn) -> Result<bool, AwsCallError> {
    let page = client.describe_projects().project_names(project.project_name()).send().await?;
    Ok(page.project_descriptions().iter().any(|p| p.project_arn() == Some(project.as_str())))
}

/// The policy documents attached to `project` (at most five, Rekognition's limit, so one page).
pub async fn project_policies(client: &Client, project: &ProjectArn) -> Result<Vec<String>, AwsCallError> {
    let page = client.list_project_policies().project_arn(project.as_str()).max_results(5).send().await?;
    Ok(page.project_policies().iter().filter_map(|p| p.policy_document().map(str::to_owned)).collect())
}
