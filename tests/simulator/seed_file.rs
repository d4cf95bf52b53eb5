//! The demo seed in `deploy/sim-seed.json` loads and gives the documented world.

use std::time::Duration;

use aws_sdk_rekognition::types::ProjectVersionStatus;
use modelcopy::simulator::{self, Seed, SimConfig};

use crate::helpers::client;

fn demo_seed() -> Seed {
    Seed::from_json_file(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/sim-seed.json"))
        .expect("demo seed loads")
}

#[test]
fn demo_seed_arns_are_stable() {
    let seed = demo_seed();
    let source = seed
        .project_arn("111111111111", "us-east-1", "catalog-detector")
        .unwrap();
    assert!(
        source.starts_with("arn:aws:rekognition:us-east-1:111111111111:project/catalog-detector/")
    );
    assert_eq!(
        demo_seed().project_arn("111111111111", "us-east-1", "catalog-detector"),
        Some(source)
    );
    assert!(seed
        .project_arn("222222222222", "us-east-1", "catalog-detector-prod")
        .is_some());
    assert!(seed
        .version_arn("111111111111", "us-east-1", "catalog-detector", "v2")
        .is_some());
}

#[tokio::test]
async fn demo_accounts_see_their_projects() {
    let seed = demo_seed();
    let config = SimConfig {
        copy_duration: Duration::from_millis(100),
        seed: seed.clone(),
        ..SimConfig::default()
    };
    let handle = simulator::start(config).await.unwrap();

    let source = seed
        .project_arn("111111111111", "us-east-1", "catalog-detector")
        .unwrap();
    let versions = client(&handle, "AKIADEMO111111111111", None)
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
    let v1 = seed
        .version_arn("111111111111", "us-east-1", "catalog-detector", "v1")
        .unwrap();
    let v2 = seed
        .version_arn("111111111111", "us-east-1", "catalog-detector", "v2")
        .unwrap();
    let completed = Some(&ProjectVersionStatus::TrainingCompleted);
    assert_eq!(
        described,
        vec![(v2.as_str(), completed), (v1.as_str(), completed)]
    );

    let projects = client(&handle, "AKIADEMO222222222222", None)
        .describe_projects()
        .send()
        .await
        .unwrap();
    let arns: Vec<&str> = projects
        .project_descriptions()
        .iter()
        .filter_map(|p| p.project_arn())
        .collect();
    assert_eq!(
        arns,
        vec![seed
            .project_arn("222222222222", "us-east-1", "catalog-detector-prod")
            .unwrap()]
    );
}
