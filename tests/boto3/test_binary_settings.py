"""The binary's flags reach the simulator: a second simulator started with quotas and faults given as flags."""

import json
import os
import subprocess
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO_ROOT, _read_address_line


def get(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture
def flagged_sim(tmp_path):
    binary = Path(os.environ.get("REKOGNITION_SIM_BIN", REPO_ROOT / "target" / "debug" / "rekognition-sim"))
    log_path = tmp_path / "sim.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [str(binary), "--listen", "127.0.0.1:0", "--seed", str(REPO_ROOT / "deploy" / "sim-seed.json"),
             "--rate", "CopyProjectVersion=2/3", "--rate", "DescribeProjectVersions=5",
             "--account-rate", "222222222222:DescribeProjectVersions=0.5/1", "--max-copies-in-progress", "4",
             "--throttling-rate", "0.1", "--drop-response-rate", "0.05", "--latency-ms", "5-10",
             "--fault-operations", "CopyProjectVersion,DescribeProjectVersions"],
            stdout=subprocess.PIPE, stderr=log, text=True,
        )
    try:
        line = _read_address_line(process, log_path)
        yield line.split(" on ", 1)[1]
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_flags_set_quotas_and_random_faults(flagged_sim):
    quotas = get(flagged_sim + "/_sim/quotas")
    assert quotas["default"]["rate"]["CopyProjectVersion"] == {"per_second": 2.0, "burst": 3}
    assert quotas["default"]["rate"]["DescribeProjectVersions"] == {"per_second": 5.0, "burst": 5}
    assert quotas["default"]["max_copies_in_progress"] == 4
    assert quotas["per_account"]["222222222222"]["rate"]["DescribeProjectVersions"] == {"per_second": 0.5, "burst": 1}

    faults = get(flagged_sim + "/_sim/faults/random")
    assert faults["throttling"] == 0.1
    assert faults["drop_response"] == 0.05
    assert faults["latency"] == {"min_millis": 5, "max_millis": 10}
    assert faults["operations"] == ["CopyProjectVersion", "DescribeProjectVersions"]


def test_bad_settings_stop_the_binary_at_start(tmp_path):
    binary = Path(os.environ.get("REKOGNITION_SIM_BIN", REPO_ROOT / "target" / "debug" / "rekognition-sim"))
    result = subprocess.run([str(binary), "--listen", "127.0.0.1:0", "--throttling-rate", "1.5"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "between 0 and 1" in result.stderr
