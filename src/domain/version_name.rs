//! The name the copied model version gets in the destination project. It becomes part of the new version's ARN,
//! hence the ARN-safe alphabet.

use std::sync::LazyLock;

use regex::Regex;

use crate::domain::DomainError;

static VERSION_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\A[a-zA-Z0-9_.\-]+\z").expect("version name pattern compiles"));

/// 1 to 255 characters of `[a-zA-Z0-9_.-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VersionName(String);

impl VersionName {
    pub const MAX_LEN: usize = 255;

    pub fn parse(s: impl Into<String>) -> Result<Self, DomainError> {
        let s = s.into();
        DomainError::check_length(&s, 1, Self::MAX_LEN)?;
        if !VERSION_NAME.is_match(&s) {
            return Err(DomainError("may only contain letters, digits, '_', '.' and '-'".to_owned()));
        }
        Ok(VersionName(s))
    }
}

string_newtype!(VersionName, 0);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typical_name_accepted() {
        assert_eq!(VersionName::parse("model_1.copy-2").unwrap().as_str(), "model_1.copy-2");
    }

    #[test]
    fn empty_refused() {
        assert!(VersionName::parse("").is_err());
    }

    #[test]
    fn name_of_255_accepted_256_refused() {
        assert!(VersionName::parse("v".repeat(255)).is_ok());
        assert!(VersionName::parse("v".repeat(256)).is_err());
    }

    #[test]
    fn space_refused() {
        assert!(VersionName::parse("my model").is_err());
    }

    #[test]
    fn slash_refused() {
        assert!(VersionName::parse("a/b").is_err());
    }

    #[test]
    fn non_ascii_letter_refused() {
        assert!(VersionName::parse("modèle").is_err());
    }

    #[test]
    fn trailing_newline_refused() {
        assert!(VersionName::parse("model\n").is_err());
    }
}
