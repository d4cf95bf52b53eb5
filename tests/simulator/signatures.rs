//! SigV4 verification: keys seeded with a secret must sign with it.

use std::time::Duration;

use aws_sdk_rekognition::error::ProvideErrorMetadata;

use crate::helpers::*;

#[tokio::test]
async fn the_right_secret_is_accepted_for_every_operation_kind() {
    let sim = Sim::start(Duration::from_secs(2)).await;
    // Every other test signs with the right secret too; this one makes it explicit, for a write and a read.
    sim.client_without_retries(KEY_A)
        .create_project()
        .project_name("signed")
        .send()
        .await
        .expect("signed with secret-a");
    sim.client_without_retries(KEY_B).describe_projects().send().await.expect("signed with secret-b");
}

#[tokio::test]
async fn a_wrong_secret_is_invalid_signature() {
    let sim = Sim::start(Duration::from_secs(2)).await;
    let client = client_with_secret(&sim.handle, KEY_A, "not-secret-a", None);

    let err = client.create_project().project_name("forged").send().await.unwrap_err();

    assert_eq!(err.raw_response().map(|response| response.status().as_u16()), Some(400));
    let err = err.into_service_error();
    assert_eq!(err.code(), Some("InvalidSignatureException"));
    assert!(
        err.message().is_some_and(|m| m.starts_with("The request signature we calculated does not match")),
        "{err:?}"
    );
    // Not retried (a client error), nothing created, and the log does not credit the forger with the account.
    let calls = sim.handle.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].outcome, "InvalidSignatureException");
    assert_eq!(calls[0].account_id, None);
    let projects = sim.client(KEY_A).describe_projects().project_names("forged").send().await.unwrap();
    assert!(projects.project_descriptions().is_empty());
}

#[tokio::test]
async fn another_accounts_secret_does_not_sign_for_this_key() {
    let sim = Sim::start(Duration::from_secs(2)).await;
    let err = client_with_secret(&sim.handle, KEY_B, SECRET_A, None)
        .describe_projects()
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.code(), Some("InvalidSignatureException"));
}

#[tokio::test]
async fn a_key_seeded_without_a_secret_is_trusted_on_its_id() {
    let sim = Sim::start(Duration::from_secs(2)).await;
    let described = client_with_secret(&sim.handle, KEY_C, "whatever", None)
        .describe_projects()
        .send()
        .await
        .expect("account C has no secret to check against");
    assert_eq!(described.project_descriptions().len(), 1);
}
