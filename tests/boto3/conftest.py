"""Starts the rekognition-sim binary once per test session, seeded with a known world, for boto3 to talk to.

The binary is `REKOGNITION_SIM_BIN` (default `target/debug/rekognition-sim` under the repository root); build it
first with `cargo build --bin rekognition-sim`. It prints one line with its address once bound; the fixture reads
it, and terminates the simulator after the session.

The simulator runs as the binary does by default: every key has a secret, so botocore's SigV4 signatures are
verified, and cross-account copies need a project policy (A's `source` carries one for B). Account C has tight
quotas (from a `--config` file), which only the quota tests use.
"""

import json
import os
import selectors
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import boto3
import botocore.config
import pytest

from processes import stop

REPO_ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
COPY_DURATION_MS = 1000
FAIL_PREFIX = "fail-"
STARTUP_TIMEOUT_S = 30

ACCOUNT_A, KEY_A, SECRET_A = "111111111111", "AKIAPYTESTAAAAAAAAAA", "secret-a"
ACCOUNT_B, KEY_B, SECRET_B = "222222222222", "AKIAPYTESTBBBBBBBBBB", "secret-b"
ACCOUNT_C, KEY_C, SECRET_C = "333333333333", "AKIAPYTESTCCCCCCCCCC", "secret-c"

# Fixed creation times make every seeded ARN known here without asking the simulator.
SOURCE_MILLIS, DEST_MILLIS, MANY_MILLIS, B_DEST_MILLIS = 1735689600000, 1735693200000, 1735696800000, 1735700400000
C_SOURCE_MILLIS, C_DEST_MILLIS = 1735704000000, 1735707600000
MANY_VERSIONS = [("p1", 1735700000001), ("p2", 1735700000002), ("p3", 1735700000003), ("p4", 1735700000004)]

COPY_ACTION = "rekognition:CopyProjectVersion"
# A role of account B that any seeded caller may assume through the simulator's STS.
ROLE_B = "copier"


def allow_copy(account, resource="*"):
    """A project policy document letting `account` copy the project's versions (`resource` narrows it)."""
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
        "Action": COPY_ACTION, "Resource": resource}]}


SEED = {
    "accounts": [
        {"account_id": ACCOUNT_A, "access_key_id": KEY_A, "secret_access_key": SECRET_A},
        {"account_id": ACCOUNT_B, "access_key_id": KEY_B, "secret_access_key": SECRET_B, "roles": [ROLE_B]},
        {"account_id": ACCOUNT_C, "access_key_id": KEY_C, "secret_access_key": SECRET_C},
    ],
    "projects": [
        {"account_id": ACCOUNT_A, "region": REGION, "name": "source", "created_millis": SOURCE_MILLIS,
         "versions": [{"name": "v1", "created_millis": SOURCE_MILLIS + 1000}],
         "policies": [{"name": "allow-b", "document": allow_copy(ACCOUNT_B)}]},
        {"account_id": ACCOUNT_A, "region": REGION, "name": "dest", "created_millis": DEST_MILLIS},
        {"account_id": ACCOUNT_A, "region": REGION, "name": "many", "created_millis": MANY_MILLIS,
         "versions": [{"name": name, "created_millis": millis} for name, millis in MANY_VERSIONS]},
        {"account_id": ACCOUNT_B, "region": REGION, "name": "b-dest", "created_millis": B_DEST_MILLIS},
        {"account_id": ACCOUNT_C, "region": REGION, "name": "c-source", "created_millis": C_SOURCE_MILLIS,
         "versions": [{"name": "v1", "created_millis": C_SOURCE_MILLIS + 1000}]},
        {"account_id": ACCOUNT_C, "region": REGION, "name": "c-dest", "created_millis": C_DEST_MILLIS},
    ],
}

# Account C: 2 DescribeProjects a second (burst 2), one copy in progress at a time.
C_DESCRIBE_RATE, C_DESCRIBE_BURST, C_MAX_COPIES = 2, 2, 1
CONFIG = {
    "rng_seed": 1234,
    "quotas": {"per_account": {ACCOUNT_C: {
        "rate": {"DescribeProjects": {"per_second": C_DESCRIBE_RATE, "burst": C_DESCRIBE_BURST}},
        "max_copies_in_progress": C_MAX_COPIES,
    }}},
}


def project_arn(account, name, millis):
    return f"arn:aws:rekognition:{REGION}:{account}:project/{name}/{millis}"


def version_arn(account, project, version, millis):
    return f"arn:aws:rekognition:{REGION}:{account}:project/{project}/version/{version}/{millis}"


@dataclass
class Sim:
    endpoint_url: str

    def client(self, access_key=KEY_A, secret=SECRET_A, retries=None):
        config = botocore.config.Config(retries=retries) if retries else None
        return self._boto3("rekognition", access_key, secret, config)

    def sts(self, access_key=KEY_A, secret=SECRET_A):
        return self._boto3("sts", access_key, secret)

    def _boto3(self, service, access_key, secret, config=None):
        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret,
            config=config,
        )

    def admin(self, method, path, payload=None):
        data = json.dumps(payload).encode() if payload is not None else b""
        request = urllib.request.Request(
            self.endpoint_url + path, data=data if method in ("POST", "PUT") else None, method=method,
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
            return json.loads(body) if body else None

    def inject_fault(self, operation, error, message="Injected by the test.", count=1, account_id=None):
        self.admin("POST", "/_sim/faults", {"operation": operation, "error": error, "message": message,
                                            "count": count, "account_id": account_id})

    def calls(self):
        return self.admin("GET", "/_sim/calls")

    def stats(self, account_id, operation):
        """This account's counts for one operation (zeros when it made no call)."""
        for stats in self.admin("GET", "/_sim/stats"):
            if stats["account_id"] == account_id and stats["operation"] == operation:
                return stats
        return {"account_id": account_id, "operation": operation, "calls": 0, "throughput_exceeded": 0,
                "limit_exceeded": 0, "max_calls_in_one_second": 0}

    def set_random_faults(self, faults):
        self.admin("PUT", "/_sim/faults/random", faults)


def _read_address_line(process, log_path):
    """Waits, at most STARTUP_TIMEOUT_S, for the one line the binary prints once bound."""
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if selector.select(timeout=0.5):
            line = process.stdout.readline()
            if line:
                return line.strip()
        if process.poll() is not None:
            break
    process.kill()
    raise RuntimeError(f"rekognition-sim did not report its address; its log:\n{log_path.read_text()}")


@pytest.fixture(scope="session")
def sim(tmp_path_factory):
    binary = Path(os.environ.get("REKOGNITION_SIM_BIN", REPO_ROOT / "target" / "debug" / "rekognition-sim"))
    if not binary.is_absolute():
        binary = REPO_ROOT / binary
    if not binary.exists():
        pytest.fail(f"{binary} not found: run `cargo build --bin rekognition-sim` first")
    workdir = tmp_path_factory.mktemp("rekognition-sim")
    seed_path = workdir / "seed.json"
    seed_path.write_text(json.dumps(SEED))
    config_path = workdir / "sim.json"
    config_path.write_text(json.dumps(CONFIG))
    log_path = workdir / "sim.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [str(binary), "--listen", "127.0.0.1:0", "--config", str(config_path), "--seed", str(seed_path),
             "--copy-duration-ms", str(COPY_DURATION_MS), "--fail-version-prefix", FAIL_PREFIX],
            stdout=subprocess.PIPE, stderr=log, text=True,
        )
    try:
        line = _read_address_line(process, log_path)
        prefix = "rekognition-sim listening on "
        assert line.startswith(prefix), line
        yield Sim(endpoint_url=line[len(prefix):])
    finally:
        stop(process, grace_s=10)


@pytest.fixture(autouse=True)
def fresh_observations(sim):
    """Every test starts with an empty call log and stats, and no faults (projects, versions, policies persist)."""
    sim.admin("POST", "/_sim/reset")
    sim.set_random_faults({})
