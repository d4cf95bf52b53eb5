//! `cancel`: cancel a copy that has not been sent to Rekognition yet.
//!
//! Whether it still can be cancelled is the server's call (FAILED_PRECONDITION once submitted); the CLI prints the
//! copy the server answers, which for an already cancelled copy is the copy as it is.

use std::io::Write;

use anyhow::Context;
use clap::Args;

use super::connect::Client;
use super::{render, Outcome, OutputFormat};
use crate::proto::CancelCopyRequest;

#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The copy's id.
    pub copy_id: String,
    /// Why, kept in the copy's history and the audit log.
    #[arg(long)]
    pub reason: Option<String>,
}

impl CancelArgs {
    pub fn to_request(&self) -> CancelCopyRequest {
        CancelCopyRequest { copy_id: self.copy_id.clone(), reason: self.reason.clone().unwrap_or_default() }
    }
}

pub async fn execute(
    client: &mut Client,
    args: &CancelArgs,
    format: OutputFormat,
    out: &mut impl Write,
) -> anyhow::Result<Outcome> {
    let copy = client.cancel_copy(args.to_request()).await.context("CancelCopy")?.into_inner();
    render::write_copy(out, &copy, format)?;
    Ok(Outcome::Done)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::super::{Cli, Command};

    fn cancel_args(argv: &[&str]) -> super::CancelArgs {
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Cancel(args) => args,
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn sends_the_reason() {
        let args = cancel_args(&["modelcopy-cli", "cancel", "0190-abc", "--reason", "wrong bucket"]);
        let request = args.to_request();
        assert_eq!(request.copy_id, "0190-abc");
        assert_eq!(request.reason, "wrong bucket");
    }

    #[test]
    fn reason_is_optional() {
        let args = cancel_args(&["modelcopy-cli", "cancel", "0190-abc"]);
        assert_eq!(args.to_request().reason, "");
    }
}
