//! The status-calls benchmark (issue 13, goal P4): Rekognition calls per completed copy, the service against a
//! naive boto3 client (`tests/boto3/naive_copier.py`), in one run, on one simulator:
//! `cargo test --release --test fleet -- --ignored --nocapture status_calls_benchmark`
//! (`MODELCOPY_BENCH_COPIES=60`, `MODELCOPY_BENCH_DESCRIBE_PER_SECOND=5`, `MODELCOPY_BENCH_NAIVE=sequential` or
//! `per-copy`, the naive client's way of waiting; the Python is the repo's `.venv`, which `deploy/test.sh` makes).
//!
//! Each side copies the same number of models into a project of its own destination account; both accounts have
//! the same quotas in the simulator (5 CopyProjectVersion/s, 5 DescribeProjectVersions/s, 100 copies in progress)
//! and each copy takes 30–45 s (uniform). The service (one `modelcopy serve`, its own durable PostgreSQL cluster)
//! has the same limits and a 5 s status poll; the naive client starts every copy, then describes each one every
//! 5 s until it ends. Both run at the same time. The calls are the simulator's count per account (every attempt,
//! throttled ones included).

use std::time::Duration;

use modelcopy::simulator::DurationDistribution;

use crate::fleet::{Fleet, FleetOptions, Limits};
use crate::support::{self, DEST_PROJECT, REGION, SOURCE_ACCOUNT, SOURCE_PROJECT};

const SERVICE_ACCOUNT: &str = "222222222222";
const NAIVE_ACCOUNT: &str = "333333333333";

fn copies() -> usize {
    std::env::var("MODELCOPY_BENCH_COPIES").map(|n| n.parse().expect("a number of copies")).unwrap_or(60)
}

/// Both accounts' DescribeProjectVersions quota (and the service's limit).
fn describe_per_second() -> f64 {
    std::env::var("MODELCOPY_BENCH_DESCRIBE_PER_SECOND").map(|n| n.parse().expect("calls per second")).unwrap_or(5.0)
}

/// How the naive client waits: `sequential` (one loop) or `per-copy` (a thread a copy); see its docstring.
fn naive_mode() -> String {
    std::env::var("MODELCOPY_BENCH_NAIVE").unwrap_or_else(|_| "sequential".into())
}

/// One side's calls, by operation.
#[derive(Debug, Default)]
struct Calls {
    copy: u64,
    describe: u64,
    refused: u64,
}

impl Calls {
    fn of(fleet: &Fleet, account: &str) -> Calls {
        let mut calls = Calls::default();
        for stat in fleet.stats().iter().filter(|stat| stat.account_id == account) {
            match stat.operation.as_str() {
                "CopyProjectVersion" => calls.copy += stat.calls,
                "DescribeProjectVersions" => calls.describe += stat.calls,
                _ => {}
            }
            calls.refused += stat.throughput_exceeded + stat.limit_exceeded;
        }
        calls
    }

    fn total(&self) -> u64 {
        self.copy + self.describe
    }

    /// The table's row for `client`, whose `completed` copies took `took`.
    fn row(&self, client: &str, completed: u64, took: f64) -> String {
        let per_copy = |calls: u64| calls as f64 / completed as f64;
        format!(
            "| {client} | {completed} | {} | {} | {} | {:.2} | {:.3} | {took:.0} s |",
            self.copy,
            self.describe,
            self.refused,
            per_copy(self.total()),
            per_copy(self.describe)
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark (about two minutes); run explicitly, in release"]
async fn status_calls_benchmark() {
    let _alone = crate::ONE_FLEET_AT_A_TIME.lock().await;
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
    assert!(
        std::path::Path::new(python).exists(),
        "no {python}: run deploy/test.sh once, or python3 -m venv .venv && .venv/bin/pip install boto3"
    );
    let n = copies();
    let describe = describe_per_second();
    let limits =
        Limits { copy_per_second: 5.0, describe_per_second: describe, max_in_progress: 100, pacing_margin: 0.02 };
    let fleet = Fleet::start(FleetOptions {
        replicas: 1,
        faults: true,
        destinations: vec![SERVICE_ACCOUNT.to_owned(), NAIVE_ACCOUNT.to_owned()],
        limits,
        copy_duration: Duration::from_secs(30),
        copy_durations: Some(DurationDistribution::Uniform { min_millis: 30_000, max_millis: 45_000 }),
        status_poll_ms: 5_000,
        ..crate::options(1, 0.02)
    })
    .await;
    let seed = &fleet.seed;
    let naive = seed.accounts.iter().find(|account| account.account_id == NAIVE_ACCOUNT).unwrap();
    let naive = tokio::process::Command::new(python)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/boto3/naive_copier.py"))
        .args(["--endpoint", &fleet.sim.endpoint_url(), "--region", REGION])
        .args(["--access-key", &naive.access_key_id, "--secret-key", &support::account_secret(NAIVE_ACCOUNT)])
        .args(["--source-project", &seed.project_arn(SOURCE_ACCOUNT, REGION, SOURCE_PROJECT).unwrap()])
        .args(["--source-version", &seed.version_arn(SOURCE_ACCOUNT, REGION, SOURCE_PROJECT, "v1").unwrap()])
        .args(["--destination-project", &seed.project_arn(NAIVE_ACCOUNT, REGION, DEST_PROJECT).unwrap()])
        .args(["--prefix", "naive", "--copies", &n.to_string(), "--poll", "5", "--mode", &naive_mode()])
        .kill_on_drop(true)
        .output();
    let naive = tokio::spawn(naive);

    let mut client = fleet.client(0, "platform").await;
    for k in 0..n {
        let request = fleet.request(SERVICE_ACCOUNT, &format!("service-{k}"));
        client.copy_model_version(request).await.expect("queued");
    }
    let took = fleet.wait_all_ended(Duration::from_secs(600)).await;
    let naive = naive.await.unwrap().expect("the naive client runs");
    assert!(naive.status.success(), "{}", String::from_utf8_lossy(&naive.stderr));
    let report: serde_json::Value = serde_json::from_slice(&naive.stdout).expect("the naive client's report");

    let completed = fleet.states().await.get("SUCCEEDED").copied().unwrap_or(0) as u64;
    let naive_completed = report["completed"].as_u64().unwrap();
    assert_eq!((completed, naive_completed), (n as u64, n as u64), "every copy completed on both sides: {report}");
    let (service, peer) = (Calls::of(&fleet, SERVICE_ACCOUNT), Calls::of(&fleet, NAIVE_ACCOUNT));
    println!("status calls: {n} copies of 30–45 s a side, 5 s status poll; quotas 5 copy/s, {describe} describe/s");
    println!("| client | copies completed | CopyProjectVersion | DescribeProjectVersions | refused | calls per copy | status calls per copy | took |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    println!("{}", service.row("service", completed, took.as_secs_f64()));
    let peer_name = format!("naive boto3 ({})", naive_mode());
    println!("{}", peer.row(&peer_name, naive_completed, report["seconds"].as_f64().unwrap_or_default()));
    let ratio = (service.total() as f64 / completed as f64) / (peer.total() as f64 / naive_completed as f64);
    println!("ratio (service ÷ naive, calls per completed copy): {ratio:.3}");
}
