//! `list`: copies, newest first, one line each.
//!
//! Without `--all` the CLI shows one page and the token for the next; with it, it follows the tokens to the end.

use std::io::Write;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::Args;

use super::connect::Client;
use super::paging::PageArgs;
use super::{parse_time, render, to_timestamp, FilterArgs, Outcome, OutputFormat};
use crate::proto::ListCopiesRequest;

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Only copies created at or after this RFC 3339 time (e.g. 2024-05-01T00:00:00Z).
    #[arg(long, value_parser = parse_time)]
    pub created_after: Option<DateTime<Utc>>,
    /// Only copies created before this RFC 3339 time.
    #[arg(long, value_parser = parse_time)]
    pub created_before: Option<DateTime<Utc>>,
    #[command(flatten)]
    pub page: PageArgs,
}

impl ListArgs {
    pub fn to_request(&self, page_token: &str) -> ListCopiesRequest {
        let mut filter = self.filter.to_filter();
        filter.created_after = self.created_after.map(to_timestamp);
        filter.created_before = self.created_before.map(to_timestamp);
        ListCopiesRequest {
            filter: Some(filter),
            page_size: self.page.page_size.unwrap_or(0),
            page_token: page_token.to_owned(),
        }
    }
}

pub async fn execute(
    client: &mut Client,
    args: &ListArgs,
    format: OutputFormat,
    out: &mut impl Write,
) -> anyhow::Result<Outcome> {
    let mut page_token = args.page.page_token.clone().unwrap_or_default();
    loop {
        let page = client.list_copies(args.to_request(&page_token)).await.context("ListCopies")?.into_inner();
        for copy in &page.copies {
            match format {
                OutputFormat::Text => writeln!(out, "{}", render::copy_line(copy))?,
                OutputFormat::Json => writeln!(out, "{}", render::copy_json(copy))?,
            }
        }
        out.flush()?;
        let next = page.next_page_token;
        if args.page.stop_after(&next, format, out)? {
            return Ok(Outcome::Done);
        }
        // A server that hands back the token it was given would keep `--all` going forever.
        if next == page_token {
            anyhow::bail!("ListCopies: the server returned the same page token again; stopping");
        }
        page_token = next;
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::super::{Cli, Command};
    use super::*;
    use crate::proto::CopyState;

    fn list_args(argv: &[&str]) -> Result<ListArgs, clap::Error> {
        let mut full = vec!["modelcopy-cli", "list"];
        full.extend_from_slice(argv);
        match Cli::try_parse_from(full)?.command {
            Command::List(args) => Ok(args),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn builds_the_filter() {
        let args = list_args(&[
            "--state",
            "queued",
            "--state",
            "failed,cancelled",
            "--source-account",
            "111122223333",
            "--destination-account",
            "444455556666",
            "--created-after",
            "2024-05-01T14:00:00+02:00",
            "--created-before",
            "2024-05-02T00:00:00.5Z",
            "--page-size",
            "20",
        ])
        .unwrap();
        let request = args.to_request("tok");
        let filter = request.filter.unwrap();
        assert_eq!(
            filter.states,
            vec![CopyState::Queued as i32, CopyState::Failed as i32, CopyState::Cancelled as i32]
        );
        assert_eq!(filter.source_account_id, "111122223333");
        assert_eq!(filter.destination_account_id, "444455556666");
        // 2024-05-01T12:00:00Z
        let after = filter.created_after.unwrap();
        assert_eq!((after.seconds, after.nanos), (1_714_564_800, 0));
        let before = filter.created_before.unwrap();
        assert_eq!((before.seconds, before.nanos), (1_714_608_000, 500_000_000));
        assert_eq!(request.page_size, 20);
        assert_eq!(request.page_token, "tok");
    }

    #[test]
    fn empty_filter_by_default() {
        let args = list_args(&[]).unwrap();
        assert!(!args.page.all);
        let request = args.to_request("");
        let filter = request.filter.unwrap();
        assert!(filter.states.is_empty());
        assert_eq!(filter.source_account_id, "");
        assert_eq!(filter.created_after, None);
        assert_eq!(request.page_size, 0);
    }

    #[test]
    fn refuses_unknown_states_and_bad_times() {
        let error = list_args(&["--state", "running"]).unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::InvalidValue);
        let error = list_args(&["--created-after", "yesterday"]).unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::ValueValidation);
        // RFC 3339 needs an offset.
        assert!(list_args(&["--created-after", "2024-05-01T12:00:00"]).is_err());
    }
}
