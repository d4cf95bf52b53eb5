//! A fleet of real `modelcopy serve` processes on one PostgreSQL, in front of one Rekognition simulator that
//! enforces quotas and counts every call: what the multi-replica tests and the makespan benchmark run.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use modelcopy::cli::connect::Client;
use modelcopy::proto;
use modelcopy::simulator::{
    self, DurationDistribution, OperationQuotas, OperationStats, Quotas, Rate, Seed, SimConfig, SimHandle,
};
use sqlx::PgPool;

use modelcopy::devenv::{Lifetime, LocalPostgres};

use crate::support::proxy::Proxy;
use crate::support::{self, account, account_secret, DEST_PROJECT, REGION, SOURCE_ACCOUNT, SOURCE_PROJECT};

/// The port in a `postgres://…@127.0.0.1:PORT/db` URL.
fn proxy_target_port(url: &str) -> u16 {
    let options: sqlx::postgres::PgConnectOptions = url.parse().expect("a PostgreSQL URL");
    options.get_port()
}

/// The limits every destination account gets, in the service and (as quotas) in the simulator.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub copy_per_second: f64,
    pub describe_per_second: f64,
    pub max_in_progress: u32,
    /// The service's headroom below each rate.
    pub pacing_margin: f64,
}

pub struct FleetOptions {
    pub replicas: usize,
    /// A PostgreSQL cluster of the fleet's own (fsync on, restartable) instead of the tests' shared one, with the
    /// first replica reaching it through a [`Proxy`] the test controls: for database faults.
    pub faults: bool,
    pub destinations: Vec<String>,
    pub limits: Limits,
    pub copy_duration: Duration,
    /// Copies' durations drawn from this instead of `copy_duration`, when set.
    pub copy_durations: Option<DurationDistribution>,
    pub status_poll_ms: u64,
    /// `MODELCOPY_*` settings every replica gets on top of the fleet's file.
    pub env: Vec<(&'static str, String)>,
    /// Whether each replica's log (stderr) goes to a file the test reads ([`Fleet::log`]) rather than the test's.
    pub keep_logs: bool,
}

pub struct Fleet {
    pub sim: SimHandle,
    pub pool: PgPool,
    pub seed: Seed,
    pub options: FleetOptions,
    config: PathBuf,
    replicas: Vec<Option<Replica>>,
    /// Each replica's database URL (the first one's through `proxy` when the fleet is for faults).
    database_urls: Vec<String>,
    /// The fleet's own cluster, and its directory, when it is for faults.
    cluster: Option<(LocalPostgres, PathBuf)>,
    pub proxy: Option<Proxy>,
}

pub struct Replica {
    child: Child,
    pub endpoint: String,
    /// Where it serves `/metrics`, if it does.
    pub metrics: Option<String>,
    /// Where it serves `grpc.health.v1` alone, if it does.
    pub health: Option<String>,
    /// Its log, when the fleet keeps logs.
    log: Option<PathBuf>,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        // The replicas first (their own Drop), then the fleet's own cluster, if it has one.
        self.replicas.clear();
        if let Some((cluster, dir)) = self.cluster.take() {
            let _ = cluster.stop();
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The source account's `detector` with v1, and an empty `detector-prod` in each destination account.
fn seed(destinations: &[String]) -> Seed {
    let fleet_account = |id: &str| account(id, &format!("AKIAFLEET{id}"), Some(&account_secret(id)));
    support::copy_seed(
        fleet_account(SOURCE_ACCOUNT),
        &["v1"],
        destinations.iter().map(|id| fleet_account(id)).collect(),
    )
}

impl Fleet {
    pub async fn start(options: FleetOptions) -> Fleet {
        modelcopy::telemetry::init("warn");
        let (cluster, proxy, database_url, pool) = if options.faults {
            let dir = support::scratch_dir("modelcopy-fleet-pg");
            let cluster = LocalPostgres::start(&dir, 0, Lifetime::WithThisProcess).await.expect("the fleet's cluster");
            let url = cluster.create_database("fleet").await.unwrap();
            let pool = PgPool::connect(&url).await.unwrap();
            let target = std::net::SocketAddr::from(([127, 0, 0, 1], cluster.port()));
            let proxy = Proxy::start(target).await;
            (Some((cluster, dir)), Some(proxy), url, pool)
        } else {
            let (url, pool) = support::fresh_database("fleet").await;
            (None, None, url, pool)
        };
        let database_urls: Vec<String> = (0..options.replicas)
            .map(|index| match (&proxy, index) {
                (Some(proxy), 0) => database_url.replacen(
                    &format!(":{}/", proxy_target_port(&database_url)),
                    &format!(":{}/", proxy.addr().port()),
                    1,
                ),
                _ => database_url.clone(),
            })
            .collect();
        let seed = seed(&options.destinations);
        let limits = options.limits;
        // The simulator refuses what AWS would: a call over the rate (with a burst of 2 to absorb loopback jitter;
        // the tests check the tighter "never more than the rate in any second" on the call log), or a copy
        // beyond the in-progress limit.
        let account_quotas = OperationQuotas {
            rate: BTreeMap::from([
                ("CopyProjectVersion".to_owned(), Rate { per_second: limits.copy_per_second, burst: 2 }),
                ("DescribeProjectVersions".to_owned(), Rate { per_second: limits.describe_per_second, burst: 2 }),
            ]),
            max_copies_in_progress: Some(limits.max_in_progress),
        };
        let quotas = Quotas { default: account_quotas, per_account: BTreeMap::new() };
        let sim = simulator::start(SimConfig {
            copy_duration: options.copy_duration,
            copy_durations: options.copy_durations.clone(),
            fail_version_prefix: None,
            seed: seed.clone(),
            quotas,
            ..SimConfig::default()
        })
        .await
        .expect("simulator");

        let mut config = format!(
            "listen_addr = \"127.0.0.1:0\"\n\
             database_url = \"{database_url}\"\n\
             database_max_connections = 8\n\
             [auth]\n\
             mode = \"dev-metadata\"\n\
             [authz]\n\
             policies = \"{dev_policies}\"\n\
             [preflight]\n\
             # The fleet measures dispatch; preflight would add its own calls to the ones counted.\n\
             enabled = false\n\
             [dispatch]\n\
             poll_interval_ms = 200\n\
             leadership_timeout_ms = 1000\n\
             status_poll_interval_ms = {}\n\
             lease_secs = 6\n\
             aws_timeout_ms = 3000\n\
             backoff_min_ms = 100\n\
             backoff_max_ms = 1000\n",
            options.status_poll_ms,
            dev_policies = support::DEV_POLICIES,
        );
        for account in &seed.accounts {
            config.push_str(&format!(
                "[accounts.{id}]\nregion = \"{REGION}\"\nendpoint_url = \"{endpoint}\"\n\
                 access_key_id = \"{key}\"\nsecret_access_key = \"{secret}\"\n\
                 [accounts.{id}.limits]\ncopy_per_second = {copy}\ndescribe_per_second = {describe}\n\
                 max_in_progress = {in_progress}\npacing_margin = {margin}\n",
                id = account.account_id,
                endpoint = sim.endpoint_url(),
                key = account.access_key_id,
                secret = account.secret_access_key.clone().unwrap_or_default(),
                copy = limits.copy_per_second,
                describe = limits.describe_per_second,
                in_progress = limits.max_in_progress,
                margin = limits.pacing_margin,
            ));
        }
        let config_path = support::scratch_dir("modelcopy-fleet").join("settings.toml");
        std::fs::write(&config_path, config).unwrap();

        let mut fleet = Fleet {
            sim,
            pool,
            seed,
            options,
            config: config_path,
            replicas: Vec::new(),
            database_urls,
            cluster,
            proxy,
        };
        for index in 0..fleet.options.replicas {
            let replica = fleet.spawn_replica(index);
            fleet.replicas.push(Some(replica));
        }
        fleet
    }

    /// Restarts the fleet's own PostgreSQL on the same port with its data, as a failover to a standby would look
    /// to the replicas: every session ends, and the address answers again a moment later.
    pub async fn restart_database(&self) {
        self.stop_database();
        self.start_database().await;
    }

    /// Stops the fleet's own PostgreSQL (every session ends; the address refuses connections until it starts).
    pub fn stop_database(&self) {
        let (cluster, _) = self.cluster.as_ref().expect("a fleet for faults has a cluster of its own");
        cluster.stop().expect("the cluster stops");
    }

    /// Starts the fleet's own PostgreSQL again, on the same port with its data.
    pub async fn start_database(&self) {
        let (cluster, dir) = self.cluster.as_ref().expect("a fleet for faults has a cluster of its own");
        let again = LocalPostgres::start(dir, cluster.port(), Lifetime::WithThisProcess).await.expect("it starts");
        assert_eq!(again.port(), cluster.port(), "on the same port");
    }

    /// Starts one `modelcopy serve` process and waits for its "listening" line, its last (bounded by the process:
    /// it ends if the process does).
    fn spawn_replica(&self, index: usize) -> Replica {
        let mut command = Command::new(env!("CARGO_BIN_EXE_modelcopy"));
        command
            .args(["serve", "--config"])
            .arg(&self.config)
            .env("MODELCOPY_DATABASE_URL", &self.database_urls[index])
            // Dev mode warns loudly at every start; the fleet restarts replicas often.
            .env("RUST_LOG", "warn,modelcopy::auth::chain=error")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (key, value) in &self.options.env {
            command.env(key, value);
        }
        let log = self.options.keep_logs.then(|| support::scratch_dir("modelcopy-fleet-log").join("stderr.log"));
        if let Some(log) = &log {
            command.stderr(std::fs::File::create(log).expect("a log file"));
        }
        let mut child = command.spawn().expect("modelcopy serve starts");
        let stdout = child.stdout.take().unwrap();
        let lines = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let line = line?;
                let last = line.starts_with("modelcopy listening on ");
                lines.push(line);
                if last {
                    break;
                }
            }
            std::io::Result::Ok(lines)
        })
        .join()
        .unwrap()
        .expect("its first lines");
        let after = |prefix: &str| lines.iter().find_map(|line| line.strip_prefix(prefix).map(str::to_owned));
        let addr = after("modelcopy listening on ").unwrap_or_else(|| panic!("no listening line in {lines:?}"));
        Replica {
            child,
            endpoint: format!("http://{addr}"),
            metrics: after("modelcopy metrics on "),
            health: after("modelcopy health on "),
            log,
        }
    }

    /// Replica `index`'s log so far (the fleet must keep logs).
    pub fn log(&self, index: usize) -> String {
        let replica = self.replicas[index].as_ref().expect("live replica");
        std::fs::read_to_string(replica.log.as_ref().expect("the fleet keeps logs")).unwrap()
    }

    /// Where replica `index` serves `grpc.health.v1` alone, if it does.
    pub fn health_addr(&self, index: usize) -> Option<String> {
        self.replicas[index].as_ref().expect("live replica").health.clone()
    }

    /// Where replica `index` serves `/metrics`, if it does.
    pub fn metrics_addr(&self, index: usize) -> Option<String> {
        self.replicas[index].as_ref().expect("live replica").metrics.clone()
    }

    pub fn kill(&mut self, index: usize) {
        if let Some(mut replica) = self.replicas[index].take() {
            // SIGKILL: no shutdown, no cleanup, exactly a crash.
            replica.child.kill().expect("kill");
            replica.child.wait().expect("reap");
        }
    }

    pub fn restart(&mut self, index: usize) {
        if self.replicas[index].is_none() {
            let replica = self.spawn_replica(index);
            self.replicas[index] = Some(replica);
        }
    }

    pub fn live(&self) -> Vec<usize> {
        (0..self.replicas.len()).filter(|i| self.replicas[*i].is_some()).collect()
    }

    /// Replica `index`'s endpoint.
    pub fn endpoint(&self, index: usize) -> String {
        self.replicas[index].as_ref().expect("live replica").endpoint.clone()
    }

    pub async fn client(&self, index: usize, principal: &str) -> Client {
        let endpoint = &self.replicas[index].as_ref().expect("live replica").endpoint;
        support::grpc_client(endpoint, Some(principal)).await
    }

    pub fn request(&self, destination: &str, version_name: &str) -> proto::CopyModelVersionRequest {
        proto::CopyModelVersionRequest {
            source_project_arn: self.seed.project_arn(SOURCE_ACCOUNT, REGION, SOURCE_PROJECT).unwrap(),
            source_project_version_arn: self.seed.version_arn(SOURCE_ACCOUNT, REGION, SOURCE_PROJECT, "v1").unwrap(),
            destination_project_arn: self.seed.project_arn(destination, REGION, DEST_PROJECT).unwrap(),
            version_name: version_name.into(),
            output_config: Some(proto::OutputConfig { s3_bucket: "out".into(), s3_key_prefix: String::new() }),
            idempotency_token: version_name.into(),
            ..Default::default()
        }
    }

    /// Waits (bounded by `limit`) until no copy is live; returns how long that took.
    pub async fn wait_all_ended(&self, limit: Duration) -> Duration {
        let started = Instant::now();
        while started.elapsed() < limit {
            // An error (the database restarting under a fault test) is asked again.
            let live: Result<i64, _> =
                sqlx::query_scalar("SELECT count(*) FROM copy_jobs WHERE state IN ('QUEUED', 'SUBMITTING', 'COPYING')")
                    .fetch_one(&self.pool)
                    .await;
            if live.is_ok_and(|live| live == 0) {
                return started.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("copies still live after {limit:?}");
    }

    pub async fn states(&self) -> BTreeMap<String, i64> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, count(*) FROM copy_jobs GROUP BY state").fetch_all(&self.pool).await.unwrap();
        rows.into_iter().collect()
    }

    /// The simulator's per-account, per-operation counts.
    pub fn stats(&self) -> Vec<OperationStats> {
        self.sim.stats()
    }

    /// Asserts the fleet never exceeded any quota: no refusal, and no second with more calls than the rate.
    pub fn assert_within_quotas(&self) {
        let limits = self.options.limits;
        let stats = self.stats();
        assert!(!stats.is_empty());
        for stat in &stats {
            assert_eq!(stat.throughput_exceeded, 0, "{stat:?}");
            assert_eq!(stat.limit_exceeded, 0, "{stat:?}");
            let limit = match stat.operation.as_str() {
                "CopyProjectVersion" => limits.copy_per_second,
                "DescribeProjectVersions" => limits.describe_per_second,
                _ => continue,
            };
            assert!(stat.max_calls_in_one_second as f64 <= limit, "over the rate: {stat:?}");
        }
    }

    /// Successful CopyProjectVersion calls per destination version name.
    pub fn copies_made(&self) -> BTreeMap<String, usize> {
        let mut made = BTreeMap::new();
        for call in self.sim.calls() {
            if call.operation == "CopyProjectVersion" && call.outcome == "ok" {
                let name = call.key["VersionName"].as_str().unwrap_or_default().to_owned();
                *made.entry(name).or_insert(0) += 1;
            }
        }
        made
    }
}

/// Threads that keep every core busy until dropped, so that the fleet's pacing is tried on a machine whose
/// scheduler delays it, as a busy production node would.
pub struct CpuBurner {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<u64>>,
}

impl CpuBurner {
    pub fn on_every_core() -> CpuBurner {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let threads = (0..cores)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut spun = 0_u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        spun = std::hint::black_box(spun.wrapping_add(1));
                    }
                    spun
                })
            })
            .collect();
        CpuBurner { stop, threads }
    }
}

impl Drop for CpuBurner {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
