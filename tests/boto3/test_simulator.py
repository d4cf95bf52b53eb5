"""The Rekognition simulator as boto3 sees it: real botocore parsing, pagination and retries over loopback."""

import time
import uuid

import botocore.exceptions
import pytest

from conftest import (
    ACCOUNT_A, ACCOUNT_B, B_DEST_MILLIS, DEST_MILLIS, FAIL_PREFIX, KEY_B, MANY_MILLIS, MANY_VERSIONS, SECRET_B,
    SOURCE_MILLIS, project_arn, version_arn,
)

SOURCE = project_arn(ACCOUNT_A, "source", SOURCE_MILLIS)
SOURCE_V1 = version_arn(ACCOUNT_A, "source", "v1", SOURCE_MILLIS + 1000)
DEST = project_arn(ACCOUNT_A, "dest", DEST_MILLIS)
MANY = project_arn(ACCOUNT_A, "many", MANY_MILLIS)
B_DEST = project_arn(ACCOUNT_B, "b-dest", B_DEST_MILLIS)
MISSING = project_arn(ACCOUNT_A, "missing", 1700000000000)
OUTPUT = {"S3Bucket": "copies-bucket", "S3KeyPrefix": "copies/"}
# botocore's `max_attempts` in `Config(retries=...)` counts *retries* (total attempts = max_attempts + 1);
# `total_max_attempts` counts attempts, so 1 really means no retry.
NO_RETRIES = {"total_max_attempts": 1, "mode": "standard"}


def unique(prefix=""):
    """Version names are unique per test: the simulator lives for the whole session."""
    return f"{prefix}py-{uuid.uuid4().hex[:12]}"


def copy(client, version_name, destination=DEST, source=SOURCE, source_version=SOURCE_V1):
    return client.copy_project_version(
        SourceProjectArn=source,
        SourceProjectVersionArn=source_version,
        DestinationProjectArn=destination,
        VersionName=version_name,
        OutputConfig=OUTPUT,
    )


def describe_version(client, project, version_name):
    versions = client.describe_project_versions(ProjectArn=project, VersionNames=[version_name])
    [version] = versions["ProjectVersionDescriptions"]
    return version


def poll_until_copy_ends(client, project, version_name):
    for _ in range(50):
        version = describe_version(client, project, version_name)
        if version["Status"] != "COPYING_IN_PROGRESS":
            return version
        time.sleep(0.1)
    pytest.fail(f"copy of {version_name} still in progress after 5 s")


def test_copy_project_version_completes(sim):
    client = sim.client()
    name = unique()

    arn = copy(client, name)["ProjectVersionArn"]

    assert arn.startswith(f"arn:aws:rekognition:us-east-1:{ACCOUNT_A}:project/dest/version/{name}/")
    started = describe_version(client, DEST, name)
    assert started["Status"] == "COPYING_IN_PROGRESS"
    assert started["ProjectVersionArn"] == arn
    assert started["SourceProjectVersionArn"] == SOURCE_V1
    assert started["OutputConfig"] == OUTPUT
    assert started["CreationTimestamp"].timestamp() == pytest.approx(int(arn.rsplit("/", 1)[1]) / 1000)
    assert poll_until_copy_ends(client, DEST, name)["Status"] == "COPYING_COMPLETED"


def test_copy_to_failure_prefix_fails_with_a_message(sim):
    client = sim.client()
    name = unique(FAIL_PREFIX)

    copy(client, name)

    ended = poll_until_copy_ends(client, DEST, name)
    assert ended["Status"] == "COPYING_FAILED"
    assert FAIL_PREFIX in ended["StatusMessage"]


def test_paginator_walks_every_version_once_newest_first(sim):
    paginator = sim.client().get_paginator("describe_project_versions")

    pages = list(paginator.paginate(ProjectArn=MANY, PaginationConfig={"PageSize": 1}))

    assert [len(page["ProjectVersionDescriptions"]) for page in pages] == [1] * len(MANY_VERSIONS)
    seen = [version["ProjectVersionArn"] for page in pages for version in page["ProjectVersionDescriptions"]]
    expected = [version_arn(ACCOUNT_A, "many", name, millis) for name, millis in reversed(MANY_VERSIONS)]
    assert seen == expected
    assert sum(1 for call in sim.calls() if call["operation"] == "DescribeProjectVersions") == len(MANY_VERSIONS)


def test_missing_destination_is_resource_not_found(sim):
    client = sim.client()
    with pytest.raises(client.exceptions.ResourceNotFoundException) as raised:
        copy(client, unique(), destination=MISSING)
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400

    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.describe_project_versions(ProjectArn=MISSING)


def test_duplicate_version_name_is_resource_in_use(sim):
    client = sim.client()
    name = unique()
    copy(client, name)
    with pytest.raises(client.exceptions.ResourceInUseException):
        copy(client, name)


def test_a_running_model_cannot_be_deleted_until_it_is_stopped(sim):
    """What the service's expiry meets (issue 13): DeleteProjectVersion of a running version is refused as AWS does;
    the admin endpoint stands in for StartProjectVersion / StopProjectVersion, which the simulator does not serve."""
    client = sim.client()
    name = unique()
    arn = copy(client, name)["ProjectVersionArn"]
    assert poll_until_copy_ends(client, DEST, name)["Status"] == "COPYING_COMPLETED"
    sim.admin("PUT", "/_sim/version-status", {"ProjectVersionArn": arn, "Status": "RUNNING"})
    with pytest.raises(client.exceptions.ResourceInUseException) as refused:
        client.delete_project_version(ProjectVersionArn=arn)
    assert "RUNNING" in refused.value.response["Error"]["Message"]
    assert describe_version(client, DEST, name)["Status"] == "RUNNING"

    sim.admin("PUT", "/_sim/version-status", {"ProjectVersionArn": arn, "Status": "STOPPED"})
    assert client.delete_project_version(ProjectVersionArn=arn)["Status"] == "DELETING"
    assert client.describe_project_versions(ProjectArn=DEST, VersionNames=[name])["ProjectVersionDescriptions"] == []
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.delete_project_version(ProjectVersionArn=arn)


def test_destination_of_another_account_is_access_denied(sim):
    client = sim.client()
    with pytest.raises(client.exceptions.AccessDeniedException):
        copy(client, unique(), destination=B_DEST)

    # Account B may copy A's version into its own project: A's `source` has a policy allowing B.
    arn = copy(sim.client(KEY_B, SECRET_B), unique(), destination=B_DEST)["ProjectVersionArn"]
    assert arn.startswith(f"arn:aws:rekognition:us-east-1:{ACCOUNT_B}:project/b-dest/version/")


def test_constraint_violation_is_validation_exception(sim):
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        copy(sim.client(), "has space")
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert "versionName" in raised.value.response["Error"]["Message"]


def test_unknown_access_key_is_unrecognized_client(sim):
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        sim.client("AKIAUNKNOWNUNKNOWN00", "nope").describe_projects()
    assert raised.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_injected_throttling_surfaces_when_retries_are_off(sim):
    client = sim.client(retries=NO_RETRIES)
    sim.inject_fault("CopyProjectVersion", "ThrottlingException", message="Rate exceeded")
    name = unique()

    with pytest.raises(botocore.exceptions.ClientError) as raised:
        copy(client, name)

    error = raised.value.response
    assert error["Error"]["Code"] == "ThrottlingException"
    assert error["Error"]["Message"] == "Rate exceeded"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 500
    calls = [call for call in sim.calls() if call["operation"] == "CopyProjectVersion"]
    assert [(call["account_id"], call["outcome"]) for call in calls] == [(ACCOUNT_A, "ThrottlingException")]
    assert calls[0]["key"]["VersionName"] == name
    assert client.describe_project_versions(ProjectArn=DEST, VersionNames=[name])["ProjectVersionDescriptions"] == []

    # The fault fired once; the same call now succeeds.
    copy(client, name)


def test_max_attempts_one_still_retries_once(sim):
    """Pins a botocore trap: `retries={"max_attempts": 1}` allows one retry, so one injected throttle is absorbed."""
    client = sim.client(retries={"max_attempts": 1, "mode": "standard"})
    sim.inject_fault("DescribeProjects", "ThrottlingException")

    response = client.describe_projects()

    assert response["ResponseMetadata"]["RetryAttempts"] == 1
    calls = sim.calls()
    assert [call["outcome"] for call in calls] == ["ThrottlingException", "ok"]
    assert calls[0]["invocation_id"] == calls[1]["invocation_id"]
