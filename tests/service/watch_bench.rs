//! The watch fan-out benchmark (issue 12, goals P5 and P6):
//! `cargo test --release --test service -- --ignored --nocapture watch_fanout_benchmark`
//! (`MODELCOPY_BENCH_WATCHERS=1,1000,10000` sets the stream counts; `MODELCOPY_BENCH_EVENTS=40` the changes, the
//! warm-up included; `MODELCOPY_BENCH_CLIENT=h2` or `=tonic` watches with another client).
//!
//! For each count of streams, a fresh `modelcopy serve` (the release binary, its own process, so that its CPU time
//! and memory are its own) on a durable PostgreSQL (fsync on), dispatch off. N filter watchers on every copy, 100
//! streams to an HTTP/2 connection, all from this process, on one thread (by default the frame-level client of
//! `wire_client`, a task a connection; or `lean_client`'s, on `h2`; or tonic's, a task a stream). The streams stay
//! open to the end. Then copies are asked for one at a time, every 250 ms; for each, the delay from its
//! CopyModelVersion's answer reaching the client to each watcher receiving its QUEUED event (0 when the event came
//! first). Reported: p50, p99 and max of those delays over every (copy, watcher) but the warm-up's; the server's
//! and the client's CPU time per delivered event (user + system time during the changes, less the same span idle,
//! over changes × watchers); the server's resident memory idle (before any stream), with the streams open, and the
//! difference per stream. Per change, it prints the first and last delivery and the CPU time each side spent on it
//! (the scheduler's nanosecond account), which is how the slow changes were traced to their cause.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use modelcopy::cli::connect::CallMetadata;
use modelcopy::proto::{self, model_copy_client::ModelCopyClient, watch_copy_request::Target};
use prost::Message as _;

mod lean_client;
mod tls;
mod wire_client;

use crate::accept_bench::Durable;
use crate::helpers::{seed, DEST_ACCOUNT, REGION, SOURCE_ACCOUNT};
use crate::support::{self, DEST_PROJECT, SOURCE_PROJECT};

const STREAMS_PER_CONNECTION: usize = 100;
const PACE: Duration = Duration::from_millis(250);
/// The first changes after the streams open are not counted in the delays (their CPU time is): each stream's
/// first event allocates what its later ones reuse, on both sides, after the idle span has let the caches go
/// cold. Their last delivery is shown on its own.
const WARM_UP: usize = 1;

fn counts() -> Vec<usize> {
    std::env::var("MODELCOPY_BENCH_WATCHERS")
        .map(|list| list.split(',').map(|n| n.trim().parse().expect("a count of watchers")).collect())
        .unwrap_or_else(|_| vec![1, 1_000, 10_000])
}

/// The changes asked for, the warm-up included.
fn events() -> usize {
    let changes = std::env::var("MODELCOPY_BENCH_EVENTS").map(|n| n.parse().expect("a count of changes")).unwrap_or(40);
    assert!(changes > WARM_UP, "more changes than the warm-up");
    changes
}

/// A `modelcopy serve` process; killed when dropped.
struct Server {
    child: Child,
    endpoint: String,
    /// Run under `MODELCOPY_BENCH_WRAP`: the process is the wrapper's, and its figures are not reported.
    wrapped: bool,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(database_url: &str, max_streams: usize) -> Server {
        let dir = support::scratch_dir("modelcopy-watch-bench");
        let config = format!(
            "listen_addr = \"127.0.0.1:0\"\n\
             database_url = \"{database_url}\"\n\
             database_max_connections = 8\n\
             [auth]\nmode = \"dev-metadata\"\n\
             {tls}\
             [authz]\npolicies = \"{policies}\"\n\
             [dispatch]\nenabled = false\n\
             [admission]\nmax_concurrent_calls = 100000\nper_principal_per_second = 1000000.0\n\
             per_principal_burst = 1000000\nmax_watch_streams_per_principal = {max_streams}\n\
             [accounts.{DEST_ACCOUNT}]\nregion = \"{REGION}\"\nendpoint_url = \"http://127.0.0.1:9\"\n\
             access_key_id = \"AKIAUNUSED0000000000\"\nsecret_access_key = \"unused\"\n",
            policies = support::DEV_POLICIES,
            tls = tls::chosen().map(|tls| tls.server_table()).unwrap_or_default(),
        );
        let path = dir.join("settings.toml");
        std::fs::write(&path, config).unwrap();
        // `MODELCOPY_BENCH_WRAP="heaptrack -o /tmp/watch"` (or another profiler): the server runs under it. Its
        // CPU and memory figures are then the wrapper's, not the server's.
        let wrapped = std::env::var_os("MODELCOPY_BENCH_WRAP").is_some();
        let mut command = match std::env::var("MODELCOPY_BENCH_WRAP") {
            Ok(wrap) => {
                let mut words = wrap.split_whitespace();
                let mut command = Command::new(words.next().expect("a wrapper command"));
                command.args(words).arg(env!("CARGO_BIN_EXE_modelcopy"));
                command
            }
            Err(_) => Command::new(env!("CARGO_BIN_EXE_modelcopy")),
        };
        let mut child = command
            .args(["serve", "--config"])
            .arg(&path)
            .env("RUST_LOG", "error")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("modelcopy serve starts");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut endpoint = None;
        for line in stdout.lines() {
            let line = line.expect("its output");
            if let Some(addr) = line.strip_prefix("modelcopy listening on ") {
                endpoint = Some(addr.to_owned());
                break;
            }
        }
        let endpoint = endpoint.expect("the server said where it listens");
        let scheme = if tls::chosen().is_some() { "https" } else { "http" };
        let endpoint = if endpoint.starts_with("http") { endpoint } else { format!("{scheme}://{endpoint}") };
        Server { child, endpoint, wrapped }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
    }

    fn proc(&self, file: &str) -> String {
        std::fs::read_to_string(format!("/proc/{}/{file}", self.child.id())).unwrap()
    }

    /// User + system CPU time so far.
    fn cpu(&self) -> Duration {
        if self.wrapped {
            return Duration::ZERO;
        }
        cpu_time(&self.proc("stat"))
    }

    /// CPU time so far, to the nanosecond (see [`threads_cpu`]).
    fn cpu_ns(&self) -> Duration {
        threads_cpu(&self.child.id().to_string())
    }

    /// Resident memory, in KiB.
    fn rss_kib(&self) -> u64 {
        if self.wrapped {
            return 0;
        }
        let status = self.proc("status");
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
}

/// User + system CPU time from a `/proc/<pid>/stat` line.
fn cpu_time(stat: &str) -> Duration {
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    // After the command's name: state is field 3, utime 14 and stime 15 (1-based, of the whole line).
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let per_second = 100; // USER_HZ on Linux
    Duration::from_millis(ticks * 1000 / per_second)
}

/// The CPU time so far of every thread of process `pid` (`self` for this one), to the nanosecond: the scheduler's
/// own account (`/proc/<pid>/task/*/schedstat`), where `stat` counts in ticks of 10 ms.
fn threads_cpu(pid: &str) -> Duration {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    let ns = tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok())
        .filter_map(|line| line.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(ns)
}

/// This process's (the client's) CPU time so far.
fn client_cpu() -> Duration {
    cpu_time(&std::fs::read_to_string("/proc/self/stat").unwrap())
}

type Client = ModelCopyClient<tonic::service::interceptor::InterceptedService<tonic::transport::Channel, CallMetadata>>;

async fn channel(endpoint: &str) -> tonic::transport::Channel {
    let mut endpoint = tonic::transport::Endpoint::from_shared(endpoint.to_owned()).unwrap();
    if let Some(tls) = tls::chosen() {
        endpoint = endpoint.tls_config(tls.tonic()).unwrap();
    }
    endpoint.connect().await.unwrap()
}

async fn client(endpoint: &str) -> Client {
    ModelCopyClient::with_interceptor(channel(endpoint).await, CallMetadata::new(Some(PRINCIPAL), None).unwrap())
}

/// Of a `CopyEvent`, what the watchers measure with: its copy's version name (prost skips the other fields).
/// Why: ten thousand streams share the machine with the server; decoding every field of every event for each of
/// them would make the client what is measured.
#[derive(Clone, PartialEq, prost::Message)]
struct Seen {
    #[prost(message, optional, tag = "2")]
    copy: Option<SeenCopy>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct SeenCopy {
    #[prost(string, tag = "8")]
    version_name: String,
}

/// Who asks for the copies and watches them (dev-mode authentication).
const PRINCIPAL: &str = "dashboards";

const WATCH_PATH: &str = "/modelcopy.v1.ModelCopy/WatchCopy";

/// A filter watch of every copy.
fn watch_request() -> proto::WatchCopyRequest {
    proto::WatchCopyRequest { target: Some(Target::Filter(proto::CopyFilter::default())), after_sequence: None }
}

/// A filter watch of every copy, decoded as [`Seen`].
async fn watch_all(channel: tonic::transport::Channel) -> tonic::Streaming<Seen> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("the connection is ready");
    let mut request = tonic::Request::new(watch_request());
    request.metadata_mut().insert("x-modelcopy-principal", PRINCIPAL.parse().unwrap());
    let path = http::uri::PathAndQuery::from_static(WATCH_PATH);
    let codec = tonic_prost::ProstCodec::<proto::WatchCopyRequest, Seen>::default();
    grpc.server_streaming(request, path, codec).await.expect("a watch").into_inner()
}

/// The number of the change that made copy `name`, `bench-<k>`.
fn change_number(name: &str) -> Option<usize> {
    name.strip_prefix("bench-")?.parse().ok()
}

fn request(name: String) -> proto::CopyModelVersionRequest {
    let seed = seed();
    proto::CopyModelVersionRequest {
        source_project_arn: seed.project_arn(SOURCE_ACCOUNT, REGION, SOURCE_PROJECT).unwrap(),
        source_project_version_arn: seed.version_arn(SOURCE_ACCOUNT, REGION, SOURCE_PROJECT, "v1").unwrap(),
        destination_project_arn: seed.project_arn(DEST_ACCOUNT, REGION, DEST_PROJECT).unwrap(),
        version_name: name,
        output_config: Some(proto::OutputConfig { s3_bucket: "model-output".into(), s3_key_prefix: "copies/".into() }),
        tags: [("team".to_string(), "vision".to_string())].into(),
        ..Default::default()
    }
}

/// What one watcher received: when each change (by its number) came.
struct Receipt {
    at: Vec<Option<Instant>>,
    left: usize,
}

impl Receipt {
    fn new(changes: usize) -> Receipt {
        Receipt { at: vec![None; changes], left: changes }
    }

    /// Notes `event` received now; false once every change has come.
    fn note(&mut self, event: Seen) -> bool {
        let at = Instant::now();
        let copy = event.copy.expect("a copy");
        if let Some(k) = change_number(&copy.version_name).filter(|&k| k < self.at.len()) {
            if self.at[k].is_none() {
                self.at[k] = Some(at);
                self.left -= 1;
            }
        }
        self.left > 0
    }
}

/// Which client watches (`MODELCOPY_BENCH_CLIENT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Watching {
    /// `wire_client`, the default.
    Wire,
    /// `lean_client`: `h2`.
    H2,
    /// tonic's client, a task a stream.
    Tonic,
}

impl Watching {
    fn chosen() -> Watching {
        match std::env::var("MODELCOPY_BENCH_CLIENT").as_deref() {
            Err(_) | Ok("wire") => Watching::Wire,
            Ok("h2") => Watching::H2,
            Ok("tonic") => Watching::Tonic,
            Ok(other) => panic!("MODELCOPY_BENCH_CLIENT={other}: wire, h2 or tonic"),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Watching::Wire => "wire (frames off the socket), a task a connection",
            Watching::H2 => "h2, a task a connection",
            Watching::Tonic => "tonic, a task a stream",
        }
    }
}

/// Opens `watchers` streams, 100 a connection, on a thread of their own (a current-thread runtime), which reads
/// until each stream has all `changes` or ends. Resolves the first receiver once every stream is open, the second
/// with the receipts. The streams stay open until the third, `close`, is dropped.
///
/// Why they stay open: a client that closed each connection as soon as its streams had every change had the
/// server tear down those streams while it still sent the last change to the others (that change's last delivery
/// 46–52 ms against 20–35 for the others, its CPU time twice theirs): the benchmark's end, not the fan-out.
///
/// Why one thread: the streams are independent, and a client spread over both cores bounced the connections'
/// shared read buffers and its tasks between them (perf: a tenth of its time in `shared_v_drop`), time taken from
/// the server it measures.
fn watch_on_a_thread(
    endpoint: String,
    watchers: usize,
    changes: usize,
) -> (tokio::sync::oneshot::Receiver<()>, tokio::sync::oneshot::Receiver<Vec<Receipt>>, tokio::sync::oneshot::Sender<()>)
{
    let (opened_tx, opened_rx) = tokio::sync::oneshot::channel();
    let (receipts_tx, receipts_rx) = tokio::sync::oneshot::channel();
    let (close_tx, close_rx) = tokio::sync::oneshot::channel::<()>();
    let per_connection = move |c: usize| STREAMS_PER_CONNECTION.min(watchers - c * STREAMS_PER_CONNECTION);
    let connections = watchers.div_ceil(STREAMS_PER_CONNECTION);
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let mut tasks = Vec::with_capacity(watchers);
            let addr = || endpoint.split("://").last().unwrap().parse().expect("a socket address");
            let metadata = [("x-modelcopy-principal", PRINCIPAL)];
            let note =
                |receipt: &mut Receipt, message: &[u8]| receipt.note(Seen::decode(message).expect("a CopyEvent"));
            let watching = Watching::chosen();
            if watching == Watching::Tonic {
                // A task a stream, each with tonic's decoding.
                let mut opened = Vec::with_capacity(watchers);
                for c in 0..connections {
                    let channel = channel(&endpoint).await;
                    for _ in 0..per_connection(c) {
                        let channel = channel.clone();
                        let (open_tx, open_rx) = tokio::sync::oneshot::channel();
                        opened.push(open_rx);
                        tasks.push(tokio::spawn(async move {
                            let mut stream = watch_all(channel).await;
                            let _ = open_tx.send(());
                            let mut receipt = Receipt::new(changes);
                            while let Some(Ok(event)) = stream.next().await {
                                if !receipt.note(event) {
                                    break;
                                }
                            }
                            (vec![receipt], Box::new(stream) as Open)
                        }));
                    }
                }
                for open in opened {
                    open.await.expect("every stream opened");
                }
            } else {
                // A task a connection, reading its streams.
                for c in 0..connections {
                    let receipts = (0..per_connection(c)).map(|_| Receipt::new(changes)).collect();
                    let (request, count) = (watch_request(), per_connection(c));
                    assert!(watching == Watching::Wire || tls::chosen().is_none(), "TLS: the wire or tonic client");
                    tasks.push(if watching == Watching::H2 {
                        let streams = lean_client::open(addr(), WATCH_PATH, &request, &metadata, count).await;
                        let read = lean_client::read(streams, receipts, note);
                        tokio::spawn(async move { read.await.map_open() })
                    } else {
                        let connection = wire_client::Connection::open(
                            addr(),
                            tls::chosen(),
                            WATCH_PATH,
                            &request,
                            &metadata,
                            count,
                        )
                        .await;
                        let read = connection.read(receipts, note);
                        tokio::spawn(async move { read.await.map_open() })
                    });
                }
            }
            let _ = opened_tx.send(());
            let mut receipts = Vec::with_capacity(watchers);
            let mut open = Vec::with_capacity(tasks.len());
            for task in tasks {
                let (some, still) = task.await.unwrap();
                receipts.extend(some);
                open.push(still);
            }
            let _ = receipts_tx.send(receipts);
            let _ = close_rx.await;
            drop(open);
        });
    });
    (opened_rx, receipts_rx, close_tx)
}

/// What keeps a client's streams open.
type Open = Box<dyn std::any::Any + Send>;

trait MapOpen {
    fn map_open(self) -> (Vec<Receipt>, Open);
}

impl<S: Send + 'static> MapOpen for (Vec<Receipt>, S) {
    fn map_open(self) -> (Vec<Receipt>, Open) {
        (self.0, Box::new(self.1))
    }
}

struct Figures {
    /// The last delivery of the warm-up changes.
    warm_up_last: Duration,
    watchers: usize,
    p50: Duration,
    p99: Duration,
    max: Duration,
    missing: usize,
    cpu_per_event: Duration,
    client_cpu_per_event: Duration,
    idle_kib: u64,
    open_kib: u64,
}

async fn run(durable: &Durable, watchers: usize, changes: usize) -> Figures {
    let (url, _pool) = durable.database(&format!("bench_watch_{watchers}")).await;
    let mut server = Server::start(&url, watchers + 10);
    let mut asker = client(&server.endpoint).await;
    // One call first, so that the idle figure is of a server that has served.
    asker.list_copies(proto::ListCopiesRequest::default()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_kib = server.rss_kib();

    let span = PACE * changes as u32;
    let (opened, received, close) = watch_on_a_thread(server.endpoint.clone(), watchers, changes);
    opened.await.expect("every stream opened");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let open_kib = server.rss_kib();

    // The same span idle, then with the changes.
    println!("{watchers} streams open; idle for {span:?}");
    let (idle_from, client_idle_from) = (server.cpu(), client_cpu());
    tokio::time::sleep(span).await;
    let idle_cpu = server.cpu().saturating_sub(idle_from);
    let client_idle_cpu = client_cpu().saturating_sub(client_idle_from);
    println!("{watchers} streams open; changes begin");
    let (busy_from, client_busy_from) = (server.cpu(), client_cpu());
    let mut acked = Vec::with_capacity(changes);
    // Before each change, and after the last one's fan-out: each change's CPU time, the server's and the client's.
    let mut cpu_marks = Vec::with_capacity(changes + 1);
    for k in 0..changes {
        cpu_marks.push((server.cpu_ns(), threads_cpu("self")));
        let started = Instant::now();
        asker.copy_model_version(request(format!("bench-{k}"))).await.expect("a copy");
        acked.push(Instant::now());
        tokio::time::sleep(PACE.saturating_sub(started.elapsed())).await;
    }
    // Until every watcher has every change; the watchers are given a minute more, then their streams end with
    // the server.
    let mut received = std::pin::pin!(received);
    let done = tokio::time::timeout(Duration::from_secs(60), &mut received).await;
    cpu_marks.push((server.cpu_ns(), threads_cpu("self")));
    let busy_cpu = server.cpu().saturating_sub(busy_from);
    let client_busy_cpu = client_cpu().saturating_sub(client_busy_from);
    let receipts = match done {
        Ok(receipts) => receipts,
        Err(_) => {
            server.kill();
            received.await
        }
    };
    drop(close);
    let mut delays = Vec::with_capacity(watchers * changes);
    let mut missing = 0;
    // Per change, its first and last delivery: what came before the fan-out began, and the fan-out's own span.
    let mut first = vec![Duration::MAX; changes];
    let mut last = vec![Duration::ZERO; changes];
    for receipt in receipts.expect("the watchers' thread reports") {
        for (k, at) in receipt.at.into_iter().enumerate() {
            match at {
                Some(at) => {
                    let delay = at.saturating_duration_since(acked[k]);
                    first[k] = first[k].min(delay);
                    last[k] = last[k].max(delay);
                    if k >= WARM_UP {
                        delays.push(delay);
                    }
                }
                None => missing += 1,
            }
        }
    }
    delays.sort();
    let ms = |d: &Duration| format!("{:.0}", d.as_secs_f64() * 1e3);
    println!("  per change, first delivery (ms): {}", first.iter().map(ms).collect::<Vec<_>>().join(" "));
    println!("  per change, last delivery (ms):  {}", last.iter().map(ms).collect::<Vec<_>>().join(" "));
    let spent = |side: fn(&(Duration, Duration)) -> Duration| {
        cpu_marks.windows(2).map(|w| ms(&side(&w[1]).saturating_sub(side(&w[0])))).collect::<Vec<_>>().join(" ")
    };
    println!("  per change, server CPU (ms):     {}", spent(|m| m.0));
    println!("  per change, client CPU (ms):     {}", spent(|m| m.1));
    let pick = |q: f64| delays.get(((delays.len() as f64 * q) as usize).min(delays.len().saturating_sub(1))).copied();
    let delivered = (watchers * changes - missing).max(1) as u32;
    Figures {
        warm_up_last: last[..WARM_UP].iter().max().copied().unwrap_or_default(),
        watchers,
        p50: pick(0.50).unwrap_or_default(),
        p99: pick(0.99).unwrap_or_default(),
        max: delays.last().copied().unwrap_or_default(),
        missing,
        cpu_per_event: busy_cpu.saturating_sub(idle_cpu) / delivered,
        client_cpu_per_event: client_busy_cpu.saturating_sub(client_idle_cpu) / delivered,
        idle_kib,
        open_kib,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark (a few minutes); run explicitly, in release"]
async fn watch_fanout_benchmark() {
    let durable = Durable::start().await;
    let changes = events();
    let client = Watching::chosen().describe();
    let client = if tls::chosen().is_some() { format!("{client}, over TLS") } else { client.to_owned() };
    println!(
        "watch fan-out: {changes} changes ({WARM_UP} warm-up), one every {PACE:?}; {STREAMS_PER_CONNECTION} streams a \
         connection; client {client}, on one thread"
    );
    println!("| streams | p50 | p99 | max | warm-up's last | not received | server CPU per delivered event | client CPU per event | RSS idle | RSS with streams | per stream |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for watchers in counts() {
        let f = run(&durable, watchers, changes).await;
        let per_stream = (f.open_kib.saturating_sub(f.idle_kib) as f64) / f.watchers as f64;
        println!(
            "| {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {} | {:.1} µs | {:.1} µs | {:.1} MB | {:.1} MB | {:.1} KB |",
            f.watchers,
            f.p50.as_secs_f64() * 1e3,
            f.p99.as_secs_f64() * 1e3,
            f.max.as_secs_f64() * 1e3,
            f.warm_up_last.as_secs_f64() * 1e3,
            f.missing,
            f.cpu_per_event.as_secs_f64() * 1e6,
            f.client_cpu_per_event.as_secs_f64() * 1e6,
            f.idle_kib as f64 / 1024.0,
            f.open_kib as f64 / 1024.0,
            per_stream,
        );
        assert_eq!(f.missing, 0, "every watcher got every change");
    }
    durable.remove();
}
