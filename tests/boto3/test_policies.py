"""Project policies and DeleteProjectVersion through boto3: every response and error parsed by botocore."""

import json
import time
import uuid

import botocore.exceptions
import pytest

from conftest import (
    ACCOUNT_A, ACCOUNT_B, B_DEST_MILLIS, DEST_MILLIS, KEY_B, MANY_MILLIS, MANY_VERSIONS, SECRET_B, SOURCE_MILLIS,
    allow_copy, project_arn, version_arn,
)

SOURCE = project_arn(ACCOUNT_A, "source", SOURCE_MILLIS)
SOURCE_V1 = version_arn(ACCOUNT_A, "source", "v1", SOURCE_MILLIS + 1000)
DEST = project_arn(ACCOUNT_A, "dest", DEST_MILLIS)
MANY = project_arn(ACCOUNT_A, "many", MANY_MILLIS)
B_DEST = project_arn(ACCOUNT_B, "b-dest", B_DEST_MILLIS)
OUTPUT = {"S3Bucket": "copies-bucket"}
NO_RETRIES = {"total_max_attempts": 1, "mode": "standard"}


def unique(prefix="py-"):
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def fresh_project(client):
    """A new empty project of account A: policy tests do not disturb each other on the shared simulator."""
    return client.create_project(ProjectName=unique("pol-"))["ProjectArn"]


def copy_into_b(sim, source, source_version, name):
    return sim.client(KEY_B, SECRET_B, retries=NO_RETRIES).copy_project_version(
        SourceProjectArn=source, SourceProjectVersionArn=source_version, DestinationProjectArn=B_DEST,
        VersionName=name, OutputConfig=OUTPUT)


def test_put_list_delete_with_revisions(sim):
    client = sim.client(retries=NO_RETRIES)
    project = fresh_project(client)
    document = json.dumps(allow_copy(ACCOUNT_B))

    revision = client.put_project_policy(
        ProjectArn=project, PolicyName="allow-b", PolicyDocument=document)["PolicyRevisionId"]

    [policy] = client.list_project_policies(ProjectArn=project)["ProjectPolicies"]
    assert policy["ProjectArn"] == project
    assert policy["PolicyName"] == "allow-b"
    assert policy["PolicyRevisionId"] == revision
    assert policy["PolicyDocument"] == document
    assert abs(policy["CreationTimestamp"].timestamp() - time.time()) < 60
    assert policy["LastUpdatedTimestamp"] >= policy["CreationTimestamp"]

    with pytest.raises(client.exceptions.ResourceAlreadyExistsException):
        client.put_project_policy(ProjectArn=project, PolicyName="allow-b", PolicyDocument=document)
    with pytest.raises(client.exceptions.InvalidPolicyRevisionIdException):
        client.put_project_policy(ProjectArn=project, PolicyName="allow-b", PolicyRevisionId="abc123",
                                  PolicyDocument=document)
    new_revision = client.put_project_policy(ProjectArn=project, PolicyName="allow-b", PolicyRevisionId=revision,
                                             PolicyDocument=document)["PolicyRevisionId"]
    assert new_revision != revision

    with pytest.raises(client.exceptions.InvalidPolicyRevisionIdException):
        client.delete_project_policy(ProjectArn=project, PolicyName="allow-b", PolicyRevisionId=revision)
    client.delete_project_policy(ProjectArn=project, PolicyName="allow-b", PolicyRevisionId=new_revision)
    assert client.list_project_policies(ProjectArn=project)["ProjectPolicies"] == []
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.delete_project_policy(ProjectArn=project, PolicyName="allow-b")


def test_policy_errors(sim):
    client = sim.client(retries=NO_RETRIES)
    project = fresh_project(client)
    for malformed in ["not json", json.dumps({"Statement": []}),
                      json.dumps(allow_copy(ACCOUNT_B)).replace("CopyProjectVersion", "DetectLabels")]:
        with pytest.raises(client.exceptions.MalformedPolicyDocumentException):
            client.put_project_policy(ProjectArn=project, PolicyName="bad", PolicyDocument=malformed)
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        client.list_project_policies(ProjectArn=project, MaxResults=6)
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(client.exceptions.AccessDeniedException):
        sim.client(KEY_B, SECRET_B).list_project_policies(ProjectArn=project)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.list_project_policies(ProjectArn=project_arn(ACCOUNT_A, "missing", 1700000000000))
    with pytest.raises(client.exceptions.InvalidPaginationTokenException):
        client.list_project_policies(ProjectArn=project, NextToken="bad")


def test_policies_paginate_and_a_project_holds_five(sim):
    client = sim.client(retries=NO_RETRIES)
    project = fresh_project(client)
    document = json.dumps(allow_copy(ACCOUNT_B))
    for name in ["e", "c", "a", "d", "b"]:
        client.put_project_policy(ProjectArn=project, PolicyName=name, PolicyDocument=document)
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        client.put_project_policy(ProjectArn=project, PolicyName="f", PolicyDocument=document)
    assert raised.value.response["Error"]["Code"] == "ServiceQuotaExceededException"

    pages = list(client.get_paginator("list_project_policies").paginate(
        ProjectArn=project, PaginationConfig={"PageSize": 2}))
    assert [[p["PolicyName"] for p in page["ProjectPolicies"]] for page in pages] == [["a", "b"], ["c", "d"], ["e"]]


def test_cross_account_copy_is_refused_without_a_policy_and_allowed_with_one(sim):
    owner = sim.client(retries=NO_RETRIES)
    m1 = version_arn(ACCOUNT_A, "many", *MANY_VERSIONS[0])

    with pytest.raises(owner.exceptions.AccessDeniedException) as raised:
        copy_into_b(sim, MANY, m1, unique())
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "no resource-based policy allows" in raised.value.response["Error"]["Message"]

    revision = owner.put_project_policy(
        ProjectArn=MANY, PolicyName="allow-b-py", PolicyDocument=json.dumps(allow_copy(ACCOUNT_B, m1)),
    )["PolicyRevisionId"]
    try:
        arn = copy_into_b(sim, MANY, m1, unique())["ProjectVersionArn"]
        assert arn.startswith(f"arn:aws:rekognition:us-east-1:{ACCOUNT_B}:project/b-dest/version/")
        # The policy names m1 only.
        with pytest.raises(owner.exceptions.AccessDeniedException):
            copy_into_b(sim, MANY, version_arn(ACCOUNT_A, "many", *MANY_VERSIONS[1]), unique())
    finally:
        owner.delete_project_policy(ProjectArn=MANY, PolicyName="allow-b-py", PolicyRevisionId=revision)
    with pytest.raises(owner.exceptions.AccessDeniedException):
        copy_into_b(sim, MANY, m1, unique())

    outcomes = [c["outcome"] for c in sim.calls() if c["operation"] == "CopyProjectVersion"]
    assert outcomes == ["AccessDeniedException", "ok", "AccessDeniedException", "AccessDeniedException"]


def test_delete_project_version(sim):
    client = sim.client(retries=NO_RETRIES)
    name = unique()
    arn = client.copy_project_version(SourceProjectArn=SOURCE, SourceProjectVersionArn=SOURCE_V1,
                                      DestinationProjectArn=DEST, VersionName=name,
                                      OutputConfig=OUTPUT)["ProjectVersionArn"]
    with pytest.raises(client.exceptions.ResourceInUseException):
        client.delete_project_version(ProjectVersionArn=arn)

    for _ in range(50):
        [version] = client.describe_project_versions(ProjectArn=DEST, VersionNames=[name])["ProjectVersionDescriptions"]
        if version["Status"] != "COPYING_IN_PROGRESS":
            break
        time.sleep(0.1)
    assert client.delete_project_version(ProjectVersionArn=arn)["Status"] == "DELETING"
    assert client.describe_project_versions(ProjectArn=DEST, VersionNames=[name])["ProjectVersionDescriptions"] == []
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.delete_project_version(ProjectVersionArn=arn)
    with pytest.raises(client.exceptions.AccessDeniedException):
        sim.client(KEY_B, SECRET_B).delete_project_version(ProjectVersionArn=SOURCE_V1)
