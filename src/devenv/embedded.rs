//! `modelcopy dev`: the whole service on one machine with no AWS account: a private PostgreSQL cluster, the
//! Rekognition simulator seeded with demo projects, and the service pointed at both.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use super::{Lifetime, LocalPostgres};
use crate::auth::AuthMode;
use crate::config::{AccountSettings, Settings};
use crate::domain::AccountId;
use crate::simulator::{self, Seed, SeedFile, SimConfig};
use crate::startup::Application;

#[derive(Debug, Clone)]
pub struct DevOptions {
    /// Where the cluster keeps its data between runs (must be traversable by the `postgres` user).
    pub data_dir: PathBuf,
    pub postgres_port: u16,
    pub listen: SocketAddr,
    pub seed: PathBuf,
    pub copy_duration: Duration,
    /// Replicas of the service, each with its own pool, dispatcher and port, sharing the one database: they
    /// coordinate exactly as separate machines would, through PostgreSQL.
    pub replicas: u16,
}

/// deploy/policies/dev.cedar: permits everything.
const DEV_POLICIES: &str = include_str!("../../deploy/policies/dev.cedar");

/// Region of the demo accounts (the seed's projects live there).
const DEMO_REGION: &str = "us-east-1";

pub async fn run(options: DevOptions) -> anyhow::Result<()> {
    let postgres =
        LocalPostgres::start(&options.data_dir.join("postgres"), options.postgres_port, Lifetime::WithThisProcess)
            .await
            .context("starting the local PostgreSQL cluster")?;
    let database_url = postgres.create_database("modelcopy").await?;

    let SeedFile { seed, policies } =
        SeedFile::from_json_file(&options.seed).with_context(|| format!("reading {}", options.seed.display()))?;
    // As on AWS: a copy from another account's project needs that project's policy to allow it (the demo seed
    // carries one).
    let sim = simulator::start(SimConfig {
        copy_duration: options.copy_duration,
        seed: seed.clone(),
        project_policies: policies,
        require_project_policy: true,
        ..SimConfig::default()
    })
    .await
    .context("starting the Rekognition simulator")?;

    let mut settings = Settings::load(None)?;
    // `dev` is the explicit request for development mode: callers name themselves, nothing is checked.
    settings.auth.mode = AuthMode::DevMetadata;
    // Likewise the policies: unless some are configured, everything is permitted, from a file in the data
    // directory that the developer may edit to try policies out (it is reloaded as it changes).
    if settings.authz.policies.is_none() {
        let file = options.data_dir.join("dev.cedar");
        if !file.exists() {
            std::fs::create_dir_all(&options.data_dir)?;
            std::fs::write(&file, DEV_POLICIES).with_context(|| format!("writing {}", file.display()))?;
        }
        settings.authz.policies = Some(file);
    }
    settings.database_url = database_url;
    settings.listen_addr = options.listen;
    // The dashboard is off by default in production; here it is the quickest way to see copies move.
    settings.web.dashboard = true;
    for account in &seed.accounts {
        settings.accounts.insert(
            AccountId::parse(account.account_id.as_str()).context("a demo account id")?,
            AccountSettings {
                region: DEMO_REGION.into(),
                endpoint_url: Some(sim.endpoint_url()),
                access_key_id: Some(account.access_key_id.clone()),
                secret_access_key: Some(account.secret_access_key.clone().unwrap_or_else(|| "dev".into())),
                role_arn: None,
                external_id: None,
                role_session_name: None,
                sts_endpoint_url: None,
                limits: Default::default(),
            },
        );
    }
    let mut apps = Vec::new();
    for replica in 0..options.replicas {
        let mut settings = settings.clone();
        let port = options.listen.port().checked_add(replica).context("--listen port too high for the replicas")?;
        settings.listen_addr.set_port(port);
        apps.push(Application::start(settings).await?);
    }

    println!("modelcopy dev is running");
    for app in &apps {
        println!("  gRPC API              http://{}", app.local_addr());
    }
    println!(
        "  Dashboard             http://{}/dashboard/#principal=alice (any principal name: dev mode)",
        apps[0].local_addr()
    );
    println!("  Authentication        OFF (dev-metadata: --principal names the caller, unchecked)");
    if let Some(policies) = &settings.authz.policies {
        println!("  Policies              {} (reloaded when it changes)", policies.display());
    }
    println!("  PostgreSQL            {}", postgres.database_url("modelcopy"));
    println!("  Rekognition simulator {}", sim.endpoint_url());
    if let Some(line) = demo_copy_line(&seed, apps[0].local_addr()) {
        println!("\nStart a copy and watch it to the end:\n  {line}");
    }
    println!("\nCtrl-C stops everything.");

    let triggers: Vec<_> = apps.iter().map(|app| app.shutdown_trigger()).collect();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        triggers.iter().for_each(|trigger| trigger.fire());
    });
    let mut served = Ok(());
    for app in apps {
        served = served.and(app.wait().await);
    }
    sim.shutdown();
    postgres.stop()?;
    served
}

/// The CLI line that copies the seed's first version into a project of another account.
fn demo_copy_line(seed: &Seed, addr: SocketAddr) -> Option<String> {
    let source = seed.projects.iter().find(|p| !p.versions.is_empty())?;
    let destination = seed.projects.iter().find(|p| p.account_id != source.account_id && p.region == source.region)?;
    let source_arn = seed.project_arn(&source.account_id, &source.region, &source.name)?;
    let version_arn = seed.version_arn(&source.account_id, &source.region, &source.name, &source.versions[0].name)?;
    let destination_arn = seed.project_arn(&destination.account_id, &destination.region, &destination.name)?;
    let version_name = format!("demo-copy-{}", chrono::Utc::now().format("%Y%m%d-%H%M%S"));
    Some(format!(
        "{cli} --endpoint http://{addr} --principal alice copy \
         --source-project-arn {source_arn} --source-version-arn {version_arn} \
         --destination-project-arn {destination_arn} --version-name {version_name} \
         --s3-bucket demo-model-output --idempotency-token {version_name} --watch",
        cli = cli_path().display()
    ))
}

/// The CLI built beside this binary (whichever profile built both), relative to the working directory when under
/// it: what to type.
fn cli_path() -> std::path::PathBuf {
    let beside = std::env::current_exe().ok().and_then(|exe| exe.parent().map(|dir| dir.join("modelcopy-cli")));
    let Some(cli) = beside else { return "modelcopy-cli".into() };
    let relative = std::env::current_dir().ok().and_then(|cwd| cli.strip_prefix(cwd).ok().map(|p| p.to_path_buf()));
    relative.unwrap_or(cli)
}
