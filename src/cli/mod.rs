//! `modelcopy-cli`: a command-line client for the modelcopy gRPC API.
//!
//! The client depends on the wire API (`crate::proto`) only, never on the service's internals, so it behaves
//! exactly as any other client would. It parses only what it must to build a request (tags, times, state names);
//! every other rule is the server's, which answers INVALID_ARGUMENT with the bad fields named.
//!
//! This module holds the command-line grammar and the dispatch; each command lives in its own file, printing goes
//! through [`render`] and the connection through [`connect`]. [`execute`] writes to any `Write`, so tests capture
//! the output of a whole command.

pub mod audit;
pub mod cancel;
pub mod connect;
pub mod copy;
pub mod get;
pub mod list;
pub mod paging;
pub mod render;
pub mod watch;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::proto::{CopyFilter, CopyState};
use connect::{CallMetadata, Client, TlsOptions};

/// Command-line client for the modelcopy service (Amazon Rekognition Custom Labels model copies).
#[derive(Debug, Parser)]
#[command(name = "modelcopy-cli", version)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes; accepted before or after the command name.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// The modelcopy server.
    #[arg(long, env = "MODELCOPY_ENDPOINT", default_value = "http://127.0.0.1:50051", global = true)]
    pub endpoint: String,
    /// Who you are, sent as `x-modelcopy-principal` (trusted by a server in dev mode only).
    #[arg(long, env = "MODELCOPY_PRINCIPAL", global = true)]
    pub principal: Option<String>,
    /// Bearer token, sent as `authorization: Bearer <token>`.
    #[arg(long, env = "MODELCOPY_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// PEM file of the CA that signed the server's certificate (needed for an https:// endpoint).
    #[arg(long, env = "MODELCOPY_CA_CERT", global = true)]
    pub ca_cert: Option<PathBuf>,
    /// PEM file of your client certificate, for servers that identify callers by certificate (mutual TLS).
    #[arg(long, env = "MODELCOPY_CLIENT_CERT", global = true, requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// PEM file of the private key of --client-cert.
    #[arg(long, env = "MODELCOPY_CLIENT_KEY", global = true, requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// How results are printed: `text` for people, `json` for scripts (one object a line).
    #[arg(
        long,
        short = 'o',
        value_enum,
        default_value_t = OutputFormat::Text,
        global = true
    )]
    pub output: OutputFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Queue a copy of a model version.
    Copy(copy::CopyArgs),
    /// Show one copy.
    Get(get::GetArgs),
    /// List copies, newest first.
    List(list::ListArgs),
    /// Cancel a copy that is still queued.
    Cancel(cancel::CancelArgs),
    /// Print state changes as they happen: of one copy, or of every copy that matches the filters.
    Watch(watch::WatchArgs),
    /// Compliance reports from the audit log: list, export (CSV, JSON Lines), summary.
    Audit(audit::AuditArgs),
}

/// A copy's state as typed on the command line: the proto's names without the `COPY_STATE_` prefix, lower case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StateArg {
    Queued,
    Submitting,
    Copying,
    Succeeded,
    Failed,
    Cancelled,
}

impl From<StateArg> for CopyState {
    fn from(state: StateArg) -> Self {
        match state {
            StateArg::Queued => CopyState::Queued,
            StateArg::Submitting => CopyState::Submitting,
            StateArg::Copying => CopyState::Copying,
            StateArg::Succeeded => CopyState::Succeeded,
            StateArg::Failed => CopyState::Failed,
            StateArg::Cancelled => CopyState::Cancelled,
        }
    }
}

/// The filters `list` and `watch` share.
#[derive(Debug, Args)]
pub struct FilterArgs {
    /// Only copies in these states (repeat, or separate with commas).
    #[arg(long = "state", value_enum, value_delimiter = ',')]
    pub states: Vec<StateArg>,
    /// Only copies from this 12-digit AWS account.
    #[arg(long)]
    pub source_account: Option<String>,
    /// Only copies into this 12-digit AWS account.
    #[arg(long)]
    pub destination_account: Option<String>,
}

impl FilterArgs {
    /// The filter without a time range (watch has none; list adds its own).
    pub fn to_filter(&self) -> CopyFilter {
        CopyFilter {
            states: self.states.iter().map(|s| CopyState::from(*s) as i32).collect(),
            source_account_id: self.source_account.clone().unwrap_or_default(),
            destination_account_id: self.destination_account.clone().unwrap_or_default(),
            created_after: None,
            created_before: None,
        }
    }
}

/// How a command ended, as far as a calling script cares. Errors are not outcomes: they are `Err`, exit code 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The command did what it was asked (a watched copy succeeded, or there was nothing to judge).
    Done,
    /// A watched copy ended FAILED or CANCELLED.
    CopyDidNotSucceed,
    /// Ctrl-C stopped a watch of one copy before it ended.
    Interrupted,
}

impl Outcome {
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Done => 0,
            Outcome::CopyDidNotSucceed => 3,
            // The shell's convention for "ended by SIGINT".
            Outcome::Interrupted => 130,
        }
    }
}

impl From<Outcome> for ExitCode {
    fn from(outcome: Outcome) -> Self {
        ExitCode::from(outcome.exit_code())
    }
}

/// Runs the command against the server, printing to standard output.
pub async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    execute(&cli, &mut std::io::stdout()).await
}

/// Runs the command against the server, printing to `out`. Watches stop on Ctrl-C.
pub async fn execute(cli: &Cli, out: &mut impl Write) -> anyhow::Result<Outcome> {
    let mut client = connect_from(&cli.global).await?;
    let format = cli.global.output;
    match &cli.command {
        Command::Copy(args) => copy::execute(&mut client, args, format, out).await,
        Command::Get(args) => get::execute(&mut client, args, format, out).await,
        Command::List(args) => list::execute(&mut client, args, format, out).await,
        Command::Cancel(args) => cancel::execute(&mut client, args, format, out).await,
        Command::Watch(args) => watch::execute(&mut client, args, format, out).await,
        Command::Audit(args) => audit::execute(&mut client, args, format, out).await,
    }
}

async fn connect_from(global: &GlobalArgs) -> anyhow::Result<Client> {
    let metadata = CallMetadata::new(global.principal.as_deref(), global.token.as_deref())?;
    let tls =
        TlsOptions::from_files(global.ca_cert.as_deref(), global.client_cert.as_deref(), global.client_key.as_deref())?;
    Ok(connect::connect_tls(&global.endpoint, metadata, &tls).await?)
}

/// Parses `key=value` (split at the first `=`; the value may be empty or contain `=`).
pub fn parse_tag(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) => Ok((key.to_owned(), value.to_owned())),
        None => Err(format!("expected key=value, got {text:?}")),
    }
}

/// Parses an RFC 3339 time such as `2024-05-01T12:00:00Z` or `2024-05-01T14:00:00+02:00`.
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("expected an RFC 3339 time like 2024-05-01T12:00:00Z: {e}"))
}

/// The wire form of a time.
pub fn to_timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        // Below 2e9 even in a leap second, so it fits.
        nanos: time.timestamp_subsec_nanos() as i32,
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn global_arg(id: &str) -> clap::Arg {
        Cli::command()
            .get_arguments()
            .find(|arg| arg.get_id() == id)
            .unwrap_or_else(|| panic!("no argument {id}"))
            .clone()
    }

    #[test]
    fn the_grammar_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_come_from_the_environment() {
        // Checked on the definitions, so the test does not depend on (or change) this process's environment.
        let endpoint = global_arg("endpoint");
        assert_eq!(endpoint.get_env(), Some("MODELCOPY_ENDPOINT".as_ref()));
        assert_eq!(endpoint.get_default_values(), ["http://127.0.0.1:50051"]);
        assert_eq!(global_arg("principal").get_env(), Some("MODELCOPY_PRINCIPAL".as_ref()));
        let token = global_arg("token");
        assert_eq!(token.get_env(), Some("MODELCOPY_TOKEN".as_ref()));
        assert!(token.is_hide_env_values_set(), "--help must not print the token");
    }

    #[test]
    fn global_options_go_before_or_after_the_command() {
        let before = Cli::try_parse_from([
            "modelcopy-cli",
            "--endpoint",
            "http://127.0.0.1:9",
            "--principal",
            "alice",
            "--output",
            "json",
            "get",
            "c1",
        ])
        .unwrap();
        assert_eq!(before.global.endpoint, "http://127.0.0.1:9");
        assert_eq!(before.global.principal.as_deref(), Some("alice"));
        assert_eq!(before.global.output, OutputFormat::Json);

        let after =
            Cli::try_parse_from(["modelcopy-cli", "get", "c1", "--token", "t", "--endpoint", "http://127.0.0.1:9"])
                .unwrap();
        assert_eq!(after.global.token.as_deref(), Some("t"));
        assert_eq!(after.global.endpoint, "http://127.0.0.1:9");
    }

    #[test]
    fn output_is_text_or_json() {
        assert!(Cli::try_parse_from(["modelcopy-cli", "-o", "yaml", "get", "c1"]).is_err());
    }

    #[test]
    fn unknown_commands_are_refused() {
        assert!(Cli::try_parse_from(["modelcopy-cli", "delete", "c1"]).is_err());
    }

    #[test]
    fn state_names_map_to_the_proto() {
        let parse = |name: &str| CopyState::from(StateArg::from_str(name, false).unwrap());
        assert_eq!(parse("queued"), CopyState::Queued);
        assert_eq!(parse("submitting"), CopyState::Submitting);
        assert_eq!(parse("copying"), CopyState::Copying);
        assert_eq!(parse("succeeded"), CopyState::Succeeded);
        assert_eq!(parse("failed"), CopyState::Failed);
        assert_eq!(parse("cancelled"), CopyState::Cancelled);
        assert!(StateArg::from_str("unspecified", false).is_err());
    }

    #[test]
    fn tags_split_at_the_first_equals_sign() {
        assert_eq!(parse_tag("team=vision"), Ok(("team".into(), "vision".into())));
        assert_eq!(parse_tag("k=a=b"), Ok(("k".into(), "a=b".into())));
        assert_eq!(parse_tag("k="), Ok(("k".into(), String::new())));
        assert!(parse_tag("team").is_err());
    }

    #[test]
    fn times_are_rfc3339_with_an_offset() {
        let time = parse_time("2024-05-01T14:00:00.25+02:00").unwrap();
        let wire = to_timestamp(time);
        assert_eq!((wire.seconds, wire.nanos), (1_714_564_800, 250_000_000));
        assert!(parse_time("2024-05-01").is_err());
        assert!(parse_time("2024-05-01T12:00:00").is_err());
    }

    #[test]
    fn exit_codes() {
        assert_eq!(Outcome::Done.exit_code(), 0);
        assert_eq!(Outcome::CopyDidNotSucceed.exit_code(), 3);
        assert_eq!(Outcome::Interrupted.exit_code(), 130);
    }
}

/// Whole commands through [`execute`] against a scripted in-process server on loopback: what goes over the wire
/// (metadata, paging, error details) and what comes out (text, JSON, outcome).
#[cfg(test)]
mod against_a_fake_server {
    use std::pin::Pin;

    use futures::Stream;
    use tonic::{Request, Response, Status};
    use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

    use super::*;
    use crate::proto::model_copy_server::{ModelCopy, ModelCopyServer};
    use crate::proto::watch_copy_request::Target;
    use crate::proto::{
        AuditEvent, AuditSummaryRow, CancelCopyRequest, Copy, CopyEvent, CopyModelVersionRequest,
        CopyModelVersionResponse, GetCopyRequest, ListAuditEventsRequest, ListAuditEventsResponse, ListCopiesRequest,
        ListCopiesResponse, SummarizeAuditRequest, SummarizeAuditResponse, WatchCopyRequest,
    };

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
            decision: crate::proto::AuditDecision::Allowed as i32,
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

        async fn list_copies(
            &self,
            request: Request<ListCopiesRequest>,
        ) -> Result<Response<ListCopiesResponse>, Status> {
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

        type WatchCopyStream = Pin<Box<dyn Stream<Item = Result<CopyEvent, Status>> + Send>>;

        async fn watch_copy(
            &self,
            request: Request<WatchCopyRequest>,
        ) -> Result<Response<Self::WatchCopyStream>, Status> {
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
            let events: Vec<Result<CopyEvent, Status>> = states
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
                    Ok(event)
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
        let (result, out) =
            cli(&endpoint, &["--principal", "alice", "--token", "t0k", "-o", "json", "get", "c9"]).await;
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
        let (result, out) =
            cli(&endpoint, &["audit", "export", "--format", "csv", "--out", path.to_str().unwrap()]).await;
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
        let ids: Vec<u64> = out
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].as_u64().unwrap())
            .collect();
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
        assert_eq!(row["allowed"], crate::proto::AuditPeriod::Week as i32);
    }

    #[tokio::test]
    async fn cancel_prints_the_cancelled_copy() {
        let endpoint = serve().await;
        let (result, out) = cli(&endpoint, &["cancel", "c4", "--reason", "oops"]).await;
        assert_eq!(result.unwrap(), Outcome::Done);
        assert!(out.contains("state          cancelled\n"), "{out}");
    }
}
