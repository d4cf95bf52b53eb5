//! Fault injection and the call log, as seen through the SDK.

use std::time::Duration;

use aws_sdk_rekognition::error::ProvideErrorMetadata;
use modelcopy::simulator::Fault;

use crate::helpers::*;

fn fault(operation: &str, account_id: Option<&str>, error: &str, count: u32) -> Fault {
    Fault {
        operation: operation.into(),
        account_id: account_id.map(Into::into),
        error: error.into(),
        message: "Rate exceeded".into(),
        count,
    }
}

#[tokio::test]
async fn injected_throttling_reaches_the_sdk_as_throttling() {
    let sim = Sim::start(Duration::from_secs(2)).await;
    let client = sim.client_without_retries(KEY_A);
    let dest = sim.project_arn(ACCOUNT_A, REGION, "dest");
    sim.handle.inject_fault(fault("CopyProjectVersion", None, "ThrottlingException", 1));

    let err = copy_source_v1(&sim, &client, &dest, "throttled").await.unwrap_err();

    assert_eq!(err.raw_response().map(|response| response.status().as_u16()), Some(500));
    let err = err.into_service_error();
    assert!(err.is_throttling_exception(), "{err:?}");
    assert_eq!(err.code(), Some("ThrottlingException"));
    assert_eq!(err.message(), Some("Rate exceeded"));
    assert_eq!(sim.handle.call_count("CopyProjectVersion"), 1, "one attempt, no retry");
    let versions = client.describe_project_versions().project_arn(&dest).send().await.unwrap();
    assert!(versions.project_version_descriptions().is_empty(), "a faulted call changes nothing");

    copy_source_v1(&sim, &client, &dest, "throttled").await.expect("the fault fired once only");
    assert_eq!(sim.handle.call_count("CopyProjectVersion"), 2);
}

#[tokio::test]
async fn sdk_retries_are_separate_attempts_of_one_invocation() {
    let sim = Sim::start(Duration::from_secs(2)).await;
    sim.handle.inject_fault(fault("DescribeProjects", None, "ThrottlingException", 2));

    sim.client(KEY_A).describe_projects().send().await.expect("the SDK retries past two throttles");

    let calls = sim.handle.calls();
    assert_eq!(calls.len(), 3);
    let outcomes: Vec<&str> = calls.iter().map(|call| call.outcome.as_str()).collect();
    assert_eq!(outcomes, ["ThrottlingException", "ThrottlingException", "ok"]);
    for (n, call) in calls.iter().enumerate() {
        let attempt = call.attempt.as_deref().expect("amz-sdk-request is recorded");
        assert!(attempt.starts_with(&format!("attempt={}", n + 1)), "{attempt}");
        assert_eq!(call.invocation_id, calls[0].invocation_id, "same invocation across retries");
    }
    assert!(calls[0].invocation_id.is_some());
}

#[tokio::test]
async fn fault_for_one_account_spares_the_others() {
    let sim = Sim::start(Duration::from_secs(2)).await;
    sim.handle.inject_fault(fault("DescribeProjects", Some(ACCOUNT_B), "InternalServerError", 1));

    sim.client_without_retries(KEY_A).describe_projects().send().await.expect("account A is not faulted");
    let err = sim.client_without_retries(KEY_B).describe_projects().send().await.unwrap_err();

    assert!(err.into_service_error().is_internal_server_error());
}

#[tokio::test]
async fn call_log_records_account_operation_key_and_outcome() {
    let sim = Sim::start(Duration::from_secs(2)).await;
    sim.client(KEY_A).create_project().project_name("logged").send().await.unwrap();
    sim.client(UNKNOWN_KEY).describe_projects().send().await.unwrap_err();

    let calls = sim.handle.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].account_id.as_deref(), Some(ACCOUNT_A));
    assert_eq!(calls[0].operation, "CreateProject");
    assert_eq!(calls[0].key, serde_json::json!({ "ProjectName": "logged" }));
    assert_eq!(calls[0].outcome, "ok");
    assert_eq!(calls[1].account_id, None);
    assert_eq!(calls[1].operation, "DescribeProjects");
    assert_eq!(calls[1].outcome, "UnrecognizedClientException");
    assert!(calls[0].at <= calls[1].at);
    assert_eq!(sim.handle.call_count("CreateProject"), 1);
}

#[tokio::test]
async fn reset_clears_the_log_and_pending_faults() {
    let sim = Sim::start(Duration::from_secs(2)).await;
    let client = sim.client_without_retries(KEY_A);
    client.describe_projects().send().await.unwrap();
    sim.handle.inject_fault(fault("DescribeProjects", None, "ThrottlingException", 5));

    sim.handle.reset_observations();

    assert!(sim.handle.calls().is_empty());
    client.describe_projects().send().await.expect("pending faults are gone");
    assert_eq!(sim.handle.call_count("DescribeProjects"), 1);
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let sim = Sim::start(Duration::from_secs(2)).await;
    let client = sim.client_without_retries(KEY_A);
    client.describe_projects().send().await.unwrap();

    sim.handle.shutdown();
    tokio::time::timeout(Duration::from_secs(5), sim.handle.stopped()).await.expect("server stops");

    let err = client.describe_projects().send().await.unwrap_err();
    assert!(err.as_service_error().is_none(), "no server answers: {err:?}");
}
