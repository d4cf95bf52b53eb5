//! One leader per account across replicas, decided by PostgreSQL; a dead leader's accounts are free at once.

use modelcopy::domain::AccountId;
use modelcopy::store::{Leadership, Store};

use crate::helpers::{TestApp, DEST_ACCOUNT, SOURCE_ACCOUNT};

#[tokio::test]
async fn an_account_has_one_leader_and_a_dead_leader_frees_it() {
    let app = TestApp::spawn_without_dispatch().await;
    let store = Store::from_pool(app.pool.clone());
    let mut first = Leadership::open(&store).await.unwrap();
    let mut second = Leadership::open(&store).await.unwrap();
    let (dest, source) = (AccountId::parse(DEST_ACCOUNT).unwrap(), AccountId::parse(SOURCE_ACCOUNT).unwrap());

    assert!(first.try_lead(&dest).await.unwrap());
    assert!(first.try_lead(&dest).await.unwrap(), "a leader keeps its account");
    assert!(!second.try_lead(&dest).await.unwrap(), "one leader per account");
    assert!(second.try_lead(&source).await.unwrap(), "accounts are led independently");

    // The session ending (as when a replica dies) releases its accounts.
    drop(first);
    let mut took_over = false;
    for _ in 0..50 {
        if second.try_lead(&dest).await.unwrap() {
            took_over = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(took_over, "the account was freed when its leader's session ended");
    second.check().await.unwrap();
    app.stop().await;
}

#[tokio::test]
async fn backpressure_refuses_beyond_the_queue_limit_but_still_answers_retries() {
    let app = crate::helpers::TestApp::spawn_with(crate::helpers::Options {
        dispatch: false,
        max_queued: Some(2),
        ..Default::default()
    })
    .await;
    let mut client = app.client("alice").await;
    let mut first = app.copy_request("bp-1");
    first.idempotency_token = "bp-1".into();
    client.copy_model_version(first.clone()).await.unwrap();
    client.copy_model_version(app.copy_request("bp-2")).await.unwrap();

    let status = client.copy_model_version(app.copy_request("bp-3")).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    use tonic_types::StatusExt;
    let retry = status.get_details_retry_info().expect("RetryInfo");
    assert!(retry.retry_delay.unwrap() >= std::time::Duration::from_secs(1));
    assert_eq!(app.job_count().await, 2, "nothing queued beyond the limit");

    // A retry of an accepted request asks for nothing new, so it is answered even now.
    let replay = client.copy_model_version(first).await.unwrap().into_inner();
    assert!(replay.replayed);

    let last = app.audit_rows().await.into_iter().rev().nth(1).unwrap();
    assert_eq!(
        (last.0.as_str(), last.1.as_str(), last.2.as_str()),
        ("CopyModelVersion", "INVALID", "ResourceExhausted")
    );
    app.stop().await;
}

#[tokio::test]
async fn a_copy_into_an_account_the_service_does_not_serve_is_refused() {
    let app = TestApp::spawn_without_dispatch().await;
    let mut client = app.client("alice").await;
    let mut request = app.copy_request("nowhere");
    request.destination_project_arn = request.destination_project_arn.replace(DEST_ACCOUNT, "999999999999");
    let status = client.copy_model_version(request).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("999999999999"), "{}", status.message());
    assert_eq!(app.job_count().await, 0);
    app.stop().await;
}
