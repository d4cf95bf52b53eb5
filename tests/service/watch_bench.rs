//! The watch fan-out benchmark (issue 12, goals P5 and P6):
//! `cargo test --release --test service -- --ignored --nocapture watch_fanout_benchmark`
//! (`MODELCOPY_BENCH_WATCHERS=1,1000,10000` sets the stream counts; `MODELCOPY_BENCH_EVENTS=40` the changes).
//!
//! For each count of streams, a fresh `modelcopy serve` (the release binary, its own process, so that its CPU time
//! and memory are its own) on a durable PostgreSQL (fsync on), dispatch off. N filter watchers on every copy, 100
//! streams to an HTTP/2 connection, all from this process (a Rust client: tonic, one task a stream). Then copies are
//! asked for one at a time, every 250 ms; for each, the delay from its CopyModelVersion's answer reaching the client
//! to each watcher receiving its QUEUED event (0 when the event came first). Reported: p50, p99 and max of those
//! delays over every (copy, watcher); the server's CPU time per delivered event (its user + system time during
//! the changes, less the same span idle, over changes × watchers); its resident memory idle (before any stream),
//! with the streams open, and the difference per stream.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use modelcopy::cli::connect::CallMetadata;
use modelcopy::proto::{self, model_copy_client::ModelCopyClient, watch_copy_request::Target};

use crate::accept_bench::Durable;
use crate::helpers::{seed, DEST_ACCOUNT, REGION, SOURCE_ACCOUNT};
use crate::support::{self, DEST_PROJECT, SOURCE_PROJECT};

const STREAMS_PER_CONNECTION: usize = 100;
const PACE: Duration = Duration::from_millis(250);

fn counts() -> Vec<usize> {
    std::env::var("MODELCOPY_BENCH_WATCHERS")
        .map(|list| list.split(',').map(|n| n.trim().parse().expect("a count of watchers")).collect())
        .unwrap_or_else(|_| vec![1, 1_000, 10_000])
}

fn events() -> usize {
    std::env::var("MODELCOPY_BENCH_EVENTS").map(|n| n.parse().expect("a count of changes")).unwrap_or(40)
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
        let _ = self.child.kill();
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
             [authz]\npolicies = \"{policies}\"\n\
             [dispatch]\nenabled = false\n\
             [admission]\nmax_concurrent_calls = 100000\nper_principal_per_second = 1000000.0\n\
             per_principal_burst = 1000000\nmax_watch_streams_per_principal = {max_streams}\n\
             [accounts.{DEST_ACCOUNT}]\nregion = \"{REGION}\"\nendpoint_url = \"http://127.0.0.1:9\"\n\
             access_key_id = \"AKIAUNUSED0000000000\"\nsecret_access_key = \"unused\"\n",
            policies = support::DEV_POLICIES,
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
        let endpoint = if endpoint.starts_with("http") { endpoint } else { format!("http://{endpoint}") };
        Server { child, endpoint, wrapped }
    }

    fn proc(&self, file: &str) -> String {
        std::fs::read_to_string(format!("/proc/{}/{file}", self.child.id())).unwrap()
    }

    /// User + system CPU time so far.
    fn cpu(&self) -> Duration {
        if self.wrapped {
            return Duration::ZERO;
        }
        let stat = self.proc("stat");
        let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
        // After the command's name: state is field 3, utime 14 and stime 15 (1-based, of the whole line).
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        let per_second = 100; // USER_HZ on Linux
        Duration::from_millis(ticks * 1000 / per_second)
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

type Client = ModelCopyClient<tonic::service::interceptor::InterceptedService<tonic::transport::Channel, CallMetadata>>;

async fn channel(endpoint: &str) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(endpoint.to_owned()).unwrap().connect().await.unwrap()
}

async fn client(endpoint: &str) -> Client {
    ModelCopyClient::with_interceptor(channel(endpoint).await, CallMetadata::new(Some("dashboards"), None).unwrap())
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

/// A filter watch of every copy, decoded as [`Seen`].
async fn watch_all(channel: tonic::transport::Channel) -> tonic::Streaming<Seen> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("the connection is ready");
    let request =
        proto::WatchCopyRequest { target: Some(Target::Filter(proto::CopyFilter::default())), after_sequence: None };
    let mut request = tonic::Request::new(request);
    request.metadata_mut().insert("x-modelcopy-principal", "dashboards".parse().unwrap());
    let path = http::uri::PathAndQuery::from_static("/modelcopy.v1.ModelCopy/WatchCopy");
    let codec = tonic_prost::ProstCodec::<proto::WatchCopyRequest, Seen>::default();
    grpc.server_streaming(request, path, codec).await.expect("a watch").into_inner()
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

struct Figures {
    watchers: usize,
    p50: Duration,
    p99: Duration,
    max: Duration,
    missing: usize,
    cpu_per_event: Duration,
    idle_kib: u64,
    open_kib: u64,
}

async fn run(durable: &Durable, watchers: usize, changes: usize) -> Figures {
    let (url, _pool) = durable.database(&format!("bench_watch_{watchers}")).await;
    let server = Server::start(&url, watchers + 10);
    let mut asker = client(&server.endpoint).await;
    // One call first, so that the idle figure is of a server that has served.
    asker.list_copies(proto::ListCopiesRequest::default()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_kib = server.rss_kib();

    let names: Arc<HashMap<String, usize>> = Arc::new((0..changes).map(|k| (format!("bench-{k}"), k)).collect());
    // Watchers give up on a change that has not come by then: the streams' opening, the idle span and the changes,
    // with room to spare.
    let span = PACE * changes as u32;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120) + 2 * span;
    let mut tasks = Vec::with_capacity(watchers);
    let connections = watchers.div_ceil(STREAMS_PER_CONNECTION);
    let mut opened = Vec::with_capacity(watchers);
    for c in 0..connections {
        let channel = channel(&server.endpoint).await;
        for _ in 0..STREAMS_PER_CONNECTION.min(watchers - c * STREAMS_PER_CONNECTION) {
            let channel = channel.clone();
            let names = names.clone();
            let (open_tx, open_rx) = tokio::sync::oneshot::channel();
            opened.push(open_rx);
            tasks.push(tokio::spawn(async move {
                let mut stream = watch_all(channel).await;
                let _ = open_tx.send(());
                let mut received: Vec<Option<Instant>> = vec![None; names.len()];
                let mut left = names.len();
                while left > 0 {
                    match tokio::time::timeout_at(deadline, stream.next()).await {
                        Ok(Some(Ok(event))) => {
                            let at = Instant::now();
                            let copy = event.copy.expect("a copy");
                            if let Some(&k) = names.get(&copy.version_name) {
                                if received[k].is_none() {
                                    received[k] = Some(at);
                                    left -= 1;
                                }
                            }
                        }
                        _ => break,
                    }
                }
                received
            }));
        }
    }
    for open in opened {
        open.await.expect("every stream opened");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let open_kib = server.rss_kib();

    // The same span idle, then with the changes.
    println!("{watchers} streams open; idle for {span:?}");
    let idle_from = server.cpu();
    tokio::time::sleep(span).await;
    let idle_cpu = server.cpu().saturating_sub(idle_from);
    println!("{watchers} streams open; changes begin");
    let busy_from = server.cpu();
    let mut acked = Vec::with_capacity(changes);
    for k in 0..changes {
        let started = Instant::now();
        asker.copy_model_version(request(format!("bench-{k}"))).await.expect("a copy");
        acked.push(Instant::now());
        tokio::time::sleep(PACE.saturating_sub(started.elapsed())).await;
    }
    // Until every watcher has every change (or gave up).
    let mut delays = Vec::with_capacity(watchers * changes);
    let mut missing = 0;
    for task in tasks {
        for (k, at) in task.await.unwrap().into_iter().enumerate() {
            match at {
                Some(at) => delays.push(at.saturating_duration_since(acked[k])),
                None => missing += 1,
            }
        }
    }
    let busy_cpu = server.cpu().saturating_sub(busy_from);
    delays.sort();
    let pick = |q: f64| delays.get(((delays.len() as f64 * q) as usize).min(delays.len().saturating_sub(1))).copied();
    let delivered = (watchers * changes - missing).max(1) as u32;
    Figures {
        watchers,
        p50: pick(0.50).unwrap_or_default(),
        p99: pick(0.99).unwrap_or_default(),
        max: delays.last().copied().unwrap_or_default(),
        missing,
        cpu_per_event: busy_cpu.saturating_sub(idle_cpu) / delivered,
        idle_kib,
        open_kib,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark (a few minutes); run explicitly, in release"]
async fn watch_fanout_benchmark() {
    let durable = Durable::start().await;
    let changes = events();
    println!("watch fan-out: {changes} changes, one every {PACE:?}; {STREAMS_PER_CONNECTION} streams a connection");
    println!("| streams | p50 | p99 | max | not received | server CPU per delivered event | RSS idle | RSS with streams | per stream |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for watchers in counts() {
        let f = run(&durable, watchers, changes).await;
        let per_stream = (f.open_kib.saturating_sub(f.idle_kib) as f64) / f.watchers as f64;
        println!(
            "| {} | {:.1} ms | {:.1} ms | {:.1} ms | {} | {:.1} µs | {:.1} MB | {:.1} MB | {:.1} KB |",
            f.watchers,
            f.p50.as_secs_f64() * 1e3,
            f.p99.as_secs_f64() * 1e3,
            f.max.as_secs_f64() * 1e3,
            f.missing,
            f.cpu_per_event.as_secs_f64() * 1e6,
            f.idle_kib as f64 / 1024.0,
            f.open_kib as f64 / 1024.0,
            per_stream,
        );
        assert_eq!(f.missing, 0, "every watcher got every change");
    }
    durable.remove();
}
