#!/usr/bin/env bash
# Runs the service on its embedded defaults: installs what is missing, then `modelcopy dev`, which starts the local
# PostgreSQL cluster, the Rekognition simulator and the server. Arguments are passed on to `modelcopy dev`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
deploy/setup-debian.sh
# Both binaries: the service, and the CLI whose command line `dev` prints. The dev profile (see Cargo.toml):
# deploy/test.sh then reuses this build instead of compiling everything again.
cargo build --locked --bin modelcopy --bin modelcopy-cli
exec target/debug/modelcopy dev "$@"
