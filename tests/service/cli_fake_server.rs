//! Whole CLI commands through [`modelcopy::cli::execute`] against a scripted in-process server on loopback: what
//! goes over the wire (metadata, paging, error details) and what comes out (text, JSON, outcome).

use std::pin::Pin;

use clap::Parser;
use futures::Stream;
use modelcopy::cli::{audit, connect, execute, render, Cli, Outcome};
use modelcopy::proto::encoded::EncodedCopyEvent;
use modelcopy::proto::model_copy_server::{ModelCopy, ModelCopyServer};
use modelcopy::proto::watch_copy_request::Target;
use modelcopy::proto::{AuditDecision, AuditPeriod, CopyState};
use modelcopy::proto::{
    AuditEvent, AuditSummaryRow, CancelCopyRequest, Copy, CopyEvent, CopyModelVersionRequest, CopyModelVersionResponse,
    GetCopyRequest, ListAuditEventsRequest, ListAuditEventsResponse, ListCopiesRequest, ListCopiesResponse,
    SummarizeAuditRequest, SummarizeAuditResponse, WatchCopyRequest,
};
use tonic::{Request, Response, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

struct Fake;

fn header(request: &Request<impl Sized>, key: &str) -> String {
    request.metadata().get(key).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
}

fn copy(id: &str, state: CopyState) -> Copy {
    Copy { copy_id: id.into(), state: state as i32, version_name: "v1".into(), ..Copy::default() }
}

/// The fake's audit log: three records over two pages, with the text CSV must quote and the NULLs it must keep.
fn audit_events() -> Vec<AuditEvent> {
    let event = |id: u64| AuditEvent {
        id,
        occurred_at: Some(prost_types::Timestamp { seconds: 1_714_564_800 + id as i64, nanos: 5_000 }),
        principal: Some("alice".into()),
        authn: "dev-metadata".into(),
        action: "GetCopy".into(),
        decision: AuditDecision::Allowed as i32,
        grpc_code: "Ok".into(),
        hash: vec![id as u8; 32],
        prev_hash: Some(vec![id as u8 - 1; 32]),
        ..AuditEvent::default()
    };
    vec![
        AuditEvent { principal: None, prev_hash: None, reason: Some(String::new()), ..event(1) },
        AuditEvent {
            reason: Some("a \"quoted\", comma\r\nand a line break".into()),
            request_json: Some(r#"{"copy_id": "c,1"}"#.into()),
            policy_ids: vec!["p-1".into(), "p,2".into()],
            request_digest: Some(vec![0xde, 0xad]),
            copy_id: Some("c,1".into()),
            ..event(2)
        },
        event(3),
    ]
}

#[tonic::async_trait]
impl ModelCopy for Fake {
    async fn list_audit_events(
        &self,
        request: Request<ListAuditEventsRequest>,
    ) -> Result<Response<ListAuditEventsResponse>, Status> {
        // Two pages: "" → 2 records, "a2" → the last one.
        let events = audit_events();
        let (events, next) = match request.into_inner().page_token.as_str() {
            "" => (events[..2].to_vec(), "a2"),
            "a2" => (events[2..].to_vec(), ""),
            other => return Err(Status::invalid_argument(format!("bad token {other}"))),
        };
        Ok(Response::new(ListAuditEventsResponse { events, next_page_token: next.into() }))
    }

    async fn summarize_audit(
        &self,
        request: Request<SummarizeAuditRequest>,
    ) -> Result<Response<SummarizeAuditResponse>, Status> {
        let period = request.into_inner().period as u64;
        Ok(Response::new(SummarizeAuditResponse {
            rows: vec![AuditSummaryRow {
                period_start: Some(prost_types::Timestamp { seconds: 1_714_521_600, nanos: 0 }),
                principal: "alice".into(),
                // Echoes the period, so a test sees what was sent.
                allowed: period,
                ..AuditSummaryRow::default()
            }],
            truncated: false,
        }))
    }

    // The rollout commands are tried against the real service (`rollouts.rs`).
    async fn create_rollout(
        &self,
        _: Request<modelcopy::proto::CreateRolloutRequest>,
    ) -> Result<Response<modelcopy::proto::CreateRolloutResponse>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }

    async fn get_rollout(
        &self,
        _: Request<modelcopy::proto::GetRolloutRequest>,
    ) -> Result<Response<modelcopy::proto::Rollout>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }

    async fn list_rollouts(
        &self,
        _: Request<modelcopy::proto::ListRolloutsRequest>,
    ) -> Result<Response<modelcopy::proto::ListRolloutsResponse>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }

    async fn cancel_rollout(
        &self,
        _: Request<modelcopy::proto::CancelRolloutRequest>,
    ) -> Result<Response<modelcopy::proto::Rollout>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }

    async fn copy_model_version(
        &self,
        request: Request<CopyModelVersionRequest>,
    ) -> Result<Response<CopyModelVersionResponse>, Status> {
        let request = request.into_inner();
        if request.version_name == "bad name" {
            return Err(Status::with_error_details(
                tonic::Code::InvalidArgument,
                "the request is invalid",
                ErrorDetails::with_bad_request(vec![FieldViolation::new(
                    "version_name",
                    "1 to 255 characters of [a-zA-Z0-9_.-]",
                )]),
            ));
        }
        Ok(Response::new(CopyModelVersionResponse {
            // The id names the watch script the copy follows.
            copy: Some(copy(&request.version_name, CopyState::Queued)),
            replayed: request.idempotency_token == "seen",
            preflight: None,
        }))
    }

    async fn get_copy(&self, request: Request<GetCopyRequest>) -> Result<Response<Copy>, Status> {
        // Echoes the credentials so tests see what the interceptor sent.
        let principal = header(&request, connect::PRINCIPAL_HEADER);
        let authorization = header(&request, "authorization");
        let id = request.into_inner().copy_id;
        if id == "missing" {
            return Err(Status::not_found("no copy missing"));
        }
        Ok(Response::new(Copy {
            principal,
            rekognition_status_message: authorization,
            ..copy(&id, CopyState::Copying)
        }))
    }

    async fn list_copies(&self, request: Request<ListCopiesRequest>) -> Result<Response<ListCopiesResponse>, Status> {
        // Three pages: "" → p2 → p3 → end, one copy each.
        let (id, next) = match request.into_inner().page_token.as_str() {
            "" => ("a", "p2"),
            "p2" => ("b", "p3"),
            "p3" => ("c", ""),
            other => return Err(Status::invalid_argument(format!("bad token {other}"))),
        };
        Ok(Response::new(ListCopiesResponse {
            copies: vec![copy(id, CopyState::Succeeded)],
            next_page_token: next.into(),
        }))
    }

    async fn cancel_copy(&self, request: Request<CancelCopyRequest>) -> Result<Response<Copy>, Status> {
        let id = request.into_inner().copy_id;
        Ok(Response::new(copy(&id, CopyState::Cancelled)))
    }

    type WatchCopyStream = Pin<Box<dyn Stream<Item = Result<EncodedCopyEvent, Status>> + Send>>;

    async fn watch_copy(&self, request: Request<WatchCopyRequest>) -> Result<Response<Self::WatchCopyStream>, Status> {
        let (id, states) = match request.into_inner().target {
            Some(Target::CopyId(id)) => {
                let end = match id.as_str() {
                    "ok" => vec![CopyState::Succeeded],
                    "fails" => vec![CopyState::Failed],
                    _ => vec![], // ends early, still copying
                };
                (id, [vec![CopyState::Queued, CopyState::Copying], end].concat())
            }
            _ => ("f".to_owned(), vec![CopyState::Queued]),
        };
        let mut previous = CopyState::Unspecified;
        let events: Vec<Result<EncodedCopyEvent, Status>> = states
            .into_iter()
            .enumerate()
            .map(|(i, state)| {
                let event = CopyEvent {
                    sequence: i as u64 + 1,
                    copy: Some(copy(&id, state)),
                    previous_state: previous as i32,
                    ..CopyEvent::default()
                };
                previous = state;
                Ok(EncodedCopyEvent::new(&event))
            })
            .collect();
        Ok(Response::new(Box::pin(futures::stream::iter(events))))
    }
}

/// Serves [`Fake`] on a loopback port for the rest of the test; returns its endpoint.
async fn serve() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let incoming = futures::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.map(|(stream, _)| stream);
        Some((accepted, listener))
    });
    tokio::spawn(
        tonic::transport::Server::builder().add_service(ModelCopyServer::new(Fake)).serve_with_incoming(incoming),
    );
    endpoint
}

async fn cli(endpoint: &str, args: &[&str]) -> (anyhow::Result<Outcome>, String) {
    let argv = ["modelcopy-cli", "--endpoint", endpoint].into_iter().chain(args.iter().copied());
    let cli = Cli::try_parse_from(argv).unwrap();
    let mut out = Vec::new();
    let result = execute(&cli, &mut out).await;
    (result, String::from_utf8(out).unwrap())
}

/// `copy` with every required option; `version_name` also names the copy the fake returns.
fn copy_argv<'a>(version_name: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut argv = vec![
        "copy",
        "--source-project-arn",
        "s",
        "--source-version-arn",
        "sv",
        "--destination-project-arn",
        "d",
        "--s3-bucket",
        "b",
        "--version-name",
        version_name,
    ];
    argv.extend_from_slice(extra);
    argv
}

#[tokio::test]
async fn the_interceptor_sends_principal_and_token() {
    let endpoint = serve().await;
    let (result, out) = cli(&endpoint, &["--principal", "alice", "--token", "t0k", "-o", "json", "get", "c9"]).await;
    assert_eq!(result.unwrap(), Outcome::Done);
    let value: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(value["copy_id"], "c9");
    assert_eq!(value["principal"], "alice");
    assert_eq!(value["rekognition_status_message"], "Bearer t0k");
}

#[tokio::test]
async fn a_grpc_error_is_reported_with_its_code() {
    let endpoint = serve().await;
    let (result, _) = cli(&endpoint, &["get", "missing"]).await;
    let report = render::error_report(&result.unwrap_err());
    assert_eq!(report, "error: GetCopy: NOT_FOUND: no copy missing");
}

#[tokio::test]
async fn invalid_arguments_list_each_bad_field() {
    let endpoint = serve().await;
    let (result, out) = cli(&endpoint, &copy_argv("bad name", &[])).await;
    assert!(out.is_empty());
    assert_eq!(
        render::error_report(&result.unwrap_err()),
        "error: CopyModelVersion: INVALID_ARGUMENT: the request is invalid\n  \
         version_name: 1 to 255 characters of [a-zA-Z0-9_.-]"
    );
}

#[tokio::test]
async fn copy_says_when_it_was_replayed() {
    let endpoint = serve().await;
    let (result, out) = cli(&endpoint, &copy_argv("v1", &["--idempotency-token", "seen"])).await;
    assert_eq!(result.unwrap(), Outcome::Done);
    assert!(out.starts_with("replayed: "), "{out}");
    assert!(out.contains("state          queued\n"), "{out}");

    let (_, out) = cli(&endpoint, &copy_argv("v1", &["-o", "json"])).await;
    let value: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(value["replayed"], false);
    assert_eq!(value["copy"]["state"], "queued");
}

#[tokio::test]
async fn copy_then_watch_exits_by_how_the_copy_ended() {
    let endpoint = serve().await;
    let (result, out) = cli(&endpoint, &copy_argv("fails", &["--watch"])).await;
    assert_eq!(result.unwrap().exit_code(), 3);
    assert!(out.contains("#3  fails  copying → failed\n"), "{out}");

    let (result, _) = cli(&endpoint, &["watch", "ok"]).await;
    assert_eq!(result.unwrap().exit_code(), 0);

    let (result, out) = cli(&endpoint, &["watch", "stalls"]).await;
    assert!(result.is_err());
    assert_eq!(out.lines().count(), 2, "{out}");
}

#[tokio::test]
async fn a_filter_watch_ends_done_with_the_server() {
    let endpoint = serve().await;
    let (result, out) = cli(&endpoint, &["watch", "--state", "queued"]).await;
    assert_eq!(result.unwrap(), Outcome::Done);
    assert_eq!(out, "-  #1  f  → queued\n");
}

#[tokio::test]
async fn list_shows_one_page_or_follows_them_all() {
    let endpoint = serve().await;
    let (result, out) = cli(&endpoint, &["list"]).await;
    assert_eq!(result.unwrap(), Outcome::Done);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with("a  succeeded"), "{out}");
    assert_eq!(lines[1], "next page: --page-token p2");

    let (_, out) = cli(&endpoint, &["list", "--all", "-o", "json"]).await;
    let ids: Vec<String> = out
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap()["copy_id"].to_string())
        .collect();
    assert_eq!(ids, [r#""a""#, r#""b""#, r#""c""#]);

    let (_, out) = cli(&endpoint, &["list", "--page-token", "p3"]).await;
    assert!(out.starts_with("c  "), "{out}");
    assert_eq!(out.lines().count(), 1, "{out}");
}

#[tokio::test]
async fn audit_export_follows_every_page_and_reads_back_exactly() {
    let endpoint = serve().await;
    let dir = std::env::temp_dir().join(format!("modelcopy-export-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("audit.csv");
    let (result, out) = cli(&endpoint, &["audit", "export", "--format", "csv", "--out", path.to_str().unwrap()]).await;
    assert_eq!(result.unwrap(), Outcome::Done);
    assert_eq!(out, format!("exported 3 audit records to {}\n", path.display()));
    let text = std::fs::read_to_string(&path).unwrap();
    let records = audit::csv::read_records(&text).unwrap();
    assert_eq!(records[0], audit::event::COLUMNS.map(|c| Some(c.to_owned())));
    let expected: Vec<Vec<Option<String>>> = audit_events().iter().map(audit::event::csv_fields).collect();
    assert_eq!(records[1..], expected[..]);
    // NULL and empty stay apart.
    assert_eq!(records[1][2], None);
    assert_eq!(records[1][7], Some(String::new()));
    // Nothing is left beside the export.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    std::fs::remove_dir_all(&dir).unwrap();

    let (_, out) = cli(&endpoint, &["audit", "export", "--format", "jsonl"]).await;
    let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[1]["request"]["copy_id"], "c,1");
    assert_eq!(lines[1]["request_digest"], "dead");
    assert_eq!(lines[0]["principal"], serde_json::Value::Null);
}

#[tokio::test]
async fn audit_list_shows_one_page_unless_all() {
    let endpoint = serve().await;
    let (result, out) = cli(&endpoint, &["audit", "list"]).await;
    assert_eq!(result.unwrap(), Outcome::Done);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].starts_with("1  2024-05-01T12:00:01.000005Z  -  GetCopy  ALLOWED  Ok"), "{out}");
    assert_eq!(lines[2], "next page: --page-token a2");

    let (_, out) = cli(&endpoint, &["audit", "list", "--all", "-o", "json"]).await;
    let ids: Vec<u64> =
        out.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, [1, 2, 3]);
}

#[tokio::test]
async fn audit_summary_prints_a_table() {
    let endpoint = serve().await;
    let (result, out) = cli(&endpoint, &["audit", "summary", "--period", "month"]).await;
    assert_eq!(result.unwrap(), Outcome::Done);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("period"), "{out}");
    assert!(lines[1].starts_with("2024-05     alice"), "{out}");
    let (_, out) = cli(&endpoint, &["audit", "summary", "--period", "week", "-o", "json"]).await;
    let row: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(row["allowed"], AuditPeriod::Week as i32);
}

#[tokio::test]
async fn cancel_prints_the_cancelled_copy() {
    let endpoint = serve().await;
    let (result, out) = cli(&endpoint, &["cancel", "c4", "--reason", "oops"]).await;
    assert_eq!(result.unwrap(), Outcome::Done);
    assert!(out.contains("state          cancelled\n"), "{out}");
}
