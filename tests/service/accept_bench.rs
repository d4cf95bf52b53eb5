//! The accept path against the disk: CopyModelVersion's durable acknowledgements per second, next to pgbench
//! committing the same transaction shape (a job, a history row and an audit row with a jsonb request, one
//! transaction per call, into plain tables with a primary key each) on the same PostgreSQL cluster, **fsync on**, in
//! the same run. The ratio is the figure to read: absolute rates drift from run to run on shared machines.
//!
//! `cargo test --release --test service -- --ignored --nocapture accept_benchmark` (seconds per step:
//! `MODELCOPY_BENCH_SECONDS`, default 10; callers: `MODELCOPY_BENCH_CLIENTS`, default `1,8,32`; a backlog:
//! `MODELCOPY_BENCH_QUEUED`, default 0; metrics recorded as in production: `MODELCOPY_BENCH_METRICS=1`; preflight on,
//! as in production, `MODELCOPY_BENCH_PREFLIGHT=1`: every call copies the same version into the same project, so
//! after the first call its checks are believed from the cache and it costs a token lookup and the cache's lock).
//! Client, service and PostgreSQL share the machine; the simulator idles.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use modelcopy::admission::AdmissionSettings;
use modelcopy::devenv::{Lifetime, LocalPostgres};
use modelcopy::proto;

use crate::helpers::{Options, TestApp};
use modelcopy::cli::connect::Client;

/// Callers at once, in turn: 1, 8 and 32, or `MODELCOPY_BENCH_CLIENTS` (a comma-separated list).
fn clients() -> Vec<usize> {
    std::env::var("MODELCOPY_BENCH_CLIENTS")
        .ok()
        .map(|list| list.split(',').filter_map(|n| n.trim().parse().ok()).filter(|n| *n > 0).collect())
        .filter(|list: &Vec<usize>| !list.is_empty())
        .unwrap_or_else(|| vec![1, 8, 32])
}

/// Copies already queued in the destination account before the first call: `MODELCOPY_BENCH_QUEUED` (default 0).
/// Admission reads a counter, so the figures should not move with it.
fn queued_before() -> i64 {
    std::env::var("MODELCOPY_BENCH_QUEUED").ok().and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn seconds() -> u64 {
    std::env::var("MODELCOPY_BENCH_SECONDS").ok().and_then(|v| v.parse().ok()).filter(|n| *n > 0).unwrap_or(10)
}

/// The newest installed PostgreSQL's `pgbench`.
fn pgbench_binary() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed")
        .filter_map(|entry| Some(entry.ok()?.path().join("bin/pgbench")))
        .filter(|path| path.is_file())
        .collect();
    found.sort();
    found.pop().expect("pgbench is installed with PostgreSQL")
}

const PGBENCH_SCHEMA: &str = "
    CREATE TABLE bench_jobs (id uuid PRIMARY KEY, principal text NOT NULL, request jsonb NOT NULL,
                             state text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
    CREATE TABLE bench_history (seq bigserial PRIMARY KEY, job uuid NOT NULL, to_state text NOT NULL,
                                occurred_at timestamptz NOT NULL DEFAULT now());
    CREATE TABLE bench_audit (id bigserial PRIMARY KEY, principal text NOT NULL, rpc text NOT NULL,
                              request jsonb NOT NULL, occurred_at timestamptz NOT NULL DEFAULT now());";

/// One call's transaction, as a client that writes a copy and its audit row itself would commit it.
const PGBENCH_SCRIPT: &str = r#"\set n random(1, 2000000000)
BEGIN;
INSERT INTO bench_jobs (id, principal, request, state) VALUES (gen_random_uuid(), 'bench', '{"source_project_arn": "arn:aws:rekognition:us-east-1:111111111111:project/detector/1700000000000", "version_name": "bench-:n", "output_config": {"s3_bucket": "bucket", "s3_key_prefix": ""}}', 'QUEUED');
INSERT INTO bench_history (job, to_state) VALUES (gen_random_uuid(), 'QUEUED');
INSERT INTO bench_audit (principal, rpc, request) VALUES ('bench', 'CopyModelVersion', '{"version_name": "bench-:n", "idempotency_token": "bench-:n"}');
END;
"#;

/// pgbench's transactions per second with `clients` connections for `seconds`.
fn pgbench(cluster: &LocalPostgres, database: &str, clients: usize, seconds: u64, script: &std::path::Path) -> f64 {
    pgbench_with(cluster, database, (clients, seconds), script, Flush::Wait)
}

/// Whether pgbench's commits wait for their WAL to reach the disk.
#[derive(Clone, Copy, PartialEq)]
enum Flush {
    Wait,
    /// `synchronous_commit = off`: not durable when acknowledged, so never a figure to compare the service with; run
    /// beside the durable figure, it says how much of pgbench's rate the disk flushes cost at all.
    DoNotWait,
}

fn pgbench_with(
    cluster: &LocalPostgres,
    database: &str,
    (clients, seconds): (usize, u64),
    script: &std::path::Path,
    flush: Flush,
) -> f64 {
    let mut command = Command::new(pgbench_binary());
    if flush == Flush::DoNotWait {
        command.env("PGOPTIONS", "-c synchronous_commit=off");
    }
    let output = command
        .args(["-n", "-h", "127.0.0.1", "-U", "postgres", "-p", &cluster.port().to_string()])
        .args(["-c", &clients.to_string(), "-j", &clients.min(2).to_string(), "-T", &seconds.to_string()])
        .arg("-f")
        .arg(script)
        .arg(database)
        .output()
        .expect("pgbench runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "pgbench failed: {text}{}", String::from_utf8_lossy(&output.stderr));
    text.lines()
        .find_map(|line| line.strip_prefix("tps = ")?.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no tps in pgbench's output: {text}"))
}

/// pgbench's latencies at a steady `rate` (`-R`) with `clients` connections for `seconds`: p50 and p99 of every
/// transaction, read from its per-transaction log (pgbench prints no percentiles). The same disk flushes bound both
/// pgbench and the service, so its tail at the same rate says how much of the service's tail is the disk's.
fn pgbench_paced(
    cluster: &LocalPostgres,
    database: &str,
    (rate, clients, seconds): (f64, usize, u64),
    script: &std::path::Path,
    logs: &std::path::Path,
) -> (Duration, Duration) {
    std::fs::create_dir_all(logs).unwrap();
    let output = Command::new(pgbench_binary())
        .args(["-n", "-h", "127.0.0.1", "-U", "postgres", "-p", &cluster.port().to_string()])
        .args(["-c", &clients.to_string(), "-j", "2", "-T", &seconds.to_string(), "-R", &format!("{rate:.0}")])
        .arg("-l")
        .arg(format!("--log-prefix={}", logs.join("paced").display()))
        .arg("-f")
        .arg(script)
        .arg(database)
        .output()
        .expect("pgbench runs");
    assert!(output.status.success(), "pgbench failed: {}", String::from_utf8_lossy(&output.stderr));
    // Each line: client, transaction, latency in µs, script, epoch s, µs[, schedule lag].
    let mut latencies: Vec<Duration> = std::fs::read_dir(logs)
        .unwrap()
        .flat_map(|entry| {
            std::fs::read_to_string(entry.unwrap().path()).unwrap().lines().map(str::to_owned).collect::<Vec<_>>()
        })
        .filter_map(|line| Some(Duration::from_micros(line.split_whitespace().nth(2)?.parse().ok()?)))
        .collect();
    assert!(!latencies.is_empty(), "pgbench logged no transactions");
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    (at(0.5), at(0.99))
}

pub struct Measured {
    pub calls: usize,
    pub acks_per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
}

impl Measured {
    /// The latencies of calls made since `started`, each in order of its own.
    pub fn of(mut latencies: Vec<Duration>, started: Instant) -> Measured {
        let took = started.elapsed();
        latencies.sort();
        let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
        Measured {
            calls: latencies.len(),
            acks_per_second: latencies.len() as f64 / took.as_secs_f64(),
            p50: at(0.5),
            p99: at(0.99),
        }
    }

    /// The latencies the callers' `tasks` return, all together.
    async fn gather(tasks: Vec<tokio::task::JoinHandle<Vec<Duration>>>, started: Instant) -> Measured {
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        Measured::of(all, started)
    }
}

/// A gRPC message as it travels in an HTTP/2 body: not compressed, its length, its bytes (for h2load's `-d`).
pub fn grpc_frame(message: &impl prost::Message) -> Vec<u8> {
    let bytes = message.encode_to_vec();
    let mut frame = vec![0];
    frame.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    frame.extend_from_slice(&bytes);
    frame
}

/// How many calls h2load counts as answered (its "succeeded": any HTTP 200, whatever the gRPC status), from its
/// output.
pub fn h2load_answered(output: &str) -> i64 {
    output
        .lines()
        .find_map(|line| line.trim().strip_prefix("requests: "))
        .and_then(|line| line.split(", ").find_map(|part| part.strip_suffix(" succeeded")?.parse().ok()))
        .unwrap_or_else(|| panic!("no request counts in h2load's output: {output}"))
}

/// Asks for a copy like `template`, named `name` (its version name and idempotency token), and says how long the
/// answer took.
pub async fn ask(client: &mut Client, template: &proto::CopyModelVersionRequest, name: String) -> Duration {
    let mut request = template.clone();
    request.idempotency_token = name.clone();
    request.version_name = name;
    let sent = Instant::now();
    client.copy_model_version(request).await.expect("the copy is queued");
    sent.elapsed()
}

/// `clients` callers, each on its own connection to one of `endpoints` in turn, asking for copies back to back for
/// `seconds`.
async fn copies(app: &TestApp, endpoints: &[String], clients: usize, seconds: u64, round: usize) -> Measured {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for task in 0..clients {
        let mut client = crate::support::grpc_client(&endpoints[task % endpoints.len()], Some("bench")).await;
        let template = app.copy_request("bench");
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for i in 0.. {
                if Instant::now() >= deadline {
                    break;
                }
                latencies.push(ask(&mut client, &template, format!("bench-{round}-{task}-{i}")).await);
            }
            latencies
        }));
    }
    Measured::gather(tasks, started).await
}

/// `callers` callers, each on its own connection, together offering `rate` copies per second for `seconds` (each
/// copy named after `label`, so that no run replays another's): each
/// sends on its own clock, every `callers / rate` seconds, skipping a beat when an answer comes later than that. With
/// many callers the period is far longer than an answer takes, so the load offered does not bend to the latency
/// measured.
async fn paced(app: &TestApp, rate: f64, callers: usize, seconds: u64, label: &str) -> Measured {
    let period = Duration::from_secs_f64(callers as f64 / rate);
    // Connected before the clock starts: 64 connections take a while, and the rate is offered from the start.
    let mut clients = Vec::new();
    for _ in 0..callers {
        clients.push(app.client("bench").await);
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (task, mut client) in clients.into_iter().enumerate() {
        let template = app.copy_request("bench");
        let label = label.to_owned();
        tasks.push(tokio::spawn(async move {
            // The callers' clocks are spread over one period, not all ticking at once.
            let first = tokio::time::Instant::now() + period.mul_f64(task as f64 / callers as f64);
            let mut clock = tokio::time::interval_at(first, period);
            clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut latencies = Vec::new();
            for i in 0.. {
                // The last beat may fall well after the deadline, with a long period: not waited for.
                if tokio::time::timeout_at(deadline.into(), clock.tick()).await.is_err() {
                    break;
                }
                latencies.push(ask(&mut client, &template, format!("{label}-{task}-{i}")).await);
            }
            latencies
        }));
    }
    Measured::gather(tasks, started).await
}

/// A PostgreSQL cluster of the benchmark's own, durable as production's (fsync on; the tests' cluster has it off),
/// in a scratch directory, stopped and deleted by [`Durable::remove`].
pub struct Durable {
    pub cluster: LocalPostgres,
    dir: PathBuf,
}

impl Durable {
    pub async fn start() -> Durable {
        let dir = crate::support::scratch_dir("modelcopy-bench-pg");
        let cluster = LocalPostgres::start(&dir, 0, Lifetime::WithThisProcess).await.expect("a durable cluster");
        Durable { cluster, dir }
    }

    /// A new database: its URL and a pool on it, checked to be fsynced.
    pub async fn database(&self, name: &str) -> (String, sqlx::PgPool) {
        let url = self.cluster.create_database(name).await.unwrap();
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let fsync: String = sqlx::query_scalar("SHOW fsync").fetch_one(&pool).await.unwrap();
        assert_eq!(fsync, "on", "benchmarks run with fsync on, as production does");
        (url, pool)
    }

    /// The service on a new database `name` of this cluster, in process, dispatch off, queues unbounded.
    /// A replica for the benchmarks (dispatch off, no queue limit), its principals' limits out of the way: they
    /// measure how fast calls are taken on, and the benchmark's callers all share a few principals. Unauthenticated
    /// calls keep the default limits (the flood benchmark is about them).
    pub async fn service(&self, name: &str) -> TestApp {
        TestApp::spawn_with(Options {
            dispatch: false,
            max_queued: Some(100_000_000),
            database: Some(self.database(name).await),
            admission: Some(one_principal_at_full_speed()),
            // `MODELCOPY_BENCH_METRICS=1`: with the metrics pipeline installed, so that recording costs what it
            // does in production (without it, every instrument is a no-op).
            metrics: std::env::var_os("MODELCOPY_BENCH_METRICS").is_some(),
            preflight: std::env::var_os("MODELCOPY_BENCH_PREFLIGHT")
                .map(|_| modelcopy::preflight::PreflightSettings { per_second: 1_000.0, ..Default::default() }),
            ..Default::default()
        })
        .await
    }

    /// pgbench's database (`bench_pgbench`) with its three tables, and its script: the script's path.
    pub async fn pgbench_database(&self) -> PathBuf {
        let (_, pool) = self.database("bench_pgbench").await;
        sqlx::raw_sql(PGBENCH_SCHEMA).execute(&pool).await.unwrap();
        let script = self.dir.join("copy.sql");
        std::fs::write(&script, PGBENCH_SCRIPT).unwrap();
        script
    }

    pub fn remove(self) {
        self.cluster.stop().unwrap();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark (about a minute); run explicitly, in release"]
async fn accept_benchmark() {
    let durable = Durable::start().await;
    let cluster = &durable.cluster;
    let script = durable.pgbench_database().await;

    let app = durable.service("bench_service").await;
    let queued = queued_before();
    if queued > 0 {
        app.queue_behind(queued, "backlog", "queued").await;
        sqlx::query("VACUUM ANALYZE copy_jobs").execute(&app.pool).await.unwrap();
        println!("{queued} copies queued before the first call");
    }
    let seconds = seconds();
    // The last two columns: pgbench again, its commits not waiting for the disk. Where it is barely faster, the
    // flushes are not what limits pgbench, the CPU is, and committing many calls per flush cannot gain much on it.
    println!(
        "| clients | CopyModelVersion acks/s | p50 | p99 | pgbench tps (job + history + audit) | ratio \
         | pgbench tps, commits not waiting for the flush | no-wait ÷ durable pgbench |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut most: f64 = 0.0;
    for (round, clients) in clients().into_iter().enumerate() {
        let tps = pgbench(cluster, "bench_pgbench", clients, seconds, &script);
        let no_wait = pgbench_with(cluster, "bench_pgbench", (clients, seconds), &script, Flush::DoNotWait);
        let measured = copies(&app, std::slice::from_ref(&app.endpoint), clients, seconds, round).await;
        most = most.max(measured.acks_per_second);
        println!(
            "| {clients} | {:.0} | {:.1} ms | {:.1} ms | {tps:.0} | {:.2} | {no_wait:.0} | {:.2} |",
            measured.acks_per_second,
            measured.p50.as_secs_f64() * 1000.0,
            measured.p99.as_secs_f64() * 1000.0,
            measured.acks_per_second / tps,
            no_wait / tps
        );
    }
    // P2: the latency at half the most acks per second measured above, offered at a steady pace, after a second of
    // the same pace unmeasured (64 new connections' first calls); pgbench at the same rate beside it.
    let _warm_up = paced(&app, most / 2.0, 64, 1, "warm-up").await;
    let half = paced(&app, most / 2.0, 64, seconds, "paced").await;
    let logs = durable.dir.join("pgbench-paced");
    let (pg_p50, pg_p99) = pgbench_paced(cluster, "bench_pgbench", (most / 2.0, 64, seconds), &script, &logs);
    println!(
        "at half the measured maximum ({:.0} calls/s offered by 64 paced callers): {:.0} acks/s, p50 {:.1} ms, p99 {:.1} ms; \
         pgbench at the same rate: p50 {:.1} ms, p99 {:.1} ms",
        most / 2.0,
        half.acks_per_second,
        half.p50.as_secs_f64() * 1000.0,
        half.p99.as_secs_f64() * 1000.0,
        pg_p50.as_secs_f64() * 1000.0,
        pg_p99.as_secs_f64() * 1000.0
    );
    let (jobs, audited): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM copy_jobs WHERE principal <> 'backlog'),
                (SELECT count(*) FROM audit_log WHERE rpc = 'CopyModelVersion')",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    // Every acknowledged copy was durable with its audit row when it was acknowledged.
    assert_eq!(jobs, audited);
    // A batch's rows share one time (read once under the chain's lock): rows per distinct time is calls per commit.
    let (rows, commits): (i64, i64) = sqlx::query_as("SELECT count(*), count(DISTINCT occurred_at) FROM audit_log")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    println!("audit rows {rows} in {commits} commits: {:.1} calls per commit", rows as f64 / commits as f64);
    app.stop().await;
    durable.remove();
}

/// One replica against three on the same database, the same callers spread over them, in one run: every replica has
/// a writer, and their batches take turns on the one audit chain.
///
/// `cargo test --release --test service -- --ignored --nocapture three_replicas_benchmark` (callers:
/// `MODELCOPY_BENCH_CLIENTS`, default `1,8,32`; seconds: `MODELCOPY_BENCH_SECONDS`). The replicas run in this
/// process, on its runtime (two worker threads), each with its own pools and writer thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark (about a minute); run explicitly, in release"]
async fn three_replicas_benchmark() {
    let durable = Durable::start().await;
    let app = durable.service("bench_fleet").await;
    let mut replicas = Vec::new();
    for _ in 0..2 {
        replicas.push(modelcopy::startup::Application::start(app.settings.clone()).await.expect("a replica starts"));
    }
    let mut fleet = vec![app.endpoint.clone()];
    fleet.extend(replicas.iter().map(|replica| replica.endpoint()));
    let seconds = seconds();
    println!("| clients | one replica: acks/s | p99 | three replicas: acks/s | p99 | three ÷ one |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for (round, clients) in clients().into_iter().enumerate() {
        let one = copies(&app, std::slice::from_ref(&app.endpoint), clients, seconds, 2 * round).await;
        let three = copies(&app, &fleet, clients, seconds, 2 * round + 1).await;
        println!(
            "| {clients} | {:.0} | {:.1} ms | {:.0} | {:.1} ms | {:.2} |",
            one.acks_per_second,
            one.p99.as_secs_f64() * 1000.0,
            three.acks_per_second,
            three.p99.as_secs_f64() * 1000.0,
            three.acks_per_second / one.acks_per_second
        );
    }
    let verdict = modelcopy::audit::verify(&modelcopy::store::Store::from_pool(app.pool.clone())).await.unwrap();
    assert!(matches!(verdict, modelcopy::audit::Verdict::Intact { .. }), "{verdict:?}");
    for replica in replicas {
        replica.stop().await.unwrap();
    }
    app.stop().await;
    durable.remove();
}

/// The issue's own method beside the one above: h2load (C, one stream per connection, `-c N -m 1`) sends
/// CopyModelVersion back to back, so the load generator costs the shared machine far less than a Rust gRPC client
/// does. Its requests carry no idempotency token (h2load sends one body), so each is a new copy. The run checks that
/// every answer h2load counts is a copy created (it drops the calls in flight at its deadline, which may commit).
///
/// `cargo test --release --test service -- --ignored --nocapture --exact accept_bench::accept_h2load_benchmark`
/// (needs h2load; `MODELCOPY_BENCH_CLIENTS`, `MODELCOPY_BENCH_SECONDS` as above).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark (about a minute); run explicitly, in release, with h2load installed"]
async fn accept_h2load_benchmark() {
    let durable = Durable::start().await;
    let cluster = &durable.cluster;
    let script = durable.pgbench_database().await;
    let app = durable.service("bench_h2load").await;
    let body = durable.dir.join("copy.bin");
    let mut request = app.copy_request("h2load");
    request.idempotency_token.clear();
    std::fs::write(&body, grpc_frame(&request)).unwrap();
    let url = format!("{}/modelcopy.v1.ModelCopy/CopyModelVersion", app.endpoint);
    let seconds = seconds();
    println!("| clients | CopyModelVersion acks/s (h2load) | mean latency | pgbench tps | ratio |");
    println!("|---:|---:|---:|---:|---:|");
    for clients in clients() {
        let tps = pgbench(cluster, "bench_pgbench", clients, seconds, &script);
        let before = app.job_count().await;
        let mut h2load = Command::new("h2load");
        h2load
            .args(["-c", &clients.to_string(), "-m", "1", "-D", &seconds.to_string()])
            .args(["-H", "content-type: application/grpc", "-H", "te: trailers", "-H", "x-modelcopy-principal: bench"])
            .arg("-d")
            .arg(&body)
            .arg(&url);
        // Waited for off the runtime: the service answers on the runtime's two worker threads meanwhile.
        let output = tokio::task::spawn_blocking(move || h2load.output()).await.unwrap().expect("h2load runs");
        let text = String::from_utf8_lossy(&output.stdout);
        let created = app.job_count().await - before;
        let answered = h2load_answered(&text);
        // At the deadline h2load drops the calls in flight (at most one per connection), which may have committed.
        assert!(
            answered <= created && created <= answered + clients as i64,
            "every answer is a copy created: {answered} answered, {created} created: {text}"
        );
        let mean = text
            .lines()
            .find(|line| line.starts_with("time for request:"))
            .and_then(|line| line.split_whitespace().nth(5))
            .unwrap_or("?");
        let acks = created as f64 / seconds as f64;
        println!("| {clients} | {acks:.0} | {mean} | {tps:.0} | {:.2} |", acks / tps);
    }
    app.stop().await;
    durable.remove();
}

pub fn one_principal_at_full_speed() -> AdmissionSettings {
    AdmissionSettings {
        max_concurrent_calls: 100_000,
        per_principal_per_second: AdmissionSettings::MAX_RATE,
        per_principal_burst: 1_000_000,
        ..AdmissionSettings::default()
    }
}
