//! The modelcopy service: `serve`, `migrate`, `dev` (everything local, no AWS account needed), `audit verify` and
//! `config check`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use modelcopy::config::Settings;
use modelcopy::devenv::embedded::{self, DevOptions};
use modelcopy::startup::Application;
use modelcopy::store::Store;
use modelcopy::telemetry::LogFormat;

#[derive(Parser)]
#[command(version, about = "gRPC front door to Amazon Rekognition Custom Labels model copies")]
struct Args {
    /// How log lines (on stderr) are written: `text` for a terminal, `json` for a log pipeline (one object a line,
    /// with the trace and span ids of the request).
    #[arg(long, env = "MODELCOPY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API and dispatch copies (migrates the database first).
    Serve {
        /// TOML settings; MODELCOPY_* environment variables override it.
        #[arg(long, env = "MODELCOPY_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Apply database migrations and exit.
    Migrate {
        #[arg(long, env = "MODELCOPY_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Run everything locally: a private PostgreSQL cluster, the Rekognition simulator and the service.
    Dev {
        #[arg(long, default_value = "/var/tmp/modelcopy-dev")]
        data_dir: PathBuf,
        #[arg(long, default_value_t = 54329)]
        postgres_port: u16,
        #[arg(long, default_value = "127.0.0.1:50051")]
        listen: SocketAddr,
        #[arg(long, default_value = "deploy/sim-seed.json")]
        seed: PathBuf,
        /// How long a simulated copy takes.
        #[arg(long, default_value_t = 8_000)]
        copy_duration_ms: u64,
        /// Replicas of the service to run against the one database (on consecutive ports from --listen).
        #[arg(long, default_value_t = 1)]
        replicas: u16,
    },
    /// Audit log tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Settings tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Load the settings as `serve` would (the file, then MODELCOPY_* variables) and print them with every default
    /// filled in and secrets masked; or print every problem found and exit 1.
    Check {
        #[arg(long, env = "MODELCOPY_CONFIG")]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the audit log's hash chain and name the first row that breaks it.
    ///
    /// Reads the database named by the settings. Exit code 0 when the chain is intact, 1 when it is broken, 2 when
    /// it could not be checked.
    Verify {
        #[arg(long, env = "MODELCOPY_CONFIG")]
        config: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    modelcopy::runtime::build()?.block_on(run(Args::parse()))
}

async fn run(args: Args) -> anyhow::Result<()> {
    modelcopy::telemetry::init_as("info", args.log_format);
    match args.command {
        Command::Serve { config } => {
            let app = Application::start(Settings::load(config.as_deref())?).await?;
            // Machine-readable lines, for whoever started this process (scripts, the tests): the metrics and health
            // addresses when served, and last the API's.
            if let Some(metrics) = app.metrics_addr() {
                println!("modelcopy metrics on {metrics}");
            }
            if let Some(health) = app.health_addr() {
                println!("modelcopy health on {health}");
            }
            println!("modelcopy listening on {}", app.local_addr());
            let trigger = app.shutdown_trigger();
            tokio::spawn(async move {
                wait_for_signal().await;
                trigger.fire();
            });
            app.wait().await
        }
        Command::Migrate { config } => {
            let settings = Settings::load(config.as_deref())?;
            let timeout = Duration::from_millis(settings.database_timeout_ms);
            Store::connect(&settings.database_url, 1, timeout, Duration::ZERO).await?.migrate().await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Audit { command: AuditCommand::Verify { config } } => {
            let verdict = async {
                let settings = Settings::load(config.as_deref())?;
                // No statement timeout: an operator's check of the whole chain, not a call.
                let timeout = Duration::from_millis(settings.database_timeout_ms);
                let store = Store::connect(&settings.database_url, 1, timeout, Duration::ZERO).await?;
                anyhow::Ok(modelcopy::audit::verify(&store).await?)
            }
            .await;
            match verdict {
                Ok(verdict) => {
                    println!("{verdict}");
                    std::process::exit(verdict.exit_code())
                }
                Err(error) => {
                    eprintln!("error: cannot verify the audit chain: {error:#}");
                    std::process::exit(2)
                }
            }
        }
        Command::Config { command: ConfigCommand::Check { config } } => match Settings::load(config.as_deref()) {
            Ok(settings) => {
                print!("{}", settings.to_masked_toml());
                Ok(())
            }
            Err(err) => {
                eprintln!("{err}");
                std::process::exit(1)
            }
        },
        Command::Dev { data_dir, postgres_port, listen, seed, copy_duration_ms, replicas } => {
            embedded::run(DevOptions {
                data_dir,
                postgres_port,
                listen,
                seed,
                copy_duration: Duration::from_millis(copy_duration_ms),
                replicas: replicas.max(1),
            })
            .await
        }
    }
}

async fn wait_for_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
