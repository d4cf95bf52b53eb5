//! Starting a simulator with a known world, and SDK clients that talk to it.

use std::time::Duration;

use aws_sdk_rekognition::config::retry::RetryConfig;
use aws_sdk_rekognition::types::{OutputConfig, ProjectVersionDescription};
use aws_sdk_rekognition::Client;
use modelcopy::simulator::{self, Seed, SeedProjectPolicy, SimConfig, SimHandle};

use crate::support::{self, account, project, Created};
pub use crate::support::{ACCOUNT_A, ACCOUNT_B, ACCOUNT_C, OTHER_REGION, REGION};

pub const KEY_A: &str = "AKIATESTAAAAAAAAAAAA";
pub const SECRET_A: &str = "secret-a";
pub const KEY_B: &str = "AKIATESTBBBBBBBBBBBB";
pub const SECRET_B: &str = "secret-b";
/// Account C's key is seeded without a secret: its id alone identifies the account, signature unchecked.
pub const KEY_C: &str = "AKIATESTCCCCCCCCCCCC";
pub const UNKNOWN_KEY: &str = "AKIAUNKNOWNUNKNOWN00";

/// The secret each test key signs with (the seeded one; anything for keys without).
pub fn secret_for(access_key_id: &str) -> &'static str {
    match access_key_id {
        KEY_A => SECRET_A,
        KEY_B => SECRET_B,
        _ => "any-secret",
    }
}

/// The names of the five versions of account A's `many` project, oldest first.
pub const MANY_VERSIONS: [&str; 5] = ["m1", "m2", "m3", "m4", "m5"];

/// A's `source` (with version `v1`) and empty `dest` in us-east-1; A's `west-source` (with `v1`) in us-west-2;
/// A's `many` (five versions); B's empty `b-dest` in us-east-1; C's empty `c-dest`. A and B have secrets.
pub fn seed() -> Seed {
    Seed {
        accounts: vec![
            account(ACCOUNT_A, KEY_A, Some(SECRET_A)),
            account(ACCOUNT_B, KEY_B, Some(SECRET_B)),
            account(ACCOUNT_C, KEY_C, None),
        ],
        projects: vec![
            project(ACCOUNT_A, REGION, "source", &["v1"], Created::Unset),
            project(ACCOUNT_A, REGION, "dest", &[], Created::Unset),
            project(ACCOUNT_A, OTHER_REGION, "west-source", &["v1"], Created::Unset),
            project(ACCOUNT_A, REGION, "many", &MANY_VERSIONS, Created::Unset),
            project(ACCOUNT_B, REGION, "b-dest", &[], Created::Unset),
            project(ACCOUNT_C, REGION, "c-dest", &[], Created::Unset),
        ],
    }
}

/// The one seeded policy: A's `source` lets account B copy its versions. A's `many` has none.
pub fn policies() -> Vec<SeedProjectPolicy> {
    vec![SeedProjectPolicy::allow_copy(ACCOUNT_A, REGION, "source", "allow-b", ACCOUNT_B)]
}

/// The configuration tests start from: the seed and policy above, policies required as on AWS.
pub fn config(copy_duration: Duration) -> SimConfig {
    SimConfig {
        copy_duration,
        seed: seed(),
        project_policies: policies(),
        require_project_policy: true,
        ..SimConfig::default()
    }
}

/// A running simulator and the seed it started from (to compute seeded ARNs).
pub struct Sim {
    pub handle: SimHandle,
    pub seed: Seed,
}

impl Sim {
    pub async fn start(copy_duration: Duration) -> Sim {
        Sim::start_with(config(copy_duration)).await
    }

    /// A simulator with any configuration (usually [`config`] with some fields changed).
    pub async fn start_with(config: SimConfig) -> Sim {
        let seed = config.seed.clone();
        let handle = simulator::start(config).await.expect("simulator starts");
        Sim { handle, seed }
    }

    /// A client whose SDK retries as it does by default.
    pub fn client(&self, access_key_id: &str) -> Client {
        client(&self.handle, access_key_id, None)
    }

    /// A client that makes exactly one attempt per call, for tests that count calls.
    pub fn client_without_retries(&self, access_key_id: &str) -> Client {
        client(&self.handle, access_key_id, Some(RetryConfig::disabled()))
    }

    pub fn project_arn(&self, account: &str, region: &str, name: &str) -> String {
        self.seed.project_arn(account, region, name).expect("seeded project")
    }

    pub fn version_arn(&self, account: &str, region: &str, project: &str, version: &str) -> String {
        self.seed.version_arn(account, region, project, version).expect("seeded version")
    }
}

pub fn client(handle: &SimHandle, access_key_id: &str, retry: Option<RetryConfig>) -> Client {
    client_with_secret(handle, access_key_id, secret_for(access_key_id), retry)
}

/// A client signing with any secret (a wrong one, for signature tests).
pub fn client_with_secret(handle: &SimHandle, access_key_id: &str, secret: &str, retry: Option<RetryConfig>) -> Client {
    support::sdk_client(&handle.endpoint_url(), access_key_id, secret, retry)
}

pub fn output_config() -> OutputConfig {
    OutputConfig::builder().s3_bucket("copies-bucket").s3_key_prefix("copies/").build()
}

pub type CopyResult = Result<
    String,
    aws_sdk_rekognition::error::SdkError<aws_sdk_rekognition::operation::copy_project_version::CopyProjectVersionError>,
>;

/// Copies A's `source`/`v1` into `destination` under `version_name`, from `client`.
pub async fn copy_source_v1(sim: &Sim, client: &Client, destination: &str, version_name: &str) -> CopyResult {
    copy_version(
        client,
        &sim.project_arn(ACCOUNT_A, REGION, "source"),
        &sim.version_arn(ACCOUNT_A, REGION, "source", "v1"),
        destination,
        version_name,
    )
    .await
}

/// Copies any version into `destination` under `version_name`, from `client`.
pub async fn copy_version(
    client: &Client,
    source_project: &str,
    source_version: &str,
    destination: &str,
    version_name: &str,
) -> CopyResult {
    let output = client
        .copy_project_version()
        .source_project_arn(source_project)
        .source_project_version_arn(source_version)
        .destination_project_arn(destination)
        .version_name(version_name)
        .output_config(output_config())
        .send()
        .await?;
    Ok(output.project_version_arn().expect("copy returns the new version's ARN").to_owned())
}

/// The one version named `version_name` in `project_arn`.
pub async fn describe_version(client: &Client, project_arn: &str, version_name: &str) -> ProjectVersionDescription {
    let output = client
        .describe_project_versions()
        .project_arn(project_arn)
        .version_names(version_name)
        .send()
        .await
        .expect("describe succeeds");
    let descriptions = output.project_version_descriptions();
    assert_eq!(descriptions.len(), 1, "exactly one version named {version_name}");
    descriptions[0].clone()
}

/// Epoch milliseconds now, for checking creation times.
pub fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
