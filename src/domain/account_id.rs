//! An AWS account id: the unit Rekognition's quotas, project policies and our per-account rate limit apply to.

use crate::domain::DomainError;

/// Exactly 12 ASCII digits (leading zeros are significant: "012345678901" is a valid account).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(String);

impl AccountId {
    pub const LEN: usize = 12;

    pub fn parse(s: impl Into<String>) -> Result<Self, DomainError> {
        let s = s.into();
        // `is_ascii_digit`, not `char::is_numeric`: other scripts' digits are not account ids.
        if s.len() == Self::LEN && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(AccountId(s))
        } else {
            Err(DomainError(format!("must be {} digits", Self::LEN)))
        }
    }
}

string_newtype!(AccountId, 0);

/// Maps keyed by account id can be looked up with a plain `&str` (ordering and equality are the string's).
impl std::borrow::Borrow<str> for AccountId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twelve_digits_accepted() {
        assert_eq!(AccountId::parse("012345678901").unwrap().as_str(), "012345678901");
    }

    #[test]
    fn eleven_digits_refused() {
        assert!(AccountId::parse("12345678901").is_err());
    }

    #[test]
    fn thirteen_digits_refused() {
        assert!(AccountId::parse("1234567890123").is_err());
    }

    #[test]
    fn letter_refused() {
        assert!(AccountId::parse("12345678901a").is_err());
    }

    #[test]
    fn non_ascii_digits_refused() {
        // Twelve Arabic-Indic digits.
        assert!(AccountId::parse("١٢٣٤٥٦٧٨٩٠١٢").is_err());
    }

    #[test]
    fn empty_refused() {
        assert_eq!(AccountId::parse("").unwrap_err().to_string(), "must be 12 digits");
    }

    #[test]
    fn serializes_as_plain_string() {
        let id = AccountId::parse("111122223333").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"111122223333\"");
    }

    #[test]
    fn deserializing_checks_the_rule() {
        assert!(serde_json::from_str::<AccountId>("\"111122223333\"").is_ok());
        assert!(serde_json::from_str::<AccountId>("\"1111\"").is_err());
    }
}
