//! Compliance reporting: ListAuditEvents' filters and pages, exports that read back equal to the database, and a
//! summary whose counts match a known workload.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use clap::Parser;
use modelcopy::audit::{AuditRecord, Decision};
use modelcopy::cli::audit::csv;
use modelcopy::cli::{self, Cli, Outcome};
use modelcopy::proto::{self, AuditDecision, AuditEventFilter, ListAuditEventsRequest};
use modelcopy::store;
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::{TestApp, DEST_ACCOUNT, SOURCE_ACCOUNT};

async fn run_cli(app: &TestApp, args: &[&str]) -> String {
    let argv = ["modelcopy-cli", "--endpoint", &app.endpoint, "--principal", "auditor"]
        .into_iter()
        .chain(args.iter().copied());
    let cli = Cli::try_parse_from(argv).expect("arguments parse");
    let mut out = Vec::new();
    let outcome = cli::execute(&cli, &mut out).await.expect("command succeeds");
    assert_eq!(outcome, Outcome::Done);
    String::from_utf8(out).unwrap()
}

/// A copy request that the service refuses as invalid, naming real accounts in its ARNs.
fn invalid_request(app: &TestApp) -> proto::CopyModelVersionRequest {
    app.copy_request("not a valid name!")
}

async fn list(client: &mut modelcopy::cli::connect::Client, filter: AuditEventFilter) -> Vec<proto::AuditEvent> {
    let request = ListAuditEventsRequest { filter: Some(filter), page_size: 500, page_token: String::new() };
    let page = client.list_audit_events(request).await.expect("listed").into_inner();
    assert!(page.next_page_token.is_empty());
    page.events
}

fn ids(events: &[proto::AuditEvent]) -> Vec<u64> {
    events.iter().map(|e| e.id).collect()
}

#[tokio::test]
async fn list_audit_events_filters_and_pages() {
    let app = TestApp::spawn_without_dispatch().await;
    let mut alice = app.client("alice").await;
    let mut bob = app.client("bob").await;
    let copy = TestApp::submit(&mut alice, app.copy_request("listed-1")).await; // 1
    alice.get_copy(proto::GetCopyRequest { copy_id: copy.copy_id.clone() }).await.unwrap(); // 2
    bob.copy_model_version(invalid_request(&app)).await.unwrap_err(); // 3
    let mut anonymous = app.anonymous_client().await;
    anonymous.copy_model_version(app.copy_request("anon")).await.unwrap_err(); // 4
    let other_route = proto::ListCopiesRequest {
        filter: Some(proto::CopyFilter { source_account_id: "333333333333".into(), ..Default::default() }),
        ..Default::default()
    };
    bob.list_copies(other_route).await.unwrap(); // 5
    let times: Vec<DateTime<Utc>> =
        sqlx::query_scalar("SELECT occurred_at FROM audit_log ORDER BY id").fetch_all(&app.pool).await.unwrap();
    assert_eq!(times.len(), 5);

    let mut auditor = app.client("auditor").await;
    let by_bob = list(&mut auditor, AuditEventFilter { principal: "bob".into(), ..Default::default() }).await;
    assert_eq!(ids(&by_bob), [3, 5]);
    assert_eq!(by_bob[0].decision(), AuditDecision::Invalid);
    assert!(by_bob[0].request_json.as_deref().unwrap().contains("not a valid name!"));

    let refused = AuditEventFilter {
        action: "CopyModelVersion".into(),
        decisions: vec![AuditDecision::Invalid as i32, AuditDecision::Denied as i32],
        ..Default::default()
    };
    let refused = list(&mut auditor, refused).await;
    assert_eq!(ids(&refused), [3, 4]);
    assert_eq!(refused[1].principal, None, "no credentials: no principal");
    assert_eq!(refused[1].grpc_code, "Unauthenticated");

    // The destination account: the copy's own calls (1, 2) and the refused request that named it (3); not the
    // request without a body (4), nor the list of another account's copies (5).
    let dest = list(&mut auditor, AuditEventFilter { account_id: DEST_ACCOUNT.into(), ..Default::default() }).await;
    assert_eq!(ids(&dest), [1, 2, 3]);
    assert_eq!(dest[1].copy_id.as_deref(), Some(copy.copy_id.as_str()));
    let other = list(&mut auditor, AuditEventFilter { account_id: "333333333333".into(), ..Default::default() }).await;
    assert_eq!(ids(&other), [5]);

    let window = AuditEventFilter {
        occurred_after: Some(modelcopy::cli::to_timestamp(times[1])),
        occurred_before: Some(modelcopy::cli::to_timestamp(times[3])),
        ..Default::default()
    };
    assert_eq!(ids(&list(&mut auditor, window).await), [2, 3]);

    // Pages of two, through the CLI, follow each other without gaps; then the listing's own calls are recorded too.
    let out =
        run_cli(&app, &["audit", "list", "--all", "--page-size", "2", "-o", "json", "--to", &times[4].to_rfc3339()])
            .await;
    let listed: Vec<u64> =
        out.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].as_u64().unwrap()).collect();
    assert_eq!(listed, [1, 2, 3, 4]);
    let own: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE rpc = 'ListAuditEvents' AND principal = 'auditor'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(own, 5 + 2, "five lists, and the CLI's two pages");

    let bad = ListAuditEventsRequest {
        filter: Some(AuditEventFilter { account_id: "12".into(), decisions: vec![0], ..Default::default() }),
        page_token: "v1.not-ours".into(),
        ..Default::default()
    };
    let status = auditor.list_audit_events(bad).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields: Vec<String> =
        status.get_details_bad_request().unwrap().field_violations.into_iter().map(|v| v.field).collect();
    assert_eq!(fields, ["filter.decisions[0]", "filter.account_id", "page_token"]);
    app.stop().await;
}

/// An audit row as the database holds it, read without the service's code.
#[derive(Debug, PartialEq, sqlx::FromRow)]
struct DbRow {
    id: i64,
    occurred_at: DateTime<Utc>,
    principal: Option<String>,
    authn: String,
    peer: Option<String>,
    rpc: String,
    decision: String,
    reason: Option<String>,
    grpc_code: String,
    request: Option<serde_json::Value>,
    request_digest: Option<Vec<u8>>,
    copy_id: Option<uuid::Uuid>,
    policy_ids: Vec<String>,
    prev_hash: Option<Vec<u8>>,
    hash: Vec<u8>,
}

async fn db_rows(app: &TestApp, through: i64) -> Vec<DbRow> {
    sqlx::query_as("SELECT * FROM audit_log WHERE id <= $1 ORDER BY id")
        .bind(through)
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

fn time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

fn unhex(text: &str) -> Vec<u8> {
    hex::decode(text).unwrap()
}

/// A CSV record read back into the database's types.
fn from_csv(header: &[Option<String>], record: &[Option<String>]) -> DbRow {
    let field = |name: &str| record[header.iter().position(|h| h.as_deref() == Some(name)).unwrap()].clone();
    let text = |name: &str| field(name).unwrap();
    DbRow {
        id: text("id").parse().unwrap(),
        occurred_at: time(&text("occurred_at")),
        principal: field("principal"),
        authn: text("authn"),
        peer: field("peer"),
        rpc: text("action"),
        decision: text("decision"),
        reason: field("reason"),
        grpc_code: text("grpc_code"),
        request: field("request").map(|t| serde_json::from_str(&t).unwrap()),
        request_digest: field("request_digest").map(|t| unhex(&t)),
        copy_id: field("copy_id").map(|t| t.parse().unwrap()),
        policy_ids: serde_json::from_str(&text("policy_ids")).unwrap(),
        prev_hash: field("prev_hash").map(|t| unhex(&t)),
        hash: unhex(&text("hash")),
    }
}

/// A JSON Lines object read back into the database's types.
fn from_json(value: &serde_json::Value) -> DbRow {
    let opt = |name: &str| value[name].as_str().map(str::to_owned);
    let text = |name: &str| opt(name).unwrap_or_else(|| panic!("{name} is missing in {value}"));
    DbRow {
        id: value["id"].as_i64().unwrap(),
        occurred_at: time(&text("occurred_at")),
        principal: opt("principal"),
        authn: text("authn"),
        peer: opt("peer"),
        rpc: text("action"),
        decision: text("decision"),
        reason: opt("reason"),
        grpc_code: text("grpc_code"),
        request: (!value["request"].is_null()).then(|| value["request"].clone()),
        request_digest: opt("request_digest").map(|t| unhex(&t)),
        copy_id: opt("copy_id").map(|t| t.parse().unwrap()),
        policy_ids: serde_json::from_value(value["policy_ids"].clone()).unwrap(),
        prev_hash: opt("prev_hash").map(|t| unhex(&t)),
        hash: unhex(&text("hash")),
    }
}

#[tokio::test]
async fn exports_read_back_equal_the_rows_in_the_database() {
    let app = TestApp::spawn_without_dispatch().await;
    let mut alice = app.client("alice").await;
    let copy = TestApp::submit(&mut alice, app.copy_request("exported")).await;
    alice
        .cancel_copy(proto::CancelCopyRequest {
            copy_id: copy.copy_id.clone(),
            reason: "wrong bucket, \"oops\"\nsorry".into(),
        })
        .await
        .unwrap();
    alice.copy_model_version(invalid_request(&app)).await.unwrap_err();
    app.anonymous_client().await.list_copies(proto::ListCopiesRequest::default()).await.unwrap_err();
    // What RPCs cannot produce, but a record may hold: line breaks, quotes and commas, empty strings beside NULLs.
    let odd = AuditRecord {
        principal: Some("svc:batch,runner".into()),
        authn: "dev-metadata".into(),
        peer: Some(String::new()),
        rpc: "GetCopy".into(),
        decision: Decision::Failed,
        reason: Some("line one\r\nline \"two\", end".into()),
        grpc_code: tonic::Code::Unavailable,
        request: Some(serde_json::json!({"copy_id": "a,b", "nested": {"list": [1, 2.5, null, "x\ny"]}})),
        request_digest: Some(vec![0, 1, 254, 255]),
        copy_id: Some(copy.copy_id.parse().unwrap()),
        policy_ids: vec!["p-1".into(), "p,\"2\"".into()],
        call: None,
    };
    store::audit::append(&store::Store::from_pool(app.pool.clone()), &odd).await.unwrap();
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log").fetch_one(&app.pool).await.unwrap();

    let dir = std::env::temp_dir().join(format!("modelcopy-export-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("audit.csv");
    let out = run_cli(&app, &["audit", "export", "--format", "csv", "--out", path.to_str().unwrap()]).await;
    assert!(out.starts_with("exported "), "{out}");
    let records = csv::read_records(&std::fs::read_to_string(&path).unwrap()).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let (header, records) = records.split_first().unwrap();
    let from_csv: Vec<DbRow> = records.iter().map(|r| from_csv(header, r)).collect();
    // Everything that was there when the export started, and nothing but what is in the database.
    let last = from_csv.last().unwrap().id;
    assert!(last >= before, "{last} < {before}");
    assert_eq!(from_csv, db_rows(&app, last).await);

    let out = run_cli(&app, &["audit", "export", "--format", "jsonl"]).await;
    let from_jsonl: Vec<DbRow> = out.lines().map(|l| from_json(&serde_json::from_str(l).unwrap())).collect();
    let last = from_jsonl.last().unwrap().id;
    assert!(last > from_csv.len() as i64, "the CSV export's own call is in the JSON Lines one");
    assert_eq!(from_jsonl, db_rows(&app, last).await);
    assert!(from_jsonl.iter().any(|r| r.peer.as_deref() == Some("") && r.reason.as_deref().unwrap().contains("\r\n")));
    assert!(from_jsonl.iter().any(|r| r.principal.is_none()));
    app.stop().await;
}

/// Counts of one principal on one route, summed over periods (a test may run across midnight).
#[derive(Debug, Default, PartialEq, Eq, Clone, Copy)]
struct Counts {
    allowed: u64,
    replayed: u64,
    denied: u64,
    invalid: u64,
    errored: u64,
    succeeded: u64,
    failed: u64,
    cancelled: u64,
}

type Route = (String, String, String);

fn totals(rows: &[proto::AuditSummaryRow]) -> BTreeMap<Route, Counts> {
    let mut totals: BTreeMap<Route, Counts> = BTreeMap::new();
    for row in rows {
        let key = (row.principal.clone(), row.source_account_id.clone(), row.destination_account_id.clone());
        let t = totals.entry(key).or_default();
        t.allowed += row.allowed;
        t.replayed += row.replayed;
        t.denied += row.denied;
        t.invalid += row.invalid;
        t.errored += row.errored;
        t.succeeded += row.succeeded;
        t.failed += row.failed;
        t.cancelled += row.cancelled;
    }
    totals
}

#[tokio::test]
async fn the_summary_counts_match_a_known_workload() {
    let app = TestApp::spawn().await;
    let mut alice = app.client("alice").await;
    let mut bob = app.client("bob").await;
    let with_token = |name: &str, token: &str| proto::CopyModelVersionRequest {
        idempotency_token: token.into(),
        ..app.copy_request(name)
    };

    // alice: three copies, one of which the simulator fails; a retry; a token reused for another copy.
    let mut copies = Vec::new();
    copies.push(TestApp::submit(&mut alice, with_token("ok-1", "t-1")).await);
    copies.push(TestApp::submit(&mut alice, app.copy_request("ok-2")).await);
    copies.push(TestApp::submit(&mut alice, app.copy_request("fail-1")).await);
    assert!(alice.copy_model_version(with_token("ok-1", "t-1")).await.unwrap().into_inner().replayed);
    let reused = alice.copy_model_version(with_token("other", "t-1")).await.unwrap_err();
    assert_eq!(reused.code(), Code::AlreadyExists);
    // bob: two invalid requests and one good copy.
    bob.copy_model_version(invalid_request(&app)).await.unwrap_err();
    let mut no_bucket = app.copy_request("no-bucket");
    no_bucket.output_config = None;
    bob.copy_model_version(no_bucket).await.unwrap_err();
    copies.push(TestApp::submit(&mut bob, app.copy_request("ok-3")).await);
    // Nobody: refused before the request was read.
    app.anonymous_client().await.copy_model_version(app.copy_request("anon")).await.unwrap_err();
    // Calls that are not copies are not counted.
    alice.list_copies(proto::ListCopiesRequest::default()).await.unwrap();

    for copy in &copies {
        app.wait_until_ended(&mut alice, &copy.copy_id).await;
    }

    let route = |principal: &str, source: &str, destination: &str| {
        (principal.to_owned(), source.to_owned(), destination.to_owned())
    };
    let expected: BTreeMap<Route, Counts> = [
        (
            route("alice", SOURCE_ACCOUNT, DEST_ACCOUNT),
            Counts { allowed: 3, replayed: 1, invalid: 1, succeeded: 2, failed: 1, ..Default::default() },
        ),
        (
            route("bob", SOURCE_ACCOUNT, DEST_ACCOUNT),
            Counts { allowed: 1, invalid: 2, succeeded: 1, ..Default::default() },
        ),
        (route("", "", ""), Counts { denied: 1, ..Default::default() }),
    ]
    .into();

    let mut auditor = app.client("auditor").await;
    let day = proto::SummarizeAuditRequest { period: proto::AuditPeriod::Day as i32, ..Default::default() };
    let summary = auditor.summarize_audit(day).await.unwrap().into_inner();
    assert!(!summary.truncated);
    assert_eq!(totals(&summary.rows), expected);
    for row in &summary.rows {
        let start = row.period_start.unwrap();
        assert_eq!((start.seconds % 86_400, start.nanos), (0, 0), "a day starts at midnight UTC");
    }

    // The same through the CLI, by month.
    let out = run_cli(&app, &["audit", "summary", "--period", "month", "-o", "json"]).await;
    let rows: Vec<proto::AuditSummaryRow> = out
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let n = |k: &str| v[k].as_u64().unwrap();
            proto::AuditSummaryRow {
                period_start: None,
                principal: v["principal"].as_str().unwrap().into(),
                source_account_id: v["source_account_id"].as_str().unwrap().into(),
                destination_account_id: v["destination_account_id"].as_str().unwrap().into(),
                allowed: n("allowed"),
                replayed: n("replayed"),
                denied: n("denied"),
                invalid: n("invalid"),
                errored: n("errored"),
                succeeded: n("succeeded"),
                failed: n("failed"),
                cancelled: n("cancelled"),
                expired: n("expired"),
            }
        })
        .collect();
    assert_eq!(totals(&rows), expected);

    // A time range after the workload holds none of it.
    let later = proto::SummarizeAuditRequest {
        period: proto::AuditPeriod::Week as i32,
        occurred_after: Some(modelcopy::cli::to_timestamp(Utc::now())),
        ..Default::default()
    };
    assert!(auditor.summarize_audit(later).await.unwrap().into_inner().rows.is_empty());
    let status = auditor.summarize_audit(proto::SummarizeAuditRequest::default()).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    app.stop().await;
}
