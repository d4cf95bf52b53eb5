//! Authorization end to end: Cedar policies decide each call on its route and owner, every refusal is audited with
//! the policy that decided it, other teams' copies stay out of sight, and policies change while the service runs.
//! Callers name themselves and their groups in dev metadata, so these tests do not depend on how production
//! callers authenticate.

use std::time::Duration;

use futures::StreamExt;
use modelcopy::auth::authenticator::{GROUPS_HEADER, PRINCIPAL_HEADER};
use modelcopy::proto::model_copy_client::ModelCopyClient;
use modelcopy::proto::{self, watch_copy_request::Target, CopyState};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::Code;

use crate::helpers::{Options, TestApp, DEST_ACCOUNT, SOURCE_ACCOUNT};

/// X = SOURCE_ACCOUNT, Y = DEST_ACCOUNT. Team A copies X -> Y and nothing else; Y takes copies from team A only;
/// team B copies Y -> X. Each team sees its route's copies, everyone their own.
fn team_policies(y_belongs_to_team_a: bool) -> String {
    let y_rule = if y_belongs_to_team_a {
        r#"
@id("y-belongs-to-team-a")
@reason("only team A copies into Y")
forbid(principal, action == ModelCopy::Action::"CopyModelVersion", resource)
when { resource.destination_account == "Y" } unless { principal in ModelCopy::Group::"team-a" };
"#
    } else {
        r#"
@id("team-b-copies-x-to-y")
permit(principal in ModelCopy::Group::"team-b", action == ModelCopy::Action::"CopyModelVersion", resource)
when { resource.source_account == "X" && resource.destination_account == "Y" };
"#
    };
    let text = r#"
@id("team-a-copies-x-to-y")
permit(principal in ModelCopy::Group::"team-a", action == ModelCopy::Action::"CopyModelVersion", resource)
when { resource.source_account == "X" && resource.destination_account == "Y" };

@id("team-a-stays-on-its-route")
@reason("team A copies only from X to Y")
forbid(principal in ModelCopy::Group::"team-a", action == ModelCopy::Action::"CopyModelVersion", resource)
unless { resource.source_account == "X" && resource.destination_account == "Y" };

@id("team-b-copies-y-to-x")
permit(principal in ModelCopy::Group::"team-b", action == ModelCopy::Action::"CopyModelVersion", resource)
when { resource.source_account == "Y" && resource.destination_account == "X" };

@id("team-a-sees-its-route")
permit(principal in ModelCopy::Group::"team-a",
       action in [ModelCopy::Action::"ReadCopies", ModelCopy::Action::"CancelCopy"], resource)
when { resource.source_account == "X" && resource.destination_account == "Y" };

@id("owners-see-their-copies")
permit(principal, action in [ModelCopy::Action::"ReadCopies", ModelCopy::Action::"CancelCopy"], resource)
when { resource.owner == principal.name };

@id("auditors-read-the-log")
permit(principal in ModelCopy::Group::"auditors", action == ModelCopy::Action::"ListAuditEvents", resource);
"#
    .to_owned()
        + y_rule;
    text.replace("\"X\"", &format!("\"{SOURCE_ACCOUNT}\"")).replace("\"Y\"", &format!("\"{DEST_ACCOUNT}\""))
}

async fn spawn(policies: String) -> TestApp {
    TestApp::spawn_with(Options { dispatch: false, policies: Some(policies), ..Default::default() }).await
}

/// Names the caller and its groups in dev metadata.
#[derive(Clone)]
struct Member(&'static str, &'static str);

impl tonic::service::Interceptor for Member {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        request.metadata_mut().insert(PRINCIPAL_HEADER, self.0.parse().unwrap());
        request.metadata_mut().insert(GROUPS_HEADER, self.1.parse().unwrap());
        Ok(request)
    }
}

type Client = ModelCopyClient<InterceptedService<Channel, Member>>;

async fn member(app: &TestApp, id: &'static str, groups: &'static str) -> Client {
    let channel = tonic::transport::Endpoint::from_shared(app.endpoint.clone()).unwrap().connect().await.unwrap();
    ModelCopyClient::with_interceptor(channel, Member(id, groups))
}

/// A request on the reverse route, Y -> X (the projects need not exist: nothing is dispatched).
fn reverse_request(app: &TestApp, version_name: &str) -> proto::CopyModelVersionRequest {
    let swap =
        |arn: &str| arn.replace(SOURCE_ACCOUNT, "@").replace(DEST_ACCOUNT, SOURCE_ACCOUNT).replace('@', DEST_ACCOUNT);
    let request = app.copy_request(version_name);
    proto::CopyModelVersionRequest {
        source_project_arn: swap(&request.source_project_arn),
        source_project_version_arn: swap(&request.source_project_version_arn),
        destination_project_arn: swap(&request.destination_project_arn),
        ..request
    }
}

async fn copy(client: &mut Client, request: proto::CopyModelVersionRequest) -> Result<proto::Copy, tonic::Status> {
    client.copy_model_version(request).await.map(|r| r.into_inner().copy.expect("a copy"))
}

/// Audit rows of `rpc` as (principal, decision, reason, policy ids), oldest first.
async fn audit(app: &TestApp, rpc: &str) -> Vec<(String, String, String, Vec<String>)> {
    sqlx::query_as(
        "SELECT coalesce(principal, ''), decision, coalesce(reason, ''), policy_ids FROM audit_log
          WHERE rpc = $1 ORDER BY id",
    )
    .bind(rpc)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

/// Replaces the policy file in one step (as `mv` does), so the service never reads half of it.
fn write_policies(app: &TestApp, text: &str) {
    let staged = app.policy_file.with_extension("staged");
    std::fs::write(&staged, text).unwrap();
    std::fs::rename(&staged, &app.policy_file).unwrap();
}

#[tokio::test]
async fn a_team_copies_only_on_its_route_and_every_refusal_names_the_deciding_policy() {
    let app = spawn(team_policies(true)).await;
    let mut alice = member(&app, "alice", "team-a").await;
    let mut bob = member(&app, "bob", "team-b").await;
    let mut carol = member(&app, "carol", "").await;

    copy(&mut alice, app.copy_request("a-x-to-y")).await.expect("team A copies X -> Y");

    let other_route = copy(&mut alice, reverse_request(&app, "a-y-to-x")).await.unwrap_err();
    assert_eq!(other_route.code(), Code::PermissionDenied);
    assert!(other_route.message().contains("CopyModelVersion"), "{}", other_route.message());
    assert!(other_route.message().contains("team-a-stays-on-its-route"), "{}", other_route.message());

    let other_team = copy(&mut bob, app.copy_request("b-x-to-y")).await.unwrap_err();
    assert_eq!(other_team.code(), Code::PermissionDenied);
    assert!(
        other_team.message().contains("y-belongs-to-team-a (only team A copies into Y)"),
        "{}",
        other_team.message()
    );

    copy(&mut bob, reverse_request(&app, "b-y-to-x")).await.expect("team B copies Y -> X");
    let nobody = copy(&mut carol, reverse_request(&app, "c-y-to-x")).await.unwrap_err();
    assert_eq!(nobody.code(), Code::PermissionDenied);
    // Invalid input is still answered as invalid: authorization only looks at valid requests.
    assert_eq!(copy(&mut bob, app.copy_request("")).await.unwrap_err().code(), Code::InvalidArgument);

    let rows = audit(&app, "CopyModelVersion").await;
    let summary: Vec<_> =
        rows.iter().map(|(who, decision, _, ids)| (who.as_str(), decision.as_str(), ids.clone())).collect();
    let ids = |id: &str| vec![id.to_owned()];
    assert_eq!(
        summary,
        [
            ("alice", "ALLOWED", ids("team-a-copies-x-to-y")),
            ("alice", "DENIED", ids("team-a-stays-on-its-route")),
            ("bob", "DENIED", ids("y-belongs-to-team-a")),
            ("bob", "ALLOWED", ids("team-b-copies-y-to-x")),
            ("carol", "DENIED", vec![]),
            ("bob", "INVALID", vec![]),
        ]
    );
    assert!(rows[1].2.contains("forbidden by team-a-stays-on-its-route"), "{}", rows[1].2);
    assert!(rows[2].2.contains("only team A copies into Y"), "{}", rows[2].2);
    assert!(rows[4].2.contains("deny by default"), "{}", rows[4].2);
    assert_eq!(app.job_count().await, 2, "refused requests queue nothing");

    // The audit log is the auditors' to read.
    let refused = carol.list_audit_events(proto::ListAuditEventsRequest::default()).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(refused.message().contains("ListAuditEvents"));
    let mut auditor = member(&app, "dana", "auditors").await;
    auditor.list_audit_events(proto::ListAuditEventsRequest::default()).await.expect("auditors read the log");
    app.stop().await;
}

#[tokio::test]
async fn another_team_never_sees_a_teams_copies() {
    let app = spawn(team_policies(true)).await;
    let mut alice = member(&app, "alice", "team-a").await;
    let mut bob = member(&app, "bob", "team-b").await;
    let a1 = copy(&mut alice, app.copy_request("a1")).await.unwrap();
    let b1 = copy(&mut bob, reverse_request(&app, "b1")).await.unwrap();
    let a2 = copy(&mut alice, app.copy_request("a2")).await.unwrap();
    let a3 = copy(&mut alice, app.copy_request("a3")).await.unwrap();
    let b2 = copy(&mut bob, reverse_request(&app, "b2")).await.unwrap();

    // GetCopy, CancelCopy and WatchCopy of a copy bob may not see answer as if there were no such copy.
    let unknown = uuid::Uuid::now_v7().to_string();
    let missing = bob.get_copy(proto::GetCopyRequest { copy_id: unknown.clone() }).await.unwrap_err();
    let hidden = bob.get_copy(proto::GetCopyRequest { copy_id: a1.copy_id.clone() }).await.unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);
    assert_eq!(hidden.message(), missing.message().replace(&unknown, &a1.copy_id));
    let cancel = proto::CancelCopyRequest { copy_id: a1.copy_id.clone(), reason: "mine now".into() };
    assert_eq!(bob.cancel_copy(cancel).await.unwrap_err().code(), Code::NotFound);
    let watch_a1 = proto::WatchCopyRequest { target: Some(Target::CopyId(a1.copy_id.clone())), after_sequence: None };
    assert_eq!(bob.watch_copy(watch_a1).await.unwrap_err().code(), Code::NotFound);
    let a1_now = alice.get_copy(proto::GetCopyRequest { copy_id: a1.copy_id.clone() }).await.unwrap().into_inner();
    assert_eq!(a1_now.state(), CopyState::Queued, "bob's cancel changed nothing");
    let gets = audit(&app, "GetCopy").await;
    assert_eq!(gets[1].0, "bob");
    assert_eq!(gets[1].1, "DENIED", "a hidden copy is audited as a refusal");
    assert!(gets[1].2.contains("no policy permits GetCopy"), "{}", gets[1].2);
    assert_eq!(gets[0].1, "ALLOWED", "a copy that does not exist is just not found");

    // ListCopies: one copy a page, so that pages end among hidden copies; paging still ends, without gaps.
    let mut seen = Vec::new();
    let mut token = String::new();
    for page in 0.. {
        assert!(page < 10, "paging does not end: {seen:?}");
        let request = proto::ListCopiesRequest { filter: None, page_size: 1, page_token: token };
        let response = bob.list_copies(request).await.unwrap().into_inner();
        seen.extend(response.copies.into_iter().map(|c| c.copy_id));
        token = response.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(seen, [b2.copy_id.clone(), b1.copy_id.clone()]);
    let all = alice.list_copies(proto::ListCopiesRequest::default()).await.unwrap().into_inner();
    let ids: Vec<_> = all.copies.iter().map(|c| c.copy_id.clone()).collect();
    assert_eq!(ids, [a3.copy_id.clone(), a2.copy_id.clone(), a1.copy_id.clone()]);
    let lists = audit(&app, "ListCopies").await;
    let last = lists.last().unwrap();
    assert_eq!((last.0.as_str(), last.2.as_str()), ("alice", "3 copies shown, 2 hidden by policy"));
    assert_eq!(last.3, ["owners-see-their-copies", "team-a-sees-its-route"]);

    // WatchCopy with a filter: bob's snapshot holds his copies only, and alice's changes never reach him. Alice's
    // cancel commits before bob's, so the first change bob is sent proves hers was held back.
    let everything =
        proto::WatchCopyRequest { target: Some(Target::Filter(proto::CopyFilter::default())), after_sequence: None };
    let mut stream = bob.watch_copy(everything).await.unwrap().into_inner();
    let first = next_event(&mut stream).await;
    let second = next_event(&mut stream).await;
    let snapshot: Vec<_> =
        [&first, &second].iter().map(|e| (e.snapshot, e.copy.as_ref().unwrap().copy_id.clone())).collect();
    assert_eq!(snapshot, [(true, b1.copy_id.clone()), (true, b2.copy_id.clone())]);
    alice.cancel_copy(proto::CancelCopyRequest { copy_id: a3.copy_id.clone(), reason: String::new() }).await.unwrap();
    bob.cancel_copy(proto::CancelCopyRequest { copy_id: b1.copy_id.clone(), reason: String::new() }).await.unwrap();
    let change = next_event(&mut stream).await;
    let changed = change.copy.unwrap();
    assert_eq!(
        (change.snapshot, changed.copy_id.clone(), changed.state()),
        (false, b1.copy_id.clone(), CopyState::Cancelled)
    );
    app.stop().await;
}

async fn next_event(stream: &mut tonic::Streaming<proto::CopyEvent>) -> proto::CopyEvent {
    tokio::time::timeout(Duration::from_secs(20), stream.next())
        .await
        .expect("an event within 20 s")
        .expect("the stream goes on")
        .unwrap()
}

#[tokio::test]
async fn policies_change_while_serving_and_an_invalid_file_changes_nothing() {
    let app = spawn(team_policies(true)).await;
    let policies = app.app.as_ref().unwrap().policies().clone();
    let mut status = policies.status();
    let mut alice = member(&app, "alice", "team-a").await;
    let mut bob = member(&app, "bob", "team-b").await;
    assert_eq!(copy(&mut bob, app.copy_request("b-1")).await.unwrap_err().code(), Code::PermissionDenied);

    // A typo in an attribute name: the schema refuses it, and the policies in force stay.
    write_policies(&app, &team_policies(false).replace("resource.destination_account", "resource.destination_acount"));
    tokio::time::timeout(Duration::from_secs(20), status.wait_for(|s| s.refused >= 1))
        .await
        .expect("the invalid file is read within 20 s")
        .unwrap();
    let error = status.borrow().last_error.clone().unwrap();
    assert!(error.contains("policies.cedar:") && error.contains("destination_acount"), "{error}");
    assert_eq!(status.borrow().loaded, 1);
    let still = copy(&mut bob, app.copy_request("b-2")).await.unwrap_err();
    assert!(still.message().contains("y-belongs-to-team-a"), "{}", still.message());
    copy(&mut alice, app.copy_request("a-1")).await.expect("the old policies still permit team A");

    // A valid change takes effect: team B may now copy X -> Y too.
    write_policies(&app, &team_policies(false));
    tokio::time::timeout(Duration::from_secs(20), status.wait_for(|s| s.loaded >= 2))
        .await
        .expect("the valid file is loaded within 20 s")
        .unwrap();
    assert_eq!(status.borrow().last_error, None);
    copy(&mut bob, app.copy_request("b-3")).await.expect("the new policies permit team B");
    let rows = audit(&app, "CopyModelVersion").await;
    assert_eq!(rows.last().unwrap().3, ["team-b-copies-x-to-y"]);
    app.stop().await;
}

/// A caller who may see little lists with a page size of 1 among 6,000 copies it may not see. Before, such a call
/// read two rows a query (2,500 queries in one call), and a page cut short by the scan limit had a token naming
/// the last copy examined: one the caller may not see.
#[tokio::test]
async fn a_caller_who_sees_little_pages_past_many_hidden_copies_in_few_queries_with_tokens_that_name_none() {
    let options = Options { dispatch: false, policies: Some(team_policies(true)), ..Default::default() };
    let (app, proxy) = TestApp::spawn_behind_proxy_with(options).await;
    let mut bob = member(&app, "bob", "team-b").await;
    let oldest = copy(&mut bob, reverse_request(&app, "b-oldest")).await.unwrap();
    let hidden = app.queue_behind(6_000, "alice", "hidden").await;
    let newest = copy(&mut bob, reverse_request(&app, "b-newest")).await.unwrap();
    // Each hidden copy at an instant of its own, between bob's two.
    sqlx::query(
        "UPDATE copy_jobs SET created_at = now() - interval '1 hour' + numbered.n * interval '1 millisecond'
           FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM copy_jobs WHERE id = ANY($1)) AS numbered
          WHERE copy_jobs.id = numbered.id",
    )
    .bind(&hidden)
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query("UPDATE copy_jobs SET created_at = now() - interval '2 hours' WHERE id = $1::uuid")
        .bind(&oldest.copy_id)
        .execute(&app.pool)
        .await
        .unwrap();

    let (mut seen, mut token, mut most_writes) = (Vec::new(), String::new(), 0);
    for page in 0.. {
        assert!(page < 10, "paging does not end: {seen:?}");
        let before = proxy.writes_to_server();
        let request = proto::ListCopiesRequest { filter: None, page_size: 1, page_token: token };
        let response = bob.list_copies(request).await.unwrap().into_inner();
        most_writes = most_writes.max(proxy.writes_to_server() - before);
        seen.extend(response.copies.iter().map(|c| c.copy_id.clone()));
        token = response.next_page_token;
        if token.is_empty() {
            break;
        }
        let named = modelcopy::store::PageToken::decode(&token).expect("a token the service made").id.to_string();
        let shown: Vec<_> = response.copies.iter().map(|c| c.copy_id.clone()).collect();
        assert!(
            shown.contains(&named) || named == uuid::Uuid::nil().to_string(),
            "page {page}'s token names copy {named}, which bob was not shown"
        );
    }
    assert_eq!(seen, [newest.copy_id, oldest.copy_id], "every copy bob may see, once, in order");
    println!("most writes to PostgreSQL in one ListCopies call: {most_writes}");
    // A dozen queries for a page cut short at 5,000 rows, the audit write, and what TCP splits.
    assert!(most_writes < 60, "one ListCopies call made {most_writes} round trips to PostgreSQL");
    app.stop().await;
}
