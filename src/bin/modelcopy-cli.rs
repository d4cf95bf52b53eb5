//! `modelcopy-cli`: the command-line client. All logic is in `modelcopy::cli`; this only wires the process up.
//!
//! Exit codes: 0 done; 1 error (the gRPC status is printed to standard error); 2 bad arguments (clap's);
//! 3 a watched copy ended FAILED or CANCELLED; 130 a watch of one copy interrupted by Ctrl-C.

use std::process::ExitCode;

use clap::Parser;
use modelcopy::cli::{self, render, Cli};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs go to standard error so standard output stays the command's result.
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")))
        .with_writer(std::io::stderr)
        .init();

    match cli::run(cli).await {
        Ok(outcome) => outcome.into(),
        Err(error) => {
            eprintln!("{}", render::error_report(&error));
            ExitCode::FAILURE
        }
    }
}
