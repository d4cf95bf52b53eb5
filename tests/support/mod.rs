//! What every test target sets up the same way: the test accounts and region, the pieces of a simulator seed, an
//! AWS SDK client against a simulator, a gRPC client of the service, a fresh database and a scratch directory.
//! Each target includes this file (`#[path = "../support/mod.rs"] mod support;`) and builds its own world from it.

// Every test target compiles this module and each uses only part of it.
#![allow(dead_code)]

pub mod health;
pub mod proxy;

use std::path::PathBuf;

use aws_sdk_rekognition::config::retry::RetryConfig;
use aws_sdk_rekognition::config::Region;
use modelcopy::cli::connect::{self, CallMetadata, Client};
use modelcopy::devenv::{test_cluster, unique_db_name};
use modelcopy::simulator::{Seed, SeedAccount, SeedProject, SeedVersion};
use sqlx::PgPool;

pub const REGION: &str = "us-east-1";
pub const OTHER_REGION: &str = "us-west-2";

/// The test accounts, by letter (the simulator's tests) ...
pub const ACCOUNT_A: &str = "111111111111";
pub const ACCOUNT_B: &str = "222222222222";
pub const ACCOUNT_C: &str = "333333333333";
/// ... and by the part they play in a copy (the service's and the fleet's tests).
pub const SOURCE_ACCOUNT: &str = ACCOUNT_A;
pub const DEST_ACCOUNT: &str = ACCOUNT_B;

/// The project copies are made from (in the source account) and the one they go to (in each destination).
pub const SOURCE_PROJECT: &str = "detector";
pub const DEST_PROJECT: &str = "detector-prod";

/// deploy/policies/dev.cedar: the Cedar policies that permit everything.
pub const DEV_POLICIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/policies/dev.cedar");

/// When seeded projects and versions were created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// Fixed times: every project at 1_700_000_000_000 ms, its versions 100 s later.
    Fixed,
    /// No time given: the simulator picks it.
    Unset,
}

/// A seeded account whose key signs with `secret` (`None`: the key alone identifies the account, signature unchecked).
pub fn account(account_id: &str, access_key_id: &str, secret: Option<&str>) -> SeedAccount {
    SeedAccount {
        account_id: account_id.into(),
        access_key_id: access_key_id.into(),
        secret_access_key: secret.map(Into::into),
        roles: Vec::new(),
    }
}

/// The secret the service's and the fleet's tests give an account.
pub fn account_secret(account_id: &str) -> String {
    format!("secret-{account_id}")
}

/// A seeded project with `versions` (oldest first), none with a status of its own.
pub fn project(account_id: &str, region: &str, name: &str, versions: &[&str], created: Created) -> SeedProject {
    let (project_millis, version_millis) = match created {
        Created::Fixed => (Some(1_700_000_000_000), Some(1_700_000_100_000)),
        Created::Unset => (None, None),
    };
    SeedProject {
        account_id: account_id.into(),
        region: region.into(),
        name: name.into(),
        created_millis: project_millis,
        versions: versions
            .iter()
            .map(|name| SeedVersion { name: (*name).into(), status: None, created_millis: version_millis })
            .collect(),
    }
}

/// The copy tests' world, in [`REGION`] with [`Created::Fixed`] times: `source` (listed first) owns
/// [`SOURCE_PROJECT`] with `source_versions`, and each of `destinations` an empty [`DEST_PROJECT`].
pub fn copy_seed(source: SeedAccount, source_versions: &[&str], destinations: Vec<SeedAccount>) -> Seed {
    let projects =
        std::iter::once(project(&source.account_id, REGION, SOURCE_PROJECT, source_versions, Created::Fixed))
            .chain(destinations.iter().map(|d| project(&d.account_id, REGION, DEST_PROJECT, &[], Created::Fixed)))
            .collect();
    Seed { accounts: std::iter::once(source).chain(destinations).collect(), projects }
}

/// An `aws-sdk-rekognition` client in [`REGION`] against the simulator at `endpoint_url`, signing as
/// `access_key_id` with `secret`; `retry` replaces the SDK's default retries when given.
pub fn sdk_client(
    endpoint_url: &str,
    access_key_id: &str,
    secret: &str,
    retry: Option<RetryConfig>,
) -> aws_sdk_rekognition::Client {
    let mut config = aws_sdk_rekognition::Config::builder()
        .behavior_version_latest()
        .region(Region::new(REGION))
        .endpoint_url(endpoint_url)
        .credentials_provider(aws_credential_types::Credentials::new(access_key_id, secret, None, None, "test"));
    if let Some(retry) = retry {
        config = config.retry_config(retry);
    }
    aws_sdk_rekognition::Client::from_conf(config.build())
}

/// A gRPC client of the service at `endpoint`, calling as `principal` (dev-mode metadata), or as nobody.
pub async fn grpc_client(endpoint: &str, principal: Option<&str>) -> Client {
    connect::connect(endpoint, CallMetadata::new(principal, None).unwrap()).await.expect("connect")
}

/// A new database named after `prefix` in this process's PostgreSQL cluster: its URL and a pool on it.
pub async fn fresh_database(prefix: &str) -> (String, PgPool) {
    let cluster = test_cluster().await;
    let database_url = cluster.create_database(&unique_db_name(prefix)).await.expect("test database");
    let pool = PgPool::connect(&database_url).await.expect("pool");
    (database_url, pool)
}

/// A new, empty directory under the system's temporary directory, named `{prefix}-{uuid}`.
pub fn scratch_dir(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}
