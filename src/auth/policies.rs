//! A set of Cedar policies, parsed and validated against the schema, and the decisions it makes.
//!
//! A set either compiles whole or is refused whole, with every error located (`team-a.cedar:12:5: …`): the service
//! never runs on part of what its operators wrote. Each policy is known by its `@id` annotation (unique across the
//! set), or else by its file and Cedar's own id (`team-a.cedar:policy0`); that id is what the audit log records.
//! An optional `@reason` annotation is recorded with the decision and told to a refused caller.
//!
//! Decisions deny by default: a call is allowed only if a policy permits it and none forbids it.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::LazyLock;

use cedar_policy::{
    Authorizer as CedarAuthorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicyId,
    PolicySet, Request, RestrictedExpression, Schema, ValidationMode, Validator,
};
use miette::Diagnostic;
use tracing::warn;

use super::{Action, AuthzDecision, Principal, PrincipalKind, Resource};

/// The schema the service's entities follow; the default when settings name no schema file.
pub const BUILT_IN_SCHEMA: &str = include_str!("../../deploy/policies/modelcopy.cedarschema");

/// One policy file's name (as errors and generated ids show it) and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySource {
    pub name: String,
    pub text: String,
}

/// Why a set of policies was refused: every problem found, one a line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

/// A validated policy set and the schema it was validated against.
pub struct Policies {
    set: PolicySet,
    schema: Schema,
    /// Entities the schema declares (the actions and their groups), added to every request.
    action_entities: Entities,
    /// Each policy's `@reason`, by id, where it has a non-empty one. Read here once: asking the set for an
    /// annotation parses the annotation's key with Cedar's grammar every time, which was a quarter of what a
    /// decision cost (perf over the accept benchmark).
    reasons: HashMap<String, String>,
}

impl std::fmt::Debug for Policies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policies").field("ids", &self.ids()).finish()
    }
}

impl Policies {
    /// Parses `schema` (named `schema_name` in errors) and every source, and validates the policies against the
    /// schema. Refuses templates (nothing links them), duplicate ids, and an empty set (almost surely a mistake,
    /// such as a file caught half-written; to deny everything, say so with a `forbid`).
    pub fn compile(schema_name: &str, schema: &str, sources: &[PolicySource]) -> Result<Policies, PolicyError> {
        let (schema, warnings) =
            Schema::from_cedarschema_str(schema).map_err(|err| PolicyError(located(schema_name, schema, &err)))?;
        for warning in warnings {
            warn!(schema = schema_name, %warning, "policy schema warning");
        }
        let mut set = PolicySet::new();
        let mut errors = Vec::new();
        // Which file each policy came from, to locate validation errors.
        let mut origin: HashMap<PolicyId, &PolicySource> = HashMap::new();
        for source in sources {
            let parsed = match PolicySet::from_str(&source.text) {
                Ok(parsed) => parsed,
                Err(err) => {
                    errors.extend(err.iter().map(|e| located(&source.name, &source.text, e)));
                    continue;
                }
            };
            if let Some(template) = parsed.templates().next() {
                errors.push(format!(
                    "{}: {} is a template (it has ?principal or ?resource); templates are not supported",
                    source.name,
                    template.id()
                ));
            }
            for policy in parsed.policies() {
                let id = match policy.annotation("id") {
                    Some(id) if !id.trim().is_empty() => id.to_owned(),
                    _ => format!("{}:{}", source.name, policy.id()),
                };
                let id = PolicyId::new(id);
                if set.add(policy.new_id(id.clone())).is_err() {
                    errors.push(format!("{}: policy id {id} is used more than once", source.name));
                    continue;
                }
                origin.insert(id, source);
            }
        }
        if errors.is_empty() && set.is_empty() {
            errors.push(
                "no policies: a set must hold at least one (deny everything with `forbid(principal, action, resource);`)"
                    .into(),
            );
        }
        if errors.is_empty() {
            let validation = Validator::new(schema.clone()).validate(&set, ValidationMode::Strict);
            for error in validation.validation_errors() {
                let (name, text) =
                    origin.get(error.policy_id()).map_or(("", ""), |s| (s.name.as_str(), s.text.as_str()));
                errors.push(located(name, text, error));
            }
            for warning in validation.validation_warnings() {
                warn!(policy = %warning.policy_id(), %warning, "policy warning");
            }
        }
        if !errors.is_empty() {
            return Err(PolicyError(errors.join("\n")));
        }
        let action_entities = schema.action_entities().map_err(|err| PolicyError(format!("{schema_name}: {err}")))?;
        let reasons = set
            .policies()
            .filter_map(|policy| {
                let why = policy.annotation("reason").filter(|why| !why.is_empty())?;
                Some((policy.id().to_string(), why.to_owned()))
            })
            .collect();
        Ok(Policies { set, schema, action_entities, reasons })
    }

    /// The ids of the policies, sorted.
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.set.policies().map(|p| p.id().to_string()).collect();
        ids.sort();
        ids
    }

    /// Whether `principal` may take `action` on `resource`. Anything that keeps the question from being asked
    /// (entities the schema does not accept) denies, and says why.
    pub fn decide(&self, principal: &Principal, action: Action, resource: &Resource) -> AuthzDecision {
        match self.ask(principal, action, resource) {
            Ok(decision) => decision,
            Err(err) => {
                warn!(%err, principal = principal.id(), ?action, "authorization request could not be evaluated");
                AuthzDecision {
                    allowed: false,
                    reason: format!("the request could not be evaluated: {err}"),
                    policy_ids: Vec::new(),
                }
            }
        }
    }

    fn ask(&self, principal: &Principal, action: Action, resource: &Resource) -> Result<AuthzDecision, String> {
        let (principal_uid, mut entities) = principal_entities(principal)?;
        let (resource_uid, resource_entity) = resource_entity(resource)?;
        entities.push(resource_entity);
        let entities =
            self.action_entities.clone().add_entities(entities, Some(&self.schema)).map_err(|err| err.to_string())?;
        let action_uid = uid(&TYPES.action, action.name());
        let request = Request::new(principal_uid, action_uid, resource_uid, Context::empty(), Some(&self.schema))
            .map_err(|err| err.to_string())?;
        let response = CedarAuthorizer::new().is_authorized(&request, &self.set, &entities);
        let allowed = response.decision() == Decision::Allow;
        let mut policy_ids: Vec<String> = response.diagnostics().reason().map(|id| id.to_string()).collect();
        policy_ids.sort();
        let named: Vec<String> = policy_ids
            .iter()
            .map(|id| match self.reasons.get(id) {
                Some(why) => format!("{id} ({why})"),
                None => id.clone(),
            })
            .collect();
        let mut reason = match (allowed, named.is_empty()) {
            (true, _) => format!("permitted by {}", named.join(", ")),
            (false, false) => format!("forbidden by {}", named.join(", ")),
            (false, true) => format!("no policy permits {} here (deny by default)", action.name()),
        };
        // A policy that fails to evaluate (say, a missing optional attribute) is skipped by Cedar; say so.
        for error in response.diagnostics().errors() {
            warn!(%error, "a policy failed to evaluate and was skipped");
            reason.push_str(&format!("; skipped after an error: {error}"));
        }
        Ok(AuthzDecision { allowed, reason, policy_ids })
    }
}

/// The entity types the service asks about, parsed once: Cedar parses a type name with its full grammar, and
/// doing so for every entity of every request cost more than evaluating the policies.
struct Types {
    user: EntityTypeName,
    service: EntityTypeName,
    group: EntityTypeName,
    copy: EntityTypeName,
    audit_log: EntityTypeName,
    action: EntityTypeName,
}

static TYPES: LazyLock<Types> = LazyLock::new(|| {
    let name =
        |type_name: &str| EntityTypeName::from_str(&format!("ModelCopy::{type_name}")).expect("a valid type name");
    Types {
        user: name("User"),
        service: name("Service"),
        group: name("Group"),
        copy: name("Copy"),
        audit_log: name("AuditLog"),
        action: name("Action"),
    }
});

fn uid(type_name: &EntityTypeName, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(type_name.clone(), EntityId::new(id))
}

fn string(value: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(value.to_owned())
}

/// The caller and its groups, as entities: `ModelCopy::User::"alice"` in `ModelCopy::Group::"team-a"`.
fn principal_entities(principal: &Principal) -> Result<(EntityUid, Vec<Entity>), String> {
    let kind = match principal.kind() {
        PrincipalKind::User => &TYPES.user,
        PrincipalKind::Service => &TYPES.service,
    };
    let me = uid(kind, principal.id());
    let groups: HashSet<EntityUid> = principal.groups().iter().map(|g| uid(&TYPES.group, g)).collect();
    let attrs =
        HashMap::from([("name".to_owned(), string(principal.id())), ("authn".to_owned(), string(principal.authn()))]);
    let mut entities: Vec<Entity> = groups.iter().map(|g| Entity::new_no_attrs(g.clone(), HashSet::new())).collect();
    entities.push(Entity::new(me.clone(), attrs, groups).map_err(|err| err.to_string())?);
    Ok((me, entities))
}

fn resource_entity(resource: &Resource) -> Result<(EntityUid, Entity), String> {
    match resource {
        Resource::AuditLog => {
            let log = uid(&TYPES.audit_log, "audit-log");
            Ok((log.clone(), Entity::new_no_attrs(log, HashSet::new())))
        }
        Resource::Copy(copy) => {
            // A copy not made yet has no id; it is the only one in the request, so any fixed id will do.
            let id = copy.id.map_or_else(|| "requested".to_owned(), |id| id.to_string());
            let me = uid(&TYPES.copy, &id);
            let attrs = HashMap::from([
                ("owner".to_owned(), string(&copy.owner)),
                ("source_account".to_owned(), string(&copy.source_account)),
                ("destination_account".to_owned(), string(&copy.destination_account)),
                ("region".to_owned(), string(&copy.region)),
                ("source_project".to_owned(), string(&copy.source_project)),
                ("destination_project".to_owned(), string(&copy.destination_project)),
            ]);
            let entity = Entity::new(me.clone(), attrs, HashSet::new()).map_err(|err| err.to_string())?;
            Ok((me, entity))
        }
    }
}

/// `file:line:column: message` (with cedar's help, when it has some), for the first place a diagnostic points at.
fn located(file: &str, text: &str, diagnostic: &dyn Diagnostic) -> String {
    let place = diagnostic.labels().and_then(|mut labels| labels.next()).map(|label| {
        let before = &text[..label.offset().min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        format!(":{line}:{column}")
    });
    let mut message = format!("{file}{}: {diagnostic}", place.unwrap_or_default());
    if let Some(help) = diagnostic.help() {
        message.push_str(&format!(" ({help})"));
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::resource::CopyResource;

    const X: &str = "111111111111";
    const Y: &str = "222222222222";
    const Z: &str = "333333333333";

    fn team_a_policy() -> PolicySource {
        PolicySource {
            name: "teams.cedar".into(),
            text: format!(
                r#"
@id("team-a-copies-x-to-y")
permit(principal in ModelCopy::Group::"team-a", action == ModelCopy::Action::"CopyModelVersion", resource)
when {{ resource.source_account == "{X}" && resource.destination_account == "{Y}" }};

@id("team-a-stays-on-its-route")
@reason("team A copies only from X to Y")
forbid(principal in ModelCopy::Group::"team-a", action == ModelCopy::Action::"CopyModelVersion", resource)
unless {{ resource.source_account == "{X}" && resource.destination_account == "{Y}" }};

permit(principal, action in ModelCopy::Action::"ReadCopies", resource) when {{ resource.owner == principal.name }};
"#
            ),
        }
    }

    fn compile(sources: &[PolicySource]) -> Result<Policies, PolicyError> {
        Policies::compile("modelcopy.cedarschema", BUILT_IN_SCHEMA, sources)
    }

    fn copy(owner: &str, from: &str, to: &str) -> Resource {
        Resource::Copy(CopyResource {
            id: None,
            owner: owner.into(),
            source_account: from.into(),
            destination_account: to.into(),
            region: "us-east-1".into(),
            source_project: "detector".into(),
            destination_project: "detector-prod".into(),
        })
    }

    fn member(id: &str, group: &str) -> Principal {
        Principal::new(id, vec![group.into()], "test")
    }

    #[test]
    fn the_shipped_files_compile() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/policies");
        for file in ["dev.cedar", "example.cedar"] {
            let text = std::fs::read_to_string(dir.join(file)).unwrap();
            let policies = compile(&[PolicySource { name: file.into(), text }]).unwrap();
            assert!(!policies.ids().is_empty(), "{file}");
        }
    }

    #[test]
    fn ids_come_from_annotations_or_the_file() {
        let policies = compile(&[team_a_policy()]).unwrap();
        assert_eq!(policies.ids(), ["team-a-copies-x-to-y", "team-a-stays-on-its-route", "teams.cedar:policy2"]);
    }

    #[test]
    fn a_team_copies_only_on_its_route() {
        let policies = compile(&[team_a_policy()]).unwrap();
        let allowed = policies.decide(&member("alice", "team-a"), Action::CopyModelVersion, &copy("alice", X, Y));
        assert!(allowed.allowed, "{allowed:?}");
        assert_eq!(allowed.policy_ids, ["team-a-copies-x-to-y"]);
        assert_eq!(allowed.reason, "permitted by team-a-copies-x-to-y");

        let other_route = policies.decide(&member("alice", "team-a"), Action::CopyModelVersion, &copy("alice", X, Z));
        assert!(!other_route.allowed);
        assert_eq!(other_route.policy_ids, ["team-a-stays-on-its-route"]);
        assert_eq!(other_route.reason, "forbidden by team-a-stays-on-its-route (team A copies only from X to Y)");

        let other_team = policies.decide(&member("bob", "team-b"), Action::CopyModelVersion, &copy("bob", X, Y));
        assert!(!other_team.allowed);
        assert!(other_team.policy_ids.is_empty());
        assert!(other_team.reason.contains("deny by default"), "{}", other_team.reason);
    }

    #[test]
    fn services_and_action_groups_are_understood() {
        let policies = compile(&[team_a_policy()]).unwrap();
        let ci = Principal::service("ci", vec![], "test");
        assert!(policies.decide(&ci, Action::WatchCopy, &copy("ci", X, Y)).allowed);
        assert!(!policies.decide(&ci, Action::WatchCopy, &copy("alice", X, Y)).allowed);
        assert!(!policies.decide(&ci, Action::CancelCopy, &copy("ci", X, Y)).allowed, "not in ReadCopies");
        assert!(!policies.decide(&ci, Action::ListAuditEvents, &Resource::AuditLog).allowed);
    }

    #[test]
    fn a_syntax_error_is_refused_with_its_place() {
        let bad =
            PolicySource { name: "bad.cedar".into(), text: "\npermit(principal, action, resource) when { ;\n".into() };
        let err = compile(&[team_a_policy(), bad]).unwrap_err();
        assert!(err.0.starts_with("bad.cedar:2:"), "{err}");
    }

    #[test]
    fn a_policy_the_schema_does_not_allow_is_refused() {
        let bad = PolicySource {
            name: "typo.cedar".into(),
            text: "permit(principal, action, resource) when { resource.destination_acount == \"1\" };".into(),
        };
        let err = compile(&[bad]).unwrap_err();
        assert!(err.0.starts_with("typo.cedar:1:"), "{err}");
        assert!(err.0.contains("typo.cedar:policy0") && err.0.contains("destination_acount"), "{err}");
        let unknown_action = PolicySource {
            name: "action.cedar".into(),
            text: "permit(principal, action == ModelCopy::Action::\"DeleteEverything\", resource);".into(),
        };
        assert!(compile(&[unknown_action]).is_err());
    }

    #[test]
    fn duplicate_ids_templates_and_empty_sets_are_refused() {
        let twice = compile(&[team_a_policy(), team_a_policy()]).unwrap_err();
        assert!(twice.0.contains("team-a-copies-x-to-y is used more than once"), "{twice}");
        let template =
            PolicySource { name: "t.cedar".into(), text: "permit(principal == ?principal, action, resource);".into() };
        assert!(compile(&[template]).unwrap_err().0.contains("template"));
        let empty = PolicySource { name: "empty.cedar".into(), text: "// nothing yet\n".into() };
        assert!(compile(&[empty]).unwrap_err().0.contains("no policies"));
    }

    #[test]
    fn a_broken_schema_is_refused() {
        let err = Policies::compile("s.cedarschema", "namespace ModelCopy { entity }", &[team_a_policy()]).unwrap_err();
        assert!(err.0.starts_with("s.cedarschema:1:"), "{err}");
    }
}
