//! Tags for the copied model version, as Rekognition accepts them: up to 200, with keys and values from the
//! same Unicode alphabet and the `aws:` key prefix reserved for AWS.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

use crate::domain::{DomainError, FieldViolation};

/// botocore's `[\p{L}\p{Z}\p{N}_.:/=+\-@]`: letters, separators (including spaces) and numbers of any script.
static TAG_TEXT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\A[\p{L}\p{Z}\p{N}_.:/=+\-@]*\z").expect("tag pattern compiles"));

const TAG_ALPHABET: &str = "may only contain letters, numbers, spaces and '_.:/=+-@'";

/// Reserved for AWS; botocore's `(?!aws:)` look-ahead is case-sensitive, so "AWS:x" is a user key.
const RESERVED_PREFIX: &str = "aws:";

/// Longest tag key echoed in a violation's field path: a longer key is invalid anyway, and the path travels in
/// gRPC trailers, where size is limited.
const MAX_KEY_IN_FIELD_PATH: usize = TagKey::MAX_LEN;

/// 1 to 128 characters of the tag alphabet, not starting with "aws:".
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TagKey(String);

impl TagKey {
    pub const MAX_LEN: usize = 128;

    pub fn parse(s: impl Into<String>) -> Result<Self, DomainError> {
        let s = s.into();
        DomainError::check_length(&s, 1, Self::MAX_LEN)?;
        if !TAG_TEXT.is_match(&s) {
            return Err(DomainError(TAG_ALPHABET.to_owned()));
        }
        if s.starts_with(RESERVED_PREFIX) {
            return Err(DomainError("must not start with \"aws:\", which is reserved for AWS".to_owned()));
        }
        Ok(TagKey(s))
    }
}

string_newtype!(TagKey, 0);

// Lets a `BTreeMap<TagKey, _>` be searched with a `&str`; consistent with `Ord`, which is the string's.
impl Borrow<str> for TagKey {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// 0 to 256 characters of the tag alphabet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TagValue(String);

impl TagValue {
    pub const MAX_LEN: usize = 256;

    pub fn parse(s: impl Into<String>) -> Result<Self, DomainError> {
        let s = s.into();
        DomainError::check_length(&s, 0, Self::MAX_LEN)?;
        if !TAG_TEXT.is_match(&s) {
            return Err(DomainError(TAG_ALPHABET.to_owned()));
        }
        Ok(TagValue(s))
    }
}

string_newtype!(TagValue, 0);

/// At most 200 valid tags, ordered by key. Serialized as a JSON object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Tags(BTreeMap<TagKey, TagValue>);

impl Tags {
    pub const MAX_ENTRIES: usize = 200;

    /// Checks the count of already valid tags.
    pub fn new(tags: BTreeMap<TagKey, TagValue>) -> Result<Self, DomainError> {
        if tags.len() > Self::MAX_ENTRIES {
            return Err(Self::too_many(tags.len()));
        }
        Ok(Tags(tags))
    }

    /// Checks every key, every value and the count, reporting each broken rule as a violation of the API field
    /// it came from: `tags` for the count, `tags["<key>"]` for a key or its value.
    pub fn parse(raw: impl IntoIterator<Item = (String, String)>) -> Result<Self, Vec<FieldViolation>> {
        let mut tags = BTreeMap::new();
        let mut violations = Vec::new();
        let mut count = 0usize;
        for (key, value) in raw {
            count += 1;
            let field = field_path(&key);
            let key = TagKey::parse(key).map_err(|e| violations.push(FieldViolation::from_error(field.clone(), e)));
            let value = TagValue::parse(value).map_err(|e| violations.push(FieldViolation::from_error(field, e)));
            if let (Ok(key), Ok(value)) = (key, value) {
                tags.insert(key, value);
            }
        }
        if count > Self::MAX_ENTRIES {
            violations.push(FieldViolation::from_error("tags", Self::too_many(count)));
        }
        if violations.is_empty() {
            Ok(Tags(tags))
        } else {
            Err(violations)
        }
    }

    fn too_many(count: usize) -> DomainError {
        DomainError(format!("must have at most {} entries (got {count})", Self::MAX_ENTRIES))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, key: &str) -> Option<&TagValue> {
        self.0.get(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&TagKey, &TagValue)> {
        self.0.iter()
    }

    pub fn as_map(&self) -> &BTreeMap<TagKey, TagValue> {
        &self.0
    }

    /// The tags as plain strings, e.g. for the AWS SDK or a protobuf map.
    pub fn to_string_map(&self) -> BTreeMap<String, String> {
        self.iter().map(|(k, v)| (k.as_str().to_owned(), v.as_str().to_owned())).collect()
    }

    pub fn into_string_map(self) -> BTreeMap<String, String> {
        self.0.into_iter().map(|(k, v)| (String::from(k), String::from(v))).collect()
    }
}

impl<'a> IntoIterator for &'a Tags {
    type Item = (&'a TagKey, &'a TagValue);
    type IntoIter = std::collections::btree_map::Iter<'a, TagKey, TagValue>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// `tags["<key>"]`, the key quoted and escaped like a Rust string literal, cut short if it is too long to be
/// a key.
fn field_path(key: &str) -> String {
    if key.chars().count() > MAX_KEY_IN_FIELD_PATH {
        let shortened: String = key.chars().take(MAX_KEY_IN_FIELD_PATH).collect();
        format!("tags[{shortened:?}…]")
    } else {
        format!("tags[{key:?}]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn key_accepted() {
        assert!(TagKey::parse("team/owner=ml+cv@corp.example").is_ok());
    }

    #[test]
    fn empty_key_refused() {
        assert!(TagKey::parse("").is_err());
    }

    #[test]
    fn aws_prefix_refused() {
        let err = TagKey::parse("aws:owner").unwrap_err();
        assert!(err.0.contains("aws:"), "{err}");
    }

    #[test]
    fn aws_prefix_check_is_case_sensitive() {
        assert!(TagKey::parse("AWS:owner").is_ok());
    }

    #[test]
    fn aws_without_colon_accepted() {
        assert!(TagKey::parse("awsx:").is_ok());
        assert!(TagKey::parse("aws").is_ok());
    }

    #[test]
    fn key_of_128_accepted_129_refused() {
        assert!(TagKey::parse("k".repeat(128)).is_ok());
        assert!(TagKey::parse("k".repeat(129)).is_err());
    }

    #[test]
    fn key_with_forbidden_character_refused() {
        assert!(TagKey::parse("cost*center").is_err());
        assert!(TagKey::parse("a\"b").is_err());
    }

    #[test]
    fn unicode_letters_spaces_and_numbers_accepted() {
        assert!(TagKey::parse("équipe données ٣").is_ok());
        assert!(TagValue::parse("機械学習 チーム").is_ok());
    }

    #[test]
    fn empty_value_accepted() {
        assert!(TagValue::parse("").is_ok());
    }

    #[test]
    fn value_of_256_accepted_257_refused() {
        assert!(TagValue::parse("v".repeat(256)).is_ok());
        assert!(TagValue::parse("v".repeat(257)).is_err());
    }

    #[test]
    fn value_with_forbidden_character_refused() {
        assert!(TagValue::parse("a;b").is_err());
    }

    #[test]
    fn value_may_start_with_aws_prefix() {
        assert!(TagValue::parse("aws:owner").is_ok());
    }

    #[test]
    fn tags_parse_keeps_valid_tags() {
        let tags = Tags::parse(raw(&[("team", "cv"), ("env", "prod")])).unwrap();
        assert_eq!(tags.len(), 2);
        assert_eq!(tags.get("team").unwrap().as_str(), "cv");
        let keys: Vec<&str> = tags.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["env", "team"]);
    }

    #[test]
    fn two_hundred_tags_accepted() {
        let many: Vec<(String, String)> = (0..200).map(|i| (format!("k{i}"), String::new())).collect();
        assert_eq!(Tags::parse(many).unwrap().len(), 200);
    }

    #[test]
    fn two_hundred_and_one_tags_refused() {
        let many: Vec<(String, String)> = (0..201).map(|i| (format!("k{i}"), String::new())).collect();
        let violations = Tags::parse(many).unwrap_err();
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].field, "tags");
        assert!(violations[0].description.contains("200"));
    }

    #[test]
    fn new_refuses_too_many() {
        let many: BTreeMap<TagKey, TagValue> =
            (0..201).map(|i| (TagKey::parse(format!("k{i}")).unwrap(), TagValue::default())).collect();
        assert!(Tags::new(many).is_err());
    }

    #[test]
    fn violations_name_the_tag() {
        let violations = Tags::parse(raw(&[("aws:x", "ok"), ("good", "bad;value")])).unwrap_err();
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["tags[\"aws:x\"]", "tags[\"good\"]"]);
    }

    #[test]
    fn bad_key_and_bad_value_both_reported() {
        let violations = Tags::parse(raw(&[("aws:x", "bad;value")])).unwrap_err();
        assert_eq!(violations.len(), 2);
        assert!(violations.iter().all(|v| v.field == "tags[\"aws:x\"]"));
    }

    #[test]
    fn overlong_key_is_shortened_in_field_path() {
        let violations = Tags::parse(raw(&[(&"k".repeat(5000), "")])).unwrap_err();
        assert!(violations[0].field.len() < 200, "{}", violations[0].field);
        assert!(violations[0].field.starts_with("tags[\"kkk"));
    }

    #[test]
    fn string_map_round_trip() {
        let tags = Tags::parse(raw(&[("a", "1"), ("b", "")])).unwrap();
        let expected: BTreeMap<String, String> = raw(&[("a", "1"), ("b", "")]).into_iter().collect();
        assert_eq!(tags.to_string_map(), expected);
        assert_eq!(tags.into_string_map(), expected);
    }

    #[test]
    fn serializes_as_object() {
        let tags = Tags::parse(raw(&[("team", "cv")])).unwrap();
        assert_eq!(serde_json::to_value(&tags).unwrap(), serde_json::json!({"team": "cv"}));
    }
}
