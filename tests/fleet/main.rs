//! Several `modelcopy serve` processes on one PostgreSQL, against a simulator enforcing per-account quotas:
//! the fleet stays inside every quota, survives SIGKILLs without losing or doubling a copy, and is fair.

#[path = "../support/mod.rs"]
mod support;

mod fleet;
mod status_calls;

use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

use fleet::{Fleet, FleetOptions, Limits};

const DESTINATIONS: [&str; 3] = ["222222222222", "333333333333", "444444444444"];

/// One fleet at a time: each test measures pacing to tens of milliseconds, which two fleets sharing two cores
/// would disturb.
static ONE_FLEET_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn options(replicas: usize, margin: f64) -> FleetOptions {
    FleetOptions {
        replicas,
        faults: false,
        destinations: DESTINATIONS.iter().map(|d| d.to_string()).collect(),
        limits: Limits { copy_per_second: 2.0, describe_per_second: 5.0, max_in_progress: 10, pacing_margin: margin },
        copy_duration: Duration::from_secs(2),
        copy_durations: None,
        status_poll_ms: 500,
        env: Vec::new(),
        keep_logs: false,
    }
}

/// Queues `per_account` copies into each destination account, spread over the live replicas.
async fn queue_copies(fleet: &Fleet, per_account: usize, principal: &str) -> usize {
    let live = fleet.live();
    let mut clients = Vec::new();
    for index in &live {
        clients.push(fleet.client(*index, principal).await);
    }
    let mut queued = 0;
    for i in 0..per_account {
        for (a, destination) in DESTINATIONS.iter().enumerate() {
            let n = clients.len();
            let client = &mut clients[(i + a) % n];
            let request = fleet.request(destination, &format!("{principal}-{destination}-{i}"));
            client.copy_model_version(request).await.expect("queued");
            queued += 1;
        }
    }
    queued
}

/// The figures: the fleet's makespan over its lower bound (the slowest account's jobs at its copy rate,
/// plus one copy's duration), and Rekognition calls per completed copy.
async fn report(fleet: &Fleet, label: &str, per_account: usize) {
    let (first, last): (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) =
        sqlx::query_as("SELECT min(created_at), max(completed_at) FROM copy_jobs")
            .fetch_one(&fleet.pool)
            .await
            .unwrap();
    let makespan = (last - first).to_std().unwrap();
    let limits = fleet.options.limits;
    let bound = Duration::from_secs_f64(per_account as f64 / limits.copy_per_second) + fleet.options.copy_duration;
    let calls: u64 = fleet.stats().iter().map(|s| s.calls).sum();
    let completed = fleet.states().await.get("SUCCEEDED").copied().unwrap_or(0);
    let ratio = makespan.as_secs_f64() / bound.as_secs_f64();
    println!(
        "{label}: makespan {:.1} s, lower bound {:.1} s, ratio {ratio:.3}; {calls} Rekognition calls for {completed} copies = {:.2} per copy",
        makespan.as_secs_f64(),
        bound.as_secs_f64(),
        calls as f64 / completed.max(1) as f64
    );
}

/// With both cores kept busy beside the fleet: its calls are paced by their answers, so a scheduler that delays
/// a call cannot bring two into one quota period (before, pacing by send time, such runs saw three copies within
/// 0.998 s against a quota of 2/s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_copy_300_models_inside_every_quota_exactly_once_each() {
    let _alone = ONE_FLEET_AT_A_TIME.lock().await;
    let fleet = Fleet::start(options(3, 0.05)).await;
    let _busy = fleet::CpuBurner::on_every_core();
    let queued = queue_copies(&fleet, 100, "team-a").await;
    assert_eq!(queued, 300);
    fleet.wait_all_ended(Duration::from_secs(240)).await;

    assert_eq!(fleet.states().await.get("SUCCEEDED").copied(), Some(300), "{:?}", fleet.states().await);
    fleet.assert_within_quotas();
    let made = fleet.copies_made();
    assert_eq!(made.len(), 300);
    assert!(made.values().all(|n| *n == 1), "exactly one CopyProjectVersion per job");
    report(&fleet, "3 replicas, 300 copies", 100).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_killed_at_random_lose_nothing_and_copy_nothing_twice() {
    let _alone = ONE_FLEET_AT_A_TIME.lock().await;
    let mut fleet = Fleet::start(options(3, 0.05)).await;
    let queued = queue_copies(&fleet, 40, "team-k").await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(20261123);
    let started = Instant::now();
    let mut kills = 0;
    // At least five SIGKILLs at random moments of the run, each victim restarted a little later.
    while kills < 5 || started.elapsed() < Duration::from_secs(20) {
        assert!(started.elapsed() < Duration::from_secs(120), "kill loop is bounded");
        tokio::time::sleep(Duration::from_millis(rng.random_range(500..3000))).await;
        let victim = rng.random_range(0..3);
        fleet.kill(victim);
        kills += 1;
        tokio::time::sleep(Duration::from_millis(rng.random_range(200..1500))).await;
        fleet.restart(victim);
    }
    fleet.wait_all_ended(Duration::from_secs(240)).await;

    let states = fleet.states().await;
    assert_eq!(states.values().sum::<i64>(), queued as i64, "no job lost: {states:?}");
    assert_eq!(states.get("SUCCEEDED").copied(), Some(queued as i64), "every job ended well: {states:?}");
    let made = fleet.copies_made();
    assert_eq!(made.len(), queued);
    assert!(made.values().all(|n| *n == 1), "never two copies: {made:?}");
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT copy_id) FROM audit_log WHERE rpc = 'CopyModelVersion' AND decision = 'ALLOWED'",
    )
    .fetch_one(&fleet.pool)
    .await
    .unwrap();
    assert_eq!(audited, queued as i64, "every acknowledged request has its audit row");
    // Three writers, killed at random, each committing batches on the one chain: it is intact.
    let verdict = modelcopy::audit::verify(&modelcopy::store::Store::from_pool(fleet.pool.clone())).await.unwrap();
    assert!(matches!(verdict, modelcopy::audit::Verdict::Intact { .. }), "{verdict}");
    fleet.assert_within_quotas();
    println!("{kills} kills");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_copy_is_not_starved_by_another_team_s_batch() {
    let mut options = options(2, 0.05);
    options.destinations.truncate(1);
    let destination = options.destinations[0].clone();
    let limits = options.limits;
    let copy_duration = options.copy_duration;
    let status_poll = Duration::from_millis(options.status_poll_ms);
    let _alone = ONE_FLEET_AT_A_TIME.lock().await;
    let fleet = Fleet::start(options).await;

    let mut batch = fleet.client(0, "team-batch").await;
    for i in 0..200 {
        batch.copy_model_version(fleet.request(&destination, &format!("batch-{i}"))).await.unwrap();
    }
    let mut single = fleet.client(1, "team-single").await;
    let copy =
        single.copy_model_version(fleet.request(&destination, "single")).await.unwrap().into_inner().copy.unwrap();
    let queued_at = Instant::now();

    // The bound, from the limits: a place among the copies in progress frees up within one copy's duration plus
    // a status poll; the single copy then waits at most two pacing periods for its turn (round robin), takes its
    // own duration, and is seen done at the next status poll. Two seconds of slack cover scheduling.
    let period = Duration::from_secs_f64((1.0 + limits.pacing_margin) / limits.copy_per_second);
    let bound =
        (copy_duration + status_poll + period) + 2 * period + (copy_duration + status_poll) + Duration::from_secs(2);
    let batch_alone = Duration::from_secs_f64(200.0 / limits.copy_per_second);
    let mut client = single.clone();
    loop {
        let now = client
            .get_copy(modelcopy::proto::GetCopyRequest { copy_id: copy.copy_id.clone() })
            .await
            .unwrap()
            .into_inner();
        if now.state() == modelcopy::proto::CopyState::Succeeded {
            break;
        }
        assert!(
            queued_at.elapsed() < bound,
            "the single copy took longer than {bound:?} (the batch alone needs {batch_alone:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("single copy done in {:?} (bound {bound:?}; the batch needs {batch_alone:?})", queued_at.elapsed());
    fleet.assert_within_quotas();
}

/// The benchmark: `cargo test --release --test fleet -- --ignored --nocapture makespan`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark (about a minute); run explicitly"]
async fn makespan_benchmark() {
    let mut options = options(3, 0.02);
    options.status_poll_ms = 250;
    let _alone = ONE_FLEET_AT_A_TIME.lock().await;
    let fleet = Fleet::start(options).await;
    queue_copies(&fleet, 100, "bench").await;
    fleet.wait_all_ended(Duration::from_secs(240)).await;
    fleet.assert_within_quotas();
    // The figures are reported, not asserted: speed is measured here and written down in BENCHMARKS.md.
    report(&fleet, "benchmark: 3 replicas, 3 accounts, 300 copies", 100).await;
}

/// One event as a watcher received it: (connection, sequence, snapshot, previous state, state).
type Received = (u32, u64, bool, i32, i32);

/// What one watcher saw of each copy, connection by connection.
#[derive(Default)]
struct Seen {
    /// Per copy, in the order received.
    events: std::collections::BTreeMap<String, Vec<Received>>,
    connections: u32,
    /// When each connection's stream opened (for a failure's story).
    opened: Vec<chrono::DateTime<chrono::Utc>>,
}

/// A filter watcher on every copy through replica `index`, that watches again whenever its stream ends with an
/// error (a restart, a partition), until `stop`.
fn watch_through(
    fleet: &Fleet,
    index: usize,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<Seen> {
    let endpoint = fleet.endpoint(index);
    tokio::spawn(async move {
        let mut seen = Seen::default();
        let request = || modelcopy::proto::WatchCopyRequest {
            target: Some(modelcopy::proto::watch_copy_request::Target::Filter(Default::default())),
            after_sequence: None,
        };
        while !*stop.borrow() {
            let mut client = support::grpc_client(&endpoint, Some("team-f")).await;
            let Ok(stream) = client.watch_copy(request()).await else {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            seen.connections += 1;
            seen.opened.push(chrono::Utc::now());
            let mut stream = stream.into_inner();
            let mut stop = stop.clone();
            loop {
                let event = tokio::select! {
                    event = stream.message() => event,
                    _ = stop.wait_for(|stop| *stop) => return seen,
                };
                let Ok(Some(event)) = event else { break };
                let copy = event.copy.as_ref().expect("a copy");
                seen.events.entry(copy.version_name.clone()).or_default().push((
                    seen.connections,
                    event.sequence,
                    event.snapshot,
                    event.previous_state,
                    copy.state,
                ));
            }
        }
        seen
    })
}

/// The lifecycle's order: a copy's state never goes back.
fn rank(state: i32) -> i32 {
    use modelcopy::proto::CopyState::*;
    match modelcopy::proto::CopyState::try_from(state).unwrap_or(Unspecified) {
        Queued => 1,
        Submitting => 2,
        Copying => 3,
        Succeeded | Failed | Cancelled => 4,
        Expired => 5,
        Unspecified => 0,
    }
}

/// The fault run: three replicas, 300 copies; PostgreSQL restarted twice (a failover to a standby, as the
/// replicas see it), and one replica's path to it black-holed for 30 s in between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_and_a_partition_lose_nothing_double_nothing_and_keep_every_quota() {
    let _alone = ONE_FLEET_AT_A_TIME.lock().await;
    let fleet = Fleet::start(FleetOptions { faults: true, ..options(3, 0.05) }).await;
    let (stop_watching, stop) = tokio::sync::watch::channel(false);
    let watchers: Vec<_> = (0..3).map(|index| watch_through(&fleet, index, stop.clone())).collect();
    let queued = queue_copies(&fleet, 100, "team-f").await;
    assert_eq!(queued, 300);

    tokio::time::sleep(Duration::from_secs(5)).await;
    fleet.restart_database().await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let proxy = fleet.proxy.as_ref().expect("the first replica's path");
    proxy.set(support::proxy::Path::BlackHole);
    tokio::time::sleep(Duration::from_secs(30)).await;
    proxy.set(support::proxy::Path::Pass);
    tokio::time::sleep(Duration::from_secs(5)).await;
    fleet.restart_database().await;
    fleet.wait_all_ended(Duration::from_secs(300)).await;

    let states = fleet.states().await;
    assert_eq!(states.values().sum::<i64>(), 300, "no copy lost: {states:?}");
    assert_eq!(states.get("SUCCEEDED").copied(), Some(300), "every copy ended well: {states:?}");
    let made = fleet.copies_made();
    assert_eq!(made.len(), 300);
    assert!(made.values().all(|n| *n == 1), "never two copies: {made:?}");
    fleet.assert_within_quotas();
    let store = modelcopy::store::Store::from_pool(fleet.pool.clone());
    let verdict = modelcopy::audit::verify(&store).await.unwrap();
    assert!(matches!(verdict, modelcopy::audit::Verdict::Intact { .. }), "{verdict}");

    stop_watching.send_replace(true);
    for (index, watcher) in watchers.into_iter().enumerate() {
        let seen = watcher.await.unwrap();
        // What the database holds of a copy's changes, to tell what a watcher missed.
        let history = |copy: &str| {
            let (pool, copy) = (fleet.pool.clone(), copy.to_owned());
            async move {
                let rows: Vec<(i64, Option<String>, String, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
                    "SELECT e.seq, e.from_state::text, e.to_state::text, e.occurred_at FROM copy_events e
                       JOIN copy_jobs j ON j.id = e.copy_id WHERE j.version_name = $1 ORDER BY e.seq",
                )
                .bind(copy)
                .fetch_all(&pool)
                .await
                .unwrap();
                rows
            }
        };
        let mut broken = Vec::new();
        for (copy, events) in &seen.events {
            let missed = events.windows(2).any(|pair| {
                let ((conn_a, _, _, _, state_a), (conn_b, _, snapshot_b, previous_b, _)) = (pair[0], pair[1]);
                conn_a == conn_b && !snapshot_b && previous_b != state_a
            });
            if missed {
                broken.push(format!("{copy}: seen {events:?}; stored {:?}", history(copy).await));
            }
        }
        // A change missed within a stream was seen here about one run in five, until the listener stopped
        // replacing its lost session by itself (`store::notifications`; `tests/service/listener.rs`).
        assert!(
            broken.is_empty(),
            "watcher {index} (streams opened {:?}) missed changes:\n{}",
            seen.opened,
            broken.join("\n")
        );
        if index == 0 {
            // Its replica lost the database for 30 s: its watcher was told, and watched again after.
            assert!(seen.connections >= 2, "watcher 0 was told to reconnect: {} connections", seen.connections);
        }
        let mut ended = 0;
        for (copy, events) in &seen.events {
            for pair in events.windows(2) {
                let ((conn_a, seq_a, _, _, state_a), (conn_b, seq_b, snapshot_b, _, state_b)) = (pair[0], pair[1]);
                assert!(seq_b >= seq_a, "watcher {index}, {copy}: sequence went back: {events:?}");
                assert!(rank(state_b) >= rank(state_a), "watcher {index}, {copy}: state went back: {events:?}");
                if conn_a == conn_b && !snapshot_b {
                    // Within one stream a change is sent once (a change missed is reported above).
                    assert!(seq_b > seq_a, "watcher {index}, {copy}: a change twice: {events:?}");
                }
            }
            ended += events.last().is_some_and(|event| rank(event.4) == 4) as usize;
        }
        println!(
            "watcher {index}: {} connections, {} copies seen, {ended} seen ending",
            seen.connections,
            seen.events.len()
        );
        assert!(ended > 0, "watcher {index} saw copies end");
        if seen.connections == 1 {
            // One stream through both restarts (its replica listened again at once and had it catch up): it saw
            // every copy from its creation to its end, and every change in between (checked above).
            assert_eq!((seen.events.len(), ended), (300, 300), "watcher {index} saw every copy end");
        }
    }
    report(&fleet, "3 replicas, 300 copies, 2 restarts and a 30 s partition", 100).await;
}

/// One scrape of `/metrics` at `addr` (plain HTTP/1.1): the body.
async fn scrape(addr: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("the metrics port answers");
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: text/plain; version=0.0.4"), "{head}");
    body.to_owned()
}

/// A sample of Prometheus' text format: its name, labels and value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: std::collections::BTreeMap<String, String>,
    value: f64,
}

/// Parses the text format strictly: every line a comment (`# HELP`, `# TYPE`) or a sample whose family was typed.
fn parse_exposition(text: &str) -> Vec<Sample> {
    let mut typed = std::collections::BTreeSet::new();
    let mut samples = Vec::new();
    for line in text.lines().filter(|line| !line.is_empty()) {
        if let Some(comment) = line.strip_prefix("# ") {
            let mut words = comment.splitn(3, ' ');
            let (kind, name) = (words.next().unwrap(), words.next().expect("a family name"));
            assert!(kind == "HELP" || kind == "TYPE", "{line}");
            if kind == "TYPE" {
                let family_type = words.next().expect("a type");
                assert!(["counter", "gauge", "histogram", "summary", "untyped"].contains(&family_type), "{line}");
                typed.insert(name.to_owned());
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("not a number: {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, labels)) => (name, labels.strip_suffix('}').unwrap_or_else(|| panic!("{line}"))),
            None => (series, ""),
        };
        let mut parsed = std::collections::BTreeMap::new();
        for pair in labels.split("\",").filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once("=\"").unwrap_or_else(|| panic!("a label: {line}"));
            parsed.insert(key.to_owned(), value.trim_end_matches('"').to_owned());
        }
        let family = ["_bucket", "_sum", "_count", "_total"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix).filter(|family| typed.contains(*family)))
            .unwrap_or(name);
        assert!(typed.contains(family) || typed.contains(name), "a sample of an untyped family: {line}");
        samples.push(Sample { name: name.to_owned(), labels: parsed, value });
    }
    samples
}

/// The Prometheus endpoint of a replica (`[telemetry] metrics_listen_addr`): its text parses, its per-account queue
/// gauge equals the copies the database holds queued (dispatch is off, so they stay so), and the calls that queued
/// them are counted with their durations, as are the group commits that stored them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prometheus_endpoint_reports_each_accounts_queue_as_the_database_has_it() {
    let _alone = ONE_FLEET_AT_A_TIME.lock().await;
    let env = vec![
        ("MODELCOPY_DISPATCH__ENABLED", "false".to_owned()),
        ("MODELCOPY_TELEMETRY__METRICS_LISTEN_ADDR", "127.0.0.1:0".to_owned()),
    ];
    let fleet = Fleet::start(FleetOptions { env, ..options(1, 0.05) }).await;
    let addr = fleet.metrics_addr(0).expect("the replica serves /metrics");
    let queued = queue_copies(&fleet, 4, "team-m").await;
    assert_eq!(queued, 12);
    let in_database: Vec<(String, i64)> = sqlx::query_as(
        "SELECT destination_account, count(*) FROM copy_jobs WHERE state = 'QUEUED' GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(&fleet.pool)
    .await
    .unwrap();
    assert_eq!(in_database.len(), DESTINATIONS.len());

    // The gauges are read from the database every couple of seconds: ask until they show the queue (bounded).
    let mut samples = Vec::new();
    for _ in 0..50 {
        samples = parse_exposition(&scrape(&addr).await);
        let depth = |account: &str| {
            samples
                .iter()
                .find(|s| {
                    s.name == "modelcopy_queue_depth" && s.labels.get("account").map(String::as_str) == Some(account)
                })
                .map(|s| s.value)
        };
        if in_database.iter().all(|(account, count)| depth(account) == Some(*count as f64)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for (account, count) in &in_database {
        let depth = samples
            .iter()
            .find(|s| s.name == "modelcopy_queue_depth" && s.labels.get("account") == Some(account))
            .unwrap_or_else(|| panic!("no queue depth for {account} in {samples:?}"));
        assert_eq!(depth.value, *count as f64, "{account}");
        let oldest = samples
            .iter()
            .find(|s| s.name == "modelcopy_queue_oldest_age_seconds" && s.labels.get("account") == Some(account))
            .expect("the oldest queued copy's age");
        assert!(oldest.value > 0.0 && oldest.value < 600.0, "{oldest:?}");
    }
    let calls = samples
        .iter()
        .find(|s| {
            s.name == "rpc_server_call_duration_seconds_count"
                && s.labels.get("rpc_method").map(String::as_str) == Some("CopyModelVersion")
                && s.labels.get("rpc_grpc_status_code").map(String::as_str) == Some("0")
        })
        .unwrap_or_else(|| panic!("no CopyModelVersion durations in {samples:?}"));
    assert_eq!(calls.value, 12.0, "every call that queued a copy, counted once");
    let commits = samples.iter().find(|s| s.name == "modelcopy_audit_commit_size_sum");
    assert!(commits.is_some_and(|s| s.value >= 12.0), "the group commits carried the 12 calls' writes: {commits:?}");
}

/// Health as Kubernetes' probes read it on the plaintext health port: readiness NOT_SERVING while the replica's
/// PostgreSQL is stopped and SERVING again once it has started; liveness SERVING throughout (a restart of the
/// replica would not bring PostgreSQL back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_postgresql_being_stopped_and_started_and_liveness_stays() {
    use support::health::{self, ServingStatus};

    let _alone = ONE_FLEET_AT_A_TIME.lock().await;
    let env = vec![
        ("MODELCOPY_HEALTH_LISTEN_ADDR", "127.0.0.1:0".to_owned()),
        ("MODELCOPY_DATABASE_TIMEOUT_MS", "1000".to_owned()),
    ];
    let fleet = Fleet::start(FleetOptions { faults: true, env, ..options(1, 0.05) }).await;
    let probe = format!("http://{}", fleet.health_addr(0).expect("the replica serves health alone"));
    let (ready, alive) = (modelcopy::health::SERVICE, modelcopy::health::LIVENESS);
    assert_eq!(health::until(&probe, ready, ServingStatus::Serving).await, Some(ServingStatus::Serving));

    fleet.stop_database();
    let said = health::until(&probe, ready, ServingStatus::NotServing).await;
    assert_eq!(said, Some(ServingStatus::NotServing), "not ready without it");
    assert_eq!(health::status(&probe, alive).await, Some(ServingStatus::Serving), "but alive");

    fleet.start_database().await;
    assert_eq!(health::until(&probe, ready, ServingStatus::Serving).await, Some(ServingStatus::Serving), "ready again");
    assert_eq!(health::status(&probe, alive).await, Some(ServingStatus::Serving));
}

/// A replica logging JSON lines (`MODELCOPY_LOG_FORMAT=json`, as deploy/k8s runs it) while it traces: the line it
/// logs inside a call carries that call's trace id, the caller's (`traceparent`), and the server span's id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_log_line_inside_a_call_carries_the_calls_trace_id() {
    let _alone = ONE_FLEET_AT_A_TIME.lock().await;
    // Spans are traced while an exporter runs; a collector that is not there costs failed exports, nothing else.
    let nobody = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let env = vec![
        ("MODELCOPY_LOG_FORMAT", "json".to_owned()),
        ("MODELCOPY_DISPATCH__ENABLED", "false".to_owned()),
        ("MODELCOPY_TELEMETRY__OTLP_ENDPOINT", format!("http://{nobody}")),
    ];
    let fleet = Fleet::start(FleetOptions { env, keep_logs: true, ..options(1, 0.05) }).await;
    let mut client = fleet.client(0, "team-j").await;
    let request = fleet.request(DESTINATIONS[0], "logged");
    let copy = client.copy_model_version(request).await.expect("queued").into_inner().copy.unwrap();
    // A row the service cannot read: reading it logs an error inside the call.
    sqlx::query("UPDATE copy_jobs SET source_project_arn = 'not an ARN' WHERE id = $1::uuid")
        .bind(&copy.copy_id)
        .execute(&fleet.pool)
        .await
        .unwrap();
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let mut get = tonic::Request::new(modelcopy::proto::GetCopyRequest { copy_id: copy.copy_id.clone() });
    get.metadata_mut().insert("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01").parse().unwrap());
    let refused = client.get_copy(get).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Internal, "{refused:?}");

    let mut line = None;
    for _ in 0..50 {
        line = fleet
            .log(0)
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .find(|line| line["message"] == "stored data cannot be read");
        if line.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let line = line.unwrap_or_else(|| panic!("no such line in {}", fleet.log(0)));
    assert_eq!(line["trace_id"], trace_id.as_str(), "{line}");
    let span_id = line["span_id"].as_str().expect("the server span's id");
    assert!(span_id.len() == 16 && span_id != "00f067aa0ba902b7", "{line}");
    assert_eq!(line["level"], "ERROR");
    // Every line of the log is JSON.
    let log = fleet.log(0);
    assert!(log.lines().all(|line| serde_json::from_str::<serde_json::Value>(line).is_ok()), "{log}");
}
