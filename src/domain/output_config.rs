//! Where Rekognition writes the copied model's training and evaluation results (`OutputConfig`).

use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

use crate::domain::DomainError;

static S3_BUCKET: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\A[0-9A-Za-z.\-_]+\z").expect("bucket pattern compiles"));

/// 3 to 255 characters of `[0-9A-Za-z.-_]`: Rekognition's rule, looser than S3's own naming rules, which S3
/// enforces when the bucket is used.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct S3Bucket(String);

impl S3Bucket {
    pub const MIN_LEN: usize = 3;
    pub const MAX_LEN: usize = 255;

    pub fn parse(s: impl Into<String>) -> Result<Self, DomainError> {
        let s = s.into();
        DomainError::check_length(&s, Self::MIN_LEN, Self::MAX_LEN)?;
        if !S3_BUCKET.is_match(&s) {
            return Err(DomainError("may only contain letters, digits, '.', '-' and '_'".to_owned()));
        }
        Ok(S3Bucket(s))
    }
}

string_newtype!(S3Bucket, 0);

/// Up to 1024 characters, any of them; empty means the bucket's root.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct S3KeyPrefix(String);

impl S3KeyPrefix {
    pub const MAX_LEN: usize = 1024;

    pub fn parse(s: impl Into<String>) -> Result<Self, DomainError> {
        let s = s.into();
        DomainError::check_length(&s, 0, Self::MAX_LEN)?;
        Ok(S3KeyPrefix(s))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

string_newtype!(S3KeyPrefix, 0);

/// The S3 location for the copied model's results. Serialized with the API's field names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct OutputConfig {
    #[serde(rename = "s3_bucket")]
    pub bucket: S3Bucket,
    #[serde(rename = "s3_key_prefix")]
    pub key_prefix: S3KeyPrefix,
}

impl OutputConfig {
    pub fn new(bucket: S3Bucket, key_prefix: S3KeyPrefix) -> Self {
        OutputConfig { bucket, key_prefix }
    }

    pub fn bucket(&self) -> &S3Bucket {
        &self.bucket
    }

    pub fn key_prefix(&self) -> &S3KeyPrefix {
        &self.key_prefix
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_accepted() {
        assert_eq!(S3Bucket::parse("my.bucket-name_1").unwrap().as_str(), "my.bucket-name_1");
    }

    #[test]
    fn bucket_of_2_refused_3_accepted() {
        assert!(S3Bucket::parse("ab").is_err());
        assert!(S3Bucket::parse("abc").is_ok());
    }

    #[test]
    fn bucket_of_255_accepted_256_refused() {
        assert!(S3Bucket::parse("b".repeat(255)).is_ok());
        assert!(S3Bucket::parse("b".repeat(256)).is_err());
    }

    #[test]
    fn bucket_with_slash_refused() {
        assert!(S3Bucket::parse("bucket/prefix").is_err());
    }

    #[test]
    fn bucket_with_space_refused() {
        assert!(S3Bucket::parse("my bucket").is_err());
    }

    #[test]
    fn empty_prefix_accepted() {
        assert!(S3KeyPrefix::parse("").unwrap().is_empty());
    }

    #[test]
    fn prefix_of_1024_accepted_1025_refused() {
        assert!(S3KeyPrefix::parse("p".repeat(1024)).is_ok());
        assert!(S3KeyPrefix::parse("p".repeat(1025)).is_err());
    }

    #[test]
    fn prefix_length_counts_characters() {
        // 1024 two-byte characters are 2048 bytes but within the limit.
        assert!(S3KeyPrefix::parse("é".repeat(1024)).is_ok());
    }

    #[test]
    fn output_config_serializes_with_api_names() {
        let config = OutputConfig::new(S3Bucket::parse("bucket").unwrap(), S3KeyPrefix::parse("a/b/").unwrap());
        assert_eq!(
            serde_json::to_value(&config).unwrap(),
            serde_json::json!({"s3_bucket": "bucket", "s3_key_prefix": "a/b/"})
        );
    }
}
