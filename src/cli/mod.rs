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
pub mod copied;
pub mod copy;
pub mod get;
pub mod list;
pub mod paging;
pub mod render;
pub mod rollout;
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
    /// Seconds a call (but a watch) may take before the server ends it: sent as the call's deadline.
    #[arg(long, env = "MODELCOPY_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..), global = true)]
    pub timeout_secs: u64,
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
    /// Copy one version to many destinations in one request, and follow it: create, get, list, cancel, watch.
    Rollout(rollout::RolloutArgs),
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
    Expired,
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
            StateArg::Expired => CopyState::Expired,
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
    /// Only the copies of this rollout.
    #[arg(long)]
    pub rollout: Option<String>,
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
            rollout_id: self.rollout.clone().unwrap_or_default(),
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
        Command::Rollout(args) => rollout::execute(&mut client, args, format, out).await,
    }
}

async fn connect_from(global: &GlobalArgs) -> anyhow::Result<Client> {
    let metadata = CallMetadata::new(global.principal.as_deref(), global.token.as_deref())?
        .with_deadline(std::time::Duration::from_secs(global.timeout_secs));
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

/// Parses a duration as a whole number of seconds with a unit: `90s`, `30m`, `12h`, `7d` (a bare number is
/// seconds). The server checks its range.
pub fn parse_duration(text: &str) -> Result<prost_types::Duration, String> {
    let digits = text.trim_end_matches(['s', 'm', 'h', 'd']);
    let unit: i64 = match &text[digits.len()..] {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("expected a number with one unit of s, m, h or d (like 7d), got {text:?}")),
    };
    let seconds = digits
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .ok_or_else(|| format!("expected a whole number with a unit of s, m, h or d (like 7d), got {text:?}"))?;
    Ok(prost_types::Duration { seconds, nanos: 0 })
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

    #[test]
    fn durations_read_with_their_unit() {
        let seconds = |text| parse_duration(text).map(|d| d.seconds);
        assert_eq!(seconds("90"), Ok(90));
        assert_eq!(seconds("90s"), Ok(90));
        assert_eq!(seconds("30m"), Ok(1800));
        assert_eq!(seconds("12h"), Ok(43_200));
        assert_eq!(seconds("7d"), Ok(604_800));
        for bad in ["", "d", "1.5h", "7w", "1dd", "-", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

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
