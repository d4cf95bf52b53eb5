//! `watch`: print state changes as the server streams them, one line each.
//!
//! Watching one copy ends when the server ends the stream after the copy's terminal state, and the outcome tells a
//! script how the copy ended (exit code 0 for SUCCEEDED, 3 for FAILED or CANCELLED). Watching a filter runs until
//! Ctrl-C. A stream that fails UNAVAILABLE (its replica lost the database, or went away) is watched again after
//! the highest sequence printed ([`resuming`]), so nothing is missed; after a snapshot, a change the snapshot
//! already showed may be printed again, never one lost. The loops are separate from the gRPC call (they take any
//! stream, any opener and any stop signal), so they are tested without a server.

use std::future::Future;
use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use futures::{Stream, StreamExt};
use tonic::Status;
use tonic_types::StatusExt;

use super::connect::Client;
use super::{render, FilterArgs, Outcome, OutputFormat};
use crate::proto::watch_copy_request::Target;
use crate::proto::{CopyEvent, CopyState, WatchCopyRequest};

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// One copy to follow until it ends; without it, every copy that matches the filters.
    #[arg(conflicts_with_all = ["states", "source_account", "destination_account"])]
    pub copy_id: Option<String>,
    #[command(flatten)]
    pub filter: FilterArgs,
}

impl WatchArgs {
    pub fn to_request(&self) -> WatchCopyRequest {
        let target = match &self.copy_id {
            Some(copy_id) => Target::CopyId(copy_id.clone()),
            None => Target::Filter(self.filter.to_filter()),
        };
        WatchCopyRequest { target: Some(target), after_sequence: None }
    }
}

/// What a watch has printed so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// The state in the last event.
    pub state: Option<CopyState>,
    /// The highest sequence number: where a resumed watch starts after.
    pub sequence: Option<u64>,
}

/// Watches that fail in a row, with nothing printed in between, before the watch gives up.
const RECONNECTS: u32 = 10;
/// The pause before the first reconnection; doubled at each failure in a row, up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(250);
const MAX_PAUSE: Duration = Duration::from_secs(5);

/// Why [`print_events`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchEnd {
    /// The server ended the stream; the state in the last event, if there was one.
    Ended(Option<CopyState>),
    /// The stop signal fired first.
    Stopped,
}

pub async fn execute(
    client: &mut Client,
    args: &WatchArgs,
    format: OutputFormat,
    out: &mut impl Write,
) -> anyhow::Result<Outcome> {
    match &args.copy_id {
        Some(copy_id) => follow_copy(client, copy_id, format, out).await,
        None => {
            let opener = |request| open(client.clone(), request);
            resuming(opener, args.to_request(), format, out, ctrl_c()).await?;
            // Stopped or ended by the server: either way, nothing failed.
            Ok(Outcome::Done)
        }
    }
}

/// Follows one copy until the server ends the stream after its terminal state, or Ctrl-C.
pub async fn follow_copy(
    client: &mut Client,
    copy_id: &str,
    format: OutputFormat,
    out: &mut impl Write,
) -> anyhow::Result<Outcome> {
    let request = WatchCopyRequest { target: Some(Target::CopyId(copy_id.to_owned())), after_sequence: None };
    let opener = |request| open(client.clone(), request);
    let end = resuming(opener, request, format, out, ctrl_c()).await?;
    single_copy_outcome(copy_id, end)
}

async fn open(mut client: Client, request: WatchCopyRequest) -> anyhow::Result<tonic::Streaming<CopyEvent>> {
    Ok(client.watch_copy(request).await.context("WatchCopy")?.into_inner())
}

/// Watches with `open` and prints what comes, as [`print_events`]; when the watch fails UNAVAILABLE (or was cut
/// off as too slow), opens it again
/// after the highest sequence printed, after a pause, up to [`RECONNECTS`] failures in a row.
pub async fn resuming<O, Fut, S>(
    mut open: O,
    mut request: WatchCopyRequest,
    format: OutputFormat,
    out: &mut impl Write,
    stop: impl Future<Output = ()>,
) -> anyhow::Result<WatchEnd>
where
    O: FnMut(WatchCopyRequest) -> Fut,
    Fut: Future<Output = anyhow::Result<S>>,
    S: Stream<Item = Result<CopyEvent, Status>> + Unpin,
{
    tokio::pin!(stop);
    let mut seen = Seen::default();
    let (mut failures, mut pause) = (0, FIRST_PAUSE);
    loop {
        let before = seen;
        let watched = tokio::select! {
            () = &mut stop => return Ok(WatchEnd::Stopped),
            opened = open(request.clone()) => opened,
        };
        let result = match watched {
            Ok(events) => print_events(events, format, out, &mut stop, &mut seen).await,
            Err(err) => Err(err),
        };
        let err = match result {
            Err(err) if resumable(&err) => err,
            other => return other,
        };
        if seen != before {
            (failures, pause) = (0, FIRST_PAUSE);
        }
        failures += 1;
        if failures > RECONNECTS {
            return Err(err.context(format!("gave up after {RECONNECTS} attempts in a row")));
        }
        request.after_sequence = seen.sequence;
        eprintln!("{}; watching again in {} ms", render::error_report(&err), pause.as_millis());
        tokio::select! {
            () = &mut stop => return Ok(WatchEnd::Stopped),
            () = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

/// Whether a watch that failed with `err` may be resumed: UNAVAILABLE (the replica cannot serve the watch now,
/// another attempt may), or the stream was cut off because it fell behind (`SLOW_CONSUMER`: this client read too
/// slowly for a while; a resume catches up from the history). Not any other RESOURCE_EXHAUSTED: too many streams
/// or calls of this principal are not solved by one more.
fn resumable(err: &anyhow::Error) -> bool {
    err.chain().filter_map(|cause| cause.downcast_ref::<Status>()).any(|status| match status.code() {
        tonic::Code::Unavailable => true,
        tonic::Code::ResourceExhausted => {
            status.get_details_error_info().is_some_and(|info| info.reason == "SLOW_CONSUMER")
        }
        _ => false,
    })
}

/// Resolves on Ctrl-C; never, if the handler cannot be installed (the watch then ends only with the stream).
pub(super) async fn ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Prints each event as it arrives until the stream ends, fails, or `stop` resolves; `seen` follows what was printed.
pub async fn print_events<S, F>(
    mut events: S,
    format: OutputFormat,
    out: &mut impl Write,
    stop: F,
    seen: &mut Seen,
) -> anyhow::Result<WatchEnd>
where
    S: Stream<Item = Result<CopyEvent, Status>> + Unpin,
    F: Future<Output = ()>,
{
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return Ok(WatchEnd::Stopped),
            next = events.next() => match next {
                None => return Ok(WatchEnd::Ended(seen.state)),
                Some(Err(status)) => return Err(anyhow::Error::new(status).context("WatchCopy")),
                Some(Ok(event)) => {
                    render::write_event(out, &event, format)?;
                    seen.state = event.copy.as_ref().and_then(|c| CopyState::try_from(c.state).ok());
                    seen.sequence = seen.sequence.max(Some(event.sequence));
                }
            },
        }
    }
}

/// How a watch of one copy ended, for the exit code. A stream that ends before the copy did is an error: the
/// script asked how the copy ended, and the CLI does not know.
pub fn single_copy_outcome(copy_id: &str, end: WatchEnd) -> anyhow::Result<Outcome> {
    match end {
        WatchEnd::Stopped => Ok(Outcome::Interrupted),
        // An expired copy succeeded, and was deleted later as asked.
        WatchEnd::Ended(Some(CopyState::Succeeded | CopyState::Expired)) => Ok(Outcome::Done),
        WatchEnd::Ended(Some(CopyState::Failed | CopyState::Cancelled)) => Ok(Outcome::CopyDidNotSucceed),
        WatchEnd::Ended(last) => anyhow::bail!(
            "WatchCopy: the stream ended before copy {copy_id} did (last state seen: {})",
            last.map_or("none".to_owned(), |s| render::state_name(s as i32))
        ),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::super::{Cli, Command};
    use super::*;
    use crate::proto::Copy;

    fn watch_args(argv: &[&str]) -> Result<WatchArgs, clap::Error> {
        let mut full = vec!["modelcopy-cli", "watch"];
        full.extend_from_slice(argv);
        match Cli::try_parse_from(full)?.command {
            Command::Watch(args) => Ok(args),
            other => panic!("parsed as {other:?}"),
        }
    }

    fn event(sequence: u64, previous: CopyState, state: CopyState) -> Result<CopyEvent, Status> {
        Ok(CopyEvent {
            sequence,
            copy: Some(Copy { copy_id: "c1".into(), state: state as i32, ..Copy::default() }),
            previous_state: previous as i32,
            ..CopyEvent::default()
        })
    }

    #[test]
    fn one_copy_or_a_filter() {
        let request = watch_args(&["c1"]).unwrap().to_request();
        assert_eq!(request.target, Some(Target::CopyId("c1".into())));

        let request = watch_args(&["--state", "copying", "--source-account", "111122223333"]).unwrap().to_request();
        match request.target {
            Some(Target::Filter(filter)) => {
                assert_eq!(filter.states, vec![CopyState::Copying as i32]);
                assert_eq!(filter.source_account_id, "111122223333");
            }
            other => panic!("target {other:?}"),
        }

        // No arguments: every copy.
        let request = watch_args(&[]).unwrap().to_request();
        assert!(matches!(request.target, Some(Target::Filter(f)) if f.states.is_empty()));
    }

    #[test]
    fn a_copy_id_excludes_filters() {
        let error = watch_args(&["c1", "--state", "queued"]).unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::ArgumentConflict);
    }

    #[tokio::test]
    async fn prints_each_event_and_reports_the_last_state() {
        let events = futures::stream::iter(vec![
            event(0, CopyState::Unspecified, CopyState::Queued),
            event(5, CopyState::Queued, CopyState::Submitting),
            event(6, CopyState::Submitting, CopyState::Failed),
        ]);
        let mut out = Vec::new();
        let end = print_events(events, OutputFormat::Text, &mut out, std::future::pending(), &mut Seen::default())
            .await
            .unwrap();
        assert_eq!(end, WatchEnd::Ended(Some(CopyState::Failed)));
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[1].ends_with("#5  c1  queued → submitting"), "{text}");
        assert!(lines[2].ends_with("#6  c1  submitting → failed"), "{text}");
    }

    #[tokio::test]
    async fn json_events_are_one_object_a_line() {
        let events = futures::stream::iter(vec![
            event(1, CopyState::Unspecified, CopyState::Queued),
            event(2, CopyState::Queued, CopyState::Cancelled),
        ]);
        let mut out = Vec::new();
        print_events(events, OutputFormat::Json, &mut out, std::future::pending(), &mut Seen::default()).await.unwrap();
        let text = String::from_utf8(out).unwrap();
        let objects: Vec<serde_json::Value> = text.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[1]["sequence"], 2);
        assert_eq!(objects[1]["copy"]["state"], "cancelled");
    }

    #[tokio::test]
    async fn a_stream_error_is_an_error() {
        let events = futures::stream::iter(vec![
            event(1, CopyState::Unspecified, CopyState::Queued),
            Err(Status::unavailable("server going away")),
        ]);
        let mut out = Vec::new();
        let error = print_events(events, OutputFormat::Text, &mut out, std::future::pending(), &mut Seen::default())
            .await
            .unwrap_err();
        assert_eq!(render::error_report(&error), "error: WatchCopy: UNAVAILABLE: server going away");
        // The event before the error was still printed.
        assert_eq!(String::from_utf8(out).unwrap().lines().count(), 1);
    }

    #[tokio::test]
    async fn stop_ends_a_stream_that_never_ends() {
        let events = futures::stream::pending::<Result<CopyEvent, Status>>();
        let mut out = Vec::new();
        let end = print_events(events, OutputFormat::Text, &mut out, async {}, &mut Seen::default()).await.unwrap();
        assert_eq!(end, WatchEnd::Stopped);
        assert!(out.is_empty());
    }

    #[test]
    fn exit_outcome_follows_the_final_state() {
        let outcome = |end| single_copy_outcome("c1", end).map(Outcome::exit_code);
        assert_eq!(outcome(WatchEnd::Ended(Some(CopyState::Succeeded))).unwrap(), 0);
        assert_eq!(outcome(WatchEnd::Ended(Some(CopyState::Failed))).unwrap(), 3);
        assert_eq!(outcome(WatchEnd::Ended(Some(CopyState::Cancelled))).unwrap(), 3);
        assert_eq!(outcome(WatchEnd::Stopped).unwrap(), 130);
        let error = outcome(WatchEnd::Ended(Some(CopyState::Copying))).unwrap_err();
        assert!(error.to_string().contains("last state seen: copying"), "{error}");
        assert!(outcome(WatchEnd::Ended(None)).is_err());
    }

    /// A watch whose stream fails UNAVAILABLE is opened again after the highest sequence printed, and goes on; an
    /// error of another kind ends it.
    #[tokio::test(start_paused = true)]
    async fn an_unavailable_watch_is_resumed_after_the_last_sequence_printed() {
        let asked = std::sync::Mutex::new(Vec::new());
        let mut streams = vec![
            vec![
                event(4, CopyState::Unspecified, CopyState::Queued),
                event(7, CopyState::Queued, CopyState::Submitting),
                Err(Status::unavailable("lost contact with the copy store; watch again")),
            ],
            vec![event(9, CopyState::Submitting, CopyState::Copying), Err(slow_consumer(9))],
            vec![event(11, CopyState::Copying, CopyState::Copying), Err(too_many_streams())],
        ]
        .into_iter();
        let open = |request: WatchCopyRequest| {
            asked.lock().unwrap().push(request.after_sequence);
            let stream = streams.next().expect("no more than three watches");
            async move { anyhow::Ok(futures::stream::iter(stream)) }
        };
        let mut out = Vec::new();
        let request = WatchCopyRequest { target: Some(Target::CopyId("c1".into())), after_sequence: None };
        let error = resuming(open, request, OutputFormat::Text, &mut out, std::future::pending()).await.unwrap_err();
        assert_eq!(*asked.lock().unwrap(), [None, Some(7), Some(9)], "watched again after #7, then after #9");
        assert!(render::error_report(&error).contains("too many streams"), "not resumed: {error:#}");
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 4, "each event printed once: {text}");
    }

    /// What the service says when it cuts a stream off.
    fn slow_consumer(last: u64) -> Status {
        let metadata = std::collections::HashMap::from([("last_sequence".to_owned(), last.to_string())]);
        let details = tonic_types::ErrorDetails::with_error_info("SLOW_CONSUMER", "modelcopy", metadata);
        Status::with_error_details(tonic::Code::ResourceExhausted, "fell behind", details)
    }

    fn too_many_streams() -> Status {
        Status::resource_exhausted("too many streams of this principal")
    }
}
