//! Project and model-version ARNs, parsed once at the edge.
//!
//! Every rule the simulator applies (who owns a project, which region it lives in, whether a version belongs to a
//! project) is read off an ARN, so the ARN is parsed into its parts exactly once and the parts are compared, never
//! substrings. The grammar is botocore's `ProjectArn` / `ProjectVersionArn` patterns:
//! `arn:<partition>:rekognition:<region>:<12 digits>:project/<name>/<millis>` and
//! `arn:<partition>:rekognition:<region>:<12 digits>:project/<name>/version/<version>/<millis>`.

use std::fmt;

/// Why a string is not a Rekognition project or version ARN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a Rekognition {expected} ARN: {reason}")]
pub struct ArnError {
    expected: &'static str,
    reason: &'static str,
}

/// Where a project lives and what it is called: the identity of a project, without its creation time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProjectKey {
    pub account_id: String,
    pub region: String,
    pub name: String,
}

/// `arn:aws:rekognition:<region>:<account>:project/<name>/<created millis>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectArn {
    pub partition: String,
    pub key: ProjectKey,
    pub created_millis: i64,
}

/// `arn:aws:rekognition:<region>:<account>:project/<name>/version/<version>/<created millis>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectVersionArn {
    pub partition: String,
    pub project: ProjectKey,
    pub version_name: String,
    pub created_millis: i64,
}

impl ProjectArn {
    pub fn new(key: ProjectKey, created_millis: i64) -> Self {
        ProjectArn { partition: "aws".to_owned(), key, created_millis }
    }

    pub fn parse(text: &str) -> Result<Self, ArnError> {
        let fail = |reason| ArnError { expected: "project", reason };
        let (partition, region, account_id, resource) = split_arn(text).map_err(fail)?;
        match resource.split('/').collect::<Vec<_>>().as_slice() {
            ["project", name, millis] => Ok(ProjectArn {
                partition: partition.to_owned(),
                key: ProjectKey {
                    account_id: account_id.to_owned(),
                    region: region.to_owned(),
                    name: checked_name(name).map_err(fail)?.to_owned(),
                },
                created_millis: checked_millis(millis).map_err(fail)?,
            }),
            _ => Err(fail("resource must be project/<name>/<millis>")),
        }
    }
}

impl ProjectVersionArn {
    pub fn new(project: ProjectKey, version_name: String, created_millis: i64) -> Self {
        ProjectVersionArn { partition: "aws".to_owned(), project, version_name, created_millis }
    }

    pub fn parse(text: &str) -> Result<Self, ArnError> {
        let fail = |reason| ArnError { expected: "project version", reason };
        let (partition, region, account_id, resource) = split_arn(text).map_err(fail)?;
        match resource.split('/').collect::<Vec<_>>().as_slice() {
            ["project", name, "version", version, millis] => Ok(ProjectVersionArn {
                partition: partition.to_owned(),
                project: ProjectKey {
                    account_id: account_id.to_owned(),
                    region: region.to_owned(),
                    name: checked_name(name).map_err(fail)?.to_owned(),
                },
                version_name: checked_name(version).map_err(fail)?.to_owned(),
                created_millis: checked_millis(millis).map_err(fail)?,
            }),
            _ => Err(fail("resource must be project/<name>/version/<version>/<millis>")),
        }
    }
}

impl fmt::Display for ProjectArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ProjectKey { account_id, region, name } = &self.key;
        write!(f, "arn:{}:rekognition:{region}:{account_id}:project/{name}/{}", self.partition, self.created_millis)
    }
}

impl fmt::Display for ProjectVersionArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ProjectKey { account_id, region, name } = &self.project;
        write!(
            f,
            "arn:{}:rekognition:{region}:{account_id}:project/{name}/version/{}/{}",
            self.partition, self.version_name, self.created_millis
        )
    }
}

/// Splits `arn:<partition>:rekognition:<region>:<account>:<resource>` and checks every part but the resource.
fn split_arn(text: &str) -> Result<(&str, &str, &str, &str), &'static str> {
    let mut parts = text.splitn(6, ':');
    let mut next = || parts.next().unwrap_or_default();
    let (arn, partition, service, region, account, resource) = (next(), next(), next(), next(), next(), next());
    if arn != "arn" {
        return Err("must start with arn:");
    }
    if !is_lower_alnum_dash(partition) {
        return Err("partition must be lowercase letters, digits and dashes");
    }
    if service != "rekognition" {
        return Err("service must be rekognition");
    }
    if !is_lower_alnum_dash(region) {
        return Err("region must be lowercase letters, digits and dashes");
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err("account id must be 12 digits");
    }
    Ok((partition, region, account, resource))
}

fn is_lower_alnum_dash(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Project and version names share one rule: `[a-zA-Z0-9_.\-]{1,255}`.
pub fn is_valid_name(s: &str) -> bool {
    (1..=255).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn checked_name(s: &str) -> Result<&str, &'static str> {
    if is_valid_name(s) {
        Ok(s)
    } else {
        Err("name must be 1 to 255 of [a-zA-Z0-9_.-]")
    }
}

fn checked_millis(s: &str) -> Result<i64, &'static str> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err("creation time must be digits");
    }
    s.parse().map_err(|_| "creation time is out of range")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROJECT: &str = "arn:aws:rekognition:us-east-1:111111111111:project/catalog-detector/1700000000000";
    const VERSION: &str =
        "arn:aws:rekognition:us-east-1:111111111111:project/catalog-detector/version/v1/1700000001000";

    #[test]
    fn project_arn_round_trips() {
        let arn = ProjectArn::parse(PROJECT).unwrap();
        assert_eq!(arn.key.account_id, "111111111111");
        assert_eq!(arn.key.region, "us-east-1");
        assert_eq!(arn.key.name, "catalog-detector");
        assert_eq!(arn.created_millis, 1_700_000_000_000);
        assert_eq!(arn.to_string(), PROJECT);
    }

    #[test]
    fn version_arn_round_trips() {
        let arn = ProjectVersionArn::parse(VERSION).unwrap();
        assert_eq!(arn.project.name, "catalog-detector");
        assert_eq!(arn.version_name, "v1");
        assert_eq!(arn.created_millis, 1_700_000_001_000);
        assert_eq!(arn.to_string(), VERSION);
    }

    #[test]
    fn a_version_arn_is_not_a_project_arn() {
        assert!(ProjectArn::parse(VERSION).is_err());
        assert!(ProjectVersionArn::parse(PROJECT).is_err());
    }

    #[test]
    fn account_must_be_twelve_digits() {
        assert!(ProjectArn::parse("arn:aws:rekognition:us-east-1:11111111111:project/p/1").is_err());
        assert!(ProjectArn::parse("arn:aws:rekognition:us-east-1:11111111111a:project/p/1").is_err());
    }

    #[test]
    fn service_must_be_rekognition() {
        assert!(ProjectArn::parse("arn:aws:s3:us-east-1:111111111111:project/p/1").is_err());
    }

    #[test]
    fn region_must_be_lowercase() {
        assert!(ProjectArn::parse("arn:aws:rekognition:US-EAST-1:111111111111:project/p/1").is_err());
    }

    #[test]
    fn name_must_match_the_name_pattern() {
        assert!(ProjectArn::parse("arn:aws:rekognition:us-east-1:111111111111:project/bad name/1").is_err());
        assert!(ProjectArn::parse("arn:aws:rekognition:us-east-1:111111111111:project//1").is_err());
        assert!(!is_valid_name(&"a".repeat(256)));
        assert!(is_valid_name("A-z_0.9"));
    }

    #[test]
    fn creation_time_must_be_digits() {
        assert!(ProjectArn::parse("arn:aws:rekognition:us-east-1:111111111111:project/p/").is_err());
        assert!(ProjectArn::parse("arn:aws:rekognition:us-east-1:111111111111:project/p/-1").is_err());
        assert!(ProjectArn::parse("arn:aws:rekognition:us-east-1:111111111111:project/p/1/extra").is_err());
    }
}
