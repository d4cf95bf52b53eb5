//! A world of 10,000 projects and 10,000 versions: every listing still walks it once, in order.

use std::time::Duration;

use modelcopy::simulator::{Seed, SeedAccount, SeedProject, SeedVersion, SimConfig};

use crate::helpers::{client, REGION};

const ACCOUNT: &str = "444444444444";
const KEY: &str = "AKIASCALE00000000000";
const PROJECTS: usize = 10_000;

#[tokio::test]
async fn ten_thousand_projects_page_newest_first_each_once() {
    let projects = (0..PROJECTS)
        .map(|i| SeedProject {
            account_id: ACCOUNT.into(),
            region: REGION.into(),
            name: format!("p{i:05}"),
            created_millis: Some(1_700_000_000_000 + i as i64 * 1_000),
            versions: vec![SeedVersion { name: "v1".into(), status: None, created_millis: None }],
        })
        .collect();
    let handle = modelcopy::simulator::start(SimConfig {
        seed: Seed {
            accounts: vec![SeedAccount {
                account_id: ACCOUNT.into(),
                access_key_id: KEY.into(),
                secret_access_key: None,
                roles: Vec::new(),
            }],
            projects,
        },
        ..SimConfig::default()
    })
    .await
    .expect("a large world starts");
    assert_eq!(handle.project_count(), PROJECTS);
    let client = client(&handle, KEY, None);

    let mut seen = Vec::with_capacity(PROJECTS);
    let mut token = None;
    for _ in 0..=PROJECTS / 100 {
        let page = client.describe_projects().max_results(100).set_next_token(token).send().await.expect("page");
        seen.extend(page.project_descriptions().iter().map(|p| p.project_arn().unwrap().to_owned()));
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen.len(), PROJECTS);
    let expected_first = format!(
        "arn:aws:rekognition:{REGION}:{ACCOUNT}:project/p{:05}/{}",
        PROJECTS - 1,
        1_700_000_000_000 + (PROJECTS as i64 - 1) * 1_000
    );
    assert_eq!(seen[0], expected_first);
    assert!(seen.last().unwrap().contains(":project/p00000/"));
    let millis: Vec<i64> = seen.iter().map(|arn| arn.rsplit('/').next().unwrap().parse().unwrap()).collect();
    assert!(millis.windows(2).all(|pair| pair[0] > pair[1]), "strictly newest first, so each once");

    // A poll of one version by name in the middle of the world.
    let middle =
        format!("arn:aws:rekognition:{REGION}:{ACCOUNT}:project/p05000/{}", 1_700_000_000_000_i64 + 5_000 * 1_000);
    let versions = tokio::time::timeout(
        Duration::from_secs(5),
        client.describe_project_versions().project_arn(middle).version_names("v1").send(),
    )
    .await
    .expect("answers")
    .expect("described");
    assert_eq!(versions.project_version_descriptions().len(), 1);
}
