//! DescribeProjectVersions pages: every version once, newest first, and bad tokens refused.

use std::time::Duration;

use crate::helpers::*;

#[tokio::test]
async fn pages_of_two_show_every_version_once_newest_first() {
    let sim = Sim::start(Duration::from_secs(2)).await;
    let client = sim.client(KEY_A);
    let many = sim.project_arn(ACCOUNT_A, REGION, "many");

    let mut pages = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..10 {
        let page = client
            .describe_project_versions()
            .project_arn(&many)
            .max_results(2)
            .set_next_token(token.clone())
            .send()
            .await
            .expect("page is described");
        pages.push(
            page.project_version_descriptions()
                .iter()
                .map(|version| version.project_version_arn().unwrap().to_owned())
                .collect::<Vec<_>>(),
        );
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }

    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 2, 1]);
    let seen: Vec<String> = pages.concat();
    let newest_first: Vec<String> =
        MANY_VERSIONS.iter().rev().map(|name| sim.version_arn(ACCOUNT_A, REGION, "many", name)).collect();
    assert_eq!(seen, newest_first);
}

#[tokio::test]
async fn version_names_select_versions() {
    let sim = Sim::start(Duration::from_secs(2)).await;
    let many = sim.project_arn(ACCOUNT_A, REGION, "many");

    let output = sim
        .client(KEY_A)
        .describe_project_versions()
        .project_arn(&many)
        .version_names("m2")
        .version_names("m4")
        .send()
        .await
        .unwrap();

    let arns: Vec<&str> =
        output.project_version_descriptions().iter().filter_map(|version| version.project_version_arn()).collect();
    assert_eq!(
        arns,
        vec![sim.version_arn(ACCOUNT_A, REGION, "many", "m4"), sim.version_arn(ACCOUNT_A, REGION, "many", "m2")]
    );
    assert_eq!(output.next_token(), None);
}

#[tokio::test]
async fn new_copies_do_not_disturb_a_walk_in_progress() {
    let sim = Sim::start(Duration::from_secs(2)).await;
    let client = sim.client(KEY_A);
    let many = sim.project_arn(ACCOUNT_A, REGION, "many");
    let first = client.describe_project_versions().project_arn(&many).max_results(2).send().await.unwrap();

    copy_source_v1(&sim, &client, &many, "newer").await.expect("copy starts");

    let second = client
        .describe_project_versions()
        .project_arn(&many)
        .max_results(2)
        .set_next_token(first.next_token().map(str::to_owned))
        .send()
        .await
        .unwrap();
    let arns: Vec<&str> =
        second.project_version_descriptions().iter().filter_map(|v| v.project_version_arn()).collect();
    assert_eq!(
        arns,
        vec![sim.version_arn(ACCOUNT_A, REGION, "many", "m3"), sim.version_arn(ACCOUNT_A, REGION, "many", "m2")]
    );
}

#[tokio::test]
async fn bad_next_token_is_invalid_pagination_token() {
    let sim = Sim::start(Duration::from_secs(2)).await;
    let err = sim
        .client(KEY_A)
        .describe_project_versions()
        .project_arn(sim.project_arn(ACCOUNT_A, REGION, "many"))
        .next_token("not-a-token")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_invalid_pagination_token_exception(), "{err:?}");
}
