//! `rollout`: promote one model version to many destinations in one request, and follow it.
//!
//! `rollout create --from <version-arn> --source-project-arn … --to <project-arn> --to …` queues one copy per
//! `--to`, with the shared version name, output and tags. `rollout watch <id>` (or `create --watch`) shows one line
//! per destination and keeps it current: redrawn in place on a terminal, one line per change otherwise (and with
//! `--plain`), one JSON object per change with `-o json`. It ends once every copy has ended: exit code 0 when all
//! succeeded, 3 otherwise.
//!
//! What is shown comes from the copies' changes as WatchCopy streams them (filtered by the rollout), and from
//! GetRollout, read at the start, every few seconds and before ending: the stream makes the display live, GetRollout
//! keeps it right (a change that fell between the first read and the stream's start is caught at the next read).

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use futures::StreamExt;
use serde_json::json;

use super::connect::Client;
use super::copied::CopiedVersionArgs;
use super::{render, Outcome, OutputFormat};
use crate::proto::watch_copy_request::Target;
use crate::proto::{
    CancelRolloutRequest, Copy, CopyFilter, CopyState, CreateRolloutRequest, GetRolloutRequest, ListRolloutsRequest,
    Rollout, RolloutDefaults, RolloutDestination, RolloutState, WatchCopyRequest,
};

#[derive(Debug, Args)]
pub struct RolloutArgs {
    #[command(subcommand)]
    pub command: RolloutCommand,
}

#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Copy one model version to several destination projects in one request.
    Create(CreateArgs),
    /// Show one rollout and its copies.
    Get(IdArgs),
    /// List rollouts, newest first.
    List,
    /// Cancel the copies of a rollout that are still queued.
    Cancel(CancelArgs),
    /// Follow a rollout until every copy has ended, one line per destination.
    Watch(WatchArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// ARN of the model version to copy.
    #[arg(long)]
    pub from: String,
    /// ARN of the project that holds it.
    #[arg(long)]
    pub source_project_arn: String,
    /// A destination project's ARN (repeat for each destination).
    #[arg(long = "to", required = true)]
    pub to: Vec<String>,
    #[command(flatten)]
    pub copied: CopiedVersionArgs,
    /// Makes a retry safe: the same token returns the rollout created the first time.
    #[arg(long)]
    pub idempotency_token: Option<String>,
    /// Then follow it, as `rollout watch`.
    #[arg(long)]
    pub watch: bool,
    /// With --watch: one line per change, never redrawn in place.
    #[arg(long)]
    pub plain: bool,
}

#[derive(Debug, Args)]
pub struct IdArgs {
    pub rollout_id: String,
}

#[derive(Debug, Args)]
pub struct CancelArgs {
    pub rollout_id: String,
    /// Why, kept in each cancelled copy's history and the audit log.
    #[arg(long)]
    pub reason: Option<String>,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    pub rollout_id: String,
    /// One line per change, never redrawn in place (the default when the output is not a terminal).
    #[arg(long)]
    pub plain: bool,
}

impl CreateArgs {
    pub fn to_request(&self) -> anyhow::Result<CreateRolloutRequest> {
        let copied = &self.copied;
        Ok(CreateRolloutRequest {
            source_project_arn: self.source_project_arn.clone(),
            source_project_version_arn: self.from.clone(),
            defaults: Some(RolloutDefaults {
                version_name: copied.version_name.clone(),
                output_config: Some(copied.output_config()),
                tags: copied.tag_map()?,
                kms_key_id: copied.kms_key_id.clone(),
            }),
            destinations: self
                .to
                .iter()
                .map(|arn| RolloutDestination { destination_project_arn: arn.clone(), ..Default::default() })
                .collect(),
            idempotency_token: self.idempotency_token.clone().unwrap_or_default(),
            delete_after: copied.delete_after,
        })
    }
}

pub async fn execute(
    client: &mut Client,
    args: &RolloutArgs,
    format: OutputFormat,
    out: &mut impl Write,
) -> anyhow::Result<Outcome> {
    match &args.command {
        RolloutCommand::Create(create) => {
            let answer = client.create_rollout(create.to_request()?).await.context("CreateRollout")?.into_inner();
            let rollout = answer.rollout.context("CreateRollout: the server answered without a rollout")?;
            if create.watch {
                if answer.replayed && format == OutputFormat::Text {
                    writeln!(out, "replayed: this idempotency token already created this rollout")?;
                }
                return follow(client, &rollout.rollout_id, format, create.plain, out).await;
            }
            match format {
                OutputFormat::Text => {
                    if answer.replayed {
                        writeln!(out, "replayed: this idempotency token already created this rollout")?;
                    }
                    write!(out, "{}", table(&rollout))?;
                }
                OutputFormat::Json => {
                    writeln!(out, "{}", json!({ "replayed": answer.replayed, "rollout": rollout_json(&rollout) }))?
                }
            }
        }
        RolloutCommand::Get(id) => {
            let rollout = get(client, &id.rollout_id).await?;
            write_rollout(out, &rollout, format)?;
        }
        RolloutCommand::List => {
            let page = client.list_rollouts(ListRolloutsRequest::default()).await.context("ListRollouts")?;
            for rollout in &page.into_inner().rollouts {
                match format {
                    OutputFormat::Text => writeln!(out, "{}", headline(rollout))?,
                    OutputFormat::Json => writeln!(out, "{}", rollout_json(rollout))?,
                }
            }
        }
        RolloutCommand::Cancel(cancel) => {
            let request = CancelRolloutRequest {
                rollout_id: cancel.rollout_id.clone(),
                reason: cancel.reason.clone().unwrap_or_default(),
            };
            let rollout = client.cancel_rollout(request).await.context("CancelRollout")?.into_inner();
            write_rollout(out, &rollout, format)?;
        }
        RolloutCommand::Watch(watch) => return follow(client, &watch.rollout_id, format, watch.plain, out).await,
    }
    out.flush()?;
    Ok(Outcome::Done)
}

async fn get(client: &mut Client, id: &str) -> anyhow::Result<Rollout> {
    let request = GetRolloutRequest { rollout_id: id.to_owned() };
    Ok(client.get_rollout(request).await.context("GetRollout")?.into_inner())
}

fn write_rollout(out: &mut impl Write, rollout: &Rollout, format: OutputFormat) -> std::io::Result<()> {
    match format {
        OutputFormat::Text => write!(out, "{}", table(rollout)),
        OutputFormat::Json => writeln!(out, "{}", rollout_json(rollout)),
    }
}

/// How often GetRollout is read while watching.
const REFRESH: Duration = Duration::from_secs(3);
/// Streams that fail in a row before the watch gives up.
const RECONNECTS: u32 = 10;

/// Follows the rollout until every copy has ended, or Ctrl-C.
async fn follow(
    client: &mut Client,
    id: &str,
    format: OutputFormat,
    plain: bool,
    out: &mut impl Write,
) -> anyhow::Result<Outcome> {
    let live = format == OutputFormat::Text && !plain && std::io::stdout().is_terminal();
    let mut rollout = get(client, id).await?;
    let mut drawn = show(out, &rollout, format, live, 0)?;
    let stop = super::watch::ctrl_c();
    tokio::pin!(stop);
    let mut failures = 0;
    while rollout.state() == RolloutState::Running {
        let filter = CopyFilter { rollout_id: id.to_owned(), ..Default::default() };
        let request = WatchCopyRequest { target: Some(Target::Filter(filter)), after_sequence: None };
        let mut events = client.watch_copy(request).await.context("WatchCopy")?.into_inner();
        let mut refresh = tokio::time::interval(REFRESH);
        loop {
            tokio::select! {
                () = &mut stop => return Ok(Outcome::Interrupted),
                _ = refresh.tick() => {
                    rollout = get(client, id).await?;
                }
                next = events.next() => match next {
                    Some(Ok(event)) => {
                        failures = 0;
                        let Some(copy) = event.copy else { continue };
                        if format == OutputFormat::Json {
                            writeln!(out, "{}", render::event_json(&crate::proto::CopyEvent { copy: Some(copy.clone()), ..event }))?;
                        } else if !live && !event.snapshot {
                            writeln!(out, "{}", change_line(&copy))?;
                        }
                        replace(&mut rollout, copy);
                        // Every copy ended as far as the stream says: GetRollout says it for certain.
                        if rollout.copies.iter().all(|c| ended(c.state())) {
                            rollout = get(client, id).await?;
                        }
                    }
                    Some(Err(status)) if status.code() == tonic::Code::Unavailable && failures < RECONNECTS => {
                        failures += 1;
                        tokio::time::sleep(Duration::from_millis(250 << failures.min(4))).await;
                        break;
                    }
                    Some(Err(status)) => return Err(anyhow::Error::new(status).context("WatchCopy")),
                    None => break,
                },
            }
            if live {
                drawn = show(out, &rollout, format, live, drawn)?;
            }
            if rollout.state() != RolloutState::Running {
                break;
            }
        }
    }
    if !live {
        show(out, &rollout, format, live, drawn)?;
    }
    Ok(if rollout.state() == RolloutState::Succeeded { Outcome::Done } else { Outcome::CopyDidNotSucceed })
}

fn ended(state: CopyState) -> bool {
    !matches!(state, CopyState::Queued | CopyState::Submitting | CopyState::Copying | CopyState::Unspecified)
}

/// Puts `copy` in place of its older self among the rollout's copies.
fn replace(rollout: &mut Rollout, copy: Copy) {
    if let Some(slot) = rollout.copies.iter_mut().find(|c| c.copy_id == copy.copy_id) {
        *slot = copy;
    }
}

/// Prints the rollout: in place of the `drawn` lines printed before, on a terminal; returns the lines printed.
fn show(
    out: &mut impl Write,
    rollout: &Rollout,
    format: OutputFormat,
    live: bool,
    drawn: usize,
) -> anyhow::Result<usize> {
    match format {
        OutputFormat::Json => writeln!(out, "{}", rollout_json(rollout))?,
        OutputFormat::Text => {
            if live && drawn > 0 {
                // Up to the first line drawn, and clear from there down.
                write!(out, "\x1b[{drawn}A\x1b[J")?;
            }
            write!(out, "{}", table(rollout))?;
        }
    }
    out.flush()?;
    Ok(rollout.copies.len() + 1)
}

fn state_name(state: RolloutState) -> &'static str {
    match state {
        RolloutState::Unspecified => "unspecified",
        RolloutState::Running => "running",
        RolloutState::Succeeded => "succeeded",
        RolloutState::PartiallyFailed => "partially-failed",
        RolloutState::Failed => "failed",
        RolloutState::Cancelled => "cancelled",
    }
}

/// `<id>  <state>  <n> copies: …` — the counts that are not zero.
pub fn headline(rollout: &Rollout) -> String {
    let counts = rollout.counts.unwrap_or_default();
    let parts: Vec<String> = [
        ("queued", counts.queued),
        ("running", counts.running),
        ("succeeded", counts.succeeded),
        ("failed", counts.failed),
        ("cancelled", counts.cancelled),
        ("expired", counts.expired),
    ]
    .into_iter()
    .filter(|(_, n)| *n > 0)
    .map(|(name, n)| format!("{n} {name}"))
    .collect();
    format!("{}  {}  {} copies: {}", rollout.rollout_id, state_name(rollout.state()), counts.total, parts.join(", "))
}

/// One line for a destination: account and project, version, state, and Rekognition's status or the error.
fn destination_line(copy: &Copy) -> String {
    let what = match &copy.error {
        Some(error) => format!("{}: {}", error.code, error.message),
        None => copy.rekognition_status.clone(),
    };
    format!(
        "  {:<40}  {:<20}  {:<10}  {}",
        render::short_arn(&copy.destination_project_arn),
        copy.version_name,
        render::state_name(copy.state),
        what
    )
    .trim_end()
    .to_owned()
}

/// A change, as a line of its own (plain output).
fn change_line(copy: &Copy) -> String {
    format!("{}  {}", copy.copy_id, destination_line(copy).trim_start())
}

/// The headline, then one line per destination (the copies the caller may see).
pub fn table(rollout: &Rollout) -> String {
    let mut text = headline(rollout);
    text.push('\n');
    for copy in &rollout.copies {
        text.push_str(&destination_line(copy));
        text.push('\n');
    }
    text
}

pub fn rollout_json(rollout: &Rollout) -> serde_json::Value {
    let counts = rollout.counts.unwrap_or_default();
    json!({
        "rollout_id": rollout.rollout_id,
        "state": state_name(rollout.state()),
        "principal": rollout.principal,
        "idempotency_token": rollout.idempotency_token,
        "source_project_arn": rollout.source_project_arn,
        "source_project_version_arn": rollout.source_project_version_arn,
        "counts": {
            "total": counts.total, "queued": counts.queued, "running": counts.running,
            "succeeded": counts.succeeded, "failed": counts.failed, "cancelled": counts.cancelled,
            "expired": counts.expired,
        },
        "copies": rollout.copies.iter().map(render::copy_json).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{AwsError, RolloutCounts};

    fn copy(account: &str, state: CopyState, status: &str) -> Copy {
        Copy {
            copy_id: format!("copy-{account}"),
            state: state as i32,
            destination_project_arn: format!("arn:aws:rekognition:us-east-1:{account}:project/prod/1"),
            version_name: "release-7".into(),
            rekognition_status: status.into(),
            ..Copy::default()
        }
    }

    #[test]
    fn a_rollout_shows_one_line_per_destination_under_its_counts() {
        let mut failed = copy("333333333333", CopyState::Failed, "");
        failed.error = Some(AwsError { code: "AccessDeniedException".into(), message: "no".into() });
        let rollout = Rollout {
            rollout_id: "r-1".into(),
            state: RolloutState::Running as i32,
            counts: Some(RolloutCounts { total: 3, running: 1, succeeded: 1, failed: 1, ..Default::default() }),
            copies: vec![
                copy("222222222222", CopyState::Copying, "COPYING_IN_PROGRESS"),
                copy("444444444444", CopyState::Succeeded, "COPYING_COMPLETED"),
                failed,
            ],
            ..Rollout::default()
        };
        let text = table(&rollout);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "r-1  running  3 copies: 1 running, 1 succeeded, 1 failed");
        assert!(lines[1].starts_with("  222222222222:project/prod/1"), "{text}");
        assert!(lines[1].ends_with("copying     COPYING_IN_PROGRESS"), "{text}");
        assert!(lines[3].ends_with("failed      AccessDeniedException: no"), "{text}");
        assert_eq!(rollout_json(&rollout)["state"], "running");
        assert_eq!(rollout_json(&rollout)["copies"][2]["error"]["code"], "AccessDeniedException");
    }

    #[test]
    fn a_change_is_replaced_in_place_and_ended_copies_are_told_apart() {
        let mut rollout = Rollout { copies: vec![copy("222222222222", CopyState::Queued, "")], ..Rollout::default() };
        replace(&mut rollout, copy("222222222222", CopyState::Succeeded, "COPYING_COMPLETED"));
        replace(&mut rollout, copy("999999999999", CopyState::Failed, ""));
        assert_eq!(rollout.copies.len(), 1, "a copy of no destination shown is not added");
        assert_eq!(rollout.copies[0].state(), CopyState::Succeeded);
        assert!(ended(CopyState::Expired) && !ended(CopyState::Copying));
    }
}
