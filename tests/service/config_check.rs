//! `modelcopy config check`: the settings a replica would run with, or every problem with them, before it is
//! deployed.

use std::path::Path;
use std::process::{Command, Output};

use crate::support;

/// `modelcopy config check --config file` with the environment a shell that also uses the CLI might have.
fn check(file: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modelcopy"))
        .args(["config", "check", "--config"])
        .arg(file)
        .env("MODELCOPY_TOKEN", "a-bearer-token-for-the-cli")
        .env("RUST_LOG", "error")
        .output()
        .expect("modelcopy runs")
}

fn written(text: &str) -> std::path::PathBuf {
    let file = support::scratch_dir("modelcopy-config-check").join("settings.toml");
    std::fs::write(&file, text).unwrap();
    file
}

#[test]
fn the_example_settings_print_in_full_with_their_secret_masked() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/example.toml");
    let output = check(&example);
    let shown = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(!shown.contains("demo-secret-1"), "the example's secret key is masked: {shown}");
    assert!(shown.contains("secret_access_key = \"********\""), "{shown}");
    assert!(shown.contains("max_attempts = "), "defaults the file leaves out are shown: {shown}");
    // What it prints is settings a replica accepts.
    let output = check(&written(&shown));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn a_misspelt_key_and_every_broken_rule_are_named_and_exit_1() {
    let output =
        check(&written("[accounts.111111111111]\nregion = \"us-east-1\"\nrole_ar = \"arn:aws:iam::1:role/r\"\n"));
    let problems = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1), "{problems}");
    assert!(problems.contains("role_ar"), "{problems}");

    let output = check(&written(
        "[accounts.111111111111]\nregion = \"us-east-1\"\nlimits.copy_per_second = inf\nlimits.pacing_margin = 0.9\n",
    ));
    let problems = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1), "{problems}");
    for rule in ["limits.copy_per_second (inf)", "limits.pacing_margin (0.9)"] {
        assert!(problems.contains(rule), "{rule} missing: {problems}");
    }
    assert!(output.stdout.is_empty(), "nothing printed as settings when they are refused");
}
