//! `audit list`: audit records, oldest first, one line each (or one JSON object each).
//!
//! Without `--all` the CLI shows one page and the token for the next; with it, it follows the tokens to the end.

use std::io::Write;

use clap::Args;

use super::{event, AuditFilterArgs, Pages};
use crate::cli::connect::Client;
use crate::cli::{Outcome, OutputFormat};

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub filter: AuditFilterArgs,
    /// Records per page (1 to 500; the server's default when absent).
    #[arg(long)]
    pub page_size: Option<i32>,
    /// Start at this page, as printed by a previous `audit list`.
    #[arg(long)]
    pub page_token: Option<String>,
    /// Follow every page to the end.
    #[arg(long)]
    pub all: bool,
}

pub async fn execute(
    client: &mut Client,
    args: &ListArgs,
    format: OutputFormat,
    out: &mut impl Write,
) -> anyhow::Result<Outcome> {
    let mut pages = Pages::new(
        client,
        args.filter.to_filter(),
        args.page_size.unwrap_or(0),
        args.page_token.clone().unwrap_or_default(),
    );
    while let Some(page) = pages.next().await? {
        for record in &page.events {
            match format {
                OutputFormat::Text => writeln!(out, "{}", event::line(record))?,
                OutputFormat::Json => writeln!(out, "{}", event::json(record))?,
            }
        }
        out.flush()?;
        let next = page.next_page_token;
        if !args.all && !next.is_empty() {
            match format {
                OutputFormat::Text => writeln!(out, "next page: --page-token {next}")?,
                OutputFormat::Json => writeln!(out, "{}", serde_json::json!({ "next_page_token": next }))?,
            }
            break;
        }
    }
    Ok(Outcome::Done)
}
