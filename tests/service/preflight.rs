//! Preflight (issue 13): before a copy or rollout is queued, the service asks Rekognition with its own credentials
//! whether the copy can work; a certain failure is FAILED_PRECONDITION with a PreconditionFailure naming what is
//! missing, audited, with nothing queued.

use std::collections::BTreeMap;
use std::time::Duration;

use modelcopy::preflight::PreflightSettings;
use modelcopy::proto::{self, preflight::Outcome, watch_copy_request::Target, CopyState, RolloutState};
use tokio_stream::StreamExt;
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::{Options, TestApp, DEST_ACCOUNT, SOURCE_ACCOUNT};

const MORE: [&str; 4] = ["333333333333", "444444444444", "555555555555", "666666666666"];
const UNPERMITTED: &str = "555555555555";

fn checked() -> Option<PreflightSettings> {
    Some(PreflightSettings { per_second: 100.0, ..PreflightSettings::default() })
}

/// (type, subject, description) of each PreconditionFailure violation.
fn violations(status: &tonic::Status) -> Vec<(String, String, String)> {
    let failure = status.get_details_precondition_failure().expect("a PreconditionFailure");
    failure.violations.iter().map(|v| (v.r#type.clone(), v.subject.clone(), v.description.clone())).collect()
}

fn rollout_request(app: &TestApp, token: &str) -> proto::CreateRolloutRequest {
    let destinations = std::iter::once(DEST_ACCOUNT)
        .chain(MORE)
        .map(|account| proto::RolloutDestination {
            destination_project_arn: app.seed.project_arn(account, crate::helpers::REGION, "detector-prod").unwrap(),
            ..Default::default()
        })
        .collect();
    proto::CreateRolloutRequest {
        source_project_arn: app.source_project(),
        source_project_version_arn: app.source_version(),
        defaults: Some(proto::RolloutDefaults {
            version_name: "promoted".into(),
            output_config: Some(proto::OutputConfig { s3_bucket: "model-output".into(), s3_key_prefix: String::new() }),
            ..Default::default()
        }),
        destinations,
        idempotency_token: token.into(),
        delete_after: None,
    }
}

/// The case: a rollout to five accounts, one of which the source project's policies do not let copy, is
/// refused naming that account and the statement to add, with nothing queued; once the policy is added, the same
/// token creates it, and all five copies succeed, watched through one stream.
#[tokio::test]
async fn a_rollout_refused_for_a_missing_policy_goes_through_once_the_policy_is_added() {
    // Nothing believed from an earlier check: each request asks Rekognition again.
    let preflight = Some(PreflightSettings { cache_secs: 0, ..checked().unwrap() });
    let options = Options {
        more_destinations: MORE.to_vec(),
        without_policy: vec![UNPERMITTED],
        preflight,
        ..Options::default()
    };
    let app = TestApp::spawn_with(options).await;
    let mut client = app.client("alice").await;
    let refused = client.create_rollout(rollout_request(&app, "promote-1")).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    let found = violations(&refused);
    assert_eq!(found.len(), 1, "{found:?}");
    let (kind, subject, description) = &found[0];
    assert_eq!(kind, "PROJECT_POLICY");
    assert!(subject.contains(UNPERMITTED), "{subject}");
    assert!(description.starts_with("destinations[3]: "), "{description}");
    let statement = description.split_once("add this statement to one (PutProjectPolicy): ").unwrap().1;
    let statement: serde_json::Value = serde_json::from_str(statement).expect("the statement, as JSON");
    assert_eq!(statement["Principal"]["AWS"], format!("arn:aws:iam::{UNPERMITTED}:root"));
    assert_eq!(statement["Resource"], app.source_version().as_str());
    assert_eq!(app.job_count().await, 0, "nothing queued");
    assert_eq!(app.sim.call_count("CopyProjectVersion"), 0);
    let audited: Vec<(String, String)> =
        sqlx::query_as("SELECT decision, grpc_code FROM audit_log WHERE rpc = 'CreateRollout'")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(audited, [("INVALID".to_owned(), "FailedPrecondition".to_owned())]);

    // The source account's owner adds the statement preflight named, as it stands.
    let document = serde_json::json!({ "Version": "2012-10-17", "Statement": [statement] }).to_string();
    crate::aws_sdk_client(&app, SOURCE_ACCOUNT)
        .put_project_policy()
        .project_arn(app.source_project())
        .policy_name("allow-555555555555")
        .policy_document(document)
        .send()
        .await
        .expect("PutProjectPolicy");

    let created = client.create_rollout(rollout_request(&app, "promote-1")).await.expect("now it passes").into_inner();
    assert!(!created.replayed);
    assert_eq!(created.preflight.unwrap().outcome(), Outcome::Passed);
    let rollout = created.rollout.unwrap();
    let filter = proto::CopyFilter { rollout_id: rollout.rollout_id.clone(), ..Default::default() };
    let mut watch = client
        .watch_copy(proto::WatchCopyRequest { target: Some(Target::Filter(filter)), after_sequence: Some(0) })
        .await
        .unwrap()
        .into_inner();
    let mut succeeded = BTreeMap::new();
    while succeeded.len() < 5 {
        let event = tokio::time::timeout(Duration::from_secs(20), watch.next()).await.expect("an event").unwrap();
        let copy = event.unwrap().copy.unwrap();
        assert_ne!(copy.state(), CopyState::Failed, "{copy:?}");
        if copy.state() == CopyState::Succeeded {
            succeeded.insert(copy.destination_project_arn.clone(), copy.copy_id.clone());
        }
    }
    let done = client.get_rollout(proto::GetRolloutRequest { rollout_id: rollout.rollout_id.clone() }).await;
    let done = done.unwrap().into_inner();
    assert_eq!((done.state(), done.counts.unwrap().succeeded), (RolloutState::Succeeded, 5));
    // The policy goes again; a retry is still answered with what it made, and says why it was not refused.
    crate::aws_sdk_client(&app, SOURCE_ACCOUNT)
        .delete_project_policy()
        .project_arn(app.source_project())
        .policy_name("allow-555555555555")
        .send()
        .await
        .expect("DeleteProjectPolicy");
    let again = client.create_rollout(rollout_request(&app, "promote-1")).await.unwrap().into_inner();
    assert!(again.replayed);
    assert!(again.preflight.unwrap().note.contains("retry"));
    let refused = client.create_rollout(rollout_request(&app, "promote-2")).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "a new request is refused again: {refused:?}");
    app.stop().await;
}

#[tokio::test]
async fn a_copy_of_a_missing_version_or_into_a_missing_project_is_refused_before_it_is_queued() {
    let app = TestApp::spawn_with(Options { preflight: checked(), ..Options::default() }).await;
    let mut client = app.client("alice").await;
    let mut request = app.copy_request("no-such-source");
    request.source_project_version_arn = request.source_project_version_arn.replace("/version/v1/", "/version/v9/");
    let refused = client.copy_model_version(request).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert_eq!(violations(&refused)[0].0, "SOURCE_VERSION");

    let mut request = app.copy_request("no-such-destination");
    request.destination_project_arn =
        format!("arn:aws:rekognition:us-east-1:{DEST_ACCOUNT}:project/missing/1700000000000");
    let refused = client.copy_model_version(request).await.unwrap_err();
    let found = violations(&refused);
    assert_eq!(
        (found[0].0.as_str(), found[0].1.as_str()),
        (
            "DESTINATION_PROJECT",
            &*format!("arn:aws:rekognition:us-east-1:{DEST_ACCOUNT}:project/missing/1700000000000")
        )
    );
    assert_eq!(app.job_count().await, 0);

    // A good copy passes, and a second like it is checked from what the first learned: no more calls.
    let first = client.copy_model_version(app.copy_request("checked-1")).await.unwrap().into_inner();
    assert_eq!(first.preflight.unwrap().outcome(), Outcome::Passed);
    let calls = |app: &TestApp| ["DescribeProjects", "ListProjectPolicies"].map(|op| app.sim.call_count(op));
    let before = calls(&app);
    let second = client.copy_model_version(app.copy_request("checked-2")).await.unwrap().into_inner();
    assert_eq!(second.preflight.unwrap().outcome(), Outcome::Passed);
    assert_eq!(calls(&app), before, "believed for cache_secs");
    app.stop().await;
}

#[tokio::test]
async fn without_credentials_for_the_source_account_a_copy_is_queued_unchecked_and_told_so() {
    let options = Options { unconfigured: vec![SOURCE_ACCOUNT], preflight: checked(), ..Options::default() };
    let app = TestApp::spawn_with(options).await;
    let mut client = app.client("alice").await;
    let answer = client.copy_model_version(app.copy_request("unchecked")).await.unwrap().into_inner();
    let preflight = answer.preflight.unwrap();
    assert_eq!(preflight.outcome(), Outcome::Skipped);
    assert!(preflight.note.contains(&format!("no credentials for source account {SOURCE_ACCOUNT}")), "{preflight:?}");
    let ended = app.wait_until_ended(&mut client, &answer.copy.unwrap().copy_id).await;
    assert_eq!(ended.state(), CopyState::Succeeded, "queued as before");
    app.stop().await;
}

/// Preflight's calls are paced per account for all replicas together: with a pace of one call every two seconds
/// and no waiting, a copy's second call finds the pace spent, and the copy is queued unchecked, saying so.
#[tokio::test]
async fn a_spent_preflight_pace_lets_the_copy_through_unchecked() {
    let settings = PreflightSettings { per_second: 0.5, max_wait_ms: 0, ..PreflightSettings::default() };
    let app = TestApp::spawn_with(Options { preflight: Some(settings), dispatch: false, ..Options::default() }).await;
    let mut client = app.client("alice").await;
    let answer = client.copy_model_version(app.copy_request("paced")).await.unwrap().into_inner();
    let preflight = answer.preflight.unwrap();
    assert_eq!(preflight.outcome(), Outcome::Skipped, "{preflight:?}");
    assert!(preflight.note.contains("spent"), "{preflight:?}");
    assert_eq!(app.job_count().await, 1);
    app.stop().await;
}
