//! Bearer JWTs: `authorization: Bearer <JWT>`, signed by a key of the configured JWKS, from the configured issuer,
//! for one of the configured audiences, within its `nbf`..`exp` window (give or take the leeway).
//!
//! The checks are `jsonwebtoken`'s; this module only chooses the key (by `kid`), says which algorithms a key may
//! verify (those allowed by the settings *and* of the key's own family, so an RSA public key can never be used as
//! an HMAC secret), and turns the claims into a [`Principal`].

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::settings::JwtSettings;
use super::{AuthError, Principal};

/// How JWT principals are labelled in the audit log.
pub const JWT_AUTHN: &str = "jwt";

/// Longest `sub` accepted as a principal id.
const MAX_ID_LEN: usize = 256;

/// Checks bearer tokens against one issuer's keys.
pub struct JwtAuthenticator {
    keys: Vec<Key>,
    groups_claim: String,
    kind_claim: Option<String>,
}

struct Key {
    kid: Option<String>,
    decoding: DecodingKey,
    /// The settings' checks, narrowed to the algorithms this key can verify.
    validation: Validation,
}

/// A JWKS that cannot serve: unreadable, not a key set, or holding no key usable with the allowed algorithms.
#[derive(Debug, thiserror::Error)]
#[error("auth.jwt: {0}")]
pub struct JwksError(String);

impl JwtAuthenticator {
    /// Checks the keys of `read` (the text of `settings.jwks_file`, or why it could not be read), naming the file
    /// in any refusal.
    pub fn checked(settings: &JwtSettings, read: Result<String, String>) -> Result<JwtAuthenticator, JwksError> {
        let text = read.map_err(JwksError)?;
        JwtAuthenticator::new(settings, &text)
            .map_err(|JwksError(reason)| JwksError(format!("{reason} (jwks_file {})", settings.jwks_file.display())))
    }

    /// Checks tokens against the keys of `jwks` (the JSON text of a JWK set).
    pub fn new(settings: &JwtSettings, jwks: &str) -> Result<JwtAuthenticator, JwksError> {
        if settings.issuer.is_empty() {
            return Err(JwksError("issuer is required".into()));
        }
        if settings.audience.is_empty() || settings.audience.iter().any(String::is_empty) {
            return Err(JwksError("audience must list at least one non-empty value".into()));
        }
        if settings.algorithms.is_empty() {
            return Err(JwksError("algorithms must list at least one algorithm".into()));
        }
        let set: JwkSet = serde_json::from_str(jwks).map_err(|e| JwksError(format!("not a JSON Web Key Set: {e}")))?;
        let mut keys = Vec::new();
        for (index, jwk) in set.keys.iter().enumerate() {
            if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
                continue;
            }
            let name = jwk.common.key_id.clone().unwrap_or_else(|| format!("#{index}"));
            let decoding = DecodingKey::from_jwk(jwk)
                .map_err(|e| JwksError(format!("key {name} cannot verify signatures: {e}")))?;
            let algorithms: Vec<Algorithm> = settings
                .algorithms
                .iter()
                .copied()
                .filter(|alg| alg.family() == decoding.family())
                .filter(|alg| {
                    jwk.common.key_algorithm.is_none_or(|named| Algorithm::try_from(named).ok() == Some(*alg))
                })
                .collect();
            if algorithms.is_empty() {
                // A key the settings' algorithms cannot use: tokens it signed are refused as "unknown key".
                continue;
            }
            let mut validation = Validation::new(algorithms[0]);
            validation.algorithms = algorithms;
            validation.set_issuer(&[&settings.issuer]);
            validation.set_audience(&settings.audience);
            validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
            validation.validate_nbf = true;
            validation.leeway = settings.leeway_secs;
            keys.push(Key { kid: jwk.common.key_id.clone(), decoding, validation });
        }
        if keys.is_empty() {
            return Err(JwksError(format!(
                "no signing key usable with the allowed algorithms {:?}",
                settings.algorithms
            )));
        }
        Ok(JwtAuthenticator {
            keys,
            groups_claim: settings.groups_claim.clone(),
            kind_claim: settings.kind_claim.clone(),
        })
    }

    /// The caller `token` names, once its signature, issuer, audience and validity window are checked.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let refuse = |message: String| AuthError::new(JWT_AUTHN, message);
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| refuse(format!("the bearer token is not a JWT: {e}")))?;
        let key = match &header.kid {
            Some(kid) => self.keys.iter().find(|k| k.kid.as_deref() == Some(kid)),
            None if self.keys.len() == 1 => self.keys.first(),
            None => return Err(refuse("the token names no key (kid) and the key set holds several".into())),
        }
        .ok_or_else(|| refuse(format!("the token is signed by an unknown key {:?}", header.kid.unwrap_or_default())))?;
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, &key.validation)
            .map_err(|e| refuse(explain(e.kind())))?
            .claims;
        self.principal(&claims).map_err(refuse)
    }

    fn principal(&self, claims: &Map<String, Value>) -> Result<Principal, String> {
        let id = claims.get("sub").and_then(Value::as_str).unwrap_or_default();
        if id.is_empty() || id.len() > MAX_ID_LEN || id.chars().any(char::is_control) {
            return Err(format!("the token's sub must be 1 to {MAX_ID_LEN} printable characters"));
        }
        let groups = match claims.get(&self.groups_claim) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|g| g.as_str().filter(|g| !g.is_empty()).map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| format!("the token's {} claim must be an array of strings", self.groups_claim))?,
            Some(_) => return Err(format!("the token's {} claim must be an array of strings", self.groups_claim)),
        };
        let kind = self.kind_claim.as_ref().and_then(|claim| claims.get(claim).map(|value| (claim, value)));
        match kind {
            None => Ok(Principal::new(id, groups, JWT_AUTHN)),
            Some((_, Value::String(kind))) if kind == "user" => Ok(Principal::new(id, groups, JWT_AUTHN)),
            Some((_, Value::String(kind))) if kind == "service" => Ok(Principal::service(id, groups, JWT_AUTHN)),
            Some((claim, _)) => Err(format!("the token's {claim} claim must be \"user\" or \"service\"")),
        }
    }
}

/// The bearer token of `authorization`, if the call has one.
pub fn bearer_token(headers: &http::HeaderMap) -> Result<Option<&str>, AuthError> {
    let Some(value) = headers.get(http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let refuse = || AuthError::new(JWT_AUTHN, "authorization must be \"Bearer <JWT>\"");
    let value = value.to_str().map_err(|_| refuse())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(refuse)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(refuse());
    }
    Ok(Some(token))
}

/// What the caller is told about a token that failed a check: which check, never the key or the claims.
fn explain(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::ExpiredSignature => "the token has expired (exp)".into(),
        ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".into(),
        ErrorKind::InvalidIssuer => "the token's issuer (iss) is not accepted".into(),
        ErrorKind::InvalidAudience => "the token's audience (aud) is not accepted".into(),
        ErrorKind::InvalidSignature => "the token's signature does not verify".into(),
        ErrorKind::InvalidAlgorithm => "the token's signature algorithm is not accepted for its key".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("the token has no {claim} claim"),
        ErrorKind::InvalidClaimFormat(claim) => format!("the token's {claim} claim is malformed"),
        _ => "the token is malformed".into(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{SystemTime, UNIX_EPOCH};

    use jsonwebtoken::jwk::Jwk;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    use super::*;
    use crate::auth::PrincipalKind;

    /// An ES256 signing key and the JWKS that publishes its public half as `kid`.
    struct Signer {
        key: EncodingKey,
        kid: String,
        jwks: String,
    }

    impl Signer {
        fn new(kid: &str) -> Signer {
            let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
            let key = EncodingKey::from_ec_der(&pair.serialize_der());
            let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap();
            jwk.common.key_id = Some(kid.into());
            let jwks = serde_json::to_string(&JwkSet { keys: vec![jwk] }).unwrap();
            Signer { key, kid: kid.into(), jwks }
        }

        fn sign(&self, claims: &Value) -> String {
            let mut header = Header::new(Algorithm::ES256);
            header.kid = Some(self.kid.clone());
            jsonwebtoken::encode(&header, claims, &self.key).unwrap()
        }
    }

    fn now() -> i64 {
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
    }

    fn settings() -> JwtSettings {
        JwtSettings {
            jwks_file: "unused".into(),
            issuer: "https://idp.example".into(),
            audience: vec!["modelcopy".into()],
            groups_claim: "groups".into(),
            kind_claim: Some("kind".into()),
            leeway_secs: 5,
            algorithms: vec![Algorithm::ES256],
            reload_interval_ms: 0,
        }
    }

    fn claims() -> Value {
        json!({
            "sub": "alice@example.com",
            "iss": "https://idp.example",
            "aud": "modelcopy",
            "exp": now() + 600,
            "nbf": now() - 10,
            "groups": ["team-a", "ops"],
        })
    }

    fn with(changes: Value) -> Value {
        let mut claims = claims();
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                claims.as_object_mut().unwrap().remove(k);
            } else {
                claims[k] = v.clone();
            }
        }
        claims
    }

    fn verify(signer: &Signer, claims: &Value) -> Result<Principal, AuthError> {
        JwtAuthenticator::new(&settings(), &signer.jwks).unwrap().verify(&signer.sign(claims))
    }

    #[test]
    fn a_good_token_names_its_subject_and_groups() {
        let principal = verify(&Signer::new("k1"), &claims()).unwrap();
        assert_eq!(principal.id(), "alice@example.com");
        assert_eq!(principal.groups(), ["team-a", "ops"]);
        assert_eq!(principal.kind(), PrincipalKind::User);
        assert_eq!(principal.authn(), "jwt");
    }

    #[test]
    fn the_kind_claim_makes_a_service() {
        let principal = verify(&Signer::new("k1"), &with(json!({"kind": "service"}))).unwrap();
        assert_eq!(principal.kind(), PrincipalKind::Service);
        let err = verify(&Signer::new("k1"), &with(json!({"kind": "robot"}))).unwrap_err();
        assert!(err.message.contains("kind"), "{err}");
    }

    #[test]
    fn an_expired_token_is_refused() {
        let err = verify(&Signer::new("k1"), &with(json!({"exp": now() - 60}))).unwrap_err();
        assert!(err.message.contains("expired"), "{err}");
        assert_eq!(err.authn, "jwt");
    }

    #[test]
    fn a_token_not_yet_valid_is_refused() {
        let err = verify(&Signer::new("k1"), &with(json!({"nbf": now() + 600}))).unwrap_err();
        assert!(err.message.contains("not valid yet"), "{err}");
    }

    #[test]
    fn the_leeway_tolerates_a_little_skew() {
        assert!(verify(&Signer::new("k1"), &with(json!({"exp": now() - 2}))).is_ok());
    }

    #[test]
    fn another_issuer_or_audience_is_refused() {
        let err = verify(&Signer::new("k1"), &with(json!({"iss": "https://evil.example"}))).unwrap_err();
        assert!(err.message.contains("issuer"), "{err}");
        let err = verify(&Signer::new("k1"), &with(json!({"aud": "other-service"}))).unwrap_err();
        assert!(err.message.contains("audience"), "{err}");
        assert!(verify(&Signer::new("k1"), &with(json!({"aud": ["other", "modelcopy"]}))).is_ok());
    }

    #[test]
    fn required_claims_must_be_there() {
        for claim in ["sub", "exp", "iss", "aud"] {
            let err = verify(&Signer::new("k1"), &with(json!({ claim: null }))).unwrap_err();
            assert!(err.message.contains(claim), "{claim}: {err}");
        }
    }

    #[test]
    fn a_token_signed_by_another_key_is_refused() {
        let trusted = Signer::new("k1");
        let forger = Signer::new("k1");
        let err =
            JwtAuthenticator::new(&settings(), &trusted.jwks).unwrap().verify(&forger.sign(&claims())).unwrap_err();
        assert!(err.message.contains("signature"), "{err}");
    }

    #[test]
    fn an_unknown_key_id_is_refused() {
        let trusted = Signer::new("k1");
        let other = Signer::new("k2");
        let err =
            JwtAuthenticator::new(&settings(), &trusted.jwks).unwrap().verify(&other.sign(&claims())).unwrap_err();
        assert!(err.message.contains("unknown key"), "{err}");
    }

    #[test]
    fn an_algorithm_not_allowed_is_refused() {
        let signer = Signer::new("k1");
        let settings = JwtSettings { algorithms: vec![Algorithm::ES384, Algorithm::RS256], ..settings() };
        // No key of the set can verify an allowed algorithm: the settings are refused at start-up.
        assert!(JwtAuthenticator::new(&settings, &signer.jwks).is_err());
        // An HMAC token "signed" with the public key's bytes never verifies against the EC key.
        let hs = jsonwebtoken::encode(
            &Header { kid: Some("k1".into()), ..Header::new(Algorithm::HS256) },
            &claims(),
            &EncodingKey::from_secret(signer.jwks.as_bytes()),
        )
        .unwrap();
        let err = JwtAuthenticator::new(&self::settings(), &signer.jwks).unwrap().verify(&hs).unwrap_err();
        assert!(err.message.contains("algorithm"), "{err}");
    }

    #[test]
    fn groups_must_be_strings() {
        let err = verify(&Signer::new("k1"), &with(json!({"groups": "ops"}))).unwrap_err();
        assert!(err.message.contains("groups"), "{err}");
        let principal = verify(&Signer::new("k1"), &with(json!({"groups": null}))).unwrap();
        assert!(principal.groups().is_empty());
    }

    #[test]
    fn garbage_is_not_a_token() {
        let auth = JwtAuthenticator::new(&settings(), &Signer::new("k1").jwks).unwrap();
        assert!(auth.verify("not-a-jwt").unwrap_err().message.contains("not a JWT"));
    }

    #[test]
    fn the_bearer_scheme_is_read() {
        let headers = |value: &str| {
            let mut h = http::HeaderMap::new();
            h.insert(http::header::AUTHORIZATION, value.parse().unwrap());
            h
        };
        assert_eq!(bearer_token(&headers("Bearer abc")).unwrap(), Some("abc"));
        assert_eq!(bearer_token(&headers("bearer abc")).unwrap(), Some("abc"));
        assert!(bearer_token(&headers("Basic YWxhZGRpbjpvcGVuc2VzYW1l")).is_err());
        assert!(bearer_token(&headers("Bearer ")).is_err());
        assert_eq!(bearer_token(&http::HeaderMap::new()).unwrap(), None);
    }

    #[test]
    fn bad_key_sets_are_refused_at_start_up() {
        assert!(JwtAuthenticator::new(&settings(), "{").is_err());
        assert!(JwtAuthenticator::new(&settings(), r#"{"keys": []}"#).is_err());
        let signer = Signer::new("k1");
        assert!(JwtAuthenticator::new(&JwtSettings { audience: vec![], ..settings() }, &signer.jwks).is_err());
    }
}
