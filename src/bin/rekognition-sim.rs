//! `rekognition-sim`: runs the Rekognition simulator until Ctrl-C or SIGTERM, or benchmarks it (`bench`).
//!
//! Prints exactly one line to stdout once bound — `rekognition-sim listening on http://127.0.0.1:PORT` — so a script
//! that starts it with `--listen 127.0.0.1:0` can read the port; everything else goes to stderr through tracing.
//!
//! Settings come from, in increasing precedence: the defaults (as `SimConfig::default()`, except that cross-account
//! copies need a project policy, as on AWS), a JSON file (`--config`, see `SimConfigFile`), and flags.

use std::error::Error;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use modelcopy::simulator::bench::{self, BenchOptions};
use modelcopy::simulator::{self, DurationDistribution, Latency, Rate, SeedFile, SimConfig, SimConfigFile};

#[derive(Debug, Parser)]
#[command(
    about = "A local Amazon Rekognition Custom Labels speaking awsJson1.1, for tests and demos",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Measure the simulator's request rate on loopback, driven by the Rust SDK, and print the figures.
    Bench(BenchArgs),
}

#[derive(Debug, Args)]
struct BenchArgs {
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Projects of one version each.
    #[arg(long, default_value_t = 10_000)]
    projects: usize,
    /// Versions of the one big project.
    #[arg(long, default_value_t = 10_000)]
    versions: usize,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on; port 0 picks a free one. Default 127.0.0.1:0.
    #[arg(long, env = "REKOGNITION_SIM_LISTEN")]
    listen: Option<SocketAddr>,
    /// JSON configuration file (quotas, faults, copy durations, seed...); flags override it.
    #[arg(long, env = "REKOGNITION_SIM_CONFIG")]
    config: Option<PathBuf>,
    /// JSON seed file: accounts (access keys, secrets), projects, versions and project policies.
    #[arg(long, env = "REKOGNITION_SIM_SEED")]
    seed: Option<PathBuf>,
    /// How long a copy stays COPYING_IN_PROGRESS, in milliseconds (default 2000).
    #[arg(long, env = "REKOGNITION_SIM_COPY_DURATION_MS")]
    copy_duration_ms: Option<u64>,
    /// With --copy-duration-ms: draw each copy's duration uniformly between the two.
    #[arg(long, requires = "copy_duration_ms")]
    copy_duration_max_ms: Option<u64>,
    /// Copies to version names starting with this end COPYING_FAILED; an empty value disables it (default fail-).
    #[arg(long, env = "REKOGNITION_SIM_FAIL_VERSION_PREFIX")]
    fail_version_prefix: Option<String>,
    /// Share (0-1) of the other copies that end COPYING_FAILED.
    #[arg(long)]
    copy_failure_rate: Option<f64>,
    /// Seed of every random decision (copy durations and failures, faults).
    #[arg(long, env = "REKOGNITION_SIM_RNG_SEED")]
    rng_seed: Option<u64>,
    /// Whether cross-account copies need a project policy on the source project (default true).
    #[arg(long, value_name = "BOOL")]
    require_project_policy: Option<bool>,
    /// Rate quota for every account: OPERATION=PER_SECOND[/BURST] (burst defaults to the rate, at least 1).
    #[arg(long = "rate", value_name = "OPERATION=PER_SECOND[/BURST]", value_parser = parse_rate)]
    rates: Vec<(String, Rate)>,
    /// Rate quota for one account: ACCOUNT:OPERATION=PER_SECOND[/BURST].
    #[arg(long = "account-rate", value_name = "ACCOUNT:OPERATION=PER_SECOND[/BURST]", value_parser = parse_account_rate)]
    account_rates: Vec<(String, (String, Rate))>,
    /// Copies in progress at once per destination account; one more copy is LimitExceededException.
    #[arg(long)]
    max_copies_in_progress: Option<u32>,
    /// Share (0-1) of calls answered ThrottlingException (HTTP 500).
    #[arg(long)]
    throttling_rate: Option<f64>,
    /// Share (0-1) of calls answered InternalServerError (HTTP 500).
    #[arg(long)]
    internal_error_rate: Option<f64>,
    /// Share (0-1) of calls whose connection is dropped before they run.
    #[arg(long)]
    drop_request_rate: Option<f64>,
    /// Share (0-1) of calls that run, then have their connection dropped without an answer.
    #[arg(long)]
    drop_response_rate: Option<f64>,
    /// Latency added to every answer: MIN or MIN-MAX milliseconds.
    #[arg(long, value_name = "MIN[-MAX]", value_parser = parse_latency)]
    latency_ms: Option<Latency>,
    /// Operations the random faults and latency apply to (comma-separated; default all).
    #[arg(long, value_delimiter = ',')]
    fault_operations: Vec<String>,
    /// The call log keeps the most recent this many calls (default 100000).
    #[arg(long)]
    call_log_capacity: Option<usize>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let cli = Cli::parse();
    let default_filter = if cli.command.is_some() { "warn" } else { "info" };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .init();
    match cli.command {
        Some(Command::Bench(args)) => run_bench(args).await,
        None => serve(cli.serve).await,
    }
}

async fn run_bench(args: BenchArgs) -> Result<(), Box<dyn Error>> {
    let report = bench::run(BenchOptions {
        seconds: args.seconds,
        concurrency: args.concurrency,
        projects: args.projects,
        versions: args.versions,
    })
    .await?;
    print!("{report}");
    Ok(())
}

async fn serve(args: ServeArgs) -> Result<(), Box<dyn Error>> {
    let handle = simulator::start(config(args)?).await?;

    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "rekognition-sim listening on {}", handle.endpoint_url())?;
    stdout.flush()?;
    drop(stdout);

    stop_requested().await?;
    handle.shutdown();
    // Requests in flight finish; a client that keeps a connection open does not hold the exit up for long.
    if tokio::time::timeout(Duration::from_secs(5), handle.stopped()).await.is_err() {
        tracing::warn!("connections still open after 5 s; exiting anyway");
    }
    Ok(())
}

/// Defaults, then the configuration file, then the flags.
fn config(args: ServeArgs) -> Result<SimConfig, Box<dyn Error>> {
    let mut config = SimConfig { require_project_policy: true, ..SimConfig::default() };
    if let Some(path) = &args.config {
        SimConfigFile::from_json_file(path)?.apply_to(&mut config)?;
    }
    if let Some(path) = &args.seed {
        let file = SeedFile::from_json_file(path)?;
        config.seed = file.seed;
        config.project_policies.extend(file.policies);
    }
    set(&mut config.listen, args.listen);
    if let Some(millis) = args.copy_duration_ms {
        config.copy_duration = Duration::from_millis(millis);
        config.copy_durations = args
            .copy_duration_max_ms
            .map(|max_millis| DurationDistribution::Uniform { min_millis: millis, max_millis });
    }
    if let Some(prefix) = args.fail_version_prefix {
        config.fail_version_prefix = Some(prefix).filter(|prefix| !prefix.is_empty());
    }
    set(&mut config.copy_failure_rate, args.copy_failure_rate);
    set(&mut config.rng_seed, args.rng_seed);
    set(&mut config.require_project_policy, args.require_project_policy);
    for (operation, rate) in args.rates {
        config.quotas.default.rate.insert(operation, rate);
    }
    for (account, (operation, rate)) in args.account_rates {
        config.quotas.per_account.entry(account).or_default().rate.insert(operation, rate);
    }
    if args.max_copies_in_progress.is_some() {
        config.quotas.default.max_copies_in_progress = args.max_copies_in_progress;
    }
    let faults = &mut config.faults;
    set(&mut faults.throttling, args.throttling_rate);
    set(&mut faults.internal_error, args.internal_error_rate);
    set(&mut faults.drop_request, args.drop_request_rate);
    set(&mut faults.drop_response, args.drop_response_rate);
    set(&mut faults.latency, args.latency_ms);
    if !args.fault_operations.is_empty() {
        faults.operations = args.fault_operations;
    }
    set(&mut config.call_log_capacity, args.call_log_capacity);
    Ok(config)
}

fn set<T>(target: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *target = value;
    }
}

/// `OPERATION=PER_SECOND[/BURST]`.
fn parse_rate(text: &str) -> Result<(String, Rate), String> {
    let (operation, rate) = text.split_once('=').ok_or("expected OPERATION=PER_SECOND[/BURST]")?;
    let (per_second, burst) = match rate.split_once('/') {
        Some((per_second, burst)) => (per_second, Some(burst)),
        None => (rate, None),
    };
    let per_second: f64 = per_second.parse().map_err(|_| format!("{per_second:?} is not a number"))?;
    let burst = match burst {
        Some(burst) => burst.parse().map_err(|_| format!("{burst:?} is not a count"))?,
        None => (per_second.ceil() as u32).max(1),
    };
    Ok((operation.to_owned(), Rate { per_second, burst }))
}

/// `ACCOUNT:OPERATION=PER_SECOND[/BURST]`.
fn parse_account_rate(text: &str) -> Result<(String, (String, Rate)), String> {
    let (account, rate) = text.split_once(':').ok_or("expected ACCOUNT:OPERATION=PER_SECOND[/BURST]")?;
    Ok((account.to_owned(), parse_rate(rate)?))
}

/// `MIN` or `MIN-MAX` milliseconds.
fn parse_latency(text: &str) -> Result<Latency, String> {
    let number = |part: &str| part.parse::<u64>().map_err(|_| format!("{part:?} is not a number of milliseconds"));
    let (min_millis, max_millis) = match text.split_once('-') {
        Some((min, max)) => (number(min)?, number(max)?),
        None => (number(text)?, number(text)?),
    };
    Ok(Latency { min_millis, max_millis })
}

/// Resolves on Ctrl-C, or on SIGTERM where there is one.
async fn stop_requested() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result,
            _ = terminate.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
