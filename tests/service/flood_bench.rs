//! A flood of calls without credentials against one replica, and what it does to a legitimate caller. The flood
//! comes from one address: beyond that address's limit for unauthenticated calls (`[admission]`, 5 a second and a
//! burst of 20 by default) its calls are shed before the audit write; those within it are refused and audited, and
//! share the writer with the caller's copies.
//!
//! `cargo test --release --test service -- --ignored --nocapture flood_benchmark` (seconds per phase:
//! `MODELCOPY_BENCH_SECONDS`, default 10; the flood's target rate: `MODELCOPY_FLOOD_RPS`, default 10000). The flood
//! is h2load (Debian's `nghttp2-client`, installed by `deploy/setup-debian.sh`), sending GetCopy with no
//! credentials over 10 connections; the caller is one gRPC client asking for copies back to back, first alone,
//! then under the flood. Both, the service and PostgreSQL (fsync on) share the machine.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use modelcopy::proto;

use crate::accept_bench::{ask, grpc_frame, h2load_answered, Durable, Measured};
use crate::helpers::TestApp;

fn seconds() -> u64 {
    std::env::var("MODELCOPY_BENCH_SECONDS").ok().and_then(|v| v.parse().ok()).filter(|n| *n > 0).unwrap_or(10)
}

fn flood_rps() -> u64 {
    std::env::var("MODELCOPY_FLOOD_RPS").ok().and_then(|v| v.parse().ok()).filter(|n| *n > 0).unwrap_or(10_000)
}

/// One caller asking for copies back to back for `seconds`.
async fn caller(app: &TestApp, seconds: u64, phase: &str) -> Measured {
    let mut client = app.client("bench").await;
    let template = app.copy_request("bench");
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut latencies = Vec::new();
    for i in 0.. {
        if Instant::now() >= deadline {
            break;
        }
        latencies.push(ask(&mut client, &template, format!("{phase}-{i}")).await);
    }
    Measured::of(latencies, started)
}

async fn refused_rows(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE rpc = 'GetCopy' AND grpc_code = 'Unauthenticated'")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark (about half a minute); run explicitly, in release, with h2load installed"]
async fn flood_benchmark() {
    let durable = Durable::start().await;
    let app = durable.service("bench_flood").await;
    let seconds = seconds();
    let alone = caller(&app, seconds, "alone").await;

    let body = crate::support::scratch_dir("modelcopy-flood").join("get-copy.bin");
    std::fs::write(&body, grpc_frame(&proto::GetCopyRequest { copy_id: uuid::Uuid::new_v4().to_string() })).unwrap();
    let (clients, rps) = (10u64, flood_rps());
    let url = format!("{}/modelcopy.v1.ModelCopy/GetCopy", app.endpoint);
    let before = refused_rows(&app).await;
    let flood = Command::new("h2load")
        .args(["-c", &clients.to_string(), "-m", "16", "--rps", &(rps / clients).to_string()])
        .args(["-D", &(seconds + 1).to_string(), "-H", "content-type: application/grpc", "-H", "te: trailers"])
        .arg("-d")
        .arg(&body)
        .arg(&url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("h2load runs (apt-get install nghttp2-client)");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let flooded = caller(&app, seconds, "flooded").await;
    let output = tokio::task::spawn_blocking(move || flood.wait_with_output()).await.unwrap().unwrap();
    let refused = refused_rows(&app).await - before;
    let text = String::from_utf8_lossy(&output.stdout);
    let summary = text.lines().find(|line| line.starts_with("finished in")).unwrap_or("h2load printed no summary");
    println!("flood: {summary}");
    println!("refused calls audited during the flood: {refused}");
    println!("| caller | calls | p50 | p99 |");
    println!("|---|---:|---:|---:|");
    for (name, latency) in [("alone", &alone), ("under the flood", &flooded)] {
        println!(
            "| {name} | {} | {:.1} ms | {:.1} ms |",
            latency.calls,
            latency.p50.as_secs_f64() * 1000.0,
            latency.p99.as_secs_f64() * 1000.0
        );
    }
    println!("p99 under the flood / p99 alone: {:.2}", flooded.p99.as_secs_f64() / alone.p99.as_secs_f64());
    // The flood was shed: no more refusals audited than the address's limit lets through (its burst, and its rate
    // over the flood's time), the rest answered RESOURCE_EXHAUSTED without a row.
    let answered = h2load_answered(&text);
    let limits = &app.settings.admission;
    let let_through = f64::from(limits.unauthenticated_per_peer_burst)
        + limits.unauthenticated_per_peer_per_second * (seconds + 2) as f64;
    println!("answered {answered}: {refused} refused and audited, {} shed", answered - refused);
    assert!(answered > 0, "the flood reached the service: {text}");
    assert!(refused as f64 <= let_through, "{refused} refusals audited; the limit lets {let_through} through");
    app.stop().await;
    durable.remove();
}
