//! `rekognition-sim`: runs the Rekognition simulator until Ctrl-C or SIGTERM.
//!
//! Prints exactly one line to stdout once bound — `rekognition-sim listening on http://127.0.0.1:PORT` — so a script
//! that starts it with `--listen 127.0.0.1:0` can read the port; everything else goes to stderr through tracing.

use std::error::Error;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use modelcopy::simulator::{self, Seed, SimConfig};

#[derive(Debug, Parser)]
#[command(
    about = "A local Amazon Rekognition Custom Labels speaking awsJson1.1, for tests and demos"
)]
struct Args {
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, env = "REKOGNITION_SIM_LISTEN", default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// JSON seed file: accounts (access keys) and existing projects and versions.
    #[arg(long, env = "REKOGNITION_SIM_SEED")]
    seed: Option<PathBuf>,
    /// How long a copy stays COPYING_IN_PROGRESS, in milliseconds.
    #[arg(long, env = "REKOGNITION_SIM_COPY_DURATION_MS", default_value_t = 2000)]
    copy_duration_ms: u64,
    /// Copies to version names starting with this end COPYING_FAILED; an empty value disables failures.
    #[arg(
        long,
        env = "REKOGNITION_SIM_FAIL_VERSION_PREFIX",
        default_value = "fail-"
    )]
    fail_version_prefix: String,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let seed = match &args.seed {
        Some(path) => Seed::from_json_file(path)?,
        None => Seed::default(),
    };
    let config = SimConfig {
        listen: args.listen,
        copy_duration: Duration::from_millis(args.copy_duration_ms),
        fail_version_prefix: Some(args.fail_version_prefix).filter(|prefix| !prefix.is_empty()),
        seed,
    };
    let handle = simulator::start(config).await?;

    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "rekognition-sim listening on {}",
        handle.endpoint_url()
    )?;
    stdout.flush()?;
    drop(stdout);

    stop_requested().await?;
    handle.shutdown();
    // Requests in flight finish; a client that keeps a connection open does not hold the exit up for long.
    if tokio::time::timeout(Duration::from_secs(5), handle.stopped())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after 5 s; exiting anyway");
    }
    Ok(())
}

/// Resolves on Ctrl-C, or on SIGTERM where there is one.
async fn stop_requested() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
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
