//! The paging flags every listing command takes, so `list` and `audit list` page alike.

use std::io::{self, Write};

use clap::Args;

use super::OutputFormat;

#[derive(Debug, Args)]
pub struct PageArgs {
    /// Items per page (1 to 500; the server's default when absent).
    #[arg(long)]
    pub page_size: Option<i32>,
    /// Start at this page, as printed by a previous listing.
    #[arg(long)]
    pub page_token: Option<String>,
    /// Follow every page to the end.
    #[arg(long)]
    pub all: bool,
}

impl PageArgs {
    /// After printing a page whose continuation is `next`: whether to stop. The last page stops; without `--all`,
    /// so does the first, after printing the token that continues (as text, or as one JSON line).
    pub fn stop_after(&self, next: &str, format: OutputFormat, out: &mut impl Write) -> io::Result<bool> {
        if next.is_empty() {
            return Ok(true);
        }
        if self.all {
            return Ok(false);
        }
        match format {
            OutputFormat::Text => writeln!(out, "next page: --page-token {next}")?,
            OutputFormat::Json => writeln!(out, "{}", serde_json::json!({ "next_page_token": next }))?,
        }
        Ok(true)
    }
}
