//! Reading a source project's policies as Rekognition does, for one question: may this account copy this version?
//!
//! Project policies are IAM resource policies: a matching `Deny` wins, else a matching `Allow` allows, else the copy
//! is refused. A statement matches when its `Principal` names the account (`"*"`, the 12-digit id, or an IAM ARN in
//! that account), its `Action` covers `rekognition:CopyProjectVersion` (IAM's `*` and `?`, case-insensitive) and
//! its `Resource` covers the version's ARN (wildcards, case-sensitive). `NotPrincipal`, `NotAction` and
//! `NotResource` are not allowed in project policies, so a statement using one matches nothing here.
//!
//! A `Condition` needs IAM's request context, which the service does not have: such a statement is "maybe". The
//! answer is then [`Reading::Uncertain`], and preflight lets the copy go (refusing only what is certain to fail).
//! This is the service's own reading, written apart from the simulator's (`simulator::policy`): the tests set one
//! against the other.

use serde_json::Value;

use crate::domain::{AccountId, ProjectVersionArn};

/// The action a copy needs.
pub const COPY_ACTION: &str = "rekognition:CopyProjectVersion";

/// What the policies say of a copy by one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reading {
    Allowed,
    /// A statement denies it.
    Denied {
        statement: Option<String>,
    },
    /// No statement allows it.
    NotAllowed,
    /// It hangs on a Condition the service cannot evaluate.
    Uncertain,
}

#[derive(PartialEq)]
enum Effect {
    Allow,
    Deny,
}

/// Reads `documents` (a project's policy documents, as ListProjectPolicies returns them) for a copy of `version` by
/// `account`. A document that does not parse is skipped: Rekognition refuses malformed ones when they are put.
pub fn read(documents: &[String], account: &AccountId, version: &ProjectVersionArn) -> Reading {
    let (mut allowed, mut maybe) = (false, false);
    for document in documents {
        let Ok(document) = serde_json::from_str::<Value>(document) else { continue };
        let statements = match &document["Statement"] {
            Value::Array(statements) => statements.iter().collect(),
            statement @ Value::Object(_) => vec![statement],
            _ => continue,
        };
        for statement in statements {
            let effect = match statement["Effect"].as_str().map(str::to_ascii_lowercase).as_deref() {
                Some("allow") => Effect::Allow,
                Some("deny") => Effect::Deny,
                _ => continue,
            };
            let applies = names_account(&statement["Principal"], account)
                && any_text(&statement["Action"], |pattern| {
                    wildcard(&pattern.to_ascii_lowercase(), &COPY_ACTION.to_ascii_lowercase())
                })
                && any_text(&statement["Resource"], |pattern| wildcard(pattern, version.as_str()));
            if !applies {
                continue;
            }
            let conditional = statement.get("Condition").is_some_and(|c| !c.is_null());
            match (effect, conditional) {
                (Effect::Deny, false) => {
                    let sid = statement["Sid"].as_str().map(str::to_owned);
                    return Reading::Denied { statement: sid };
                }
                (Effect::Allow, false) => allowed = true,
                (_, true) => maybe = true,
            }
        }
    }
    match (allowed, maybe) {
        (_, true) => Reading::Uncertain,
        (true, false) => Reading::Allowed,
        (false, false) => Reading::NotAllowed,
    }
}

/// The statement that would let `account` copy `version`, as a caller would add it to the source project's policy.
pub fn statement_to_add(account: &AccountId, version: &ProjectVersionArn) -> String {
    serde_json::json!({
        "Effect": "Allow",
        "Principal": { "AWS": format!("arn:aws:iam::{account}:root") },
        "Action": COPY_ACTION,
        "Resource": version.as_str(),
    })
    .to_string()
}

/// `"*"`, or `{"AWS": …}` with a value (or one of a list) that is `"*"`, the account id, or an IAM ARN in it.
fn names_account(principal: &Value, account: &AccountId) -> bool {
    match principal {
        Value::String(all) => all == "*",
        Value::Object(kinds) => any_text(kinds.get("AWS").unwrap_or(&Value::Null), |name| {
            name == "*" || name == account.as_str() || name.split(':').nth(4) == Some(account.as_str())
        }),
        _ => false,
    }
}

/// Whether `value` (a string or a list of strings) has one for which `test` holds.
fn any_text(value: &Value, test: impl Fn(&str) -> bool) -> bool {
    match value {
        Value::String(text) => test(text),
        Value::Array(items) => items.iter().filter_map(Value::as_str).any(test),
        _ => false,
    }
}

/// IAM's wildcard match: `*` any run of characters, `?` any one.
fn wildcard(pattern: &str, text: &str) -> bool {
    let (pattern, text): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // The last `*` seen (its position in the pattern, and where in the text it started matching).
    let (mut p, mut t, mut star): (usize, usize, Option<(usize, usize)>) = (0, 0, None);
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            (p, t) = (p + 1, t + 1);
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            // Let the last `*` take one more character.
            (p, t) = (star_p + 1, star_t + 1);
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERSION: &str = "arn:aws:rekognition:us-east-1:111111111111:project/detector/version/v1/1700000000000";

    fn version() -> ProjectVersionArn {
        ProjectVersionArn::parse(VERSION).unwrap()
    }

    fn account(id: &str) -> AccountId {
        AccountId::parse(id).unwrap()
    }

    fn policy(statements: Value) -> Vec<String> {
        vec![serde_json::json!({ "Version": "2012-10-17", "Statement": statements }).to_string()]
    }

    #[test]
    fn an_allow_naming_the_account_in_any_form_allows() {
        for principal in [
            serde_json::json!({"AWS": "arn:aws:iam::222222222222:root"}),
            serde_json::json!({"AWS": ["333333333333", "222222222222"]}),
            serde_json::json!({"AWS": "arn:aws:iam::222222222222:role/Deployer"}),
            serde_json::json!("*"),
        ] {
            let documents = policy(serde_json::json!([{
                "Effect": "Allow", "Principal": principal, "Action": "rekognition:Copy*",
                "Resource": "arn:aws:rekognition:us-east-1:111111111111:project/detector/version/*",
            }]));
            assert_eq!(read(&documents, &account("222222222222"), &version()), Reading::Allowed, "{documents:?}");
        }
    }

    #[test]
    fn another_account_another_action_or_resource_is_not_allowed() {
        let statement = |principal: &str, action: &str, resource: &str| {
            policy(
                serde_json::json!({"Effect": "Allow", "Principal": {"AWS": principal}, "Action": action, "Resource": resource}),
            )
        };
        let me = account("222222222222");
        for documents in [
            statement("333333333333", COPY_ACTION, "*"),
            statement("222222222222", "rekognition:DetectLabels", "*"),
            statement("222222222222", COPY_ACTION, "arn:aws:rekognition:us-east-1:111111111111:project/other/*"),
            vec!["not json".to_owned()],
            vec![],
        ] {
            assert_eq!(read(&documents, &me, &version()), Reading::NotAllowed, "{documents:?}");
        }
    }

    #[test]
    fn a_deny_wins_and_a_condition_makes_it_uncertain() {
        let me = account("222222222222");
        let documents = policy(serde_json::json!([
            {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"},
            {"Sid": "NoProd", "Effect": "Deny", "Principal": {"AWS": "222222222222"}, "Action": COPY_ACTION, "Resource": "*"},
        ]));
        assert_eq!(read(&documents, &me, &version()), Reading::Denied { statement: Some("NoProd".into()) });
        let documents = policy(serde_json::json!({
            "Effect": "Allow", "Principal": "*", "Action": COPY_ACTION, "Resource": "*",
            "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-123"}},
        }));
        assert_eq!(read(&documents, &me, &version()), Reading::Uncertain);
    }

    #[test]
    fn wildcards_match_as_iam_does() {
        assert!(wildcard("a*c", "abbbc") && wildcard("a*", "a") && wildcard("*", "") && wildcard("a?c", "abc"));
        assert!(wildcard("*b*b", "abab") && !wildcard("a?c", "ac") && !wildcard("a*d", "abc") && !wildcard("", "a"));
    }

    #[test]
    fn the_statement_to_add_allows_exactly_the_copy() {
        let me = account("222222222222");
        let statement: Value = serde_json::from_str(&statement_to_add(&me, &version())).unwrap();
        let documents = policy(serde_json::json!([statement]));
        assert_eq!(read(&documents, &me, &version()), Reading::Allowed);
        assert_eq!(read(&documents, &account("333333333333"), &version()), Reading::NotAllowed);
    }
}
