//! The dashboard in a real browser: Debian's Chromium, driven by `dashboard/test/browser.mjs` (playwright-core),
//! against a running service with TLS and JWT authentication. The page is signed in with a token the way its user
//! would (typed into its form); a copy made during the test must show up and move to SUCCEEDED on the page without
//! a reload. A screenshot of the page is kept at `target/artefacts/dashboard.png` (the README shows one).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use modelcopy::web::WebSettings;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::authn::{self, Pki};
use crate::helpers::{Options, TestApp};

fn artefact() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/artefacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("dashboard.png")
}

#[tokio::test]
async fn a_copy_made_while_the_page_is_open_moves_to_succeeded_on_it_without_a_reload() {
    let pki = Pki::new();
    let web = WebSettings { dashboard: true, ..WebSettings::default() };
    let options = Options {
        auth: pki.auth(false),
        web: Some(web),
        // Slow enough that the page shows the copy in flight, not only at its end.
        copy_duration: Duration::from_secs(2),
        ..Default::default()
    };
    let app = TestApp::spawn_with(options).await;
    let token = pki.token();
    let mut client = authn::client(&app, pki.ca_pem(), None, Some(&token)).await.expect("a client with the token");
    // A copy from before the page opened: part of its first snapshot, or of the failures' and copies' lists.
    client.copy_model_version(app.copy_request("before-the-page")).await.unwrap();

    let screenshot = artefact();
    let _ = std::fs::remove_file(&screenshot);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboard/test/browser.mjs");
    let mut browser = tokio::process::Command::new("node")
        .arg(&script)
        .arg("--url")
        .arg(format!("{}/dashboard/", app.endpoint))
        .arg("--token")
        .arg(&token)
        .arg("--screenshot")
        .arg(&screenshot)
        .current_dir(script.parent().unwrap())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs (deploy/setup-debian.sh installs it, Chromium and the page's packages)");
    let mut lines = BufReader::new(browser.stdout.take().unwrap()).lines();
    let mut next_line = async || {
        tokio::time::timeout(Duration::from_secs(150), lines.next_line())
            .await
            .expect("the browser script is bounded")
            .unwrap()
            .unwrap_or_default()
    };

    let ready = next_line().await;
    assert_eq!(ready, "READY", "the page went live");
    let copy = client.copy_model_version(app.copy_request("during-the-test")).await.unwrap().into_inner();
    let copy_id = copy.copy.unwrap().copy_id;
    let mut stdin = browser.stdin.take().unwrap();
    stdin.write_all(format!("{copy_id}\n").as_bytes()).await.unwrap();
    stdin.flush().await.unwrap();
    let done = next_line().await;
    let history = done.strip_prefix("DONE ").unwrap_or_else(|| panic!("the page followed the copy: {done}"));
    let states: Vec<&str> = history.split(',').collect();
    assert_eq!(states.first(), Some(&"QUEUED"), "{history}");
    assert_eq!(states.last(), Some(&"SUCCEEDED"), "{history}");
    assert!(states.len() >= 3, "it was shown on its way, not only at its end: {history}");
    let status = tokio::time::timeout(Duration::from_secs(30), browser.wait()).await.unwrap().unwrap();
    assert!(status.success());
    let png = std::fs::read(&screenshot).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "a real screenshot: {} bytes", png.len());

    // The page's calls went through authentication and the audit log like any other.
    let watches: Vec<(Option<String>, String, String)> =
        sqlx::query_as("SELECT principal, authn, decision FROM audit_log WHERE rpc = 'WatchCopy' ORDER BY id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert!(!watches.is_empty());
    for (principal, authn, decision) in watches {
        assert_eq!(
            (principal.as_deref(), authn.as_str(), decision.as_str()),
            (Some("alice@example.com"), "jwt", "ALLOWED")
        );
    }
    app.stop().await;
}
