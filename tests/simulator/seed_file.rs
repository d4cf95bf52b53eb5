//! The demo seed in `deploy/sim-seed.json` loads and gives the documented world, policy included.

use std::time::Duration;

use aws_sdk_rekognition::types::ProjectVersionStatus;
use modelcopy::simulator::{self, Seed, SeedFile, SimConfig};

use crate::helpers::{client_with_secret, output_config};

const DEMO_SEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/sim-seed.json");
const KEY_1: &str = "AKIADEMO111111111111";
const SECRET_1: &str = "demo-secret-1";
const KEY_2: &str = "AKIADEMO222222222222";
const SECRET_2: &str = "demo-secret-2";

fn demo_seed() -> Seed {
    Seed::from_json_file(DEMO_SEED).expect("demo seed loads")
}

#[test]
fn demo_seed_arns_are_stable() {
    let seed = demo_seed();
    let source = seed.project_arn("111111111111", "us-east-1", "catalog-detector").unwrap();
    assert!(source.starts_with("arn:aws:rekognition:us-east-1:111111111111:project/catalog-detector/"));
    assert_eq!(demo_seed().project_arn("111111111111", "us-east-1", "catalog-detector"), Some(source));
    assert!(seed.project_arn("222222222222", "us-east-1", "catalog-detector-prod").is_some());
    assert!(seed.version_arn("111111111111", "us-east-1", "catalog-detector", "v2").is_some());
}

#[tokio::test]
async fn demo_accounts_see_their_projects() {
    let seed = demo_seed();
    let config = SimConfig { copy_duration: Duration::from_millis(100), seed: seed.clone(), ..SimConfig::default() };
    let handle = simulator::start(config).await.unwrap();

    let source = seed.project_arn("111111111111", "us-east-1", "catalog-detector").unwrap();
    let versions = client_with_secret(&handle, KEY_1, SECRET_1, None)
        .describe_project_versions()
        .project_arn(&source)
        .send()
        .await;
    let versions = versions.unwrap();
    let described: Vec<(&str, Option<&ProjectVersionStatus>)> = versions
        .project_version_descriptions()
        .iter()
        .map(|version| (version.project_version_arn().unwrap(), version.status()))
        .collect();
    let v1 = seed.version_arn("111111111111", "us-east-1", "catalog-detector", "v1").unwrap();
    let v2 = seed.version_arn("111111111111", "us-east-1", "catalog-detector", "v2").unwrap();
    let completed = Some(&ProjectVersionStatus::TrainingCompleted);
    assert_eq!(described, vec![(v2.as_str(), completed), (v1.as_str(), completed)]);

    let projects = client_with_secret(&handle, KEY_2, SECRET_2, None).describe_projects().send().await.unwrap();
    let arns: Vec<&str> = projects.project_descriptions().iter().filter_map(|p| p.project_arn()).collect();
    assert_eq!(arns, vec![seed.project_arn("222222222222", "us-east-1", "catalog-detector-prod").unwrap()]);
}

/// The demo copy — 222222222222 copies 111111111111's model — works with policies required, as the binary runs.
#[tokio::test]
async fn the_demo_policy_allows_the_demo_copy() {
    let file = SeedFile::from_json_file(DEMO_SEED).expect("demo seed loads");
    assert_eq!(file.policies.len(), 1);
    let seed = file.seed.clone();
    let handle = simulator::start(SimConfig {
        seed: file.seed,
        project_policies: file.policies,
        require_project_policy: true,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let source = seed.project_arn("111111111111", "us-east-1", "catalog-detector").unwrap();
    let policies = client_with_secret(&handle, KEY_1, SECRET_1, None)
        .list_project_policies()
        .project_arn(&source)
        .send()
        .await
        .unwrap();
    assert_eq!(policies.project_policies().len(), 1);

    let copied = client_with_secret(&handle, KEY_2, SECRET_2, None)
        .copy_project_version()
        .source_project_arn(&source)
        .source_project_version_arn(seed.version_arn("111111111111", "us-east-1", "catalog-detector", "v2").unwrap())
        .destination_project_arn(seed.project_arn("222222222222", "us-east-1", "catalog-detector-prod").unwrap())
        .version_name("demo-copy")
        .output_config(output_config())
        .send()
        .await;
    assert!(copied.is_ok(), "{copied:?}");
}
