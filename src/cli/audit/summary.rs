//! `audit summary`: per period, principal and route, the copies asked for, allowed, refused, and how they ended.
//!
//! The counting is the server's (SummarizeAudit; why, and what each count means, is in
//! `modelcopy::audit::summary`); this prints the rows: a table for people, one JSON object per row for scripts.

use std::io::Write;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};
use serde_json::json;

use super::event;
use crate::cli::connect::Client;
use crate::cli::{parse_time, to_timestamp, Outcome, OutputFormat};
use crate::proto::{AuditPeriod, AuditSummaryRow, SummarizeAuditRequest};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PeriodArg {
    Day,
    /// ISO weeks, from Monday.
    Week,
    Month,
}

impl From<PeriodArg> for AuditPeriod {
    fn from(period: PeriodArg) -> Self {
        match period {
            PeriodArg::Day => AuditPeriod::Day,
            PeriodArg::Week => AuditPeriod::Week,
            PeriodArg::Month => AuditPeriod::Month,
        }
    }
}

#[derive(Debug, Args)]
pub struct SummaryArgs {
    #[arg(long, value_enum)]
    pub period: PeriodArg,
    /// Only requests at or after this RFC 3339 time.
    #[arg(long, value_parser = parse_time)]
    pub from: Option<DateTime<Utc>>,
    /// Only requests before this RFC 3339 time.
    #[arg(long, value_parser = parse_time)]
    pub to: Option<DateTime<Utc>>,
}

impl SummaryArgs {
    pub fn to_request(&self) -> SummarizeAuditRequest {
        SummarizeAuditRequest {
            period: AuditPeriod::from(self.period) as i32,
            occurred_after: self.from.map(to_timestamp),
            occurred_before: self.to.map(to_timestamp),
        }
    }
}

const HEADER: [&str; 13] = [
    "period",
    "principal",
    "source",
    "destination",
    "allowed",
    "replayed",
    "denied",
    "invalid",
    "errored",
    "succeeded",
    "failed",
    "cancelled",
    "expired",
];

pub async fn execute(
    client: &mut Client,
    args: &SummaryArgs,
    format: OutputFormat,
    out: &mut impl Write,
) -> anyhow::Result<Outcome> {
    let summary = client.summarize_audit(args.to_request()).await.context("SummarizeAudit")?.into_inner();
    match format {
        OutputFormat::Text => {
            writeln!(out, "{}", table_line(&HEADER.map(str::to_owned)))?;
            for row in &summary.rows {
                writeln!(out, "{}", table_line(&cells(row, args.period)))?;
            }
        }
        OutputFormat::Json => {
            for row in &summary.rows {
                writeln!(out, "{}", row_json(row))?;
            }
        }
    }
    if summary.truncated {
        eprintln!("warning: the summary has more rows than one answer carries; narrow --from / --to");
    }
    Ok(Outcome::Done)
}

/// A row's cells for the table: the period as a date, absent names as `-`.
fn cells(row: &AuditSummaryRow, period: PeriodArg) -> [String; 13] {
    let start = event::time(row.period_start.as_ref()).unwrap_or_default();
    let period = match period {
        PeriodArg::Month => start.get(..7),
        PeriodArg::Day | PeriodArg::Week => start.get(..10),
    };
    let name = |s: &str| {
        if s.is_empty() {
            "-".to_owned()
        } else {
            s.to_owned()
        }
    };
    [
        period.unwrap_or("-").to_owned(),
        name(&row.principal),
        name(&row.source_account_id),
        name(&row.destination_account_id),
        row.allowed.to_string(),
        row.replayed.to_string(),
        row.denied.to_string(),
        row.invalid.to_string(),
        row.errored.to_string(),
        row.succeeded.to_string(),
        row.failed.to_string(),
        row.cancelled.to_string(),
        row.expired.to_string(),
    ]
}

/// Names left-aligned in fixed columns, counts right-aligned under their headers.
fn table_line(cells: &[String; 13]) -> String {
    const NAME_WIDTHS: [usize; 4] = [10, 16, 12, 12];
    let mut line = String::new();
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            line.push_str("  ");
        }
        if i < NAME_WIDTHS.len() {
            line.push_str(&format!("{cell:<width$}", width = NAME_WIDTHS[i]));
        } else {
            line.push_str(&format!("{cell:>width$}", width = HEADER[i].len()));
        }
    }
    line
}

fn row_json(row: &AuditSummaryRow) -> serde_json::Value {
    json!({
        "period_start": event::time(row.period_start.as_ref()),
        "principal": row.principal,
        "source_account_id": row.source_account_id,
        "destination_account_id": row.destination_account_id,
        "allowed": row.allowed,
        "replayed": row.replayed,
        "denied": row.denied,
        "invalid": row.invalid,
        "errored": row.errored,
        "succeeded": row.succeeded,
        "failed": row.failed,
        "cancelled": row.cancelled,
        "expired": row.expired,
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::audit_command;
    use super::super::AuditCommand;
    use super::*;

    #[test]
    fn period_is_required() {
        assert!(audit_command(&["summary"]).is_err());
        let AuditCommand::Summary(args) =
            audit_command(&["summary", "--period", "week", "--from", "2024-05-01T00:00:00Z"]).unwrap()
        else {
            panic!("not a summary")
        };
        let request = args.to_request();
        assert_eq!(request.period, AuditPeriod::Week as i32);
        assert_eq!(request.occurred_after.unwrap().seconds, 1_714_521_600);
        assert_eq!(request.occurred_before, None);
    }

    #[test]
    fn the_table_lines_up() {
        let row = AuditSummaryRow {
            period_start: Some(prost_types::Timestamp { seconds: 1_714_521_600, nanos: 0 }),
            principal: "alice".into(),
            source_account_id: "111122223333".into(),
            destination_account_id: String::new(),
            allowed: 3,
            succeeded: 2,
            failed: 1,
            ..Default::default()
        };
        let header = table_line(&HEADER.map(str::to_owned));
        let line = table_line(&cells(&row, PeriodArg::Day));
        assert!(line.starts_with("2024-05-01  alice             111122223333  -           "), "{line}");
        assert_eq!(line.len(), header.len(), "{header}\n{line}");
        // Each count ends where its header does.
        let end_of = |text: &str, word: &str| text.find(word).unwrap() + word.len();
        assert_eq!(&line[end_of(&header, "allowed") - 1..end_of(&header, "allowed")], "3");
        assert_eq!(&line[end_of(&header, "failed") - 1..end_of(&header, "failed")], "1");
        assert_eq!(cells(&row, PeriodArg::Month)[0], "2024-05");
    }

    #[test]
    fn json_rows_carry_every_count() {
        let value = row_json(&AuditSummaryRow { denied: 4, ..Default::default() });
        assert_eq!(value["denied"], 4);
        assert_eq!(value["period_start"], serde_json::Value::Null);
    }
}
