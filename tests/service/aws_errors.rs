use modelcopy::domain::{CopyId, CopyState as DomainState};
use modelcopy::proto::CopyState;
use modelcopy::simulator::Fault;
use modelcopy::store::{jobs, Change, Store};

use crate::helpers::TestApp;

#[tokio::test]
async fn a_missing_destination_project_fails_the_copy_with_aws_code_kept() {
    let app = TestApp::spawn().await;
    let mut client = app.client("alice").await;
    let mut request = app.copy_request("to-nowhere");
    request.destination_project_arn = request.destination_project_arn.replace("detector-prod", "no-such-project");

    let copy = TestApp::submit(&mut client, request).await;
    let ended = app.wait_until_ended(&mut client, &copy.copy_id).await;
    assert_eq!(ended.state(), CopyState::Failed);
    let error = ended.error.expect("the AWS error is kept");
    assert_eq!(error.code, "ResourceNotFoundException");
    assert!(!error.message.is_empty());
    assert_eq!(ended.attempts, 1, "a permanent error is not retried");
    assert_eq!(app.history(&copy.copy_id).await, ["QUEUED", "SUBMITTING", "FAILED"]);
    assert_eq!(app.sim.call_count("CopyProjectVersion"), 1);
    app.stop().await;
}

#[tokio::test]
async fn throttling_is_retried_with_backoff_until_the_copy_succeeds() {
    let app = TestApp::spawn().await;
    app.sim.inject_fault(Fault {
        operation: "CopyProjectVersion".into(),
        account_id: None,
        error: "ThrottlingException".into(),
        message: "Slow down".into(),
        count: 2,
    });
    let mut client = app.client("alice").await;
    let copy = TestApp::submit(&mut client, app.copy_request("throttled")).await;
    let ended = app.wait_until_ended(&mut client, &copy.copy_id).await;
    assert_eq!(ended.state(), CopyState::Succeeded, "{ended:?}");
    assert_eq!(ended.attempts, 3);

    let copies: Vec<_> = app.sim.calls().into_iter().filter(|c| c.operation == "CopyProjectVersion").collect();
    let outcomes: Vec<&str> = copies.iter().map(|c| c.outcome.as_str()).collect();
    assert_eq!(outcomes, ["ThrottlingException", "ThrottlingException", "ok"]);
    // The SDK's own retries are off: every attempt is the service's own, paced by its backoff.
    assert!(copies.iter().all(|c| c.attempt.as_deref().is_none_or(|a| a.starts_with("attempt=1"))), "{copies:?}");
    assert!(
        copies.windows(2).all(|w| w[1].at - w[0].at >= chrono::Duration::milliseconds(40)),
        "backoff between attempts"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_successor_adopts_the_copy_a_dead_replica_submitted_instead_of_copying_twice() {
    let app = TestApp::spawn_without_dispatch().await;
    let mut client = app.client("alice").await;
    let copy = TestApp::submit(&mut client, app.copy_request("adopted")).await;

    // A replica moved the job to SUBMITTING, counted its attempt, called CopyProjectVersion, and died before it
    // could record the answer.
    let store = Store::from_pool(app.pool.clone());
    let id: CopyId = copy.copy_id.parse().unwrap();
    jobs::transition(&store, id, DomainState::Queued, &Change::to(DomainState::Submitting), None)
        .await
        .unwrap()
        .unwrap();
    sqlx::query("UPDATE copy_jobs SET attempts = 1 WHERE id = $1").bind(id.as_uuid()).execute(&app.pool).await.unwrap();
    let made = crate::aws_sdk_client(&app, crate::helpers::DEST_ACCOUNT)
        .copy_project_version()
        .source_project_arn(app.source_project())
        .source_project_version_arn(app.source_version())
        .destination_project_arn(app.destination_project())
        .version_name("adopted")
        .output_config(aws_sdk_rekognition::types::OutputConfig::builder().s3_bucket("model-output").build())
        .send()
        .await
        .expect("the dead replica's call")
        .project_version_arn
        .unwrap();

    let successor = app.spawn_replica().await;
    let ended = app.wait_until_ended(&mut client, &copy.copy_id).await;
    assert_eq!(ended.state(), CopyState::Succeeded, "{ended:?}");
    assert_eq!(ended.destination_project_version_arn, made);
    assert_eq!(app.sim.call_count("CopyProjectVersion"), 1, "the successor did not submit again");
    assert!(app.sim.call_count("DescribeProjectVersions") >= 1);
    successor.stop().await.unwrap();
    app.stop().await;
}

/// A resubmission first looks for the copy an earlier attempt may have started. When that look keeps failing, the
/// attempts still count: the job fails once they are spent, instead of staying SUBMITTING for ever (and holding one
/// of its account's in-progress places).
#[tokio::test]
async fn a_describe_that_keeps_failing_before_a_resubmission_still_spends_the_attempts() {
    let app = TestApp::spawn().await;
    let fault = |operation: &str, count| Fault {
        operation: operation.into(),
        account_id: None,
        error: "ThrottlingException".into(),
        message: "Slow down".into(),
        count,
    };
    app.sim.inject_fault(fault("CopyProjectVersion", 1));
    app.sim.inject_fault(fault("DescribeProjectVersions", 1_000));
    let mut client = app.client("alice").await;
    let copy = TestApp::submit(&mut client, app.copy_request("never-confirmed")).await;
    let ended = app.wait_until_ended(&mut client, &copy.copy_id).await;
    assert_eq!(ended.state(), CopyState::Failed, "{ended:?}");
    assert_eq!(ended.attempts, 5, "the test app allows 5 attempts");
    assert_eq!(ended.error.expect("the last error is kept").code, "ThrottlingException");
    assert_eq!(app.sim.call_count("CopyProjectVersion"), 1, "never copied again without finding the first");
    app.stop().await;
}

/// Before, an AssumeRole that STS refused surfaced as an SDK dispatch failure, read as a lost connection: the copy
/// was retried (and held one of the account's places) until its attempts ran out, and then failed as a
/// `ConnectionError`, with no word of the role.
#[tokio::test]
async fn a_role_that_cannot_be_assumed_fails_the_copy_at_once_with_sts_s_error() {
    let options = crate::helpers::Options { assume_role: Some("no-such-role"), ..Default::default() };
    let app = TestApp::spawn_with(options).await;
    let mut client = app.client("alice").await;
    let copy = TestApp::submit(&mut client, app.copy_request("wrong-role")).await;
    let ended = app.wait_until_ended(&mut client, &copy.copy_id).await;
    assert_eq!(ended.state(), CopyState::Failed, "{ended:?}");
    let error = ended.error.expect("the STS error is kept");
    assert_eq!(error.code, "sts:AccessDenied");
    assert!(error.message.contains("not authorized to perform: sts:AssumeRole"), "{}", error.message);
    assert!(error.message.contains("no-such-role"), "{}", error.message);
    assert_eq!(ended.attempts, 1, "refused by STS: not retried");
    assert_eq!(app.sim.call_count("CopyProjectVersion"), 0, "nothing reached Rekognition");
    app.stop().await;
}

#[tokio::test]
async fn a_copy_is_made_with_the_credentials_of_an_assumed_role() {
    let options = crate::helpers::Options { assume_role: Some(crate::helpers::DEST_ROLE), ..Default::default() };
    let app = TestApp::spawn_with(options).await;
    let mut client = app.client("alice").await;
    let copy = TestApp::submit(&mut client, app.copy_request("with-a-role")).await;
    let ended = app.wait_until_ended(&mut client, &copy.copy_id).await;
    assert_eq!(ended.state(), CopyState::Succeeded, "{ended:?}");
    let copies: Vec<_> = app.sim.calls().into_iter().filter(|c| c.operation == "CopyProjectVersion").collect();
    assert_eq!(copies.len(), 1);
    assert_eq!(copies[0].account_id.as_deref(), Some(crate::helpers::DEST_ACCOUNT));
    app.stop().await;
}
