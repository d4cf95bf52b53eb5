use modelcopy::proto::CopyState;
use tonic::Code;

use crate::helpers::TestApp;

#[tokio::test]
async fn a_retry_with_the_same_token_returns_the_same_copy_and_copies_once() {
    let app = TestApp::spawn().await;
    let mut client = app.client("alice").await;
    let mut request = app.copy_request("idem-1");
    request.idempotency_token = "batch-7:item-1".into();

    let first = client.copy_model_version(request.clone()).await.unwrap().into_inner();
    let second = client.copy_model_version(request.clone()).await.unwrap().into_inner();
    assert!(!first.replayed);
    assert!(second.replayed);
    let id = first.copy.unwrap().copy_id;
    assert_eq!(second.copy.unwrap().copy_id, id);

    let ended = app.wait_until_ended(&mut client, &id).await;
    assert_eq!(ended.state(), CopyState::Succeeded);
    // And after the copy ended, a retry still does nothing again.
    let third = client.copy_model_version(request).await.unwrap().into_inner();
    assert!(third.replayed);
    assert_eq!(third.copy.unwrap().state(), CopyState::Succeeded);

    assert_eq!(app.job_count().await, 1);
    assert_eq!(app.sim.call_count("CopyProjectVersion"), 1);
    let replays =
        app.audit_rows().await.into_iter().filter(|r| r.0 == "CopyModelVersion" && r.3.as_deref() == Some(&id)).count();
    assert_eq!(replays, 3, "every call is audited, replays included");
    app.stop().await;
}

#[tokio::test]
async fn the_same_token_with_other_parameters_is_refused() {
    let app = TestApp::spawn().await;
    let mut client = app.client("alice").await;
    let mut request = app.copy_request("idem-2");
    request.idempotency_token = "tok-2".into();
    client.copy_model_version(request.clone()).await.unwrap();

    request.tags.insert("team".into(), "other".into());
    let status = client.copy_model_version(request.clone()).await.unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    assert!(status.message().contains("idempotency_token"), "{}", status.message());
    assert_eq!(app.job_count().await, 1);

    // Tokens are the caller's own: another principal's identical token is a new copy.
    let mut bob = app.client("bob").await;
    request.version_name = "idem-2-bob".into();
    let answer = bob.copy_model_version(request).await.unwrap().into_inner();
    assert!(!answer.replayed);
    assert_eq!(app.job_count().await, 2);
    app.stop().await;
}

#[tokio::test]
async fn concurrent_retries_with_one_token_make_one_job() {
    let app = TestApp::spawn().await;
    let mut request = app.copy_request("idem-3");
    request.idempotency_token = "tok-3".into();
    let mut calls = Vec::new();
    for _ in 0..8 {
        let mut client = app.client("alice").await;
        let request = request.clone();
        calls.push(tokio::spawn(async move { client.copy_model_version(request).await.unwrap().into_inner() }));
    }
    let mut ids = Vec::new();
    let mut fresh = 0;
    for call in calls {
        let answer = call.await.unwrap();
        fresh += usize::from(!answer.replayed);
        ids.push(answer.copy.unwrap().copy_id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one copy for every retry");
    assert_eq!(fresh, 1, "exactly one call created it");
    assert_eq!(app.job_count().await, 1);
    app.stop().await;
}
