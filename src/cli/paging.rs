//! The paging flags every listing command takes, so `list` and `audit list` page alike.

use clap::Args;

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
