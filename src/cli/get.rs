//! `get`: show one copy as the server has it now.

use std::io::Write;

use anyhow::Context;
use clap::Args;

use super::connect::Client;
use super::{render, Outcome, OutputFormat};
use crate::proto::GetCopyRequest;

#[derive(Debug, Args)]
pub struct GetArgs {
    /// The copy's id, as `copy` or `list` printed it.
    pub copy_id: String,
}

pub async fn execute(
    client: &mut Client,
    args: &GetArgs,
    format: OutputFormat,
    out: &mut impl Write,
) -> anyhow::Result<Outcome> {
    let copy = client.get_copy(GetCopyRequest { copy_id: args.copy_id.clone() }).await.context("GetCopy")?.into_inner();
    render::write_copy(out, &copy, format)?;
    Ok(Outcome::Done)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::super::{Cli, Command, OutputFormat};

    #[test]
    fn takes_the_copy_id_and_global_options_after_it() {
        let cli = Cli::try_parse_from(["modelcopy-cli", "get", "0190-abc", "-o", "json"]).unwrap();
        assert_eq!(cli.global.output, OutputFormat::Json);
        match cli.command {
            Command::Get(args) => assert_eq!(args.copy_id, "0190-abc"),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn requires_the_copy_id() {
        assert!(Cli::try_parse_from(["modelcopy-cli", "get"]).is_err());
    }
}
