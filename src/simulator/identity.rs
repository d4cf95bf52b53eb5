//! Who is calling: the account and region read from the SigV4 `Authorization` header.
//!
//! Every SDK puts the access key id and the region in clear in the credential scope
//! (`AWS4-HMAC-SHA256 Credential=<AKID>/<date>/<region>/rekognition/aws4_request, ...`), so the simulator can tell
//! accounts apart without checking signatures (signature verification is a later issue). The region of the scope is
//! the region the caller is talking to, as if it had reached that region's endpoint.

use std::collections::HashMap;

use super::error::{ApiError, ErrorCode};
use super::seed::SeedAccount;

/// The parts of a SigV4 credential scope the simulator uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialScope {
    pub access_key_id: String,
    pub region: String,
}

/// An authenticated caller: everything an operation needs to decide what it may see and where it creates things.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub account_id: String,
    pub region: String,
}

impl CredentialScope {
    /// Reads the credential scope out of an `Authorization` header value.
    pub fn from_authorization(header: Option<&str>) -> Result<Self, ApiError> {
        let header = header.ok_or_else(|| {
            ApiError::new(
                ErrorCode::MissingAuthenticationToken,
                "Missing Authentication Token",
            )
        })?;
        let incomplete = || {
            ApiError::new(
                ErrorCode::IncompleteSignature,
                format!("Authorization header requires a valid 'Credential' parameter. Authorization={header}"),
            )
        };
        let params = header
            .strip_prefix("AWS4-HMAC-SHA256")
            .ok_or_else(incomplete)?;
        let credential = params
            .split(',')
            .map(str::trim)
            .find_map(|param| param.strip_prefix("Credential="))
            .ok_or_else(incomplete)?;
        match credential.split('/').collect::<Vec<_>>().as_slice() {
            [key, _date, region, _service, "aws4_request"]
                if !key.is_empty() && !region.is_empty() =>
            {
                Ok(CredentialScope {
                    access_key_id: (*key).to_owned(),
                    region: (*region).to_owned(),
                })
            }
            _ => Err(incomplete()),
        }
    }
}

/// The known access keys, from the seed.
#[derive(Debug, Default, Clone)]
pub struct Accounts {
    by_access_key: HashMap<String, String>,
}

impl Accounts {
    pub fn new(accounts: &[SeedAccount]) -> Self {
        Accounts {
            by_access_key: accounts
                .iter()
                .map(|account| (account.access_key_id.clone(), account.account_id.clone()))
                .collect(),
        }
    }

    /// Authenticates a request from its `Authorization` header.
    pub fn identify(&self, authorization: Option<&str>) -> Result<Caller, ApiError> {
        let scope = CredentialScope::from_authorization(authorization)?;
        let account_id = self
            .by_access_key
            .get(&scope.access_key_id)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::UnrecognizedClient,
                    "The security token included in the request is invalid.",
                )
            })?;
        Ok(Caller {
            account_id: account_id.clone(),
            region: scope.region,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "AWS4-HMAC-SHA256 Credential=AKIADEMO111111111111/20261123/eu-west-1/rekognition/aws4_request, \
                          SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=abc123";

    fn accounts() -> Accounts {
        Accounts::new(&[SeedAccount {
            account_id: "111111111111".into(),
            access_key_id: "AKIADEMO111111111111".into(),
            secret_access_key: None,
        }])
    }

    #[test]
    fn scope_gives_key_and_region() {
        let scope = CredentialScope::from_authorization(Some(HEADER)).unwrap();
        assert_eq!(scope.access_key_id, "AKIADEMO111111111111");
        assert_eq!(scope.region, "eu-west-1");
    }

    #[test]
    fn known_key_maps_to_its_account() {
        let caller = accounts().identify(Some(HEADER)).unwrap();
        assert_eq!(
            caller,
            Caller {
                account_id: "111111111111".into(),
                region: "eu-west-1".into()
            }
        );
    }

    #[test]
    fn missing_header_is_missing_token() {
        assert_eq!(
            accounts().identify(None).unwrap_err().code,
            ErrorCode::MissingAuthenticationToken
        );
    }

    #[test]
    fn unknown_key_is_unrecognized() {
        let header = HEADER.replace("AKIADEMO111111111111", "AKIAUNKNOWN");
        assert_eq!(
            accounts().identify(Some(&header)).unwrap_err().code,
            ErrorCode::UnrecognizedClient
        );
    }

    #[test]
    fn other_schemes_are_incomplete() {
        let err = accounts().identify(Some("Bearer abc")).unwrap_err();
        assert_eq!(err.code, ErrorCode::IncompleteSignature);
        let err = accounts()
            .identify(Some("AWS4-HMAC-SHA256 Credential=AKIA/20261123/us-east-1"))
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::IncompleteSignature);
    }
}
