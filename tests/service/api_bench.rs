//! The API's own speed: CopyModelVersion and GetCopy through every layer (server span, audit, authentication,
//! Cedar, validation) and PostgreSQL (the job, its history row and its hash-chained audit row in one transaction).
//!
//! `cargo test --release --test service -- --ignored --nocapture api_benchmark`; figures in BENCHMARKS.md.
//! Client, service, PostgreSQL (a cluster of the benchmark's own, fsync on) and simulator share the machine.

use std::time::{Duration, Instant};

use modelcopy::proto;

use crate::accept_bench::Durable;
use crate::helpers::TestApp;

const SECONDS: u64 = 10;

/// Callers at once: 32, or `MODELCOPY_BENCH_CONCURRENCY` (1 shows one call's own latency).
fn concurrency() -> usize {
    std::env::var("MODELCOPY_BENCH_CONCURRENCY").ok().and_then(|v| v.parse().ok()).filter(|n| *n > 0).unwrap_or(32)
}

/// Runs `call` from [`concurrency`] tasks for `SECONDS`; returns every latency, sorted, and the time taken.
async fn drive<F, Fut>(app: &TestApp, call: F) -> (Vec<Duration>, Duration)
where
    F: Fn(modelcopy::cli::connect::Client, usize, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let client = app.client("bench").await;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(SECONDS);
    let tasks: Vec<_> = (0..concurrency())
        .map(|task| {
            let (client, call) = (client.clone(), call.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut i = 0;
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    call(client.clone(), task, i).await;
                    latencies.push(sent.elapsed());
                    i += 1;
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let took = started.elapsed();
    all.sort();
    (all, took)
}

fn report(label: &str, latencies: &[Duration], took: Duration) {
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{label}: {} calls in {:.1} s = {:.0}/s; p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} tasks)",
        latencies.len(),
        took.as_secs_f64(),
        latencies.len() as f64 / took.as_secs_f64(),
        ms(at(0.5)),
        ms(at(0.9)),
        ms(at(0.99)),
        ms(*latencies.last().unwrap()),
        concurrency()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark; run explicitly"]
async fn api_benchmark() {
    let durable = Durable::start().await;
    let app = durable.service("bench_api").await;
    let template = app.copy_request("bench");

    let request = template.clone();
    let (latencies, took) = drive(&app, move |mut client, task, i| {
        let mut request = request.clone();
        request.version_name = format!("bench-{task}-{i}");
        request.idempotency_token = request.version_name.clone();
        async move {
            client.copy_model_version(request).await.expect("queued");
        }
    })
    .await;
    report("CopyModelVersion", &latencies, took);
    // Every acknowledged copy is a job with its audit row: nothing was answered without being written.
    assert_eq!(app.job_count().await, latencies.len() as i64);

    let copy = TestApp::submit(&mut app.client("bench").await, template.clone()).await;
    let (latencies, took) = drive(&app, move |mut client, _, _| {
        let copy_id = copy.copy_id.clone();
        async move {
            client.get_copy(proto::GetCopyRequest { copy_id }).await.expect("found");
        }
    })
    .await;
    report("GetCopy", &latencies, took);

    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log").fetch_one(&app.pool).await.unwrap();
    println!("audit rows: {rows}");
    app.stop().await;
    durable.remove();
}
