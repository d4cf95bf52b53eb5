//! The container's entrypoint, run as the image runs it (no Docker engine runs on these machines, see
//! deploy/README.md): the Kubernetes settings (`deploy/k8s/base/modelcopy.toml`) and policies, the environment the
//! Deployment and the migration Job give, and in place of the volumes they mount, files the test makes.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::authn::Pki;
use crate::support;
use crate::support::health::{self, ServingStatus};

fn base() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/k8s/base")
}

/// `modelcopy <command>` with the Deployment's environment; the mounted files' paths pointed at `pki`'s, the
/// addresses at free loopback ports.
fn container(command: &str, database_url: &str, pki: &Pki) -> Command {
    let mut container = Command::new(env!("CARGO_BIN_EXE_modelcopy"));
    container
        .arg(command)
        .env("MODELCOPY_CONFIG", base().join("modelcopy.toml"))
        .env("MODELCOPY_DATABASE_URL", database_url)
        .env("MODELCOPY_LISTEN_ADDR", "127.0.0.1:0")
        .env("MODELCOPY_HEALTH_LISTEN_ADDR", "127.0.0.1:0")
        .env("MODELCOPY_TELEMETRY__METRICS_LISTEN_ADDR", "127.0.0.1:0")
        .env("MODELCOPY_AUTH__TLS__CERT_FILE", pki.path("server.pem"))
        .env("MODELCOPY_AUTH__TLS__KEY_FILE", pki.path("server.key"))
        .env("MODELCOPY_AUTH__TLS__CLIENT_CA_FILE", pki.path("client-ca.pem"))
        .env("MODELCOPY_AUTH__JWT__JWKS_FILE", pki.path("jwks.json"))
        .env("MODELCOPY_AUTHZ__POLICIES", base().join("policies"))
        // Nothing here reaches AWS: no instance metadata either.
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("MODELCOPY_LOG_FORMAT", "json")
        .env("RUST_LOG", "info");
    container
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the crate's build reads from the checkout, beside what cargo finds by itself: build.rs's inputs (the
/// protos, the dashboard's built page), the migrations and policies compiled in, and the build's flags.
const BUILD_INPUTS: [&str; 9] = [
    "Cargo.toml",
    "Cargo.lock",
    "build.rs",
    ".cargo",
    "proto",
    "migrations",
    "deploy/policies",
    "src",
    "dashboard/dist",
];

/// No Docker engine runs here, so the image's build stage is checked against what the build reads: each input is
/// copied in before `cargo build`. (A build stage without `dashboard/dist` fails in build.rs.)
#[test]
fn the_image_build_stage_copies_everything_the_build_reads() {
    let dockerfile = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/Dockerfile")).unwrap();
    let build_stage = dockerfile.split("cargo build").next().unwrap();
    let copied: Vec<&str> = build_stage
        .lines()
        .filter_map(|line| line.strip_prefix("COPY "))
        .flat_map(|args| {
            let words: Vec<&str> = args.split_whitespace().filter(|word| !word.starts_with("--")).collect();
            words[..words.len() - 1].to_vec()
        })
        .collect();
    for input in BUILD_INPUTS {
        assert!(copied.contains(&input), "deploy/Dockerfile's build stage does not copy {input}: it copies {copied:?}");
        assert!(Path::new(env!("CARGO_MANIFEST_DIR")).join(input).exists(), "{input} is not in the checkout");
    }
}

/// The migration Job's command, then the Deployment's: the replica serves TLS, answers its probes in plaintext on
/// the health port (ready, alive), and stops cleanly on SIGTERM, as the kubelet stops it.
#[tokio::test]
async fn the_entrypoint_migrates_serves_and_stops_as_the_kubernetes_manifests_run_it() {
    let (url, pool) = support::fresh_database("entrypoint").await;
    let pki = Pki::new();

    let migrated = container("migrate", &url, &pki).output().expect("modelcopy migrate runs");
    assert!(migrated.status.success(), "{}", String::from_utf8_lossy(&migrated.stderr));
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations").fetch_one(&pool).await.unwrap();
    assert!(applied > 0, "the Job applied the migrations");

    let child = container("serve", &url, &pki)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("modelcopy serve starts");
    let mut replica = Running(child);
    let stdout = replica.0.stdout.take().unwrap();
    let lines = std::thread::spawn(move || BufReader::new(stdout).lines().take(3).collect::<Result<Vec<_>, _>>())
        .join()
        .unwrap()
        .expect("its first lines");
    assert!(lines[0].starts_with("modelcopy metrics on 127.0.0.1:"), "{lines:?}");
    let health = lines[1].strip_prefix("modelcopy health on ").unwrap_or_else(|| panic!("{lines:?}"));
    assert!(lines[2].starts_with("modelcopy listening on 127.0.0.1:"), "{lines:?}");

    let probe = format!("http://{health}");
    let ready = health::until(&probe, modelcopy::health::SERVICE, ServingStatus::Serving).await;
    assert_eq!(ready, Some(ServingStatus::Serving), "the readiness probe passes");
    let alive = health::status(&probe, modelcopy::health::LIVENESS).await;
    assert_eq!(alive, Some(ServingStatus::Serving), "the liveness probe passes");

    let pid = replica.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let mut exited = None;
    for _ in 0..300 {
        exited = replica.0.try_wait().unwrap();
        if exited.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let exited = exited.expect("it stops within 30 s of SIGTERM (the pod's grace period)");
    let mut logged = String::new();
    std::io::Read::read_to_string(&mut replica.0.stderr.take().unwrap(), &mut logged).unwrap();
    assert!(exited.success(), "a clean stop: {exited:?}\n{logged}");
    // The Deployment asks for JSON logs: every line is one object, with its level and target.
    let lines: Vec<serde_json::Value> =
        logged.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"))).collect();
    assert!(lines.iter().any(|line| line["message"] == "modelcopy serving"), "{logged}");
    assert!(lines.iter().all(|line| line["level"].is_string() && line["target"].is_string()), "{logged}");
}
