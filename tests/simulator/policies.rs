//! Project policies: PutProjectPolicy, ListProjectPolicies, DeleteProjectPolicy, and what they mean for copies.

use std::time::Duration;

use aws_sdk_rekognition::error::ProvideErrorMetadata;
use modelcopy::simulator::{SimConfig, COPY_ACTION};

use crate::helpers::*;

fn allow(account: &str, resource: &str) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{account}:root")},
            "Action": COPY_ACTION,
            "Resource": resource,
        }]
    })
    .to_string()
}

fn deny_everyone() -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Principal": "*", "Action": COPY_ACTION, "Resource": "*"}]
    })
    .to_string()
}

/// Copies A's `many`/`m1` (a project with no seeded policy) into B's `b-dest`, as account B.
async fn copy_m1_into_b(sim: &Sim, version_name: &str) -> CopyResult {
    copy_version(
        &sim.client_without_retries(KEY_B),
        &sim.project_arn(ACCOUNT_A, REGION, "many"),
        &sim.version_arn(ACCOUNT_A, REGION, "many", "m1"),
        &sim.project_arn(ACCOUNT_B, REGION, "b-dest"),
        version_name,
    )
    .await
}

#[tokio::test]
async fn put_list_and_delete_a_policy_with_revisions() {
    let sim = Sim::start(Duration::from_secs(2)).await;
    let client = sim.client(KEY_A);
    let many = sim.project_arn(ACCOUNT_A, REGION, "many");
    let document = allow(ACCOUNT_B, "*");
    let before = now_millis();

    let first = client
        .put_project_policy()
        .project_arn(&many)
        .policy_name("allow-b")
        .policy_document(&document)
        .send()
        .await
        .expect("policy is put");
    let revision = first.policy_revision_id().expect("revision id").to_owned();
    assert!(revision.bytes().all(|b| b.is_ascii_hexdigit()) && !revision.is_empty());

    let listed = client.list_project_policies().project_arn(&many).send().await.unwrap();
    let [policy] = listed.project_policies() else { panic!("one policy: {listed:?}") };
    assert_eq!(policy.project_arn(), Some(many.as_str()));
    assert_eq!(policy.policy_name(), Some("allow-b"));
    assert_eq!(policy.policy_revision_id(), Some(revision.as_str()));
    assert_eq!(policy.policy_document(), Some(document.as_str()), "kept verbatim");
    let created = policy.creation_timestamp().unwrap().secs();
    assert!((before / 1000..=now_millis() / 1000).contains(&created));
    assert!(policy.last_updated_timestamp().is_some());
    assert_eq!(listed.next_token(), None);

    // Replacing needs the current revision; each put gives a new one.
    let replaced = client
        .put_project_policy()
        .project_arn(&many)
        .policy_name("allow-b")
        .policy_revision_id(&revision)
        .policy_document(allow(ACCOUNT_C, "*"))
        .send()
        .await
        .expect("replaced at the current revision");
    let new_revision = replaced.policy_revision_id().unwrap().to_owned();
    assert_ne!(new_revision, revision);

    let stale = client
        .delete_project_policy()
        .project_arn(&many)
        .policy_name("allow-b")
        .policy_revision_id(&revision)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(stale.is_invalid_policy_revision_id_exception(), "{stale:?}");

    client
        .delete_project_policy()
        .project_arn(&many)
        .policy_name("allow-b")
        .policy_revision_id(&new_revision)
        .send()
        .await
        .expect("deleted at the current revision");
    let listed = client.list_project_policies().project_arn(&many).send().await.unwrap();
    assert!(listed.project_policies().is_empty());

    let gone = client
        .delete_project_policy()
        .project_arn(&many)
        .policy_name("allow-b")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(gone.is_resource_not_found_exception(), "{gone:?}");
}

#[tokio::test]
async fn put_errors_have_their_documented_names() {
    let sim = Sim::start(Duration::from_secs(2)).await;
    let client = sim.client_without_retries(KEY_A);
    let source = sim.project_arn(ACCOUNT_A, REGION, "source");
    let put = |name: &str, revision: Option<&str>, document: String| {
        client
            .put_project_policy()
            .project_arn(&source)
            .policy_name(name)
            .set_policy_revision_id(revision.map(str::to_owned))
            .policy_document(document)
            .send()
    };

    // The seeded `allow-b` exists: putting it again without its revision is refused.
    let err = put("allow-b", None, allow(ACCOUNT_B, "*")).await.unwrap_err().into_service_error();
    assert!(err.is_resource_already_exists_exception(), "{err:?}");
    let err = put("allow-b", Some("0123abcd"), allow(ACCOUNT_B, "*")).await.unwrap_err().into_service_error();
    assert!(err.is_invalid_policy_revision_id_exception(), "{err:?}");
    let err = put("nobody", Some("0123abcd"), allow(ACCOUNT_B, "*")).await.unwrap_err().into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");

    for malformed in [
        "not json".to_owned(),
        r#"{"Statement": []}"#.to_owned(),
        allow(ACCOUNT_B, "*").replace(COPY_ACTION, "rekognition:DetectLabels"),
        allow(ACCOUNT_B, "*").replace("\"Principal\"", "\"NotPrincipal\""),
    ] {
        let err = put("new", None, malformed.clone()).await.unwrap_err().into_service_error();
        assert!(err.is_malformed_policy_document_exception(), "{malformed}: {err:?}");
    }
    let err = put("has space", None, allow(ACCOUNT_B, "*")).await.unwrap_err().into_service_error();
    assert_eq!(err.code(), Some("ValidationException"));
    assert!(err.message().unwrap().contains("policyName"));

    // B may not manage A's policies; nobody can manage a project that does not exist.
    let err = sim
        .client_without_retries(KEY_B)
        .list_project_policies()
        .project_arn(&source)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_access_denied_exception(), "{err:?}");
    let missing = format!("{source}9");
    let err = client.list_project_policies().project_arn(&missing).send().await.unwrap_err().into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");
}

#[tokio::test]
async fn policies_page_in_name_order_and_a_project_holds_five() {
    let sim = Sim::start(Duration::from_secs(2)).await;
    let client = sim.client_without_retries(KEY_A);
    let dest = sim.project_arn(ACCOUNT_A, REGION, "dest");
    for name in ["p3", "p1", "p5", "p2", "p4"] {
        client
            .put_project_policy()
            .project_arn(&dest)
            .policy_name(name)
            .policy_document(allow(ACCOUNT_B, "*"))
            .send()
            .await
            .expect("policy is put");
    }
    let err = client
        .put_project_policy()
        .project_arn(&dest)
        .policy_name("p6")
        .policy_document(allow(ACCOUNT_B, "*"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.code(), Some("ServiceQuotaExceededException"), "{err:?}");

    let mut pages = Vec::new();
    let mut token = None;
    for _ in 0..10 {
        let page = client
            .list_project_policies()
            .project_arn(&dest)
            .max_results(2)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        pages.push(page.project_policies().iter().map(|p| p.policy_name().unwrap().to_owned()).collect::<Vec<_>>());
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(pages, [vec!["p1", "p2"], vec!["p3", "p4"], vec!["p5"]]);

    // The SDK's own paginator agrees.
    let all = client
        .list_project_policies()
        .project_arn(&dest)
        .max_results(3)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .expect("every page is read");
    let names: Vec<&str> = all.iter().filter_map(|p| p.policy_name()).collect();
    assert_eq!(names, ["p1", "p2", "p3", "p4", "p5"]);

    let err =
        client.list_project_policies().project_arn(&dest).max_results(6).send().await.unwrap_err().into_service_error();
    assert_eq!(err.code(), Some("ValidationException"));
    let err = client
        .list_project_policies()
        .project_arn(&dest)
        .next_token("bad")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_invalid_pagination_token_exception(), "{err:?}");
}

#[tokio::test]
async fn a_cross_account_copy_needs_a_policy_that_allows_it() {
    let sim = Sim::start(Duration::from_secs(2)).await;
    let owner = sim.client_without_retries(KEY_A);
    let many = sim.project_arn(ACCOUNT_A, REGION, "many");

    let refused = copy_m1_into_b(&sim, "no-policy").await.unwrap_err().into_service_error();
    assert!(refused.is_access_denied_exception(), "{refused:?}");
    let message = refused.message().unwrap();
    assert!(
        message.contains(&format!("arn:aws:iam::{ACCOUNT_B}:root"))
            && message.contains("no resource-based policy allows"),
        "{message}"
    );

    // A policy for another account, or another version, does not help.
    let m2_only = sim.version_arn(ACCOUNT_A, REGION, "many", "m2");
    for (name, document) in [("for-c", allow(ACCOUNT_C, "*")), ("m2-only", allow(ACCOUNT_B, &m2_only))] {
        owner.put_project_policy().project_arn(&many).policy_name(name).policy_document(document).send().await.unwrap();
    }
    let refused = copy_m1_into_b(&sim, "wrong-policy").await.unwrap_err().into_service_error();
    assert!(refused.is_access_denied_exception(), "{refused:?}");

    let put = owner
        .put_project_policy()
        .project_arn(&many)
        .policy_name("allow-b")
        .policy_document(allow(ACCOUNT_B, &format!("{}/version/*", many.rsplit_once('/').unwrap().0)))
        .send()
        .await
        .unwrap();
    copy_m1_into_b(&sim, "with-policy").await.expect("allowed by the policy");

    owner
        .delete_project_policy()
        .project_arn(&many)
        .policy_name("allow-b")
        .policy_revision_id(put.policy_revision_id().unwrap())
        .send()
        .await
        .unwrap();
    let refused = copy_m1_into_b(&sim, "policy-deleted").await.unwrap_err().into_service_error();
    assert!(refused.is_access_denied_exception(), "{refused:?}");

    let copies: Vec<String> = sim
        .handle
        .calls()
        .into_iter()
        .filter(|call| call.operation == "CopyProjectVersion")
        .map(|call| call.outcome)
        .collect();
    assert_eq!(copies, ["AccessDeniedException", "AccessDeniedException", "ok", "AccessDeniedException"]);
}

#[tokio::test]
async fn an_explicit_deny_refuses_even_the_owner() {
    let sim = Sim::start(Duration::from_secs(2)).await;
    let owner = sim.client_without_retries(KEY_A);
    let dest = sim.project_arn(ACCOUNT_A, REGION, "dest");
    copy_source_v1(&sim, &owner, &dest, "before-deny").await.expect("same-account copies need no policy");

    owner
        .put_project_policy()
        .project_arn(sim.project_arn(ACCOUNT_A, REGION, "source"))
        .policy_name("deny-all")
        .policy_document(deny_everyone())
        .send()
        .await
        .unwrap();
    let refused = copy_source_v1(&sim, &owner, &dest, "after-deny").await.unwrap_err().into_service_error();
    assert!(refused.is_access_denied_exception(), "{refused:?}");
    assert!(refused.message().unwrap().contains("explicit deny"));
    // The seeded allow for B does not outweigh the deny either.
    let refused = copy_source_v1(
        &sim,
        &sim.client_without_retries(KEY_B),
        &sim.project_arn(ACCOUNT_B, REGION, "b-dest"),
        "b-after-deny",
    )
    .await
    .unwrap_err()
    .into_service_error();
    assert!(refused.is_access_denied_exception(), "{refused:?}");
}

#[tokio::test]
async fn with_policies_not_required_cross_account_copies_pass() {
    let sim = Sim::start_with(SimConfig { require_project_policy: false, ..config(Duration::from_secs(2)) }).await;
    copy_m1_into_b(&sim, "lenient").await.expect("allowed without a policy");
}
