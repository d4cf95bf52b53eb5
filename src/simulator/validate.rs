//! The service model's input constraints, reported the way AWS reports them.
//!
//! Rekognition checks lengths, patterns, ranges and required members before it looks at any resource, and answers
//! with one `ValidationException` listing every violation (`2 validation errors detected: Value 'x' at 'versionName'
//! failed to satisfy constraint: ...`). Clients that validate poorly are only caught if the simulator is as strict,
//! so each shape's rule from `rekognition-2016-06-27.json` is written down once here and the operations name them.

use super::arn::{is_valid_name, ProjectArn, ProjectVersionArn};
use super::error::ApiError;

/// A string shape: its length bounds and, when it has one, its pattern (as text for the message, as code to check).
pub struct StringShape {
    min: usize,
    max: usize,
    pattern: Option<Pattern>,
}

/// A model pattern: the regular expression as the model writes it (for messages) and the code that checks it.
#[derive(Clone, Copy)]
pub struct Pattern {
    text: &'static str,
    matches: fn(&str) -> bool,
}

impl Pattern {
    const fn new(text: &'static str, matches: fn(&str) -> bool) -> Self {
        Pattern { text, matches }
    }
}

pub const PROJECT_ARN: StringShape = StringShape {
    min: 20,
    max: 2048,
    pattern: Some(Pattern::new(
        r"(^arn:[a-z\d-]+:rekognition:[a-z\d-]+:\d{12}:project\/[a-zA-Z0-9_.\-]{1,255}\/[0-9]+$)",
        |s| ProjectArn::parse(s).is_ok(),
    )),
};

pub const PROJECT_VERSION_ARN: StringShape = StringShape {
    min: 20,
    max: 2048,
    pattern: Some(Pattern::new(
        r"(^arn:[a-z\d-]+:rekognition:[a-z\d-]+:\d{12}:project\/[a-zA-Z0-9_.\-]{1,255}\/version\/[a-zA-Z0-9_.\-]{1,255}\/[0-9]+$)",
        |s| ProjectVersionArn::parse(s).is_ok(),
    )),
};

/// `VersionName` and `ProjectName` share this rule.
pub const NAME: StringShape =
    StringShape { min: 1, max: 255, pattern: Some(Pattern::new(r"[a-zA-Z0-9_.\-]+", is_valid_name)) };

pub const S3_BUCKET: StringShape = StringShape {
    min: 3,
    max: 255,
    pattern: Some(Pattern::new(r"[0-9A-Za-z\.\-_]*", |s| {
        s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    })),
};

pub const S3_KEY_PREFIX: StringShape = StringShape { min: 0, max: 1024, pattern: None };

pub const KMS_KEY_ID: StringShape = StringShape {
    min: 1,
    max: 2048,
    pattern: Some(Pattern::new(r"^[A-Za-z0-9][A-Za-z0-9:_/+=,@.-]{0,2048}$", |s| {
        let mut bytes = s.bytes();
        bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
            && bytes.all(|b| b.is_ascii_alphanumeric() || b":_/+=,@.-".contains(&b))
    })),
};

pub const TAG_KEY: StringShape = StringShape {
    min: 1,
    max: 128,
    pattern: Some(Pattern::new(r"^(?!aws:)[\p{L}\p{Z}\p{N}_.:/=+\-@]*$", |s| {
        !s.starts_with("aws:") && s.chars().all(is_tag_char)
    })),
};

pub const TAG_VALUE: StringShape = StringShape {
    min: 0,
    max: 256,
    pattern: Some(Pattern::new(r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$", |s| s.chars().all(is_tag_char))),
};

pub const POLICY_NAME: StringShape = StringShape {
    min: 1,
    max: 128,
    pattern: Some(Pattern::new(r"[a-zA-Z0-9_.\-]+", |s| {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    })),
};

pub const POLICY_REVISION_ID: StringShape = StringShape {
    min: 0,
    max: 64,
    pattern: Some(Pattern::new(r"[0-9A-Fa-f]+", |s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit()))),
};

pub const POLICY_DOCUMENT: StringShape = StringShape {
    min: 1,
    max: 2000,
    pattern: Some(Pattern::new(r"[\u0009\u000A\u000D\u0020-\u00FF]+", |s| {
        !s.is_empty() && s.chars().all(|c| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{ff}'))
    })),
};

pub const PAGINATION_TOKEN: StringShape = StringShape { min: 0, max: 1024, pattern: None };

/// `\p{L}\p{Z}\p{N}_.:/=+\-@`, with Rust's alphabetic/numeric/whitespace classes standing in for the Unicode
/// categories (close enough for a simulator: they agree on every character a tag is likely to hold).
fn is_tag_char(c: char) -> bool {
    c.is_alphabetic() || c.is_numeric() || (c.is_whitespace() && !c.is_control()) || "_.:/=+-@".contains(c)
}

pub const TAG_MAP_MAX: usize = 200;

/// Collects every violation of one request, then answers with all of them at once.
#[derive(Default)]
pub struct Checks {
    violations: Vec<String>,
}

impl Checks {
    pub fn new() -> Self {
        Self::default()
    }

    /// A required member; returns it so the caller can go on checking it.
    pub fn required<'a, T>(&mut self, path: &str, value: &'a Option<T>) -> Option<&'a T> {
        if value.is_none() {
            self.violations
                .push(format!("Value null at '{path}' failed to satisfy constraint: Member must not be null"));
        }
        value.as_ref()
    }

    pub fn string(&mut self, path: &str, value: &str, shape: &StringShape) {
        let len = value.chars().count();
        if len < shape.min {
            self.violate(path, value, &format!("Member must have length greater than or equal to {}", shape.min));
        }
        if len > shape.max {
            self.violate(path, value, &format!("Member must have length less than or equal to {}", shape.max));
        }
        if let Some(Pattern { text: pattern, matches }) = shape.pattern {
            if !matches(value) {
                self.violate(path, value, &format!("Member must satisfy regular expression pattern: {pattern}"));
            }
        }
    }

    pub fn optional_string(&mut self, path: &str, value: &Option<String>, shape: &StringShape) {
        if let Some(value) = value {
            self.string(path, value, shape);
        }
    }

    pub fn range(&mut self, path: &str, value: i64, min: i64, max: i64) {
        if value < min {
            self.violate(path, &value.to_string(), &format!("Member must have value greater than or equal to {min}"));
        }
        if value > max {
            self.violate(path, &value.to_string(), &format!("Member must have value less than or equal to {max}"));
        }
    }

    /// A list's length, then each member against `shape`.
    pub fn list(&mut self, path: &str, values: &[String], min: usize, max: usize, shape: &StringShape) {
        self.count(path, values, min, max);
        for value in values {
            self.string(&format!("{path}.member"), value, shape);
        }
    }

    /// A list's length only.
    pub fn count(&mut self, path: &str, values: &[String], min: usize, max: usize) {
        let shown = format!("[{}]", values.join(", "));
        if values.len() < min {
            self.violate(path, &shown, &format!("Member must have length greater than or equal to {min}"));
        }
        if values.len() > max {
            self.violate(path, &shown, &format!("Member must have length less than or equal to {max}"));
        }
    }

    pub fn one_of(&mut self, path: &str, value: &str, allowed: &[&str]) {
        if !allowed.contains(&value) {
            self.violate(path, value, &format!("Member must satisfy enum value set: [{}]", allowed.join(", ")));
        }
    }

    pub fn tags(&mut self, path: &str, tags: &Option<std::collections::BTreeMap<String, String>>) {
        let Some(tags) = tags else { return };
        if tags.len() > TAG_MAP_MAX {
            self.violate(path, "{...}", &format!("Member must have length less than or equal to {TAG_MAP_MAX}"));
        }
        for (key, value) in tags {
            self.string(&format!("{path}.key"), key, &TAG_KEY);
            self.string(&format!("{path}.{key}.member"), value, &TAG_VALUE);
        }
    }

    fn violate(&mut self, path: &str, value: &str, constraint: &str) {
        self.violations.push(format!("Value '{value}' at '{path}' failed to satisfy constraint: {constraint}"));
    }

    pub fn finish(self) -> Result<(), ApiError> {
        match self.violations.len() {
            0 => Ok(()),
            1 => Err(ApiError::validation(format!("1 validation error detected: {}", self.violations[0]))),
            n => Err(ApiError::validation(format!("{n} validation errors detected: {}", self.violations.join("; ")))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::error::ErrorCode;

    fn message(checks: Checks) -> String {
        let err = checks.finish().unwrap_err();
        assert_eq!(err.code, ErrorCode::Validation);
        err.message
    }

    #[test]
    fn no_violation_passes() {
        let mut checks = Checks::new();
        checks.string("versionName", "v1", &NAME);
        assert!(checks.finish().is_ok());
    }

    #[test]
    fn missing_required_member_is_reported() {
        let mut checks = Checks::new();
        checks.required::<String>("projectArn", &None);
        assert!(message(checks).contains("Value null at 'projectArn'"));
    }

    #[test]
    fn name_pattern_is_enforced() {
        let mut checks = Checks::new();
        checks.string("versionName", "has space", &NAME);
        assert!(message(checks).contains("regular expression pattern"));
    }

    #[test]
    fn name_length_is_enforced() {
        let mut checks = Checks::new();
        checks.string("versionName", &"a".repeat(256), &NAME);
        assert!(message(checks).contains("less than or equal to 255"));
    }

    #[test]
    fn every_violation_is_counted() {
        let mut checks = Checks::new();
        checks.range("maxResults", 0, 1, 100);
        checks.string("outputConfig.s3Bucket", "ab", &S3_BUCKET);
        assert!(message(checks).starts_with("2 validation errors detected"));
    }

    #[test]
    fn list_length_is_enforced() {
        let names: Vec<String> = (0..11).map(|i| format!("v{i}")).collect();
        let mut checks = Checks::new();
        checks.list("versionNames", &names, 1, 10, &NAME);
        assert!(message(checks).contains("less than or equal to 10"));
    }

    #[test]
    fn kms_key_must_start_alphanumeric() {
        assert!((KMS_KEY_ID.pattern.unwrap().matches)("alias/my-key"));
        assert!(!(KMS_KEY_ID.pattern.unwrap().matches)("/alias"));
    }

    #[test]
    fn tag_keys_may_not_start_with_aws() {
        assert!(!(TAG_KEY.pattern.unwrap().matches)("aws:owner"));
        assert!((TAG_KEY.pattern.unwrap().matches)("team/owner=ml @x"));
    }

    #[test]
    fn policy_shapes_are_enforced() {
        let mut checks = Checks::new();
        checks.string("policyName", "allow-b", &POLICY_NAME);
        checks.string("policyRevisionId", "0aF9", &POLICY_REVISION_ID);
        checks.string("policyDocument", "{\"a\": \"\u{e9}\"}\n", &POLICY_DOCUMENT);
        assert!(checks.finish().is_ok());
        let mut checks = Checks::new();
        checks.string("policyName", &"a".repeat(129), &POLICY_NAME);
        checks.string("policyRevisionId", "xyz", &POLICY_REVISION_ID);
        checks.string("policyDocument", "\u{2603}", &POLICY_DOCUMENT);
        checks.string("policyDocument", &"a".repeat(2001), &POLICY_DOCUMENT);
        assert!(message(checks).starts_with("4 validation errors detected"));
    }

    #[test]
    fn enum_values_are_enforced() {
        let mut checks = Checks::new();
        checks.one_of("feature", "FACES", &["CONTENT_MODERATION", "CUSTOM_LABELS"]);
        assert!(message(checks).contains("enum value set"));
    }
}
