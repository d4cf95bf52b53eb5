//! `audit export`: every matching audit record, all pages, as CSV or JSON Lines, to standard output or a file.
//!
//! A file is written under a temporary name beside it and renamed when the last page is in, so a file with the
//! name asked for is always a complete export; a failed export leaves nothing behind.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, ValueEnum};

use super::{csv, event, AuditFilterArgs, Pages};
use crate::cli::connect::Client;
use crate::cli::Outcome;

/// Records per ListAuditEvents call: the most the server gives.
const PAGE_SIZE: i32 = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// RFC 4180, with a header; NULL is an empty unquoted field, an empty string `""`.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub filter: AuditFilterArgs,
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// Write here instead of standard output (replacing the file only once the export is complete).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

pub async fn execute(client: &mut Client, args: &ExportArgs, out: &mut impl Write) -> anyhow::Result<Outcome> {
    let Some(path) = &args.out else {
        export(client, args, out).await?;
        return Ok(Outcome::Done);
    };
    let partial = partial_path(path);
    let file = File::create(&partial).with_context(|| format!("creating {}", partial.display()))?;
    let mut writer = BufWriter::new(file);
    let written = async {
        let count = export(client, args, &mut writer).await?;
        writer.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&partial, path)
            .with_context(|| format!("renaming {} to {}", partial.display(), path.display()))?;
        anyhow::Ok(count)
    }
    .await;
    match written {
        Ok(count) => {
            writeln!(out, "exported {count} audit records to {}", path.display())?;
            Ok(Outcome::Done)
        }
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            Err(error)
        }
    }
}

/// Writes every page to `out`; returns how many records.
async fn export(client: &mut Client, args: &ExportArgs, out: &mut impl Write) -> anyhow::Result<u64> {
    if args.format == ExportFormat::Csv {
        csv::write_record(out, &event::COLUMNS.map(Some))?;
    }
    let mut count = 0;
    let mut pages = Pages::new(client, args.filter.to_filter(), PAGE_SIZE, String::new());
    while let Some(page) = pages.next().await? {
        for record in &page.events {
            match args.format {
                ExportFormat::Csv => {
                    let fields = event::csv_fields(record);
                    let fields: Vec<Option<&str>> = fields.iter().map(Option::as_deref).collect();
                    csv::write_record(out, &fields)?;
                }
                ExportFormat::Jsonl => writeln!(out, "{}", event::json(record))?,
            }
            count += 1;
        }
    }
    out.flush()?;
    Ok(count)
}

/// `dir/.name.partial`: beside the target, so the rename stays on one file system.
fn partial_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.partial"))
}

#[cfg(test)]
mod tests {
    use super::super::tests::audit_command;
    use super::super::AuditCommand;
    use super::*;

    #[test]
    fn format_is_required_and_out_optional() {
        assert!(audit_command(&["export"]).is_err());
        let AuditCommand::Export(args) =
            audit_command(&["export", "--format", "jsonl", "--out", "/tmp/x.jsonl", "--by", "bob"]).unwrap()
        else {
            panic!("not an export")
        };
        assert_eq!(args.format, ExportFormat::Jsonl);
        assert_eq!(args.out.as_deref(), Some(Path::new("/tmp/x.jsonl")));
        assert_eq!(args.filter.by.as_deref(), Some("bob"));
        assert!(audit_command(&["export", "--format", "xml"]).is_err());
    }

    #[test]
    fn the_partial_file_sits_beside_the_target() {
        assert_eq!(partial_path(Path::new("/tmp/out/a.csv")), Path::new("/tmp/out/.a.csv.partial"));
    }
}
