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
