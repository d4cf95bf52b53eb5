//! The ARNs a copy names: the source and destination projects and the source model version, plus the region
//! they share.
//!
//! The ARN is parsed once into its parts, so the rest of the service reads the account to rate-limit or the
//! region to call with accessors instead of splitting strings. The patterns are botocore's, with `\d` written
//! `[0-9]`: in Rust's `regex` `\d` is any Unicode digit, in AWS's (Java) patterns only ASCII.

use std::sync::LazyLock;

use regex::Regex;

use crate::domain::{AccountId, DomainError};

/// botocore's length limits, identical for both ARN shapes.
const ARN_MIN_LEN: usize = 20;
const ARN_MAX_LEN: usize = 2048;

static PROJECT_ARN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\Aarn:([a-z0-9-]+):rekognition:([a-z0-9-]+):([0-9]{12}):project/([a-zA-Z0-9_.\-]{1,255})/[0-9]+\z")
        .expect("project ARN pattern compiles")
});

static PROJECT_VERSION_ARN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"\Aarn:([a-z0-9-]+):rekognition:([a-z0-9-]+):([0-9]{12}):project/([a-zA-Z0-9_.\-]{1,255})",
        r"/version/([a-zA-Z0-9_.\-]{1,255})/[0-9]+\z",
    ))
    .expect("project version ARN pattern compiles")
});

/// An AWS region code as it appears in an ARN ("us-east-1"): non-empty, lowercase letters, digits and '-'.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Region(String);

impl Region {
    pub fn parse(s: impl Into<String>) -> Result<Self, DomainError> {
        let s = s.into();
        let valid = !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if valid {
            Ok(Region(s))
        } else {
            Err(DomainError("must be a region code: lowercase letters, digits and '-'".to_owned()))
        }
    }
}

string_newtype!(Region, 0);

/// A Rekognition project: `arn:<partition>:rekognition:<region>:<account>:project/<name>/<creation timestamp>`.
///
/// Fields are derived from `arn`, which comes first, so the derived ordering and equality are those of the string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProjectArn {
    arn: String,
    partition: String,
    region: Region,
    account: AccountId,
    project_name: String,
}

impl ProjectArn {
    pub fn parse(s: impl Into<String>) -> Result<Self, DomainError> {
        let arn = s.into();
        DomainError::check_length(&arn, ARN_MIN_LEN, ARN_MAX_LEN)?;
        let parts = PROJECT_ARN.captures(&arn).ok_or_else(|| {
            DomainError(
                "must be a Rekognition project ARN: \
                 arn:<partition>:rekognition:<region>:<12-digit account>:project/<name>/<timestamp>"
                    .to_owned(),
            )
        })?;
        let partition = parts[1].to_owned();
        let region = Region::parse(&parts[2])?;
        let account = AccountId::parse(&parts[3])?;
        let project_name = parts[4].to_owned();
        Ok(ProjectArn { arn, partition, region, account, project_name })
    }

    /// "aws", "aws-cn", "aws-us-gov", …
    pub fn partition(&self) -> &str {
        &self.partition
    }

    pub fn region(&self) -> &Region {
        &self.region
    }

    pub fn account(&self) -> &AccountId {
        &self.account
    }

    pub fn project_name(&self) -> &str {
        &self.project_name
    }
}

string_newtype!(ProjectArn, arn);

/// A model version: `arn:<partition>:rekognition:<region>:<account>:project/<name>/version/<version>/<timestamp>`.
///
/// The trailing timestamp is the *version's* creation time, not the project's (AWS's own CopyProjectVersion
/// example pairs `project/SourceProject/16565123456` with `project/SourceProject/version/model_1/1656611123456`),
/// so a version ARN does not contain its project's ARN; [`ProjectVersionArn::belongs_to`] compares the parts
/// both ARNs do carry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProjectVersionArn {
    arn: String,
    partition: String,
    region: Region,
    account: AccountId,
    project_name: String,
    version_name: String,
}

impl ProjectVersionArn {
    pub fn parse(s: impl Into<String>) -> Result<Self, DomainError> {
        let arn = s.into();
        DomainError::check_length(&arn, ARN_MIN_LEN, ARN_MAX_LEN)?;
        let parts = PROJECT_VERSION_ARN.captures(&arn).ok_or_else(|| {
            DomainError(
                "must be a Rekognition model version ARN: arn:<partition>:rekognition:<region>:\
                 <12-digit account>:project/<name>/version/<version>/<timestamp>"
                    .to_owned(),
            )
        })?;
        let partition = parts[1].to_owned();
        let region = Region::parse(&parts[2])?;
        let account = AccountId::parse(&parts[3])?;
        let project_name = parts[4].to_owned();
        let version_name = parts[5].to_owned();
        Ok(ProjectVersionArn { arn, partition, region, account, project_name, version_name })
    }

    pub fn partition(&self) -> &str {
        &self.partition
    }

    pub fn region(&self) -> &Region {
        &self.region
    }

    pub fn account(&self) -> &AccountId {
        &self.account
    }

    pub fn project_name(&self) -> &str {
        &self.project_name
    }

    pub fn version_name(&self) -> &str {
        &self.version_name
    }

    /// Whether this is a version of `project`: same partition, region, account and project name. (Project names
    /// are unique per account and region, so these identify the project.)
    pub fn belongs_to(&self, project: &ProjectArn) -> bool {
        self.partition == project.partition
            && self.region == project.region
            && self.account == project.account
            && self.project_name == project.project_name
    }
}

string_newtype!(ProjectVersionArn, arn);

#[cfg(test)]
mod tests {
    use super::*;

    const PROJECT: &str = "arn:aws:rekognition:us-east-1:111122223333:project/SourceProject/16565123456";
    const VERSION: &str =
        "arn:aws:rekognition:us-east-1:111122223333:project/SourceProject/version/model_1/1656611123456";

    #[test]
    fn region_accepted() {
        assert_eq!(Region::parse("eu-west-3").unwrap().as_str(), "eu-west-3");
    }

    #[test]
    fn empty_region_refused() {
        assert!(Region::parse("").is_err());
    }

    #[test]
    fn uppercase_region_refused() {
        assert!(Region::parse("US-EAST-1").is_err());
    }

    #[test]
    fn project_arn_parts() {
        let arn = ProjectArn::parse(PROJECT).unwrap();
        assert_eq!(arn.as_str(), PROJECT);
        assert_eq!(arn.partition(), "aws");
        assert_eq!(arn.region().as_str(), "us-east-1");
        assert_eq!(arn.account().as_str(), "111122223333");
        assert_eq!(arn.project_name(), "SourceProject");
        assert_eq!(arn.to_string(), PROJECT);
    }

    #[test]
    fn project_arn_other_partition_accepted() {
        let arn = ProjectArn::parse("arn:aws-cn:rekognition:cn-north-1:111122223333:project/p/1").unwrap();
        assert_eq!(arn.partition(), "aws-cn");
    }

    #[test]
    fn project_arn_too_short_refused() {
        let err = ProjectArn::parse("arn:aws:rekognition").unwrap_err();
        assert!(err.0.contains("between 20 and 2048"), "{err}");
    }

    #[test]
    fn project_arn_too_long_refused() {
        // Valid shape (the timestamp is unbounded in the pattern) but 2049 characters.
        let prefix = "arn:aws:rekognition:us-east-1:111122223333:project/p/";
        let arn = format!("{prefix}{}", "1".repeat(2049 - prefix.len()));
        assert_eq!(arn.chars().count(), 2049);
        assert!(ProjectArn::parse(&arn).unwrap_err().0.contains("2048"));
        assert!(ProjectArn::parse(&arn[..2048]).is_ok());
    }

    #[test]
    fn project_arn_wrong_service_refused() {
        assert!(ProjectArn::parse("arn:aws:sagemaker:us-east-1:111122223333:project/p/1").is_err());
    }

    #[test]
    fn project_arn_bad_account_refused() {
        assert!(ProjectArn::parse("arn:aws:rekognition:us-east-1:11112222333:project/p/1").is_err());
        assert!(ProjectArn::parse("arn:aws:rekognition:us-east-1:11112222333x:project/p/1").is_err());
        assert!(ProjectArn::parse("arn:aws:rekognition:us-east-1:١١١١٢٢٢٢٣٣٣٣:project/p/1").is_err());
    }

    #[test]
    fn project_arn_without_timestamp_refused() {
        assert!(ProjectArn::parse("arn:aws:rekognition:us-east-1:111122223333:project/p").is_err());
    }

    #[test]
    fn project_arn_bad_name_refused() {
        assert!(ProjectArn::parse("arn:aws:rekognition:us-east-1:111122223333:project/my project/1").is_err());
    }

    #[test]
    fn project_arn_name_of_256_refused() {
        let ok = format!("arn:aws:rekognition:us-east-1:111122223333:project/{}/1", "n".repeat(255));
        let long = format!("arn:aws:rekognition:us-east-1:111122223333:project/{}/1", "n".repeat(256));
        assert!(ProjectArn::parse(ok).is_ok());
        assert!(ProjectArn::parse(long).is_err());
    }

    #[test]
    fn project_arn_is_anchored() {
        assert!(ProjectArn::parse(format!("x{PROJECT}")).is_err());
        assert!(ProjectArn::parse(format!("{PROJECT}\n")).is_err());
        assert!(ProjectArn::parse(format!("{PROJECT}/")).is_err());
    }

    #[test]
    fn version_arn_is_not_a_project_arn() {
        assert!(ProjectArn::parse(VERSION).is_err());
        assert!(ProjectVersionArn::parse(PROJECT).is_err());
    }

    #[test]
    fn version_arn_parts() {
        let arn = ProjectVersionArn::parse(VERSION).unwrap();
        assert_eq!(arn.as_str(), VERSION);
        assert_eq!(arn.partition(), "aws");
        assert_eq!(arn.region().as_str(), "us-east-1");
        assert_eq!(arn.account().as_str(), "111122223333");
        assert_eq!(arn.project_name(), "SourceProject");
        assert_eq!(arn.version_name(), "model_1");
    }

    #[test]
    fn version_arn_wrong_service_refused() {
        assert!(ProjectVersionArn::parse(VERSION.replace("rekognition", "s3")).is_err());
    }

    #[test]
    fn version_arn_too_short_refused() {
        assert!(ProjectVersionArn::parse("arn:aws:rekognition").is_err());
    }

    #[test]
    fn version_belongs_to_its_project_despite_other_timestamp() {
        let version = ProjectVersionArn::parse(VERSION).unwrap();
        assert!(version.belongs_to(&ProjectArn::parse(PROJECT).unwrap()));
    }

    #[test]
    fn version_of_another_project_does_not_belong() {
        let version = ProjectVersionArn::parse(VERSION).unwrap();
        for other in [
            "arn:aws:rekognition:us-east-1:111122223333:project/OtherProject/16565123456",
            "arn:aws:rekognition:us-east-1:444455556666:project/SourceProject/16565123456",
            "arn:aws:rekognition:eu-west-1:111122223333:project/SourceProject/16565123456",
            "arn:aws-cn:rekognition:us-east-1:111122223333:project/SourceProject/16565123456",
        ] {
            assert!(!version.belongs_to(&ProjectArn::parse(other).unwrap()), "{other}");
        }
    }

    #[test]
    fn arns_serialize_as_plain_strings() {
        let arn = ProjectArn::parse(PROJECT).unwrap();
        assert_eq!(serde_json::to_value(&arn).unwrap(), serde_json::json!(PROJECT));
    }
}
