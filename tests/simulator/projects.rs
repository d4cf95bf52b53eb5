//! CreateProject and DescribeProjects.

use std::time::Duration;

use aws_sdk_rekognition::types::{CustomizationFeature, ProjectStatus};

use crate::helpers::*;

#[tokio::test]
async fn created_project_is_described() {
    let sim = Sim::start(Duration::from_secs(2)).await;
    let client = sim.client(KEY_A);
    let before = now_millis();

    let created = client.create_project().project_name("fresh").send().await.expect("project is created");

    let arn = created.project_arn().expect("ARN is returned").to_owned();
    let prefix = format!("arn:aws:rekognition:{REGION}:{ACCOUNT_A}:project/fresh/");
    let millis: i64 = arn.strip_prefix(&prefix).expect("ARN of the caller's account and region").parse().unwrap();
    assert!((before..=now_millis()).contains(&millis));

    let described = client.describe_projects().project_names("fresh").send().await.expect("describe succeeds");
    let projects = described.project_descriptions();
    assert_eq!(projects.len(), 1);
    assert_eq!(projects[0].project_arn(), Some(arn.as_str()));
    assert_eq!(projects[0].status(), Some(&ProjectStatus::Created));
    assert_eq!(projects[0].feature(), Some(&CustomizationFeature::CustomLabels));
    assert_eq!(projects[0].creation_timestamp().expect("creation time").secs(), millis / 1000);
}

#[tokio::test]
async fn projects_are_those_of_the_callers_account_and_region() {
    let sim = Sim::start(Duration::from_secs(2)).await;

    let described = sim.client(KEY_A).describe_projects().send().await.expect("describe succeeds");

    let mut arns: Vec<&str> = described.project_descriptions().iter().filter_map(|p| p.project_arn()).collect();
    arns.sort();
    let mut expected = vec![
        sim.project_arn(ACCOUNT_A, REGION, "source"),
        sim.project_arn(ACCOUNT_A, REGION, "dest"),
        sim.project_arn(ACCOUNT_A, REGION, "many"),
    ];
    expected.sort();
    assert_eq!(arns, expected);
}

#[tokio::test]
async fn project_names_are_unique_per_account_and_region() {
    let sim = Sim::start(Duration::from_secs(2)).await;

    let err = sim.client(KEY_A).create_project().project_name("dest").send().await.unwrap_err();
    assert!(err.into_service_error().is_resource_in_use_exception());

    // Account B has no project named `dest`.
    sim.client(KEY_B).create_project().project_name("dest").send().await.expect("other account may use the name");
}

#[tokio::test]
async fn projects_paginate_newest_first() {
    let sim = Sim::start(Duration::from_secs(2)).await;
    let client = sim.client(KEY_A);

    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..10 {
        let page = client.describe_projects().max_results(1).set_next_token(token.clone()).send().await.unwrap();
        assert!(page.project_descriptions().len() <= 1);
        seen.extend(page.project_descriptions().iter().map(|p| p.project_arn().unwrap().to_owned()));
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    // Seeded projects without a creation time are created in seed order: source, dest, many.
    let expected: Vec<String> =
        ["many", "dest", "source"].iter().map(|name| sim.project_arn(ACCOUNT_A, REGION, name)).collect();
    assert_eq!(seen, expected);
}
