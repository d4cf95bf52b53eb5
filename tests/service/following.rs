//! How running copies are followed (issue 13, P4): many copies into one project by listing its newest versions,
//! copies older than that page by name.

use std::time::Duration;

use modelcopy::proto::CopyState;
use modelcopy::simulator::CallRecord;

use crate::helpers::{Options, TestApp, DEST_ACCOUNT};

/// The DescribeProjectVersions calls made, as (named versions, or none for a listing).
fn describes(calls: &[CallRecord]) -> Vec<Option<Vec<String>>> {
    calls
        .iter()
        .filter(|call| call.operation == "DescribeProjectVersions")
        .map(|call| {
            call.key
                .get("VersionNames")
                .and_then(|names| names.as_array())
                .map(|names| names.iter().map(|name| name.as_str().unwrap_or_default().to_owned()).collect::<Vec<_>>())
        })
        .collect()
}

/// Thirty copies running at once into one project (queued first, then dispatched together; the account allows 30
/// in progress): named ten a call, each look at them all would be three calls; listed, one. Before listing and the
/// schedule by age, their 3 s at a 100 ms poll cost about 90 calls; now about 20 (at most one look every 100 ms
/// while the youngest is under 0.4 s old, then a quarter of its age apart).
#[tokio::test]
async fn many_copies_into_one_project_are_followed_by_listing_its_newest_versions() {
    let options = Options {
        copy_duration: Duration::from_secs(3),
        max_in_progress: Some(30),
        dispatch: false,
        ..Options::default()
    };
    let app = TestApp::spawn_with(options).await;
    let mut client = app.client("alice").await;
    let mut copies = Vec::new();
    for k in 0..30 {
        copies.push(TestApp::submit(&mut client, app.copy_request(&format!("many-{k}"))).await);
    }
    let dispatcher = app.spawn_replica().await;
    for copy in &copies {
        let ended = app.wait_until_ended(&mut client, &copy.copy_id).await;
        assert_eq!(ended.state(), CopyState::Succeeded, "{ended:?}");
    }
    let describes = describes(&app.sim.calls());
    let listings = describes.iter().filter(|names| names.is_none()).count();
    println!("{} DescribeProjectVersions for {} copies, {listings} of them listings", describes.len(), copies.len());
    assert!(listings >= 1, "the project was listed: {describes:?}");
    assert!(
        describes.len() < copies.len(),
        "fewer looks than copies: {} DescribeProjectVersions for {} copies ({listings} listings)",
        describes.len(),
        copies.len()
    );
    dispatcher.stop().await.unwrap();
    app.stop().await;
}

/// Copies whose versions are no longer among the project's newest hundred (a hundred versions were made there
/// since, by someone else) are not on the listing; they are looked at by name, and end as they should. Without
/// that they would never be seen to end.
#[tokio::test]
async fn copies_older_than_the_newest_page_are_looked_at_by_name() {
    // Long enough that they still run once the hundred others are made, on a busy machine too.
    let options = Options { copy_duration: Duration::from_secs(8), max_in_progress: Some(12), ..Options::default() };
    let app = TestApp::spawn_with(options).await;
    let mut client = app.client("alice").await;
    let mut copies = Vec::new();
    for k in 0..12 {
        copies.push(TestApp::submit(&mut client, app.copy_request(&format!("old-{k}"))).await);
    }
    // Every one of them running at Rekognition, and listed at least once.
    for _ in 0..200 {
        let listed = describes(&app.sim.calls()).iter().any(Option::is_none);
        if app.sim.call_count("CopyProjectVersion") == 12 && listed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let sdk = crate::aws_sdk_client(&app, DEST_ACCOUNT);
    for k in 0..100 {
        sdk.copy_project_version()
            .source_project_arn(app.source_project())
            .source_project_version_arn(app.source_version())
            .destination_project_arn(app.destination_project())
            .version_name(format!("someone-else-{k}"))
            .output_config(aws_sdk_rekognition::types::OutputConfig::builder().s3_bucket("model-output").build())
            .send()
            .await
            .expect("another copy into the project");
    }
    let made = chrono::Utc::now();
    for copy in &copies {
        let ended = app.wait_until_ended(&mut client, &copy.copy_id).await;
        assert_eq!(ended.state(), CopyState::Succeeded, "{ended:?}");
    }
    let since: Vec<CallRecord> = app.sim.calls().into_iter().filter(|call| call.at > made).collect();
    let named: Vec<String> = describes(&since).into_iter().flatten().flatten().collect();
    assert!(named.iter().any(|name| name.starts_with("old-")), "the old copies were named since: {named:?}");
    app.stop().await;
}
