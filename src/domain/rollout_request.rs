//! A whole `CreateRollout` request: one source version, many destinations, each destination a [`CopyRequest`]
//! of its own made from its fields and the rollout's defaults, and checked exactly as CopyModelVersion checks one.
//!
//! Violations name the field the caller wrote: `destinations[2].version_name` for a destination's own value,
//! `defaults.version_name` for a default (once, however many destinations take it), `source_project_arn` once.

use std::collections::{BTreeMap, HashMap};

use sha2::{Digest as _, Sha256};

use super::{CopyRequest, FieldViolation, IdempotencyToken, RawCopyRequest, RawOutputConfig};

/// One destination as the caller sent it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawRolloutDestination {
    pub destination_project_arn: String,
    /// `""` = the default's.
    pub version_name: String,
    /// `None` = the default's.
    pub output_config: Option<RawOutputConfig>,
    /// Empty = the default's.
    pub tags: BTreeMap<String, String>,
    /// `None` or `Some("")` = the default's.
    pub kms_key_id: Option<String>,
}

/// The rollout's defaults as the caller sent them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawRolloutDefaults {
    pub version_name: String,
    pub output_config: Option<RawOutputConfig>,
    pub tags: BTreeMap<String, String>,
    pub kms_key_id: Option<String>,
}

/// The request exactly as the caller sent it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawRolloutRequest {
    pub source_project_arn: String,
    pub source_project_version_arn: String,
    pub defaults: RawRolloutDefaults,
    pub destinations: Vec<RawRolloutDestination>,
    /// `""` = none.
    pub idempotency_token: String,
    /// As [`RawCopyRequest::delete_after`], for every copy.
    pub delete_after: Option<(i64, i32)>,
}

/// A rollout in which every destination is a valid copy request and no two copies collide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutRequest {
    copies: Vec<CopyRequest>,
    idempotency_token: Option<IdempotencyToken>,
}

/// Which of a destination's fields came from the defaults (so that their violations name the default).
#[derive(Default)]
struct Defaulted {
    version_name: bool,
    output_config: bool,
    tags: bool,
    kms_key_id: bool,
}

impl RolloutRequest {
    /// The most destinations one rollout may name.
    pub const MAX_DESTINATIONS: usize = 100;

    pub fn parse(raw: RawRolloutRequest) -> Result<RolloutRequest, Vec<FieldViolation>> {
        let mut violations: Vec<FieldViolation> = Vec::new();
        let idempotency_token = if raw.idempotency_token.is_empty() {
            None
        } else {
            IdempotencyToken::parse(raw.idempotency_token)
                .map_err(|e| violations.push(FieldViolation::from_error("idempotency_token", e)))
                .ok()
        };
        match raw.destinations.len() {
            0 => violations.push(FieldViolation::new("destinations", "needs at least one destination")),
            n if n > Self::MAX_DESTINATIONS => violations.push(FieldViolation::new(
                "destinations",
                format!("may name at most {} destinations (got {n})", Self::MAX_DESTINATIONS),
            )),
            _ => {}
        }
        let defaults = raw.defaults;
        let mut copies = Vec::with_capacity(raw.destinations.len());
        let mut seen: HashMap<(String, String), usize> = HashMap::new();
        for (i, destination) in raw.destinations.into_iter().enumerate().take(Self::MAX_DESTINATIONS) {
            let defaulted = Defaulted {
                version_name: destination.version_name.is_empty() && !defaults.version_name.is_empty(),
                output_config: destination.output_config.is_none() && defaults.output_config.is_some(),
                tags: destination.tags.is_empty() && !defaults.tags.is_empty(),
                kms_key_id: destination.kms_key_id.as_deref().unwrap_or_default().is_empty()
                    && !defaults.kms_key_id.as_deref().unwrap_or_default().is_empty(),
            };
            let copy = RawCopyRequest {
                source_project_arn: raw.source_project_arn.clone(),
                source_project_version_arn: raw.source_project_version_arn.clone(),
                destination_project_arn: destination.destination_project_arn,
                version_name: if defaulted.version_name {
                    defaults.version_name.clone()
                } else {
                    destination.version_name
                },
                output_config: if defaulted.output_config {
                    defaults.output_config.clone()
                } else {
                    destination.output_config
                },
                tags: if defaulted.tags { defaults.tags.clone() } else { destination.tags },
                kms_key_id: if defaulted.kms_key_id { defaults.kms_key_id.clone() } else { destination.kms_key_id },
                idempotency_token: String::new(),
                delete_after: raw.delete_after,
            };
            match CopyRequest::parse(copy) {
                Ok(copy) => {
                    let key = (copy.destination_project().to_string(), copy.version_name().to_string());
                    if let Some(first) = seen.insert(key, i) {
                        violations.push(FieldViolation::new(
                            format!("destinations[{i}].version_name"),
                            format!("names the same project and version as destinations[{first}]"),
                        ));
                    }
                    copies.push(copy);
                }
                Err(found) => {
                    for violation in found {
                        if let Some(field) = place(&violation.field, i, &defaulted) {
                            let violation = FieldViolation::new(field, violation.description);
                            if !violations.contains(&violation) {
                                violations.push(violation);
                            }
                        }
                    }
                }
            }
        }
        if violations.is_empty() {
            Ok(RolloutRequest { copies, idempotency_token })
        } else {
            Err(violations)
        }
    }

    /// One copy per destination, in the request's order.
    pub fn copies(&self) -> &[CopyRequest] {
        &self.copies
    }

    pub fn idempotency_token(&self) -> Option<&IdempotencyToken> {
        self.idempotency_token.as_ref()
    }

    /// The first copy: every copy shares its source and `delete_after`.
    fn first(&self) -> &CopyRequest {
        &self.copies[0]
    }

    pub fn source_project(&self) -> &super::ProjectArn {
        self.first().source_project()
    }

    pub fn source_version(&self) -> &super::ProjectVersionArn {
        self.first().source_version()
    }

    pub fn delete_after(&self) -> Option<super::DeleteAfter> {
        self.first().delete_after()
    }

    /// SHA-256 over the number of copies and each copy's digest in order (every parameter but the token): a
    /// retry with the same token must name the same destinations, in the same order, with the same fields.
    pub fn digest(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(b"modelcopy.RolloutRequest.v1");
        hasher.update((self.copies.len() as u64).to_be_bytes());
        for copy in &self.copies {
            hasher.update(copy.digest());
        }
        hasher.finalize().into()
    }

    /// Key fields as JSON for the audit log: the source once, then each destination's own fields.
    pub fn to_json(&self) -> serde_json::Value {
        let destinations: Vec<serde_json::Value> = self
            .copies
            .iter()
            .map(|copy| {
                serde_json::json!({
                    "destination_project_arn": copy.destination_project(),
                    "version_name": copy.version_name(),
                    "output_config": copy.output_config(),
                    "tags": copy.tags(),
                    "kms_key_id": copy.kms_key_id(),
                })
            })
            .collect();
        serde_json::json!({
            "source_project_arn": self.source_project(),
            "source_project_version_arn": self.source_version(),
            "delete_after": self.delete_after(),
            "idempotency_token": self.idempotency_token,
            "destinations": destinations,
        })
    }
}

/// Where a violation of destination `i`'s copy request belongs in the rollout request; `None` for a rule of the
/// shared source, reported with the first destination only.
fn place(field: &str, i: usize, defaulted: &Defaulted) -> Option<String> {
    let own = |field: &str| Some(format!("destinations[{i}].{field}"));
    let default = |field: &str| Some(format!("defaults.{field}"));
    let pick = |from_default: bool| if from_default { default(field) } else { own(field) };
    match field {
        "source_project_arn" | "source_project_version_arn" | "delete_after" => (i == 0).then(|| field.to_owned()),
        "version_name" => pick(defaulted.version_name),
        "kms_key_id" => pick(defaulted.kms_key_id),
        _ if field.starts_with("output_config") => pick(defaulted.output_config),
        _ if field.starts_with("tags") => pick(defaulted.tags),
        _ => own(field),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = "arn:aws:rekognition:us-east-1:111122223333:project/SourceProject/16565123456";
    const VERSION: &str =
        "arn:aws:rekognition:us-east-1:111122223333:project/SourceProject/version/model_1/1656611123456";

    fn destination(account: &str) -> RawRolloutDestination {
        RawRolloutDestination {
            destination_project_arn: format!("arn:aws:rekognition:us-east-1:{account}:project/Prod/1656705098765"),
            ..Default::default()
        }
    }

    fn valid() -> RawRolloutRequest {
        RawRolloutRequest {
            source_project_arn: SOURCE.into(),
            source_project_version_arn: VERSION.into(),
            defaults: RawRolloutDefaults {
                version_name: "v7".into(),
                output_config: Some(RawOutputConfig { s3_bucket: "bucket".into(), s3_key_prefix: String::new() }),
                tags: [("team".to_string(), "vision".to_string())].into(),
                kms_key_id: None,
            },
            destinations: vec![destination("555555555555"), destination("666666666666")],
            idempotency_token: "rollout-1".into(),
            delete_after: None,
        }
    }

    fn fields(raw: RawRolloutRequest) -> Vec<String> {
        RolloutRequest::parse(raw).unwrap_err().into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn destinations_take_the_defaults_unless_they_say_otherwise() {
        let mut raw = valid();
        raw.destinations[1].version_name = "v7-eu".into();
        raw.destinations[1].tags = [("team".to_string(), "eu".to_string())].into();
        raw.delete_after = Some((3600, 0));
        let rollout = RolloutRequest::parse(raw).unwrap();
        let [a, b] = rollout.copies() else { panic!("two copies") };
        assert_eq!((a.version_name().as_str(), b.version_name().as_str()), ("v7", "v7-eu"));
        assert_eq!(a.tags().get("team").unwrap().as_str(), "vision");
        assert_eq!(b.tags().get("team").unwrap().as_str(), "eu");
        assert_eq!(b.output_config().bucket().as_str(), "bucket");
        assert_eq!(b.destination_account().as_str(), "666666666666");
        assert!(a.idempotency_token().is_none(), "the rollout's token is not a copy's");
        assert_eq!(b.delete_after().unwrap().as_secs(), 3600);
        assert_eq!(rollout.to_json()["destinations"][1]["version_name"], "v7-eu");
    }

    #[test]
    fn violations_name_the_field_the_caller_wrote_once() {
        let mut raw = valid();
        raw.defaults.version_name = "bad name".into();
        raw.destinations[1].output_config = Some(RawOutputConfig { s3_bucket: "b".into(), s3_key_prefix: "".into() });
        raw.source_project_arn = "not an arn".into();
        raw.delete_after = Some((0, 0));
        assert_eq!(
            fields(raw),
            ["source_project_arn", "defaults.version_name", "delete_after", "destinations[1].output_config.s3_bucket"]
        );
    }

    #[test]
    fn a_field_missing_everywhere_is_named_on_the_destination() {
        let mut raw = valid();
        raw.defaults.version_name.clear();
        raw.destinations[0].version_name = "own".into();
        assert_eq!(fields(raw), ["destinations[1].version_name"]);
    }

    #[test]
    fn no_destinations_too_many_or_the_same_twice_is_refused() {
        let mut raw = valid();
        raw.destinations.clear();
        assert_eq!(fields(raw), ["destinations"]);
        let mut raw = valid();
        raw.destinations = vec![destination("555555555555"); RolloutRequest::MAX_DESTINATIONS + 1];
        assert!(fields(raw).contains(&"destinations".to_owned()));
        let mut raw = valid();
        raw.destinations.push(destination("555555555555"));
        let violations = RolloutRequest::parse(raw).unwrap_err();
        assert_eq!(violations[0].field, "destinations[2].version_name");
        assert!(violations[0].description.contains("destinations[0]"), "{violations:?}");
    }

    #[test]
    fn the_digest_covers_every_destination_and_its_order_not_the_token() {
        let base = RolloutRequest::parse(valid()).unwrap().digest();
        let mut other_token = valid();
        other_token.idempotency_token = "rollout-2".into();
        assert_eq!(RolloutRequest::parse(other_token).unwrap().digest(), base);
        let mut swapped = valid();
        swapped.destinations.reverse();
        assert_ne!(RolloutRequest::parse(swapped).unwrap().digest(), base);
        let mut fewer = valid();
        fewer.destinations.pop();
        assert_ne!(RolloutRequest::parse(fewer).unwrap().digest(), base);
        let mut expiring = valid();
        expiring.delete_after = Some((60, 0));
        assert_ne!(RolloutRequest::parse(expiring).unwrap().digest(), base);
    }
}
