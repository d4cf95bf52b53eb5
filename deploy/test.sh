#!/usr/bin/env bash
# Runs every test: installs what is missing, checks deploy/, builds (debug), runs all Rust tests, then the Python tests
# (boto3 against the Rekognition simulator binary; grpcio against `modelcopy dev` through reflection). Exits non-zero
# if any step fails; the last line says which step, or the totals.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

step="start"
on_exit() {
  local status=$?
  if [ "$status" -ne 0 ]; then
    echo "deploy/test.sh: FAILED in step: $step (exit $status)" >&2
  fi
}

# Each runner's output is shown as it comes and kept, to add up the counts for the final line.
logs="$(mktemp -d)"
trap 'on_exit; rm -rf "$logs"' EXIT

step="set-up (deploy/setup-debian.sh)"
deploy/setup-debian.sh

# Cheap and independent of the build: first, so that a broken manifest fails in seconds.
step="deploy: hadolint deploy/Dockerfile"
.venv/bin/hadolint --config deploy/.hadolint.yaml deploy/Dockerfile
for overlay in deploy/k8s/overlays/*/; do
  step="deploy: kubectl kustomize $overlay | kubernetes-validate --strict"
  kubectl kustomize "$overlay" >"$logs/manifests.yaml"
  .venv/bin/kubernetes-validate --strict --quiet "$logs/manifests.yaml"
done
echo "deploy/test.sh: Dockerfile lint-free; every overlay's manifests ($(ls -d deploy/k8s/overlays/*/ | wc -l)) valid"

step="build (cargo build --locked --bins --tests)"
cargo build --locked --bins --tests

step="Rust tests (cargo test --locked)"
cargo test --locked 2>&1 | tee "$logs/cargo.log"

step="Python tests (pytest -q tests/boto3)"
REKOGNITION_SIM_BIN="$PWD/target/debug/rekognition-sim" .venv/bin/pytest -q tests/boto3 2>&1 | tee "$logs/pytest.log"

# cargo prints "test result: ok. N passed; M failed; ..." per test binary; pytest -q ends with "N passed, ... in Xs".
count_passed() { awk "$1"' { for (i = 1; i < NF; i++) if ($(i + 1) ~ /^passed[;,]?$/) n += $i } END { print n + 0 }' "$2"; }
rust_passed="$(count_passed '/^test result:/' "$logs/cargo.log")"
python_passed="$(tail -n 1 "$logs/pytest.log" | count_passed '1' -)"

step="summary"
echo "deploy/test.sh: all steps passed: Rust $rust_passed passed, Python $python_passed passed"
echo "total: $((rust_passed + python_passed)) passed, 0 failed"
