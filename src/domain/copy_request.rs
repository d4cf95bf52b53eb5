//! A whole `CopyModelVersion` request, checked field by field and across fields.
//!
//! [`CopyRequest::parse`] reports every broken rule at once, each naming its API field, so a caller fixes a bad
//! request in one round trip. A [`CopyRequest`] also knows its [`digest`](CopyRequest::digest), which is how a
//! reused idempotency token is told apart from a true retry.

use std::collections::BTreeMap;

use sha2::{Digest as _, Sha256};

use crate::domain::{
    AccountId, DeleteAfter, DomainError, FieldViolation, IdempotencyToken, KmsKeyId, OutputConfig, ProjectArn,
    ProjectVersionArn, Region, S3Bucket, S3KeyPrefix, Tags, VersionName,
};

/// The request exactly as the caller sent it (decoupled from protobuf; the api layer fills it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawCopyRequest {
    pub source_project_arn: String,
    pub source_project_version_arn: String,
    pub destination_project_arn: String,
    pub version_name: String,
    /// `None` = the field was missing.
    pub output_config: Option<RawOutputConfig>,
    pub tags: BTreeMap<String, String>,
    /// `Some("")` counts as absent.
    pub kms_key_id: Option<String>,
    /// `""` = none.
    pub idempotency_token: String,
    /// A protobuf Duration's `(seconds, nanos)`; `None` = the field was absent (the copy is kept).
    pub delete_after: Option<(i64, i32)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawOutputConfig {
    pub s3_bucket: String,
    pub s3_key_prefix: String,
}

/// A copy request in which every field and every cross-field rule holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyRequest {
    source_project: ProjectArn,
    source_version: ProjectVersionArn,
    destination_project: ProjectArn,
    version_name: VersionName,
    output_config: OutputConfig,
    tags: Tags,
    kms_key_id: Option<KmsKeyId>,
    idempotency_token: Option<IdempotencyToken>,
    delete_after: Option<DeleteAfter>,
}

/// Accumulates violations while each field is parsed, so one bad field does not hide the next.
#[derive(Default)]
struct Violations(Vec<FieldViolation>);

impl Violations {
    /// Parses a required field: empty is "is required", anything else must pass `parse`.
    fn required<T>(&mut self, field: &str, value: String, parse: fn(String) -> Result<T, DomainError>) -> Option<T> {
        if value.is_empty() {
            self.0.push(FieldViolation::required(field));
            return None;
        }
        self.check(field, parse(value))
    }

    /// Parses an optional field, where empty means absent.
    fn optional<T>(&mut self, field: &str, value: String, parse: fn(String) -> Result<T, DomainError>) -> Option<T> {
        if value.is_empty() {
            None
        } else {
            self.check(field, parse(value))
        }
    }

    fn check<T>(&mut self, field: &str, result: Result<T, DomainError>) -> Option<T> {
        result.map_err(|e| self.0.push(FieldViolation::from_error(field, e))).ok()
    }

    fn push(&mut self, field: &str, description: String) {
        self.0.push(FieldViolation::new(field, description));
    }
}

impl CopyRequest {
    /// Checks everything and reports EVERY violation at once (not just the first), each naming its field.
    pub fn parse(raw: RawCopyRequest) -> Result<CopyRequest, Vec<FieldViolation>> {
        let mut v = Violations::default();

        let source_project = v.required("source_project_arn", raw.source_project_arn, ProjectArn::parse);
        let source_version =
            v.required("source_project_version_arn", raw.source_project_version_arn, ProjectVersionArn::parse);
        let destination_project = v.required("destination_project_arn", raw.destination_project_arn, ProjectArn::parse);
        let version_name = v.required("version_name", raw.version_name, VersionName::parse);
        let output_config = match raw.output_config {
            None => {
                v.0.push(FieldViolation::required("output_config"));
                None
            }
            Some(raw) => {
                let bucket = v.required("output_config.s3_bucket", raw.s3_bucket, S3Bucket::parse);
                let prefix = v.check("output_config.s3_key_prefix", S3KeyPrefix::parse(raw.s3_key_prefix));
                bucket.zip(prefix).map(|(b, p)| OutputConfig::new(b, p))
            }
        };
        let tags = Tags::parse(raw.tags).map_err(|violations| v.0.extend(violations)).ok();
        let kms_key_id = v.optional("kms_key_id", raw.kms_key_id.unwrap_or_default(), KmsKeyId::parse);
        let idempotency_token = v.optional("idempotency_token", raw.idempotency_token, IdempotencyToken::parse);
        let delete_after =
            raw.delete_after.and_then(|(seconds, nanos)| v.check("delete_after", DeleteAfter::parse(seconds, nanos)));

        // Cross-field rules, documented by AWS; only meaningful once both sides parsed.
        if let (Some(source), Some(destination)) = (&source_project, &destination_project) {
            if source.partition() != destination.partition() || source.region() != destination.region() {
                v.push(
                    "destination_project_arn",
                    format!(
                        "must be in the same partition and region as source_project_arn ({}, {})",
                        source.partition(),
                        source.region()
                    ),
                );
            }
        }
        if let (Some(project), Some(version)) = (&source_project, &source_version) {
            if !version.belongs_to(project) {
                v.push("source_project_version_arn", "must be a model version of source_project_arn".to_owned());
            }
        }

        match (source_project, source_version, destination_project, version_name, output_config, tags) {
            (
                Some(source_project),
                Some(source_version),
                Some(destination_project),
                Some(version_name),
                Some(output_config),
                Some(tags),
            ) if v.0.is_empty() => Ok(CopyRequest {
                source_project,
                source_version,
                destination_project,
                version_name,
                output_config,
                tags,
                kms_key_id,
                idempotency_token,
                delete_after,
            }),
            _ => {
                // Every `None` above pushed its violation, so the list cannot be empty here.
                debug_assert!(!v.0.is_empty());
                Err(v.0)
            }
        }
    }

    pub fn source_project(&self) -> &ProjectArn {
        &self.source_project
    }

    pub fn source_version(&self) -> &ProjectVersionArn {
        &self.source_version
    }

    pub fn destination_project(&self) -> &ProjectArn {
        &self.destination_project
    }

    pub fn version_name(&self) -> &VersionName {
        &self.version_name
    }

    pub fn output_config(&self) -> &OutputConfig {
        &self.output_config
    }

    pub fn tags(&self) -> &Tags {
        &self.tags
    }

    pub fn kms_key_id(&self) -> Option<&KmsKeyId> {
        self.kms_key_id.as_ref()
    }

    pub fn idempotency_token(&self) -> Option<&IdempotencyToken> {
        self.idempotency_token.as_ref()
    }

    /// How long after the copy succeeds its version is deleted; `None` = kept.
    pub fn delete_after(&self) -> Option<DeleteAfter> {
        self.delete_after
    }

    /// The account the model is copied from (the source project's).
    pub fn source_account(&self) -> &AccountId {
        self.source_project.account()
    }

    /// The account the model is copied to, whose Rekognition quotas the copy counts against.
    pub fn destination_account(&self) -> &AccountId {
        self.destination_project.account()
    }

    /// The region of both projects (they are checked to be the same).
    pub fn region(&self) -> &Region {
        self.source_project.region()
    }

    /// SHA-256 over a canonical encoding of every field except the idempotency token: two requests with the same
    /// parameters have the same digest whatever their token; used to refuse a token reused with other parameters.
    ///
    /// Each field is written as its byte length (u64, big-endian) then its bytes, in a fixed order, so no two
    /// different requests share an encoding. Changing the encoding changes stored digests: bump the version tag.
    pub fn digest(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        let mut put = |bytes: &[u8]| {
            hasher.update((bytes.len() as u64).to_be_bytes());
            hasher.update(bytes);
        };
        put(b"modelcopy.CopyRequest.v1");
        put(self.source_project.as_str().as_bytes());
        put(self.source_version.as_str().as_bytes());
        put(self.destination_project.as_str().as_bytes());
        put(self.version_name.as_str().as_bytes());
        put(self.output_config.bucket.as_str().as_bytes());
        put(self.output_config.key_prefix.as_str().as_bytes());
        put(&(self.tags.len() as u64).to_be_bytes());
        for (key, value) in self.tags.iter() {
            put(key.as_str().as_bytes());
            put(value.as_str().as_bytes());
        }
        // Absent and present are told apart by a marker, not by an empty string.
        match &self.kms_key_id {
            None => put(b"-"),
            Some(key) => {
                put(b"+");
                put(key.as_str().as_bytes());
            }
        }
        // Added after v1's fields, and only when present: the digest of a request without it is v1's, so digests
        // stored before the field existed still match their retries.
        if let Some(delete_after) = self.delete_after {
            put(b"delete_after");
            put(&delete_after.as_secs().to_be_bytes());
        }
        hasher.finalize().into()
    }

    /// Key fields as JSON for the audit log (all fields, tags as an object), with the API's field names.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "source_project_arn": self.source_project,
            "source_project_version_arn": self.source_version,
            "destination_project_arn": self.destination_project,
            "version_name": self.version_name,
            "output_config": self.output_config,
            "tags": self.tags,
            "kms_key_id": self.kms_key_id,
            "idempotency_token": self.idempotency_token,
            "delete_after": self.delete_after,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = "arn:aws:rekognition:us-east-1:111122223333:project/SourceProject/16565123456";
    const VERSION: &str =
        "arn:aws:rekognition:us-east-1:111122223333:project/SourceProject/version/model_1/1656611123456";
    const DESTINATION: &str = "arn:aws:rekognition:us-east-1:555555555555:project/DestinationProject/1656705098765";

    /// AWS's own CopyProjectVersion example, plus a token.
    fn valid() -> RawCopyRequest {
        RawCopyRequest {
            source_project_arn: SOURCE.into(),
            source_project_version_arn: VERSION.into(),
            destination_project_arn: DESTINATION.into(),
            version_name: "DestinationVersionName_cross_account".into(),
            output_config: Some(RawOutputConfig {
                s3_bucket: "bucket-name".into(),
                s3_key_prefix: "path_to_folder".into(),
            }),
            tags: [("key1".to_string(), "val1".to_string())].into(),
            kms_key_id: Some("arn:1234abcd-12ab-34cd-56ef-1234567890ab".into()),
            idempotency_token: "token-1".into(),
            delete_after: None,
        }
    }

    fn fields(violations: &[FieldViolation]) -> Vec<&str> {
        violations.iter().map(|v| v.field.as_str()).collect()
    }

    fn only_violation(raw: RawCopyRequest) -> FieldViolation {
        let violations = CopyRequest::parse(raw).unwrap_err();
        assert_eq!(violations.len(), 1, "{violations:?}");
        violations.into_iter().next().unwrap()
    }

    #[test]
    fn valid_request_parses_with_all_fields() {
        let request = CopyRequest::parse(valid()).unwrap();
        assert_eq!(request.source_project().as_str(), SOURCE);
        assert_eq!(request.source_version().as_str(), VERSION);
        assert_eq!(request.destination_project().as_str(), DESTINATION);
        assert_eq!(request.version_name().as_str(), "DestinationVersionName_cross_account");
        assert_eq!(request.output_config().bucket().as_str(), "bucket-name");
        assert_eq!(request.output_config().key_prefix().as_str(), "path_to_folder");
        assert_eq!(request.tags().get("key1").unwrap().as_str(), "val1");
        assert_eq!(request.kms_key_id().unwrap().as_str(), "arn:1234abcd-12ab-34cd-56ef-1234567890ab");
        assert_eq!(request.idempotency_token().unwrap().as_str(), "token-1");
        assert_eq!(request.source_account().as_str(), "111122223333");
        assert_eq!(request.destination_account().as_str(), "555555555555");
        assert_eq!(request.region().as_str(), "us-east-1");
    }

    #[test]
    fn empty_request_reports_every_required_field() {
        let violations = CopyRequest::parse(RawCopyRequest::default()).unwrap_err();
        assert_eq!(
            fields(&violations),
            [
                "source_project_arn",
                "source_project_version_arn",
                "destination_project_arn",
                "version_name",
                "output_config"
            ]
        );
        assert!(violations.iter().all(|v| v.description == "is required"));
    }

    #[test]
    fn empty_bucket_is_required() {
        let mut raw = valid();
        raw.output_config.as_mut().unwrap().s3_bucket.clear();
        assert_eq!(only_violation(raw), FieldViolation::required("output_config.s3_bucket"));
    }

    #[test]
    fn short_bucket_refused() {
        let mut raw = valid();
        raw.output_config.as_mut().unwrap().s3_bucket = "ab".into();
        assert_eq!(only_violation(raw).field, "output_config.s3_bucket");
    }

    #[test]
    fn long_prefix_refused() {
        let mut raw = valid();
        raw.output_config.as_mut().unwrap().s3_key_prefix = "p".repeat(1025);
        assert_eq!(only_violation(raw).field, "output_config.s3_key_prefix");
    }

    #[test]
    fn optional_fields_may_be_absent() {
        let mut raw = valid();
        raw.tags.clear();
        raw.kms_key_id = None;
        raw.idempotency_token.clear();
        raw.output_config.as_mut().unwrap().s3_key_prefix.clear();
        let request = CopyRequest::parse(raw).unwrap();
        assert!(request.tags().is_empty());
        assert!(request.kms_key_id().is_none());
        assert!(request.idempotency_token().is_none());
        assert!(request.output_config().key_prefix().is_empty());
    }

    #[test]
    fn empty_kms_key_counts_as_absent() {
        let mut raw = valid();
        raw.kms_key_id = Some(String::new());
        assert!(CopyRequest::parse(raw).unwrap().kms_key_id().is_none());
    }

    #[test]
    fn bad_kms_key_refused() {
        let mut raw = valid();
        raw.kms_key_id = Some("-key".into());
        assert_eq!(only_violation(raw).field, "kms_key_id");
    }

    #[test]
    fn bad_token_refused() {
        let mut raw = valid();
        raw.idempotency_token = "has space".into();
        assert_eq!(only_violation(raw).field, "idempotency_token");
    }

    #[test]
    fn bad_version_name_refused() {
        let mut raw = valid();
        raw.version_name = "my version".into();
        assert_eq!(only_violation(raw).field, "version_name");
    }

    #[test]
    fn reserved_tag_key_named_in_field() {
        let mut raw = valid();
        raw.tags.insert("aws:x".into(), "y".into());
        assert_eq!(only_violation(raw).field, "tags[\"aws:x\"]");
    }

    #[test]
    fn region_mismatch_refused_on_destination() {
        let mut raw = valid();
        raw.destination_project_arn =
            "arn:aws:rekognition:eu-west-1:555555555555:project/DestinationProject/1656705098765".into();
        let violation = only_violation(raw);
        assert_eq!(violation.field, "destination_project_arn");
        assert!(violation.description.contains("same partition and region"));
    }

    #[test]
    fn partition_mismatch_refused_on_destination() {
        let mut raw = valid();
        raw.destination_project_arn =
            "arn:aws-cn:rekognition:us-east-1:555555555555:project/DestinationProject/1656705098765".into();
        assert_eq!(only_violation(raw).field, "destination_project_arn");
    }

    #[test]
    fn version_of_another_project_refused() {
        let mut raw = valid();
        raw.source_project_version_arn =
            "arn:aws:rekognition:us-east-1:111122223333:project/OtherProject/version/model_1/1656611123456".into();
        let violation = only_violation(raw);
        assert_eq!(violation.field, "source_project_version_arn");
        assert!(violation.description.contains("source_project_arn"));
    }

    #[test]
    fn version_of_same_project_in_other_account_refused() {
        let mut raw = valid();
        raw.source_project_version_arn =
            "arn:aws:rekognition:us-east-1:999988887777:project/SourceProject/version/model_1/1656611123456".into();
        assert_eq!(only_violation(raw).field, "source_project_version_arn");
    }

    #[test]
    fn cross_field_rules_skipped_when_a_side_is_invalid() {
        let mut raw = valid();
        raw.source_project_arn = "not an arn".into();
        // Only the unparsable field is reported, not the version/region rules that depend on it.
        assert_eq!(only_violation(raw).field, "source_project_arn");
    }

    #[test]
    fn several_violations_reported_together() {
        let mut raw = valid();
        raw.source_project_arn = "arn:aws:s3:::bucket/key/long-enough".into();
        raw.version_name = "bad name".into();
        raw.output_config.as_mut().unwrap().s3_bucket = "b".repeat(256);
        raw.tags.insert("aws:owner".into(), "me".into());
        raw.kms_key_id = Some("-k".into());
        raw.idempotency_token = "t".repeat(129);
        let violations = CopyRequest::parse(raw).unwrap_err();
        assert_eq!(
            fields(&violations),
            [
                "source_project_arn",
                "version_name",
                "output_config.s3_bucket",
                "tags[\"aws:owner\"]",
                "kms_key_id",
                "idempotency_token"
            ]
        );
    }

    #[test]
    fn digest_ignores_token() {
        let a = CopyRequest::parse(valid()).unwrap();
        let mut raw = valid();
        raw.idempotency_token = "token-2".into();
        let b = CopyRequest::parse(raw).unwrap();
        let mut raw = valid();
        raw.idempotency_token.clear();
        let c = CopyRequest::parse(raw).unwrap();
        assert_eq!(a.digest(), b.digest());
        assert_eq!(a.digest(), c.digest());
    }

    #[test]
    fn digest_changes_when_a_tag_changes() {
        let a = CopyRequest::parse(valid()).unwrap();
        let mut raw = valid();
        raw.tags.insert("key1".into(), "val2".into());
        let b = CopyRequest::parse(raw).unwrap();
        assert_ne!(a.digest(), b.digest());
    }

    #[test]
    fn digest_changes_with_each_parameter() {
        let base = CopyRequest::parse(valid()).unwrap().digest();
        let changes: [fn(&mut RawCopyRequest); 9] = [
            |r| r.delete_after = Some((3600, 0)),
            |r| r.delete_after = Some((1, 0)),
            |r| r.version_name = "other".into(),
            |r| r.output_config.as_mut().unwrap().s3_bucket = "other-bucket".into(),
            |r| r.output_config.as_mut().unwrap().s3_key_prefix = "other/".into(),
            |r| r.kms_key_id = None,
            |r| {
                r.tags.insert("key2".into(), String::new());
            },
            |r| {
                r.destination_project_arn =
                    "arn:aws:rekognition:us-east-1:555555555555:project/Other/1656705098765".into()
            },
            |r| {
                r.source_project_version_arn =
                    "arn:aws:rekognition:us-east-1:111122223333:project/SourceProject/version/m2/1".into()
            },
        ];
        for (i, change) in changes.iter().enumerate() {
            let mut raw = valid();
            change(&mut raw);
            let digest = CopyRequest::parse(raw).unwrap().digest();
            assert_ne!(digest, base, "change {i} left the digest unchanged");
        }
    }

    /// Digests stored before `delete_after` existed must still match a retry without it: the request's digest
    /// without the field is exactly the v1 encoding (computed here independently).
    #[test]
    fn digest_without_delete_after_is_the_v1_encoding() {
        let mut raw = valid();
        raw.tags.clear();
        raw.kms_key_id = None;
        let request = CopyRequest::parse(raw).unwrap();
        let mut hasher = Sha256::new();
        for field in [
            &b"modelcopy.CopyRequest.v1"[..],
            SOURCE.as_bytes(),
            VERSION.as_bytes(),
            DESTINATION.as_bytes(),
            b"DestinationVersionName_cross_account",
            b"bucket-name",
            b"path_to_folder",
            &0u64.to_be_bytes(),
            b"-",
        ] {
            hasher.update((field.len() as u64).to_be_bytes());
            hasher.update(field);
        }
        assert_eq!(request.digest(), <[u8; 32]>::from(hasher.finalize()));
    }

    #[test]
    fn a_fractional_or_empty_delete_after_is_named() {
        let mut raw = valid();
        raw.delete_after = Some((5, 1));
        let violation = only_violation(raw);
        assert_eq!(
            (violation.field.as_str(), violation.description.as_str()),
            ("delete_after", "must be whole seconds")
        );
        let mut raw = valid();
        raw.delete_after = Some((0, 0));
        assert_eq!(only_violation(raw).field, "delete_after");
        let mut raw = valid();
        raw.delete_after = Some((86_400, 0));
        let request = CopyRequest::parse(raw).unwrap();
        assert_eq!(request.delete_after().unwrap().as_secs(), 86_400);
        assert_eq!(request.to_json()["delete_after"], "86400s");
    }

    #[test]
    fn digest_tells_field_boundaries_apart() {
        // Moving a character from the bucket to the prefix must change the digest.
        let mut a = valid();
        a.output_config = Some(RawOutputConfig { s3_bucket: "abcd".into(), s3_key_prefix: "e".into() });
        let mut b = valid();
        b.output_config = Some(RawOutputConfig { s3_bucket: "abc".into(), s3_key_prefix: "de".into() });
        assert_ne!(CopyRequest::parse(a).unwrap().digest(), CopyRequest::parse(b).unwrap().digest());
    }

    #[test]
    fn to_json_has_every_field() {
        let json = CopyRequest::parse(valid()).unwrap().to_json();
        assert_eq!(
            json,
            serde_json::json!({
                "source_project_arn": SOURCE,
                "source_project_version_arn": VERSION,
                "destination_project_arn": DESTINATION,
                "version_name": "DestinationVersionName_cross_account",
                "output_config": {"s3_bucket": "bucket-name", "s3_key_prefix": "path_to_folder"},
                "tags": {"key1": "val1"},
                "kms_key_id": "arn:1234abcd-12ab-34cd-56ef-1234567890ab",
                "idempotency_token": "token-1",
                "delete_after": null,
            })
        );
    }

    #[test]
    fn to_json_writes_null_for_absent_options() {
        let mut raw = valid();
        raw.kms_key_id = None;
        raw.idempotency_token.clear();
        let json = CopyRequest::parse(raw).unwrap().to_json();
        assert!(json["kms_key_id"].is_null());
        assert!(json["idempotency_token"].is_null());
    }
}
