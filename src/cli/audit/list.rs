//! `audit list`: audit records, oldest first, one line each (or one JSON object each).
//!
//! Without `--all` the CLI shows one page and the token for the next; with it, it follows the tokens to the end.

use std::io::Write;

use clap::Args;

use super::{event, AuditFilterArgs, Pages};
use crate::cli::connect::Client;
use crate::cli::paging::PageArgs;
use crate::cli::{Outcome, OutputFormat};

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub filter: AuditFilterArgs,
    #[command(flatten)]
    pub page: PageArgs,
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
        args.page.page_size.unwrap_or(0),
        args.page.page_token.clone().unwrap_or_default(),
    );
    while let Some(page) = pages.next().await? {
        for record in &page.events {
            match format {
                OutputFormat::Text => writeln!(out, "{}", event::line(record))?,
                OutputFormat::Json => writeln!(out, "{}", event::json(record))?,
            }
        }
        out.flush()?;
        if args.page.stop_after(&page.next_page_token, format, out)? {
            break;
        }
    }
    Ok(Outcome::Done)
}
