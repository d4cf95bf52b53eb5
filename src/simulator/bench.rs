//! The simulator's own throughput: an in-process simulator with a large world, driven over loopback by the real
//! Rust SDK, as the service drives it.
//!
//! The world: account A with `projects` projects of one version each, one project with `versions` versions, and a
//! destination project; every key has a secret, so every request's signature is verified. Each of `concurrency`
//! tasks loops until the time is up, picking from a fixed mix (by a per-task seeded generator, so runs are
//! comparable): polling one version by name (the service's status poll), a page of the big project's versions, a
//! page of projects, a copy, a policy listing. The SDK's retries are off, so every request is one call.
//! Client and server share the machine, so the figures are a floor for the simulator alone.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_rekognition::config::retry::RetryConfig;
use aws_sdk_rekognition::config::Region;
use aws_sdk_rekognition::error::ProvideErrorMetadata;
use aws_sdk_rekognition::types::OutputConfig;
use aws_sdk_rekognition::Client;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::config::SimConfig;
use super::seed::{Seed, SeedAccount, SeedProject, SeedProjectPolicy, SeedVersion};
use super::server::start;

const ACCOUNT: &str = "111111111111";
const KEY: &str = "AKIABENCHAAAAAAAAAAA";
const SECRET: &str = "bench-secret";
const REGION: &str = "us-east-1";
/// Creation times of the generated projects start here, one second apart.
const EPOCH_MILLIS: i64 = 1_700_000_000_000;

#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub seconds: u64,
    pub concurrency: usize,
    /// Projects of one version each.
    pub projects: usize,
    /// Versions of the one big project.
    pub versions: usize,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions { seconds: 10, concurrency: 32, projects: 10_000, versions: 10_000 }
    }
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct BenchReport {
    pub options: BenchOptions,
    pub elapsed: Duration,
    pub requests: u64,
    /// Requests per operation.
    pub by_operation: BTreeMap<&'static str, u64>,
    /// Failed requests by error code (`dispatch` when no answer came back).
    pub errors: BTreeMap<String, u64>,
    /// Latency percentiles as the client saw them: p50, p90, p99, p99.9, max.
    pub latency: [(&'static str, Duration); 5],
    /// Calls the simulator counted (its own stats), to check against `requests`.
    pub calls_counted: u64,
}

impl BenchReport {
    pub fn requests_per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.options;
        writeln!(
            f,
            "world: {} projects x 1 version + 1 project x {} versions; {} tasks for {} s (SigV4 verified)",
            o.projects, o.versions, o.concurrency, o.seconds
        )?;
        writeln!(
            f,
            "requests: {} in {:.2} s = {:.0} requests/s (simulator counted {})",
            self.requests,
            self.elapsed.as_secs_f64(),
            self.requests_per_second(),
            self.calls_counted
        )?;
        let latency: Vec<String> =
            self.latency.iter().map(|(name, value)| format!("{name} {:.2} ms", value.as_secs_f64() * 1000.0)).collect();
        writeln!(f, "latency: {}", latency.join(", "))?;
        let mix: Vec<String> = self.by_operation.iter().map(|(name, count)| format!("{name} {count}")).collect();
        writeln!(f, "mix: {}", mix.join(", "))?;
        if self.errors.is_empty() {
            writeln!(f, "errors: none")
        } else {
            writeln!(f, "errors: {:?}", self.errors)
        }
    }
}

/// The generated world, and the ARNs the tasks need.
struct World {
    seed: Seed,
    policies: Vec<SeedProjectPolicy>,
    project_arns: Vec<String>,
    version_arns: Vec<String>,
    big_arn: String,
    destination_arn: String,
}

fn world(options: &BenchOptions) -> World {
    let project_arn =
        |name: &str, millis: i64| format!("arn:aws:rekognition:{REGION}:{ACCOUNT}:project/{name}/{millis}");
    let mut projects = Vec::with_capacity(options.projects + 2);
    let (mut project_arns, mut version_arns) = (Vec::new(), Vec::new());
    for i in 0..options.projects {
        let name = format!("p{i:05}");
        let millis = EPOCH_MILLIS + i as i64 * 1_000;
        project_arns.push(project_arn(&name, millis));
        version_arns.push(format!("arn:aws:rekognition:{REGION}:{ACCOUNT}:project/{name}/version/v1/{}", millis + 1));
        projects.push(SeedProject {
            account_id: ACCOUNT.into(),
            region: REGION.into(),
            name,
            created_millis: Some(millis),
            versions: vec![SeedVersion { name: "v1".into(), status: None, created_millis: Some(millis + 1) }],
        });
    }
    let big_millis = EPOCH_MILLIS - 1_000_000;
    projects.push(SeedProject {
        account_id: ACCOUNT.into(),
        region: REGION.into(),
        name: "big".into(),
        created_millis: Some(big_millis),
        versions: (0..options.versions)
            .map(|i| SeedVersion {
                name: format!("b{i:05}"),
                status: None,
                created_millis: Some(big_millis + 1 + i as i64),
            })
            .collect(),
    });
    let destination_millis = EPOCH_MILLIS - 2_000_000;
    projects.push(SeedProject {
        account_id: ACCOUNT.into(),
        region: REGION.into(),
        name: "bench-dest".into(),
        created_millis: Some(destination_millis),
        versions: vec![],
    });
    // One policy on the first project, so that listing policies has something to list.
    let policies = if options.projects > 0 {
        vec![SeedProjectPolicy::allow_copy(ACCOUNT, REGION, "p00000", "allow-b", "222222222222")]
    } else {
        vec![]
    };
    World {
        seed: Seed {
            accounts: vec![SeedAccount {
                account_id: ACCOUNT.into(),
                access_key_id: KEY.into(),
                secret_access_key: Some(SECRET.into()),
                roles: Vec::new(),
            }],
            projects,
        },
        policies,
        project_arns,
        version_arns,
        big_arn: project_arn("big", big_millis),
        destination_arn: project_arn("bench-dest", destination_millis),
    }
}

/// Runs the benchmark; the simulator stops when it ends.
pub async fn run(options: BenchOptions) -> io::Result<BenchReport> {
    if options.projects == 0 || options.concurrency == 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "projects and concurrency must be at least 1"));
    }
    let world = Arc::new(world(&options));
    let handle = start(SimConfig {
        seed: world.seed.clone(),
        project_policies: world.policies.clone(),
        require_project_policy: true,
        copy_duration: Duration::from_secs(1),
        fail_version_prefix: None,
        ..SimConfig::default()
    })
    .await?;
    let config = aws_sdk_rekognition::Config::builder()
        .behavior_version_latest()
        .region(Region::new(REGION))
        .endpoint_url(handle.endpoint_url())
        .retry_config(RetryConfig::disabled())
        .credentials_provider(aws_credential_types::Credentials::new(KEY, SECRET, None, None, "bench"))
        .build();
    let client = Client::from_conf(config);

    let started = Instant::now();
    let deadline = started + Duration::from_secs(options.seconds);
    let tasks: Vec<_> = (0..options.concurrency)
        .map(|task| {
            let (client, world) = (client.clone(), world.clone());
            tokio::spawn(async move { drive(task, &client, &world, deadline).await })
        })
        .collect();
    let mut samples = Samples::default();
    for task in tasks {
        let done = task.await.map_err(io::Error::other)?;
        samples.merge(done);
    }
    let elapsed = started.elapsed();
    let calls_counted = handle.stats().iter().map(|stats| stats.calls).sum();
    handle.shutdown();
    Ok(samples.report(options, elapsed, calls_counted))
}

#[derive(Default)]
struct Samples {
    latencies: Vec<Duration>,
    by_operation: BTreeMap<&'static str, u64>,
    errors: BTreeMap<String, u64>,
}

impl Samples {
    fn merge(&mut self, other: Samples) {
        self.latencies.extend(other.latencies);
        for (name, count) in other.by_operation {
            *self.by_operation.entry(name).or_default() += count;
        }
        for (code, count) in other.errors {
            *self.errors.entry(code).or_default() += count;
        }
    }

    fn report(mut self, options: BenchOptions, elapsed: Duration, calls_counted: u64) -> BenchReport {
        self.latencies.sort_unstable();
        let at = |q: f64| {
            let n = self.latencies.len();
            if n == 0 {
                return Duration::ZERO;
            }
            self.latencies[((n as f64 * q).ceil() as usize).clamp(1, n) - 1]
        };
        BenchReport {
            latency: [("p50", at(0.50)), ("p90", at(0.90)), ("p99", at(0.99)), ("p99.9", at(0.999)), ("max", at(1.0))],
            requests: self.latencies.len() as u64,
            by_operation: self.by_operation,
            errors: self.errors,
            options,
            elapsed,
            calls_counted,
        }
    }
}

/// One task's loop: the same mix for every task, drawn from a generator seeded by the task number.
async fn drive(task: usize, client: &Client, world: &World, deadline: Instant) -> Samples {
    let mut rng = StdRng::seed_from_u64(task as u64);
    let mut samples = Samples::default();
    let output = OutputConfig::builder().s3_bucket("bench-bucket").build();
    let mut copies = 0u64;
    while Instant::now() < deadline {
        let pick = rng.random_range(0..100u32);
        let i = rng.random_range(0..world.project_arns.len());
        let started = Instant::now();
        let (operation, error) = match pick {
            0..50 => (
                "DescribeProjectVersions(name)",
                client
                    .describe_project_versions()
                    .project_arn(&world.project_arns[i])
                    .version_names("v1")
                    .send()
                    .await
                    .err()
                    .map(|err| code(&err)),
            ),
            50..65 => (
                "DescribeProjectVersions(page)",
                client
                    .describe_project_versions()
                    .project_arn(&world.big_arn)
                    .max_results(10)
                    .send()
                    .await
                    .err()
                    .map(|err| code(&err)),
            ),
            65..75 => (
                "DescribeProjects(page)",
                client.describe_projects().max_results(20).send().await.err().map(|err| code(&err)),
            ),
            75..95 => {
                copies += 1;
                (
                    "CopyProjectVersion",
                    client
                        .copy_project_version()
                        .source_project_arn(&world.project_arns[i])
                        .source_project_version_arn(&world.version_arns[i])
                        .destination_project_arn(&world.destination_arn)
                        .version_name(format!("c{task}-{copies}"))
                        .output_config(output.clone())
                        .send()
                        .await
                        .err()
                        .map(|err| code(&err)),
                )
            }
            _ => (
                "ListProjectPolicies",
                client
                    .list_project_policies()
                    .project_arn(&world.project_arns[i])
                    .send()
                    .await
                    .err()
                    .map(|err| code(&err)),
            ),
        };
        samples.latencies.push(started.elapsed());
        *samples.by_operation.entry(operation).or_default() += 1;
        if let Some(code) = error {
            *samples.errors.entry(code).or_default() += 1;
        }
    }
    samples
}

fn code<E: ProvideErrorMetadata>(err: &aws_sdk_rekognition::error::SdkError<E>) -> String {
    err.as_service_error().and_then(|service| service.code()).unwrap_or("dispatch").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_short_run_succeeds_and_the_simulator_counts_every_request() {
        let report = run(BenchOptions { seconds: 1, concurrency: 4, projects: 50, versions: 50 }).await.unwrap();
        assert!(report.requests > 10, "{report}");
        assert!(report.errors.is_empty(), "{report}");
        assert_eq!(report.calls_counted, report.requests);
        assert!(report.latency[0].1 <= report.latency[4].1);
    }
}
