//! The customer-managed KMS key that encrypts the copied model: a key id, key ARN, alias name or alias ARN.
//! Whether the key exists and may be used is for KMS to say; here only its shape is checked.

use std::sync::LazyLock;

use regex::Regex;

use crate::domain::DomainError;

// botocore's `{0,2048}` is written `*`: the length check already bounds it, and the regex stays small.
static KMS_KEY_ID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\A[A-Za-z0-9][A-Za-z0-9:_/+=,@.-]*\z").expect("KMS key id pattern compiles"));

/// 1 to 2048 characters of `[A-Za-z0-9:_/+=,@.-]`, starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KmsKeyId(String);

impl KmsKeyId {
    pub const MAX_LEN: usize = 2048;

    pub fn parse(s: impl Into<String>) -> Result<Self, DomainError> {
        let s = s.into();
        DomainError::check_length(&s, 1, Self::MAX_LEN)?;
        if !KMS_KEY_ID.is_match(&s) {
            return Err(DomainError(
                "must start with a letter or digit and contain only letters, digits and ':_/+=,@.-'".to_owned(),
            ));
        }
        Ok(KmsKeyId(s))
    }
}

string_newtype!(KmsKeyId, 0);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_id_accepted() {
        assert!(KmsKeyId::parse("1234abcd-12ab-34cd-56ef-1234567890ab").is_ok());
    }

    #[test]
    fn key_arn_accepted() {
        assert!(KmsKeyId::parse("arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab").is_ok());
    }

    #[test]
    fn alias_arn_accepted() {
        assert!(KmsKeyId::parse("arn:aws:kms:us-east-1:111122223333:alias/my-key").is_ok());
    }

    #[test]
    fn empty_refused() {
        assert!(KmsKeyId::parse("").is_err());
    }

    #[test]
    fn leading_dash_refused() {
        assert!(KmsKeyId::parse("-1234abcd").is_err());
    }

    #[test]
    fn leading_slash_refused() {
        // "alias/name" must be given with its "alias/" prefix; a bare "/name" is not a key.
        assert!(KmsKeyId::parse("/my-key").is_err());
    }

    #[test]
    fn space_refused() {
        assert!(KmsKeyId::parse("my key").is_err());
    }

    #[test]
    fn of_2048_accepted_2049_refused() {
        assert!(KmsKeyId::parse("k".repeat(2048)).is_ok());
        assert!(KmsKeyId::parse("k".repeat(2049)).is_err());
    }
}
