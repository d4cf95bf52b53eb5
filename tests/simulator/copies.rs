//! CopyProjectVersion followed by polling DescribeProjectVersions, as the service does it.

use std::time::Duration;

use aws_sdk_rekognition::types::ProjectVersionStatus;
use aws_sdk_rekognition::Client;

use crate::helpers::*;

const COPY_DURATION: Duration = Duration::from_millis(800);

/// Polls every 100 ms, at most 50 times, until the version leaves COPYING_IN_PROGRESS.
async fn poll_until_copy_ends(
    client: &Client,
    project_arn: &str,
    version_name: &str,
) -> (ProjectVersionStatus, Option<String>) {
    for _ in 0..50 {
        let version = describe_version(client, project_arn, version_name).await;
        let status = version.status().cloned().expect("status is set");
        if status != ProjectVersionStatus::CopyingInProgress {
            return (status, version.status_message().map(str::to_owned));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("copy of {version_name} still in progress after 5 s");
}

#[tokio::test]
async fn copy_is_in_progress_then_completed() {
    let sim = Sim::start(COPY_DURATION).await;
    let client = sim.client(KEY_A);
    let dest = sim.project_arn(ACCOUNT_A, REGION, "dest");
    let before = now_millis();

    let arn = copy_source_v1(&sim, &client, &dest, "copy-1").await.expect("copy starts");

    let prefix = format!("arn:aws:rekognition:{REGION}:{ACCOUNT_A}:project/dest/version/copy-1/");
    let millis: i64 = arn.strip_prefix(&prefix).expect("ARN names the destination and version").parse().unwrap();
    assert!((before..=now_millis()).contains(&millis), "ARN carries the creation time");

    let started = describe_version(&client, &dest, "copy-1").await;
    assert_eq!(started.status(), Some(&ProjectVersionStatus::CopyingInProgress));
    assert_eq!(started.project_version_arn(), Some(arn.as_str()));
    assert_eq!(started.source_project_version_arn(), Some(sim.version_arn(ACCOUNT_A, REGION, "source", "v1").as_str()));
    assert_eq!(started.output_config().and_then(|config| config.s3_bucket()), Some("copies-bucket"));
    let created = started.creation_timestamp().expect("creation time is set");
    assert_eq!(created.secs(), millis / 1000);

    let (status, _) = poll_until_copy_ends(&client, &dest, "copy-1").await;
    assert_eq!(status, ProjectVersionStatus::CopyingCompleted);
    assert!(now_millis() - millis >= COPY_DURATION.as_millis() as i64, "not completed before the copy duration");
}

#[tokio::test]
async fn copy_to_failure_prefix_ends_failed_with_a_message() {
    let sim = Sim::start(COPY_DURATION).await;
    let client = sim.client(KEY_A);
    let dest = sim.project_arn(ACCOUNT_A, REGION, "dest");

    copy_source_v1(&sim, &client, &dest, "fail-copy").await.expect("copy starts");

    let (status, message) = poll_until_copy_ends(&client, &dest, "fail-copy").await;
    assert_eq!(status, ProjectVersionStatus::CopyingFailed);
    assert!(message.expect("a failed copy says why").contains("fail-"));
}

/// A's `source` carries a seeded policy that allows account B (see `helpers::policies`).
#[tokio::test]
async fn copy_from_another_account_with_its_policy_is_allowed() {
    let sim = Sim::start(COPY_DURATION).await;
    let client_b = sim.client(KEY_B);
    let dest = sim.project_arn(ACCOUNT_B, REGION, "b-dest");

    let arn = copy_source_v1(&sim, &client_b, &dest, "from-a").await.expect("cross-account copy starts");

    assert!(arn.starts_with(&format!("arn:aws:rekognition:{REGION}:{ACCOUNT_B}:project/b-dest/version/from-a/")));
    let version = describe_version(&client_b, &dest, "from-a").await;
    assert_eq!(version.project_version_arn(), Some(arn.as_str()));
}

#[tokio::test]
async fn a_copy_can_be_the_source_of_another_copy() {
    let sim = Sim::start(Duration::ZERO).await;
    let client = sim.client(KEY_A);
    let dest = sim.project_arn(ACCOUNT_A, REGION, "dest");
    let first = copy_source_v1(&sim, &client, &dest, "first").await.expect("copy starts");

    let second = client
        .copy_project_version()
        .source_project_arn(&dest)
        .source_project_version_arn(&first)
        .destination_project_arn(sim.project_arn(ACCOUNT_A, REGION, "source"))
        .version_name("back")
        .output_config(output_config())
        .send()
        .await
        .expect("copy of a copy starts");

    let version = describe_version(&client, &sim.project_arn(ACCOUNT_A, REGION, "source"), "back").await;
    assert_eq!(version.project_version_arn(), second.project_version_arn());
    assert_eq!(version.source_project_version_arn(), Some(first.as_str()));
    assert_eq!(version.status(), Some(&ProjectVersionStatus::CopyingCompleted));
}
