//! The caller's idempotency token.
//!
//! It follows the meaning of AWS Backup `StartCopyJob`'s `IdempotencyToken`: a caller-chosen string that tells
//! otherwise identical calls apart, so that retrying a request with the same token is safe and returns the
//! first call's result instead of queueing a second copy. `CopyProjectVersion` itself has no such token; the
//! alphabet and length are our own rule, chosen so a token fits in logs and URLs unescaped.

use std::sync::LazyLock;

use regex::Regex;

use crate::domain::DomainError;

static IDEMPOTENCY_TOKEN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\A[A-Za-z0-9_.:\-]+\z").expect("idempotency token pattern compiles"));

/// 1 to 128 characters of `[A-Za-z0-9_.:-]` (a UUID fits).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdempotencyToken(String);

impl IdempotencyToken {
    pub const MAX_LEN: usize = 128;

    pub fn parse(s: impl Into<String>) -> Result<Self, DomainError> {
        let s = s.into();
        DomainError::check_length(&s, 1, Self::MAX_LEN)?;
        if !IDEMPOTENCY_TOKEN.is_match(&s) {
            return Err(DomainError("may only contain letters, digits, '_', '.', ':' and '-'".to_owned()));
        }
        Ok(IdempotencyToken(s))
    }
}

string_newtype!(IdempotencyToken, 0);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_accepted() {
        assert!(IdempotencyToken::parse("0b5f7a9e-3c1d-4e2f-9a8b-7c6d5e4f3a2b").is_ok());
    }

    #[test]
    fn colon_and_dot_accepted() {
        assert!(IdempotencyToken::parse("deploy:2026.11.23_1").is_ok());
    }

    #[test]
    fn empty_refused() {
        assert!(IdempotencyToken::parse("").is_err());
    }

    #[test]
    fn of_128_accepted_129_refused() {
        assert!(IdempotencyToken::parse("t".repeat(128)).is_ok());
        assert!(IdempotencyToken::parse("t".repeat(129)).is_err());
    }

    #[test]
    fn space_refused() {
        assert!(IdempotencyToken::parse("retry 1").is_err());
    }

    #[test]
    fn slash_refused() {
        assert!(IdempotencyToken::parse("a/b").is_err());
    }
}
