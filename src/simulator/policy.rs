//! Project policies: the resource-based policies that let another account copy a project's model versions.
//!
//! A project policy is an IAM policy document attached to the *source* project. AWS's rules for them: `Effect`,
//! `Principal`, `Action` and `Resource` are required in every statement; the only supported action is
//! `rekognition:CopyProjectVersion`; `NotAction`, `NotResource` and `NotPrincipal` are prohibited. Anything else
//! is refused with `MalformedPolicyDocumentException` when the policy is put, so evaluation only meets valid ones.
//!
//! Evaluation follows IAM: an explicit `Deny` that matches wins; otherwise a matching `Allow` allows. The
//! simulator knows accounts, not IAM users or roles, so a principal matches when it names the caller's account in
//! any form (`"222222222222"`, `arn:aws:iam::222222222222:root`, `...:role/Admin`) or is `"*"`. Resources are
//! matched against the source model version's ARN with IAM's wildcards (`*`, `?`). Conditions cannot be evaluated
//! without IAM's request context, so the simulator takes the strict reading: a `Deny` with a `Condition` applies,
//! an `Allow` with a `Condition` does not.

use serde_json::{Map, Value};

use super::error::{ApiError, ErrorCode};

/// The one action a project policy can grant.
pub const COPY_ACTION: &str = "rekognition:CopyProjectVersion";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Principal {
    Everyone,
    Account(String),
    /// A principal of another kind (`Service`, `Federated`, ...): valid, but never the calling account.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Statement {
    effect: Effect,
    principals: Vec<Principal>,
    actions: Vec<String>,
    resources: Vec<String>,
    conditional: bool,
}

/// A parsed, valid project policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDocument {
    statements: Vec<Statement>,
}

/// What the policies of a project say about one copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    ExplicitDeny,
    Allowed,
    NotAllowed,
}

impl PolicyDocument {
    /// Parses and checks a policy document, as `PutProjectPolicy` does.
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|err| malformed(&format!("The policy document is not valid JSON: {err}")))?;
        let Value::Object(document) = value else {
            return Err(malformed("The policy document must be a JSON object."));
        };
        for key in document.keys() {
            if !["Version", "Id", "Statement"].contains(&key.as_str()) {
                return Err(malformed(&format!("Unknown policy element {key:?}.")));
            }
        }
        if let Some(version) = document.get("Version") {
            if !matches!(version.as_str(), Some("2012-10-17" | "2008-10-17")) {
                return Err(malformed("The policy Version must be \"2012-10-17\"."));
            }
        }
        let statements = match document.get("Statement") {
            Some(Value::Object(statement)) => vec![statement],
            Some(Value::Array(list)) if !list.is_empty() => list
                .iter()
                .map(|item| item.as_object().ok_or_else(|| malformed("Each policy statement must be a JSON object.")))
                .collect::<Result<_, _>>()?,
            _ => return Err(malformed("The policy document must have at least one Statement.")),
        };
        Ok(PolicyDocument { statements: statements.into_iter().map(parse_statement).collect::<Result<_, _>>()? })
    }

    fn statements_matching<'a>(
        &'a self,
        caller_account: &'a str,
        resource: &'a str,
    ) -> impl Iterator<Item = &'a Statement> + 'a {
        self.statements.iter().filter(move |statement| {
            statement.principals.iter().any(|principal| match principal {
                Principal::Everyone => true,
                Principal::Account(account) => account == caller_account,
                Principal::Other => false,
            }) && statement
                .actions
                .iter()
                .any(|action| glob_matches(&action.to_ascii_lowercase(), &COPY_ACTION.to_ascii_lowercase()))
                && statement.resources.iter().any(|pattern| glob_matches(pattern, resource))
        })
    }
}

/// What `policies` say about `caller_account` copying the model version `resource`.
pub fn evaluate<'a>(
    policies: impl IntoIterator<Item = &'a PolicyDocument>,
    caller_account: &str,
    resource: &str,
) -> Verdict {
    let mut verdict = Verdict::NotAllowed;
    for policy in policies {
        for statement in policy.statements_matching(caller_account, resource) {
            match (statement.effect, statement.conditional) {
                (Effect::Deny, _) => return Verdict::ExplicitDeny,
                (Effect::Allow, false) => verdict = Verdict::Allowed,
                (Effect::Allow, true) => {}
            }
        }
    }
    verdict
}

/// A document that allows `trusted_account` to copy every model version of a project.
pub fn allow_copy_document(trusted_account: &str, source_project_arn_prefix: &str) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "AWS": format!("arn:aws:iam::{trusted_account}:root") },
            "Action": COPY_ACTION,
            "Resource": format!("{source_project_arn_prefix}/version/*/*"),
        }]
    })
    .to_string()
}

fn parse_statement(statement: &Map<String, Value>) -> Result<Statement, ApiError> {
    for key in statement.keys() {
        match key.as_str() {
            "Sid" | "Effect" | "Principal" | "Action" | "Resource" | "Condition" => {}
            "NotPrincipal" | "NotAction" | "NotResource" => {
                return Err(malformed(&format!("{key} is not allowed in a project policy.")))
            }
            _ => return Err(malformed(&format!("Unknown statement element {key:?}."))),
        }
    }
    let effect = match statement.get("Effect").and_then(Value::as_str) {
        Some(effect) if effect.eq_ignore_ascii_case("allow") => Effect::Allow,
        Some(effect) if effect.eq_ignore_ascii_case("deny") => Effect::Deny,
        _ => return Err(malformed("Each statement needs an Effect of Allow or Deny.")),
    };
    let principals = match statement.get("Principal") {
        Some(Value::String(star)) if star == "*" => vec![Principal::Everyone],
        Some(Value::Object(kinds)) if !kinds.is_empty() => {
            let mut principals = Vec::new();
            for (kind, names) in kinds {
                for name in strings(names, "Principal")? {
                    principals.push(if kind == "AWS" { aws_principal(&name)? } else { Principal::Other });
                }
            }
            principals
        }
        _ => return Err(malformed("Each statement needs a Principal.")),
    };
    let actions = strings(required(statement, "Action")?, "Action")?;
    if let Some(action) =
        actions.iter().find(|action| !glob_matches(&action.to_ascii_lowercase(), &COPY_ACTION.to_ascii_lowercase()))
    {
        return Err(malformed(&format!(
            "Action {action:?} is not supported: the only supported action is {COPY_ACTION}."
        )));
    }
    let resources = strings(required(statement, "Resource")?, "Resource")?;
    if let Some(resource) = resources.iter().find(|resource| *resource != "*" && !resource.starts_with("arn:")) {
        return Err(malformed(&format!("Resource {resource:?} is not an ARN.")));
    }
    Ok(Statement { effect, principals, actions, resources, conditional: statement.contains_key("Condition") })
}

fn required<'a>(statement: &'a Map<String, Value>, key: &str) -> Result<&'a Value, ApiError> {
    statement.get(key).ok_or_else(|| malformed(&format!("Each statement needs an {key}.")))
}

/// A string, or a non-empty list of strings.
fn strings(value: &Value, element: &str) -> Result<Vec<String>, ApiError> {
    let invalid = || malformed(&format!("{element} must be a string or a list of strings."));
    match value {
        Value::String(text) if !text.is_empty() => Ok(vec![text.clone()]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|item| item.as_str().filter(|text| !text.is_empty()).map(str::to_owned).ok_or_else(invalid))
            .collect(),
        _ => Err(invalid()),
    }
}

fn aws_principal(name: &str) -> Result<Principal, ApiError> {
    if name == "*" {
        return Ok(Principal::Everyone);
    }
    let account = if is_account_id(name) {
        Some(name)
    } else {
        // arn:<partition>:iam::<account>:<root | user/... | role/...>
        match name.splitn(6, ':').collect::<Vec<_>>()[..] {
            ["arn", _, "iam", "", account, resource] if is_account_id(account) && !resource.is_empty() => Some(account),
            _ => None,
        }
    };
    account
        .map(|account| Principal::Account(account.to_owned()))
        .ok_or_else(|| malformed(&format!("Invalid principal in policy: {name:?}.")))
}

fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}

fn malformed(message: &str) -> ApiError {
    ApiError::new(ErrorCode::MalformedPolicyDocument, message)
}

/// IAM's wildcard match: `*` is any run of characters (slashes included), `?` is any one character.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let (pattern, text): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Greedy match with one backtrack point: linear for the patterns policies use.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERSION: &str = "arn:aws:rekognition:us-east-1:111111111111:project/src/version/v1/1700000000000";
    const PROJECT: &str = "arn:aws:rekognition:us-east-1:111111111111:project/src/1690000000000";

    fn doc(statement: Value) -> String {
        serde_json::json!({"Version": "2012-10-17", "Statement": [statement]}).to_string()
    }

    fn allow(principal: &str, resource: &str) -> String {
        doc(serde_json::json!({
            "Effect": "Allow", "Principal": {"AWS": principal}, "Action": COPY_ACTION, "Resource": resource
        }))
    }

    fn verdict(documents: &[String], caller: &str) -> Verdict {
        let parsed: Vec<PolicyDocument> = documents.iter().map(|text| PolicyDocument::parse(text).unwrap()).collect();
        evaluate(&parsed, caller, VERSION)
    }

    #[test]
    fn an_allow_for_the_account_allows() {
        let by_root = allow("arn:aws:iam::222222222222:root", VERSION);
        assert_eq!(verdict(std::slice::from_ref(&by_root), "222222222222"), Verdict::Allowed);
        assert_eq!(verdict(&[by_root], "333333333333"), Verdict::NotAllowed);
        let by_role = allow("arn:aws:iam::222222222222:role/Admin", VERSION);
        assert_eq!(verdict(&[by_role], "222222222222"), Verdict::Allowed);
        let by_id = allow("222222222222", VERSION);
        assert_eq!(verdict(&[by_id], "222222222222"), Verdict::Allowed);
    }

    #[test]
    fn resources_match_with_wildcards() {
        let every_version = allow("222222222222", &format!("{}/version/*/*", PROJECT.rsplit_once('/').unwrap().0));
        assert_eq!(verdict(&[every_version], "222222222222"), Verdict::Allowed);
        let other_version = allow("222222222222", &VERSION.replace("/v1/", "/v2/"));
        assert_eq!(verdict(&[other_version], "222222222222"), Verdict::NotAllowed);
        assert_eq!(verdict(&[allow("*", "*")], "222222222222"), Verdict::Allowed);
    }

    #[test]
    fn an_explicit_deny_wins() {
        let deny = doc(serde_json::json!({
            "Effect": "Deny", "Principal": "*", "Action": "rekognition:*", "Resource": "*"
        }));
        assert_eq!(verdict(&[allow("222222222222", "*"), deny], "222222222222"), Verdict::ExplicitDeny);
    }

    #[test]
    fn conditions_are_read_strictly() {
        let conditional_allow = doc(serde_json::json!({
            "Effect": "Allow", "Principal": "*", "Action": COPY_ACTION, "Resource": "*",
            "Condition": {"StringEquals": {"aws:PrincipalTag/team": "ml"}}
        }));
        assert_eq!(verdict(std::slice::from_ref(&conditional_allow), "2"), Verdict::NotAllowed);
        let conditional_deny = conditional_allow.replace("Allow", "Deny");
        assert_eq!(verdict(&[allow("*", "*"), conditional_deny], "2"), Verdict::ExplicitDeny);
    }

    #[test]
    fn malformed_documents_are_refused() {
        let cases = [
            "not json".to_owned(),
            "[]".to_owned(),
            r#"{"Version": "2012-10-17"}"#.to_owned(),
            r#"{"Statement": []}"#.to_owned(),
            doc(serde_json::json!({"Effect": "Allow", "Principal": "*", "Action": COPY_ACTION})),
            doc(serde_json::json!({"Effect": "Maybe", "Principal": "*", "Action": COPY_ACTION, "Resource": "*"})),
            doc(serde_json::json!({"Effect": "Allow", "Action": COPY_ACTION, "Resource": "*"})),
            doc(
                serde_json::json!({"Effect": "Allow", "Principal": "*", "Action": "rekognition:DetectLabels", "Resource": "*"}),
            ),
            doc(
                serde_json::json!({"Effect": "Allow", "NotPrincipal": "*", "Principal": "*", "Action": COPY_ACTION, "Resource": "*"}),
            ),
            doc(
                serde_json::json!({"Effect": "Allow", "Principal": {"AWS": "bob"}, "Action": COPY_ACTION, "Resource": "*"}),
            ),
            doc(
                serde_json::json!({"Effect": "Allow", "Principal": "*", "Action": COPY_ACTION, "Resource": "project/x"}),
            ),
        ];
        for case in cases {
            let err = PolicyDocument::parse(&case).unwrap_err();
            assert_eq!(err.code, ErrorCode::MalformedPolicyDocument, "{case}");
        }
    }

    #[test]
    fn the_helper_document_is_valid_and_allows_exactly_its_account() {
        let document = allow_copy_document("222222222222", "arn:aws:rekognition:us-east-1:111111111111:project/src");
        assert_eq!(verdict(std::slice::from_ref(&document), "222222222222"), Verdict::Allowed);
        assert_eq!(verdict(&[document], "333333333333"), Verdict::NotAllowed);
    }

    #[test]
    fn glob_handles_stars_and_question_marks() {
        assert!(glob_matches("a*c", "abbbc"));
        assert!(glob_matches("a*", "a/b/c"));
        assert!(glob_matches("a?c", "abc"));
        assert!(!glob_matches("a?c", "abbc"));
        assert!(glob_matches("*b*", "abc"));
        assert!(!glob_matches("abc", "abcd"));
        assert!(glob_matches("**", ""));
    }
}
