use futures::StreamExt;
use modelcopy::proto::{self, watch_copy_request::Target, CopyState};

use crate::helpers::{state_names, TestApp};

#[tokio::test]
async fn a_copy_is_queued_submitted_followed_and_succeeds_with_every_step_stored_and_watched() {
    let app = TestApp::spawn().await;
    let mut client = app.client("alice").await;

    let answer = client.copy_model_version(app.copy_request("copy-1")).await.unwrap().into_inner();
    assert!(!answer.replayed);
    let copy = answer.copy.unwrap();
    assert_eq!(copy.state(), CopyState::Queued);
    assert_eq!(copy.principal, "alice");
    assert!(copy.created_at.is_some());

    let mut stream = client
        .watch_copy(proto::WatchCopyRequest {
            target: Some(Target::CopyId(copy.copy_id.clone())),
            after_sequence: None,
        })
        .await
        .unwrap()
        .into_inner();
    let mut events = Vec::new();
    // The stream ends by itself after the terminal state; the timeout only bounds a broken build.
    tokio::time::timeout(std::time::Duration::from_secs(20), async {
        while let Some(event) = stream.next().await {
            events.push(event.unwrap());
        }
    })
    .await
    .expect("the watch ends after the copy does");

    assert!(events[0].snapshot, "the current state comes first");
    let last = events.last().unwrap().copy.clone().unwrap();
    assert_eq!(last.state(), CopyState::Succeeded);
    assert_eq!(last.rekognition_status, "COPYING_COMPLETED");
    let expected_arn_prefix = format!("{}/version/copy-1/", app.destination_project().rsplit_once('/').unwrap().0);
    assert!(
        last.destination_project_version_arn.starts_with(&expected_arn_prefix),
        "{} should start with {expected_arn_prefix}",
        last.destination_project_version_arn
    );
    assert!(last.completed_at.is_some() && last.submitted_at.is_some());
    // Changes arrive in order; whatever the snapshot showed, the rest of the life follows it.
    let seqs: Vec<u64> = events.iter().skip(1).map(|e| e.sequence).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    // The snapshot may find the copy anywhere along its life (the dispatcher is quick); from there on, the
    // watcher sees every later state, in order, none skipped.
    let states = state_names(&events);
    let life = [CopyState::Queued, CopyState::Submitting, CopyState::Copying, CopyState::Succeeded];
    let mut ranks: Vec<usize> = states.iter().map(|s| life.iter().position(|l| l == s).unwrap()).collect();
    ranks.dedup();
    let expected: Vec<usize> = (ranks[0]..life.len()).collect();
    assert_eq!(ranks, expected, "{states:?}");

    assert_eq!(app.history(&copy.copy_id).await, ["QUEUED", "SUBMITTING", "COPYING", "SUCCEEDED"]);
    let audit = app.audit_rows().await;
    assert!(audit.contains(&("CopyModelVersion".into(), "ALLOWED".into(), "Ok".into(), Some(copy.copy_id.clone()))));
    assert!(audit.iter().any(|(rpc, decision, _, id)| rpc == "WatchCopy"
        && decision == "ALLOWED"
        && id.as_deref() == Some(copy.copy_id.as_str())));
    assert_eq!(app.sim.call_count("CopyProjectVersion"), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_copy_that_rekognition_reports_failed_fails_with_its_status_message() {
    let app = TestApp::spawn().await;
    let mut client = app.client("alice").await;
    // The simulator fails copies whose version name starts with "fail-".
    let copy = TestApp::submit(&mut client, app.copy_request("fail-me")).await;
    let ended = app.wait_until_ended(&mut client, &copy.copy_id).await;
    assert_eq!(ended.state(), CopyState::Failed);
    assert_eq!(ended.rekognition_status, "COPYING_FAILED");
    let error = ended.error.unwrap();
    assert_eq!(error.code, "COPYING_FAILED");
    assert!(!error.message.is_empty());
    assert_eq!(app.history(&copy.copy_id).await, ["QUEUED", "SUBMITTING", "COPYING", "FAILED"]);
    app.stop().await;
}
