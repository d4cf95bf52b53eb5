"""Quotas, signatures and faults as botocore sees them: throttles, limits, dropped connections, random faults."""

import time
import uuid

import botocore.exceptions
import pytest

from conftest import (
    ACCOUNT_A, ACCOUNT_C, C_DESCRIBE_BURST, C_DEST_MILLIS, C_MAX_COPIES, C_SOURCE_MILLIS, DEST_MILLIS, KEY_A, KEY_C,
    SECRET_C, SOURCE_MILLIS, project_arn, version_arn,
)

SOURCE = project_arn(ACCOUNT_A, "source", SOURCE_MILLIS)
SOURCE_V1 = version_arn(ACCOUNT_A, "source", "v1", SOURCE_MILLIS + 1000)
DEST = project_arn(ACCOUNT_A, "dest", DEST_MILLIS)
C_SOURCE = project_arn(ACCOUNT_C, "c-source", C_SOURCE_MILLIS)
C_SOURCE_V1 = version_arn(ACCOUNT_C, "c-source", "v1", C_SOURCE_MILLIS + 1000)
C_DEST = project_arn(ACCOUNT_C, "c-dest", C_DEST_MILLIS)
OUTPUT = {"S3Bucket": "copies-bucket"}
NO_RETRIES = {"total_max_attempts": 1, "mode": "standard"}


def unique():
    return f"py-{uuid.uuid4().hex[:12]}"


def test_a_wrong_secret_is_invalid_signature(sim):
    client = sim.client(KEY_A, "not-the-secret", retries=NO_RETRIES)
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        client.describe_projects()
    error = raised.value.response
    assert error["Error"]["Code"] == "InvalidSignatureException"
    assert error["Error"]["Message"].startswith("The request signature we calculated does not match")
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert [(c["account_id"], c["outcome"]) for c in sim.calls()] == [(None, "InvalidSignatureException")]


def test_calls_over_the_rate_are_throughput_exceeded(sim):
    time.sleep(1.1)  # a full bucket, whatever ran before
    client = sim.client(KEY_C, SECRET_C, retries=NO_RETRIES)
    outcomes = []
    for _ in range(C_DESCRIBE_BURST + 2):
        try:
            client.describe_projects()
            outcomes.append("ok")
        except client.exceptions.ProvisionedThroughputExceededException as err:
            assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 400
            assert err.response["Error"]["Message"].startswith("The number of requests exceeded your throughput limit")
            outcomes.append("throttled")
    assert outcomes[:C_DESCRIBE_BURST] == ["ok"] * C_DESCRIBE_BURST
    assert "throttled" in outcomes[C_DESCRIBE_BURST:]

    stats = sim.stats(ACCOUNT_C, "DescribeProjects")
    assert stats["calls"] == C_DESCRIBE_BURST + 2
    assert stats["throughput_exceeded"] == outcomes.count("throttled")
    assert stats["max_calls_in_one_second"] == C_DESCRIBE_BURST + 2
    # Account A has no quota.
    for _ in range(C_DESCRIBE_BURST + 2):
        sim.client(retries=NO_RETRIES).describe_projects()
    assert sim.stats(ACCOUNT_A, "DescribeProjects")["throughput_exceeded"] == 0


def test_botocore_retries_throughput_exceeded_by_default(sim):
    time.sleep(1.1)
    client = sim.client(KEY_C, SECRET_C, retries={"total_max_attempts": 5, "mode": "standard"})
    for _ in range(C_DESCRIBE_BURST + 1):
        client.describe_projects()
    outcomes = [c["outcome"] for c in sim.calls()]
    assert "ProvisionedThroughputExceededException" in outcomes
    assert outcomes.count("ok") == C_DESCRIBE_BURST + 1


def test_copies_in_progress_are_limited(sim):
    client = sim.client(KEY_C, SECRET_C, retries=NO_RETRIES)

    def copy(name):
        return client.copy_project_version(SourceProjectArn=C_SOURCE, SourceProjectVersionArn=C_SOURCE_V1,
                                           DestinationProjectArn=C_DEST, VersionName=name, OutputConfig=OUTPUT)

    first = unique()
    for _ in range(30):  # an earlier run's copy may still be in progress
        try:
            copy(first)
            break
        except client.exceptions.LimitExceededException:
            time.sleep(0.2)
    with pytest.raises(client.exceptions.LimitExceededException) as raised:
        copy(unique())
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert sim.stats(ACCOUNT_C, "CopyProjectVersion")["limit_exceeded"] >= C_MAX_COPIES

    for _ in range(50):
        [version] = client.describe_project_versions(ProjectArn=C_DEST, VersionNames=[first])[
            "ProjectVersionDescriptions"]
        if version["Status"] != "COPYING_IN_PROGRESS":
            break
        time.sleep(0.1)
    copy(unique())


def test_a_dropped_response_hides_a_copy_that_started(sim):
    client = sim.client(retries=NO_RETRIES)
    sim.inject_fault("CopyProjectVersion", "DroppedResponse", account_id=ACCOUNT_A)
    name = unique()

    with pytest.raises(botocore.exceptions.HTTPClientError):
        client.copy_project_version(SourceProjectArn=SOURCE, SourceProjectVersionArn=SOURCE_V1,
                                    DestinationProjectArn=DEST, VersionName=name, OutputConfig=OUTPUT)

    [version] = client.describe_project_versions(ProjectArn=DEST, VersionNames=[name])["ProjectVersionDescriptions"]
    assert version["Status"] == "COPYING_IN_PROGRESS"
    [logged] = [c for c in sim.calls() if c["operation"] == "CopyProjectVersion"]
    assert (logged["outcome"], logged["response_dropped"]) == ("ok", True)
    assert logged["copy"]["version_arn"] == version["ProjectVersionArn"]


def test_a_dropped_connection_is_retried_by_botocore(sim):
    sim.inject_fault("DescribeProjects", "DroppedConnection", account_id=ACCOUNT_A)
    response = sim.client(retries={"total_max_attempts": 3, "mode": "standard"}).describe_projects()
    assert response["ResponseMetadata"]["RetryAttempts"] == 1
    assert [c["outcome"] for c in sim.calls()] == ["DroppedConnection", "ok"]


def test_random_faults_throttle_and_fail_at_their_share(sim):
    sim.set_random_faults({"throttling": 0.4, "internal_error": 0.2, "operations": ["DescribeProjectVersions"]})
    client = sim.client(retries=NO_RETRIES)
    codes = []
    for _ in range(40):
        try:
            client.describe_project_versions(ProjectArn=DEST, MaxResults=1)
            codes.append("ok")
        except botocore.exceptions.ClientError as err:
            assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 500
            codes.append(err.response["Error"]["Code"])
    assert set(codes) == {"ok", "ThrottlingException", "InternalServerError"}, codes
    assert 5 <= codes.count("ThrottlingException") <= 28, codes
    client.describe_projects()  # other operations are spared
