//! The CLI binary's commands against the real service.

use clap::Parser;
use modelcopy::cli::{self, Cli, Outcome};

use crate::helpers::TestApp;

async fn run(args: &[&str]) -> (Outcome, String) {
    let cli = Cli::try_parse_from(args).expect("arguments parse");
    let mut out = Vec::new();
    let outcome = cli::execute(&cli, &mut out).await.expect("command succeeds");
    (outcome, String::from_utf8(out).unwrap())
}

#[tokio::test]
async fn copy_and_watch_from_the_cli_follows_the_copy_to_its_end() {
    let app = TestApp::spawn().await;
    let (source, version, destination) = (app.source_project(), app.source_version(), app.destination_project());
    let (outcome, out) = run(&[
        "modelcopy-cli",
        "--endpoint",
        &app.endpoint,
        "--principal",
        "carol",
        "copy",
        "--source-project-arn",
        &source,
        "--source-version-arn",
        &version,
        "--destination-project-arn",
        &destination,
        "--version-name",
        "from-cli",
        "--s3-bucket",
        "model-output",
        "--tag",
        "team=vision",
        "--watch",
    ])
    .await;
    assert_eq!(outcome, Outcome::Done, "{out}");
    assert!(out.contains("succeeded"), "{out}");
    assert!(out.contains("COPYING_COMPLETED"), "{out}");

    let (_, listed) =
        run(&["modelcopy-cli", "--endpoint", &app.endpoint, "--principal", "carol", "--output", "json", "list"]).await;
    let line = listed.lines().find(|l| l.contains("from-cli")).expect("the copy is listed");
    let copy: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(copy["state"], "succeeded");
    assert_eq!(copy["principal"], "carol");
    app.stop().await;
}

/// `rollout create --watch` queues one copy per `--to` and follows them to their end, a line per change (the
/// output is not a terminal), then the rollout; `rollout get` and `list` show it.
#[tokio::test]
async fn a_rollout_from_the_cli_is_followed_per_destination_to_its_end() {
    let more = "333333333333";
    let app =
        TestApp::spawn_with(crate::helpers::Options { more_destinations: vec![more], ..Default::default() }).await;
    let second = app.seed.project_arn(more, crate::helpers::REGION, "detector-prod").unwrap();
    let (source, version, destination) = (app.source_project(), app.source_version(), app.destination_project());
    let base = ["modelcopy-cli", "--endpoint", &app.endpoint, "--principal", "carol"];
    let mut args: Vec<&str> = base.to_vec();
    args.extend([
        "rollout",
        "create",
        "--source-project-arn",
        &source,
        "--from",
        &version,
        "--to",
        &destination,
        "--to",
        &second,
        "--version-name",
        "rolled",
        "--s3-bucket",
        "model-output",
        "--delete-after",
        "7d",
        "--watch",
    ]);
    let (outcome, out) = run(&args).await;
    assert_eq!(outcome, Outcome::Done, "{out}");
    let last: Vec<&str> = out.lines().rev().take(3).collect();
    assert!(last[2].contains("succeeded  2 copies: 2 succeeded"), "{out}");
    assert!(last.iter().take(2).all(|line| line.contains("succeeded") && line.contains("COPYING_COMPLETED")), "{out}");
    assert!(out.lines().count() > 3, "the changes on the way: {out}");
    let id = last[2].split_whitespace().next().unwrap().to_owned();

    let mut json_args = base.to_vec();
    json_args.extend(["-o", "json", "rollout", "get", &id]);
    let (_, got) = run(&json_args).await;
    let rollout: serde_json::Value = serde_json::from_str(got.trim()).unwrap();
    assert_eq!(rollout["state"], "succeeded");
    assert_eq!(rollout["copies"][1]["destination_project_arn"], second.as_str());
    assert_eq!(rollout["copies"][0]["delete_after_seconds"], 604_800);
    let mut list_args = base.to_vec();
    list_args.extend(["rollout", "list"]);
    let (_, listed) = run(&list_args).await;
    assert!(listed.starts_with(&id), "{listed}");
    app.stop().await;
}
