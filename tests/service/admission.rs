//! Admission: calls over the replica's limits are shed before the audit write, answered RESOURCE_EXHAUSTED with
//! a RetryInfo; the callers within their limits go on.

use std::time::Duration;

use modelcopy::admission::AdmissionSettings;
use modelcopy::proto::{self, watch_copy_request::Target};
use modelcopy::store::locks;
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::{Options, TestApp};

async fn app_with(admission: AdmissionSettings) -> TestApp {
    TestApp::spawn_with(Options { dispatch: false, admission: Some(admission), ..Default::default() }).await
}

async fn audit_rows(app: &TestApp, rpc: &str, code: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE rpc = $1 AND grpc_code = $2")
        .bind(rpc)
        .bind(code)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

fn get_copy() -> proto::GetCopyRequest {
    proto::GetCopyRequest { copy_id: uuid::Uuid::new_v4().to_string() }
}

fn assert_shed(status: &tonic::Status, names: &str) {
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains(names), "{status:?}");
    assert!(status.get_details_retry_info().and_then(|retry| retry.retry_delay).is_some(), "RetryInfo: {status:?}");
}

/// Before, each of the flood's calls was refused UNAUTHENTICATED and audited: a row for every one, all of them
/// on the one audit chain the legitimate callers' rows wait for.
#[tokio::test]
async fn a_flood_without_credentials_is_shed_before_the_audit_log_and_a_legitimate_caller_goes_on() {
    let admission = AdmissionSettings {
        unauthenticated_per_peer_per_second: 1.0,
        unauthenticated_per_peer_burst: 5,
        ..AdmissionSettings::default()
    };
    let app = app_with(admission).await;
    let mut anonymous = crate::support::grpc_client(&app.endpoint, None).await;
    let (mut refused, mut shed) = (0, 0);
    let flood = std::time::Instant::now();
    for _ in 0..50 {
        let status = anonymous.get_copy(get_copy()).await.unwrap_err();
        match status.code() {
            Code::Unauthenticated => refused += 1,
            _ => {
                assert_shed(&status, "unauthenticated calls from 127.0.0.1");
                shed += 1;
            }
        }
    }
    // The burst, and what one call a second adds while the flood lasts (however slow this machine is today).
    let let_through = 5 + flood.elapsed().as_secs() as i64 + 1;
    assert!((5..=let_through).contains(&refused), "{refused} refused, {shed} shed in {:?}", flood.elapsed());
    assert_eq!(audit_rows(&app, "GetCopy", "Unauthenticated").await, refused, "every refusal answered is audited");

    let mut alice = app.client("alice").await;
    let copy = TestApp::submit(&mut alice, app.copy_request("beside-a-flood")).await;
    assert_eq!(
        alice.get_copy(proto::GetCopyRequest { copy_id: copy.copy_id }).await.unwrap().into_inner().version_name,
        "beside-a-flood"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_principal_over_its_rate_is_shed_and_others_are_not() {
    let admission =
        AdmissionSettings { per_principal_per_second: 1.0, per_principal_burst: 3, ..AdmissionSettings::default() };
    let app = app_with(admission).await;
    let (mut alice, mut bob) = (app.client("alice").await, app.client("bob").await);
    let mut codes = Vec::new();
    let calls = std::time::Instant::now();
    for _ in 0..6 {
        let status = alice.get_copy(get_copy()).await.unwrap_err();
        if status.code() == Code::ResourceExhausted {
            assert_shed(&status, "principal alice may make 1 a second");
        }
        codes.push(status.code());
    }
    let found = codes.iter().filter(|code| **code == Code::NotFound).count();
    // The burst of 3, and one more a second while the calls last.
    let let_through = 3 + calls.elapsed().as_secs() as usize + 1;
    assert!((3..=let_through).contains(&found) && found < 6, "{codes:?} in {:?}", calls.elapsed());
    assert_eq!(audit_rows(&app, "GetCopy", "NotFound").await, found as i64, "shed calls leave no row");
    assert_eq!(bob.get_copy(get_copy()).await.unwrap_err().code(), Code::NotFound, "bob has a rate of his own");
    app.stop().await;
}

#[tokio::test]
async fn beyond_the_calls_at_once_the_replica_sheds_until_one_ends() {
    let app = app_with(AdmissionSettings { max_concurrent_calls: 1, ..AdmissionSettings::default() }).await;
    // The audit chain held by the test: the first call waits in its audit write, holding the replica's one place.
    let held = app.hold_advisory_lock(locks::AUDIT_CHAIN).await;
    let mut first_client = app.client("alice").await;
    let first = tokio::spawn(async move { first_client.get_copy(get_copy()).await });
    app.until_advisory_waiters(1).await;

    let status = app.client("bob").await.get_copy(get_copy()).await.unwrap_err();
    assert_shed(&status, "answering as many calls as it may (1)");
    held.rollback().await.unwrap();
    assert_eq!(first.await.unwrap().unwrap_err().code(), Code::NotFound, "the first call was answered");
    assert_eq!(app.client("bob").await.get_copy(get_copy()).await.unwrap_err().code(), Code::NotFound);
    app.stop().await;
}

#[tokio::test]
async fn a_principal_s_watch_streams_are_capped_and_a_closed_one_frees_its_place() {
    let app = app_with(AdmissionSettings { max_watch_streams_per_principal: 2, ..AdmissionSettings::default() }).await;
    let mut alice = app.client("alice").await;
    let watch =
        || proto::WatchCopyRequest { target: Some(Target::Filter(proto::CopyFilter::default())), after_sequence: None };
    let first = alice.watch_copy(watch()).await.expect("first stream");
    let _second = alice.watch_copy(watch()).await.expect("second stream");
    let status = alice.watch_copy(watch()).await.unwrap_err();
    assert_shed(&status, "principal alice already holds 2 WatchCopy streams");
    assert_eq!(audit_rows(&app, "WatchCopy", "ResourceExhausted").await, 1, "refused in the handler, so audited");
    app.client("bob").await.watch_copy(watch()).await.expect("bob's streams are his own");

    drop(first);
    let mut reopened = None;
    for _ in 0..100 {
        match alice.watch_copy(watch()).await {
            Ok(stream) => {
                reopened = Some(stream);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    assert!(reopened.is_some(), "a closed stream gives its place back");
    app.stop().await;
}

/// A call runs to its end in its own task even when its caller gives up (for its audit row). Before, its place
/// among the replica's calls at once was given back the moment the caller gave up, while the call still ran: callers
/// that give up at once could have any number of calls running.
#[tokio::test]
async fn a_caller_that_gives_up_does_not_free_the_place_of_its_call_still_running() {
    let app = app_with(AdmissionSettings { max_concurrent_calls: 1, ..AdmissionSettings::default() }).await;
    // The audit chain held by the test: a call waits in its audit write.
    let held = app.hold_advisory_lock(locks::AUDIT_CHAIN).await;
    let mut impatient = tonic::Request::new(get_copy());
    impatient.set_timeout(Duration::from_millis(300));
    let gave_up = app.client("alice").await.get_copy(impatient).await.unwrap_err();
    assert!(matches!(gave_up.code(), Code::DeadlineExceeded | Code::Cancelled), "{gave_up:?}");
    app.until_advisory_waiters(1).await;

    let status = app.client("bob").await.get_copy(get_copy()).await.unwrap_err();
    assert_shed(&status, "answering as many calls as it may (1)");
    held.rollback().await.unwrap();
    let mut answered = None;
    for _ in 0..100 {
        match app.client("bob").await.get_copy(get_copy()).await {
            Err(status) if status.code() == Code::ResourceExhausted => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            other => {
                answered = Some(other);
                break;
            }
        }
    }
    assert_eq!(answered.expect("a place once the call ended").unwrap_err().code(), Code::NotFound);
    app.stop().await;
}
