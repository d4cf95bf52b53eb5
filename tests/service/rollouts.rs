//! Rollouts (issue 13): one source version copied to many destination accounts in one audited request, each
//! destination authorized on its own, the copies ordinary copies tied to the rollout, its state read from theirs.

use std::collections::BTreeMap;
use std::time::Duration;

use modelcopy::proto::{self, watch_copy_request::Target, CopyState, RolloutState};
use modelcopy::simulator::Fault;
use tokio_stream::StreamExt;
use tonic::Code;

use crate::helpers::{Options, TestApp, DEST_ACCOUNT};

const MORE: [&str; 3] = ["333333333333", "444444444444", "555555555555"];

fn destination_project(app: &TestApp, account: &str) -> String {
    app.seed.project_arn(account, crate::helpers::REGION, "detector-prod").unwrap()
}

fn rollout_request(app: &TestApp, accounts: &[&str], version_name: &str) -> proto::CreateRolloutRequest {
    proto::CreateRolloutRequest {
        source_project_arn: app.source_project(),
        source_project_version_arn: app.source_version(),
        defaults: Some(proto::RolloutDefaults {
            version_name: version_name.into(),
            output_config: Some(proto::OutputConfig { s3_bucket: "model-output".into(), s3_key_prefix: String::new() }),
            tags: [("release".to_string(), "7".to_string())].into(),
            kms_key_id: None,
        }),
        destinations: accounts
            .iter()
            .map(|account| proto::RolloutDestination {
                destination_project_arn: destination_project(app, account),
                ..Default::default()
            })
            .collect(),
        idempotency_token: String::new(),
        delete_after: None,
    }
}

fn all_accounts() -> Vec<&'static str> {
    std::iter::once(DEST_ACCOUNT).chain(MORE).collect()
}

async fn get_rollout(client: &mut modelcopy::cli::connect::Client, id: &str) -> proto::Rollout {
    client.get_rollout(proto::GetRolloutRequest { rollout_id: id.into() }).await.expect("get rollout").into_inner()
}

/// Polls GetRollout until it is no longer running (bounded: 30 s).
async fn wait_until_done(client: &mut modelcopy::cli::connect::Client, id: &str) -> proto::Rollout {
    for _ in 0..600 {
        let rollout = get_rollout(client, id).await;
        if rollout.state() != RolloutState::Running {
            return rollout;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("rollout {id} still running after 30 s");
}

#[tokio::test]
async fn a_rollout_copies_to_every_destination_watched_through_one_stream() {
    let options = Options { more_destinations: MORE.to_vec(), ..Options::default() };
    let app = TestApp::spawn_with(options).await;
    let mut client = app.client("alice").await;
    let mut request = rollout_request(&app, &all_accounts(), "release-7");
    request.idempotency_token = "promote-7".into();
    // One destination names its own version and tags; the others take the defaults.
    request.destinations[2].version_name = "release-7-eu".into();
    request.destinations[2].tags = [("region".to_string(), "eu".to_string())].into();
    let created = client.create_rollout(request.clone()).await.expect("rollout").into_inner();
    assert!(!created.replayed);
    let rollout = created.rollout.unwrap();
    let counts = rollout.counts.unwrap();
    assert_eq!((counts.total, counts.queued), (4, 4));
    let accounts: Vec<String> =
        rollout.copies.iter().map(|c| c.destination_project_arn.split(':').nth(4).unwrap().to_owned()).collect();
    assert_eq!(accounts, all_accounts(), "one copy per destination, in order");
    assert!(rollout.copies.iter().all(|c| c.rollout_id == rollout.rollout_id));
    assert_eq!(rollout.copies[2].version_name, "release-7-eu");
    assert_eq!(rollout.copies[2].tags, BTreeMap::from([("region".to_string(), "eu".to_string())]));
    assert_eq!(rollout.copies[1].tags, BTreeMap::from([("release".to_string(), "7".to_string())]));

    // Every change of the rollout's copies through one stream (from the start of the history: none is missed).
    let filter = proto::CopyFilter { rollout_id: rollout.rollout_id.clone(), ..Default::default() };
    let mut watch = client
        .watch_copy(proto::WatchCopyRequest { target: Some(Target::Filter(filter)), after_sequence: Some(0) })
        .await
        .expect("watch")
        .into_inner();
    let mut ended = BTreeMap::new();
    while ended.len() < 4 {
        let event = tokio::time::timeout(Duration::from_secs(20), watch.next()).await.expect("an event").unwrap();
        let copy = event.unwrap().copy.unwrap();
        assert_eq!(copy.rollout_id, rollout.rollout_id, "only this rollout's copies");
        if copy.state() == CopyState::Succeeded {
            ended.insert(copy.copy_id.clone(), copy.destination_project_arn.clone());
        }
    }

    let done = wait_until_done(&mut client, &rollout.rollout_id).await;
    assert_eq!(done.state(), RolloutState::Succeeded);
    assert_eq!(done.counts.unwrap().succeeded, 4);
    // The copies are ordinary copies: listed by rollout like any others.
    let listed = client
        .list_copies(proto::ListCopiesRequest {
            filter: Some(proto::CopyFilter { rollout_id: rollout.rollout_id.clone(), ..Default::default() }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.copies.len(), 4);

    // The same token and request: the same rollout, nothing new; with another destination list: refused.
    let again = client.create_rollout(request.clone()).await.unwrap().into_inner();
    assert!(again.replayed);
    assert_eq!(again.rollout.unwrap().rollout_id, rollout.rollout_id);
    let mut other = request.clone();
    other.destinations.pop();
    let refused = client.create_rollout(other).await.unwrap_err();
    assert_eq!(refused.code(), Code::AlreadyExists, "{refused:?}");
    assert_eq!(app.job_count().await, 4);

    // On record: the call, and one row per copy naming it; the chain still verifies.
    let rows: Vec<(String, String, Option<String>)> =
        sqlx::query_as("SELECT rpc, decision, copy_id::text FROM audit_log WHERE rpc = 'CreateRollout' ORDER BY id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let with_copy = rows.iter().filter(|r| r.2.is_some()).count();
    assert_eq!((rows.len(), with_copy), (4 + 1 + 2, 4), "{rows:?}");
    assert_eq!(rows.iter().filter(|r| r.1 == "INVALID").count(), 1, "the mismatched token: {rows:?}");
    let verdict = modelcopy::audit::verify(&modelcopy::store::Store::from_pool(app.pool.clone())).await.unwrap();
    assert_eq!(verdict.exit_code(), 0, "{verdict}");
    // In the compliance summary, each copy of the rollout is a request of its own, the refused retry one more.
    let summary = client
        .summarize_audit(proto::SummarizeAuditRequest { period: proto::AuditPeriod::Day as i32, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let total = |f: fn(&proto::AuditSummaryRow) -> u64| summary.rows.iter().map(f).sum::<u64>();
    assert_eq!((total(|r| r.allowed), total(|r| r.succeeded), total(|r| r.invalid)), (4, 4, 1), "{summary:?}");
    let listed = client.list_rollouts(proto::ListRolloutsRequest::default()).await.unwrap().into_inner();
    assert_eq!(listed.rollouts.iter().map(|r| &r.rollout_id).collect::<Vec<_>>(), [&rollout.rollout_id]);
    app.stop().await;
}

#[tokio::test]
async fn a_rollout_with_one_destination_failing_in_rekognition_ends_partially_failed_with_its_error() {
    let options = Options { more_destinations: MORE.to_vec(), ..Options::default() };
    let app = TestApp::spawn_with(options).await;
    app.sim.inject_fault(Fault {
        operation: "CopyProjectVersion".into(),
        account_id: Some(MORE[1].into()),
        error: "AccessDeniedException".into(),
        message: "The KMS key policy does not let this account use the key.".into(),
        count: 1,
    });
    let mut client = app.client("alice").await;
    let created = client.create_rollout(rollout_request(&app, &all_accounts(), "r-8")).await.unwrap().into_inner();
    let id = created.rollout.unwrap().rollout_id;
    let done = wait_until_done(&mut client, &id).await;
    assert_eq!(done.state(), RolloutState::PartiallyFailed);
    let counts = done.counts.unwrap();
    assert_eq!((counts.succeeded, counts.failed), (3, 1));
    let failed: Vec<&proto::Copy> = done.copies.iter().filter(|c| c.state() == CopyState::Failed).collect();
    assert_eq!(failed.len(), 1);
    assert!(failed[0].destination_project_arn.contains(MORE[1]));
    let error = failed[0].error.as_ref().unwrap();
    assert_eq!(error.code, "AccessDeniedException");
    assert!(error.message.contains("KMS key policy"), "{error:?}");
    app.stop().await;
}

#[tokio::test]
async fn a_rollout_with_one_forbidden_destination_is_refused_whole_naming_it() {
    let policies = format!(
        r#"
@id("alice-copies")
permit(principal, action, resource);

@id("no-copies-into-{forbidden}")
@reason("{forbidden} is a regulated account")
forbid(principal, action == ModelCopy::Action::"CopyModelVersion", resource)
when {{ resource.destination_account == "{forbidden}" }};
"#,
        forbidden = MORE[2]
    );
    let options = Options { more_destinations: MORE.to_vec(), policies: Some(policies), ..Options::default() };
    let app = TestApp::spawn_with(options).await;
    let mut client = app.client("alice").await;
    let refused = client.create_rollout(rollout_request(&app, &all_accounts(), "r-9")).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(refused.message().contains("destinations[3]"), "{refused:?}");
    assert!(refused.message().contains(MORE[2]), "{refused:?}");
    assert_eq!(app.job_count().await, 0, "nothing queued");
    let rollouts: i64 = sqlx::query_scalar("SELECT count(*) FROM rollouts").fetch_one(&app.pool).await.unwrap();
    assert_eq!(rollouts, 0);
    let denied: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT decision, reason FROM audit_log WHERE rpc = 'CreateRollout'")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(denied[0].0, "DENIED");
    assert!(denied[0].1.as_deref().unwrap_or_default().contains("regulated"), "{denied:?}");
    // An auditor looking at the regulated account finds the refused rollout that named it.
    let filter = proto::AuditEventFilter { account_id: MORE[2].into(), ..Default::default() };
    let found = client
        .list_audit_events(proto::ListAuditEventsRequest { filter: Some(filter), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let actions: Vec<&str> = found.events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["CreateRollout"], "{found:?}");
    app.stop().await;
}

#[tokio::test]
async fn cancelling_a_rollout_cancels_what_is_still_queued() {
    let options = Options { more_destinations: MORE.to_vec(), dispatch: false, ..Options::default() };
    let app = TestApp::spawn_with(options).await;
    let mut client = app.client("alice").await;
    let created = client.create_rollout(rollout_request(&app, &all_accounts(), "r-10")).await.unwrap().into_inner();
    let id = created.rollout.unwrap().rollout_id;
    let cancel = proto::CancelRolloutRequest { rollout_id: id.clone(), reason: "wrong model".into() };
    let cancelled = client.cancel_rollout(cancel.clone()).await.unwrap().into_inner();
    assert_eq!(cancelled.state(), RolloutState::Cancelled);
    assert!(cancelled.cancelled_at.is_some());
    assert_eq!(cancelled.counts.unwrap().cancelled, 4);
    assert!(cancelled.copies.iter().all(|c| c.state() == CopyState::Cancelled));
    let again = client.cancel_rollout(cancel).await.unwrap().into_inner();
    assert_eq!((again.state(), again.cancelled_at), (RolloutState::Cancelled, cancelled.cancelled_at));
    let detail: String = sqlx::query_scalar("SELECT detail FROM copy_events WHERE to_state = 'CANCELLED' LIMIT 1")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(detail, "wrong model");
    let missing = proto::GetRolloutRequest { rollout_id: uuid::Uuid::now_v7().to_string() };
    assert_eq!(client.get_rollout(missing).await.unwrap_err().code(), Code::NotFound);
    app.stop().await;
}

#[tokio::test]
async fn a_bad_rollout_is_refused_naming_each_field_and_nothing_is_queued() {
    let app = TestApp::spawn_with(Options { dispatch: false, ..Options::default() }).await;
    let mut client = app.client("alice").await;
    let mut request = rollout_request(&app, &[DEST_ACCOUNT, DEST_ACCOUNT, DEST_ACCOUNT], "r-11");
    // A project in an account the service has no settings for.
    request.destinations[2].destination_project_arn =
        "arn:aws:rekognition:us-east-1:999999999999:project/detector-prod/1700000000000".into();
    let refused = client.create_rollout(request.clone()).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().contains("destinations[1].version_name"), "{refused:?}");
    request.destinations.remove(1);
    let refused = client.create_rollout(request.clone()).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().contains("destinations[1].destination_project_arn"), "{refused:?}");
    assert!(refused.message().contains("not one this service copies into"), "{refused:?}");
    let none = proto::CreateRolloutRequest { destinations: vec![], ..request };
    let refused = client.create_rollout(none).await.unwrap_err();
    assert!(refused.message().contains("destinations: needs at least one"), "{refused:?}");
    assert_eq!(app.job_count().await, 0);
    app.stop().await;
}

#[tokio::test]
async fn a_rollout_that_would_overfill_a_queue_is_refused_whole() {
    let app = TestApp::spawn_with(Options { dispatch: false, max_queued: Some(2), ..Options::default() }).await;
    let mut client = app.client("alice").await;
    let mut request = rollout_request(&app, &[DEST_ACCOUNT, DEST_ACCOUNT, DEST_ACCOUNT], "unused");
    for (i, destination) in request.destinations.iter_mut().enumerate() {
        destination.version_name = format!("full-{i}");
    }
    let refused = client.create_rollout(request.clone()).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert_eq!(app.job_count().await, 0, "the two copies that fitted were not kept either");
    request.destinations.pop();
    client.create_rollout(request).await.expect("two fit");
    assert_eq!(app.job_count().await, 2);
    app.stop().await;
}

/// The call's audit row names every policy that let one of its destinations through, not only the last one's.
#[tokio::test]
async fn a_rollout_s_audit_row_names_the_policy_of_each_destination() {
    let policies = format!(
        r#"
@id("to-{dest}")
permit(principal, action == ModelCopy::Action::"CopyModelVersion", resource)
when {{ resource.destination_account == "{dest}" }};

@id("to-{more}")
permit(principal, action == ModelCopy::Action::"CopyModelVersion", resource)
when {{ resource.destination_account == "{more}" }};
"#,
        dest = DEST_ACCOUNT,
        more = MORE[0]
    );
    let options =
        Options { more_destinations: vec![MORE[0]], policies: Some(policies), dispatch: false, ..Options::default() };
    let app = TestApp::spawn_with(options).await;
    let mut client = app.client("alice").await;
    client.create_rollout(rollout_request(&app, &[DEST_ACCOUNT, MORE[0]], "r-12")).await.expect("both permitted");
    let policy_ids: Vec<String> = sqlx::query_scalar(
        "SELECT unnest(policy_ids) FROM audit_log WHERE rpc = 'CreateRollout' AND copy_id IS NULL ORDER BY 1",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(policy_ids, [format!("to-{DEST_ACCOUNT}"), format!("to-{}", MORE[0])]);
    app.stop().await;
}
