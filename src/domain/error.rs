//! What a broken rule looks like: [`DomainError`] from one value's constructor, [`FieldViolation`] once the
//! value is placed in a request field. The api layer turns a list of violations into a `google.rpc.BadRequest`,
//! so a caller learns about every mistake in one round trip.

use std::fmt;

/// The rule a value broke, as a sentence a caller can act on ("must be 12 digits"). It never repeats the value:
/// values can be long, and the caller already has them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DomainError(pub String);

impl DomainError {
    /// The value's length (in characters) is outside `min..=max`.
    pub(crate) fn length(min: usize, max: usize, actual: usize) -> Self {
        let rule = if min == max {
            format!("must be exactly {min} characters long")
        } else if min == 0 {
            format!("must be at most {max} characters long")
        } else {
            format!("must be between {min} and {max} characters long")
        };
        DomainError(format!("{rule} (got {actual})"))
    }

    /// Checks that `value` has `min..=max` characters, counting as AWS does (Unicode scalar values, not bytes).
    pub(crate) fn check_length(value: &str, min: usize, max: usize) -> Result<(), DomainError> {
        let actual = value.chars().count();
        if (min..=max).contains(&actual) {
            Ok(())
        } else {
            Err(Self::length(min, max, actual))
        }
    }
}

/// One broken rule of one request field; `field` is the protobuf field path of the API
/// ("source_project_arn", "output_config.s3_bucket", "tags[\"aws:x\"]" for a tag key or value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        FieldViolation { field: field.into(), description: description.into() }
    }

    /// The violation for a required field left empty or missing.
    pub fn required(field: impl Into<String>) -> Self {
        Self::new(field, "is required")
    }

    /// Places a value's broken rule in the field it came from.
    pub fn from_error(field: impl Into<String>, error: DomainError) -> Self {
        Self::new(field, error.0)
    }
}

impl fmt::Display for FieldViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.description)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_counts_characters_not_bytes() {
        // "é" is 2 bytes but one character.
        assert!(DomainError::check_length("éé", 1, 2).is_ok());
        assert!(DomainError::check_length("ééé", 1, 2).is_err());
    }

    #[test]
    fn length_message_names_bounds_and_actual() {
        let err = DomainError::check_length("ab", 3, 255).unwrap_err();
        assert_eq!(err.to_string(), "must be between 3 and 255 characters long (got 2)");
        let err = DomainError::check_length("abc", 0, 2).unwrap_err();
        assert_eq!(err.to_string(), "must be at most 2 characters long (got 3)");
    }

    #[test]
    fn violation_displays_field_and_rule() {
        let v = FieldViolation::required("output_config.s3_bucket");
        assert_eq!(v.to_string(), "output_config.s3_bucket: is required");
    }
}
