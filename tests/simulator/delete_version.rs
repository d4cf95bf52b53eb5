//! DeleteProjectVersion.

use std::time::Duration;

use aws_sdk_rekognition::types::ProjectVersionStatus;
use modelcopy::simulator::{Seed, SeedVersion, SimConfig};

use crate::helpers::*;

#[tokio::test]
async fn a_deleted_version_is_gone_and_its_name_free() {
    let sim = Sim::start(Duration::ZERO).await;
    let client = sim.client_without_retries(KEY_A);
    let many = sim.project_arn(ACCOUNT_A, REGION, "many");
    let m3 = sim.version_arn(ACCOUNT_A, REGION, "many", "m3");

    let deleted = client.delete_project_version().project_version_arn(&m3).send().await.expect("deleted");
    assert_eq!(deleted.status(), Some(&ProjectVersionStatus::Deleting));

    let left: Vec<String> = client
        .describe_project_versions()
        .project_arn(&many)
        .send()
        .await
        .unwrap()
        .project_version_descriptions()
        .iter()
        .map(|v| v.project_version_arn().unwrap().to_owned())
        .collect();
    assert_eq!(left.len(), MANY_VERSIONS.len() - 1);
    assert!(!left.contains(&m3));

    let again = client.delete_project_version().project_version_arn(&m3).send().await.unwrap_err().into_service_error();
    assert!(again.is_resource_not_found_exception(), "{again:?}");

    copy_source_v1(&sim, &client, &many, "m3").await.expect("the name is free again");
}

#[tokio::test]
async fn a_copy_in_progress_cannot_be_deleted_until_it_ends() {
    let sim = Sim::start(Duration::from_millis(400)).await;
    let client = sim.client_without_retries(KEY_A);
    let dest = sim.project_arn(ACCOUNT_A, REGION, "dest");
    let copy = copy_source_v1(&sim, &client, &dest, "busy").await.unwrap();

    let err = client.delete_project_version().project_version_arn(&copy).send().await.unwrap_err().into_service_error();
    assert!(err.is_resource_in_use_exception(), "{err:?}");

    tokio::time::sleep(Duration::from_millis(450)).await;
    client.delete_project_version().project_version_arn(&copy).send().await.expect("a completed copy can be deleted");
}

#[tokio::test]
async fn a_running_model_cannot_be_deleted() {
    let mut seed = seed();
    seed.projects[0].versions.push(SeedVersion {
        name: "live".into(),
        status: Some("RUNNING".into()),
        created_millis: None,
    });
    let sim = Sim::start_with(SimConfig { seed: Seed { ..seed }, ..config(Duration::from_secs(2)) }).await;
    let err = sim
        .client_without_retries(KEY_A)
        .delete_project_version()
        .project_version_arn(sim.version_arn(ACCOUNT_A, REGION, "source", "live"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_resource_in_use_exception(), "{err:?}");
}

#[tokio::test]
async fn only_the_owner_deletes_and_only_exact_arns() {
    let sim = Sim::start(Duration::from_secs(2)).await;
    let v1 = sim.version_arn(ACCOUNT_A, REGION, "source", "v1");

    let err = sim
        .client_without_retries(KEY_B)
        .delete_project_version()
        .project_version_arn(&v1)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_access_denied_exception(), "{err:?}");

    let other_time = format!("{v1}7");
    let err = sim
        .client_without_retries(KEY_A)
        .delete_project_version()
        .project_version_arn(&other_time)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");
}
