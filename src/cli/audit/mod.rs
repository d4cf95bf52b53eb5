//! `audit`: the compliance reports: `list` records, `export` them to CSV or JSON Lines, `summary` per period.
//!
//! All three read through the API (ListAuditEvents, SummarizeAudit), so they see what the caller is allowed to see,
//! and every read is itself audited. Checking the chain is not here: that needs the database, and is
//! `modelcopy audit verify`.

pub mod csv;
pub mod event;
pub mod export;
pub mod list;
pub mod summary;

use std::io::Write;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand, ValueEnum};

use super::connect::Client;
use super::{parse_time, to_timestamp, Outcome, OutputFormat};
use crate::proto::{AuditDecision, AuditEventFilter, ListAuditEventsRequest, ListAuditEventsResponse};

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List audit records, oldest first.
    List(list::ListArgs),
    /// Write every matching audit record to CSV or JSON Lines.
    Export(export::ExportArgs),
    /// Copies asked for, allowed, refused, and how they ended, per period, principal and route.
    Summary(summary::SummaryArgs),
}

/// A decision as typed on the command line; any case (`denied`, `DENIED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DecisionArg {
    Allowed,
    Denied,
    Invalid,
    Failed,
}

impl From<DecisionArg> for AuditDecision {
    fn from(decision: DecisionArg) -> Self {
        match decision {
            DecisionArg::Allowed => AuditDecision::Allowed,
            DecisionArg::Denied => AuditDecision::Denied,
            DecisionArg::Invalid => AuditDecision::Invalid,
            DecisionArg::Failed => AuditDecision::Failed,
        }
    }
}

/// The filters `list` and `export` share.
#[derive(Debug, Args)]
pub struct AuditFilterArgs {
    /// Only records at or after this RFC 3339 time (e.g. 2024-05-01T00:00:00Z).
    #[arg(long, value_parser = parse_time)]
    pub from: Option<DateTime<Utc>>,
    /// Only records before this RFC 3339 time.
    #[arg(long, value_parser = parse_time)]
    pub to: Option<DateTime<Utc>>,
    /// Only calls made by this principal (`--principal` is who you are).
    #[arg(long, value_name = "PRINCIPAL")]
    pub by: Option<String>,
    /// Only calls of this RPC, e.g. CopyModelVersion.
    #[arg(long)]
    pub action: Option<String>,
    /// Only these decisions (repeat, or separate with commas).
    #[arg(long = "decision", value_enum, value_delimiter = ',', ignore_case = true)]
    pub decisions: Vec<DecisionArg>,
    /// Only calls concerning this 12-digit AWS account, as source or destination.
    #[arg(long)]
    pub account: Option<String>,
}

impl AuditFilterArgs {
    pub fn to_filter(&self) -> AuditEventFilter {
        AuditEventFilter {
            occurred_after: self.from.map(to_timestamp),
            occurred_before: self.to.map(to_timestamp),
            principal: self.by.clone().unwrap_or_default(),
            action: self.action.clone().unwrap_or_default(),
            decisions: self.decisions.iter().map(|d| AuditDecision::from(*d) as i32).collect(),
            account_id: self.account.clone().unwrap_or_default(),
        }
    }
}

/// The pages of one ListAuditEvents query, fetched one at a time.
pub struct Pages<'c> {
    client: &'c mut Client,
    request: ListAuditEventsRequest,
    done: bool,
}

impl<'c> Pages<'c> {
    pub fn new(client: &'c mut Client, filter: AuditEventFilter, page_size: i32, page_token: String) -> Self {
        Pages { client, request: ListAuditEventsRequest { filter: Some(filter), page_size, page_token }, done: false }
    }

    /// The next page, or `None` after the last.
    pub async fn next(&mut self) -> anyhow::Result<Option<ListAuditEventsResponse>> {
        if self.done {
            return Ok(None);
        }
        let page = self.client.list_audit_events(self.request.clone()).await.context("ListAuditEvents")?.into_inner();
        // A server that hands back the token it was given would keep us going forever.
        if !page.next_page_token.is_empty() && page.next_page_token == self.request.page_token {
            anyhow::bail!("ListAuditEvents: the server returned the same page token again; stopping");
        }
        self.done = page.next_page_token.is_empty();
        self.request.page_token = page.next_page_token.clone();
        Ok(Some(page))
    }
}

pub async fn execute(
    client: &mut Client,
    args: &AuditArgs,
    format: OutputFormat,
    out: &mut impl Write,
) -> anyhow::Result<Outcome> {
    match &args.command {
        AuditCommand::List(args) => list::execute(client, args, format, out).await,
        AuditCommand::Export(args) => export::execute(client, args, out).await,
        AuditCommand::Summary(args) => summary::execute(client, args, format, out).await,
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::super::{Cli, Command};
    use super::*;

    pub(super) fn audit_command(argv: &[&str]) -> Result<AuditCommand, clap::Error> {
        let mut full = vec!["modelcopy-cli", "audit"];
        full.extend_from_slice(argv);
        match Cli::try_parse_from(full)?.command {
            Command::Audit(args) => Ok(args.command),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn builds_the_filter() {
        let AuditCommand::List(args) = audit_command(&[
            "list",
            "--from",
            "2024-05-01T14:00:00+02:00",
            "--to",
            "2024-05-02T00:00:00Z",
            "--by",
            "alice",
            "--action",
            "CopyModelVersion",
            "--decision",
            "denied,INVALID",
            "--account",
            "111122223333",
            "--principal",
            "auditor",
        ])
        .unwrap() else {
            panic!("not a list")
        };
        let filter = args.filter.to_filter();
        assert_eq!(filter.occurred_after.unwrap().seconds, 1_714_564_800);
        assert_eq!(filter.occurred_before.unwrap().seconds, 1_714_608_000);
        assert_eq!(filter.principal, "alice");
        assert_eq!(filter.action, "CopyModelVersion");
        assert_eq!(filter.decisions, [AuditDecision::Denied as i32, AuditDecision::Invalid as i32]);
        assert_eq!(filter.account_id, "111122223333");
    }

    #[test]
    fn an_empty_filter_sends_nothing() {
        let AuditCommand::List(args) = audit_command(&["list"]).unwrap() else { panic!("not a list") };
        assert_eq!(args.filter.to_filter(), AuditEventFilter::default());
    }

    #[test]
    fn refuses_unknown_decisions() {
        let error = audit_command(&["list", "--decision", "maybe"]).unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::InvalidValue);
    }
}
