//! What PutProjectPolicy and DeleteProjectPolicy both name: a project of the caller's, a policy name, and
//! optionally the revision the caller believes is current (optimistic concurrency, as AWS describes it).

use crate::simulator::arn::ProjectArn;
use crate::simulator::error::{ApiError, ErrorCode};
use crate::simulator::state::Policy;
use crate::simulator::validate::{Checks, POLICY_NAME, POLICY_REVISION_ID, PROJECT_ARN};

pub struct PolicyTarget {
    pub project: ProjectArn,
    pub name: String,
    pub revision: Option<String>,
}

impl PolicyTarget {
    /// Adds the three members' violations to `checks`; call [`PolicyTarget::parse`] once `checks` passed.
    pub fn check(
        checks: &mut Checks,
        project_arn: &Option<String>,
        policy_name: &Option<String>,
        revision: &Option<String>,
    ) {
        if let Some(arn) = checks.required("projectArn", project_arn) {
            checks.string("projectArn", arn, &PROJECT_ARN);
        }
        if let Some(name) = checks.required("policyName", policy_name) {
            checks.string("policyName", name, &POLICY_NAME);
        }
        checks.optional_string("policyRevisionId", revision, &POLICY_REVISION_ID);
    }

    /// The checked members as a target.
    pub fn parse(
        project_arn: Option<String>,
        policy_name: Option<String>,
        revision: Option<String>,
    ) -> Result<PolicyTarget, ApiError> {
        let project = ProjectArn::parse(project_arn.as_deref().unwrap_or_default())
            .map_err(|err| ApiError::validation(err.to_string()))?;
        Ok(PolicyTarget { project, name: policy_name.unwrap_or_default(), revision })
    }

    /// `InvalidPolicyRevisionIdException` when the caller named a revision and `current` is at another.
    pub fn expect_revision(&self, current: &Policy) -> Result<(), ApiError> {
        match &self.revision {
            Some(revision) if *revision != current.revision_id => Err(ApiError::new(
                ErrorCode::InvalidPolicyRevisionId,
                format!(
                    "The revision id {revision} is not the current revision of policy {} ({}).",
                    self.name, current.revision_id
                ),
            )),
            _ => Ok(()),
        }
    }
}
