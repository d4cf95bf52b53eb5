//! A copy's lifecycle after it succeeded (issue 13): with `delete_after`, the service deletes the copied version
//! once that time has passed, audited as its own action, and the copy shows EXPIRED; a running model is never
//! stopped: the refusal is reported on the copy and the deletion tried again until the model is stopped.

use std::time::Duration;

use modelcopy::audit;
use modelcopy::proto::{self, CopyState};
use modelcopy::store::Store;
use tokio_stream::StreamExt;

use crate::helpers::{Options, TestApp, DEST_ACCOUNT};

fn with_delete_after(mut request: proto::CopyModelVersionRequest, seconds: i64) -> proto::CopyModelVersionRequest {
    request.delete_after = Some(prost_types::Duration { seconds, nanos: 0 });
    request
}

async fn get(client: &mut modelcopy::cli::connect::Client, copy_id: &str) -> proto::Copy {
    client.get_copy(proto::GetCopyRequest { copy_id: copy_id.into() }).await.expect("get copy").into_inner()
}

/// Polls GetCopy until `done` holds (bounded: 20 s).
async fn wait_for(
    client: &mut modelcopy::cli::connect::Client,
    copy_id: &str,
    what: &str,
    done: impl Fn(&proto::Copy) -> bool,
) -> proto::Copy {
    for _ in 0..400 {
        let copy = get(client, copy_id).await;
        if done(&copy) {
            return copy;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("copy {copy_id}: {what} did not happen within 20 s");
}

/// Rekognition's status of the copied version, as a client of its own sees it; `None` once it is gone.
async fn version_status(app: &TestApp, copy: &proto::Copy) -> Option<String> {
    let rekognition = crate::aws_sdk_client(app, DEST_ACCOUNT);
    let listed = rekognition
        .describe_project_versions()
        .project_arn(&copy.destination_project_arn)
        .version_names(&copy.version_name)
        .send()
        .await
        .expect("DescribeProjectVersions");
    listed.project_version_descriptions().first().and_then(|v| v.status()).map(|s| s.as_str().to_owned())
}

/// The service's own audit rows for a copy: (action, decision, gRPC code, principal, authn).
async fn service_rows(app: &TestApp, copy_id: &str) -> Vec<(String, String, String, String, String)> {
    sqlx::query_as(
        "SELECT rpc, decision, grpc_code, principal, authn FROM audit_log
          WHERE copy_id = $1::uuid AND authn = 'service' ORDER BY id",
    )
    .bind(copy_id)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

/// The DeleteProjectVersion calls the simulator received for `arn`.
fn delete_calls(app: &TestApp, arn: &str) -> usize {
    let calls = app.sim.calls();
    calls.iter().filter(|c| c.operation == "DeleteProjectVersion" && c.key["ProjectVersionArn"] == arn).count()
}

#[tokio::test]
async fn a_copy_is_deleted_once_its_delete_after_has_passed_and_shows_expired() {
    let app = TestApp::spawn_with(Options { copy_duration: Duration::from_millis(300), ..Options::default() }).await;
    let mut client = app.client("alice").await;
    let mut watch = client
        .watch_copy(proto::WatchCopyRequest {
            target: Some(proto::watch_copy_request::Target::Filter(proto::CopyFilter::default())),
            after_sequence: None,
        })
        .await
        .expect("watch")
        .into_inner();
    let copy = TestApp::submit(&mut client, with_delete_after(app.copy_request("expiring"), 1)).await;
    assert_eq!(copy.delete_after.map(|d| d.seconds), Some(1));
    assert_eq!(copy.expires_at, None, "not before it succeeded");

    let succeeded = wait_for(&mut client, &copy.copy_id, "success", |c| {
        c.state() != CopyState::Queued && c.state() != CopyState::Submitting && c.state() != CopyState::Copying
    })
    .await;
    assert!(matches!(succeeded.state(), CopyState::Succeeded | CopyState::Expired), "{succeeded:?}");
    let (completed, expires) = (succeeded.completed_at.unwrap(), succeeded.expires_at.unwrap());
    assert_eq!((expires.seconds - completed.seconds, expires.nanos), (1, completed.nanos), "completed_at + 1 s");

    let expired = wait_for(&mut client, &copy.copy_id, "expiry", |c| c.state() == CopyState::Expired).await;
    assert_eq!(expired.completed_at, succeeded.completed_at, "the copy's end does not move");
    assert_eq!(expired.expiry_error, None);
    assert_eq!(expired.rekognition_status, "DELETING", "as DeleteProjectVersion answered");
    assert_eq!(version_status(&app, &expired).await, None, "the version is gone from Rekognition");
    assert_eq!(delete_calls(&app, &expired.destination_project_version_arn), 1);
    assert_eq!(app.history(&copy.copy_id).await, ["QUEUED", "SUBMITTING", "COPYING", "SUCCEEDED", "EXPIRED"]);

    // On record as the service's own action, in the same chain as every call, which still verifies.
    let rows = service_rows(&app, &copy.copy_id).await;
    let deleted = ("DeleteProjectVersion", "ALLOWED", "Ok", "modelcopy", "service");
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!((&*row.0, &*row.1, &*row.2, &*row.3, &*row.4), deleted);
    let verdict = audit::verify(&Store::from_pool(app.pool.clone())).await.unwrap();
    assert_eq!(verdict.exit_code(), 0, "{verdict}");

    // Listed as expired, and streamed to a watcher like every other change.
    let listed = client
        .list_copies(proto::ListCopiesRequest {
            filter: Some(proto::CopyFilter { states: vec![CopyState::Expired as i32], ..Default::default() }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.copies.iter().map(|c| &c.copy_id).collect::<Vec<_>>(), [&copy.copy_id]);
    let mut seen = Vec::new();
    while !seen.contains(&CopyState::Expired) {
        let event = tokio::time::timeout(Duration::from_secs(10), watch.next()).await.expect("an event").unwrap();
        seen.push(event.unwrap().copy.unwrap().state());
    }
    assert_eq!(seen.iter().filter(|s| **s == CopyState::Succeeded).count(), 1, "{seen:?}");
    app.stop().await;
}

#[tokio::test]
async fn a_running_model_is_not_stopped_its_refused_deletion_is_reported_and_tried_again_until_it_is_stopped() {
    let app = TestApp::spawn_with(Options { copy_duration: Duration::from_millis(300), ..Options::default() }).await;
    let mut client = app.client("alice").await;
    let copy = TestApp::submit(&mut client, with_delete_after(app.copy_request("in-use"), 2)).await;
    let succeeded = app.wait_until_ended(&mut client, &copy.copy_id).await;
    assert_eq!(succeeded.state(), CopyState::Succeeded);
    // Someone starts the model before its two seconds are up (StartProjectVersion, out of the service's sight).
    let arn = succeeded.destination_project_version_arn.clone();
    app.sim.set_version_status(&arn, "RUNNING").unwrap();

    let refused = wait_for(&mut client, &copy.copy_id, "a refusal", |c| c.expiry_error.is_some()).await;
    assert_eq!(refused.state(), CopyState::Succeeded);
    assert_eq!(refused.expiry_error.as_ref().unwrap().code, "ResourceInUseException");
    assert!(refused.expiry_error.as_ref().unwrap().message.contains("RUNNING"), "{refused:?}");
    // Tried again (every 300 ms here), the same refusal recorded once.
    for _ in 0..200 {
        if delete_calls(&app, &arn) >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(delete_calls(&app, &arn) >= 3, "the deletion is tried again");
    assert_eq!(version_status(&app, &refused).await.as_deref(), Some("RUNNING"), "still running: never stopped");
    let operations: std::collections::BTreeSet<String> = app.sim.calls().into_iter().map(|c| c.operation).collect();
    let made: Vec<&str> = operations.iter().map(String::as_str).collect();
    assert_eq!(made, ["CopyProjectVersion", "DeleteProjectVersion", "DescribeProjectVersions"], "nothing else");
    let rows = service_rows(&app, &copy.copy_id).await;
    assert_eq!(rows.len(), 1, "one refusal, one record: {rows:?}");
    assert_eq!(
        (rows[0].0.as_str(), rows[0].1.as_str(), rows[0].2.as_str()),
        ("DeleteProjectVersion", "FAILED", "FailedPrecondition")
    );

    // Stopped by its owner: the next try deletes it.
    app.sim.set_version_status(&arn, "STOPPED").unwrap();
    let expired = wait_for(&mut client, &copy.copy_id, "expiry", |c| c.state() == CopyState::Expired).await;
    assert_eq!(expired.expiry_error, None, "cleared once deleted");
    assert_eq!(version_status(&app, &expired).await, None);
    let rows = service_rows(&app, &copy.copy_id).await;
    let decisions: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(decisions, ["FAILED", "ALLOWED"]);
    let events: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT to_state, expiry_error_code FROM copy_events WHERE copy_id = $1::uuid AND from_state = 'SUCCEEDED'
          ORDER BY seq",
    )
    .bind(&copy.copy_id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let refusal = ("SUCCEEDED".to_owned(), Some("ResourceInUseException".to_owned()));
    assert_eq!(events, [refusal, ("EXPIRED".to_owned(), None)]);
    app.stop().await;
}

#[tokio::test]
async fn a_version_deleted_by_someone_else_expires_without_a_fuss() {
    let app = TestApp::spawn_with(Options { copy_duration: Duration::from_millis(300), ..Options::default() }).await;
    let mut client = app.client("alice").await;
    let copy = TestApp::submit(&mut client, with_delete_after(app.copy_request("gone"), 2)).await;
    let succeeded = app.wait_until_ended(&mut client, &copy.copy_id).await;
    crate::aws_sdk_client(&app, DEST_ACCOUNT)
        .delete_project_version()
        .project_version_arn(&succeeded.destination_project_version_arn)
        .send()
        .await
        .expect("deleted by its owner");
    let expired = wait_for(&mut client, &copy.copy_id, "expiry", |c| c.state() == CopyState::Expired).await;
    assert_eq!(expired.expiry_error, None);
    let reason: String =
        sqlx::query_scalar("SELECT reason FROM audit_log WHERE copy_id = $1::uuid AND authn = 'service'")
            .bind(&copy.copy_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(reason.contains("already been deleted"), "{reason}");
    app.stop().await;
}

#[tokio::test]
async fn delete_after_is_checked_and_part_of_the_request_for_idempotency() {
    let app = TestApp::spawn_with(Options { dispatch: false, ..Options::default() }).await;
    let mut client = app.client("alice").await;
    for (seconds, nanos) in [(0, 0), (-3, 0), (5, 500), (36_500 * 86_400 + 1, 0)] {
        let mut request = app.copy_request("bad-delete-after");
        request.delete_after = Some(prost_types::Duration { seconds, nanos });
        let status = client.copy_model_version(request).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{seconds}.{nanos}: {status:?}");
        assert!(status.message().contains("delete_after"), "{status:?}");
    }
    assert_eq!(app.job_count().await, 0, "nothing queued");

    let mut first = with_delete_after(app.copy_request("token-kept"), 3600);
    first.idempotency_token = "expiring-1".into();
    let created = client.copy_model_version(first.clone()).await.unwrap().into_inner();
    let replayed = client.copy_model_version(first.clone()).await.unwrap().into_inner();
    assert!(replayed.replayed && replayed.copy.unwrap().copy_id == created.copy.unwrap().copy_id);
    for other in [Some(prost_types::Duration { seconds: 7200, nanos: 0 }), None] {
        let mut changed = first.clone();
        changed.delete_after = other;
        let status = client.copy_model_version(changed).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::AlreadyExists, "{other:?}: {status:?}");
    }
    app.stop().await;
}
