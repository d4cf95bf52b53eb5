"""The simulator's STS AssumeRole as boto3 sees it: botocore's query protocol, its XML parsing of credentials and
errors, and the temporary credentials (with their session token) signing Rekognition calls in the role's account."""

import botocore.exceptions
import pytest

from conftest import ACCOUNT_B, B_DEST_MILLIS, ROLE_B, project_arn


def test_assumed_role_credentials_act_in_the_role_s_account(sim):
    assumed = sim.sts().assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT_B}:role/{ROLE_B}", RoleSessionName="boto3-test")
    credentials = assumed["Credentials"]
    assert credentials["AccessKeyId"].startswith("ASIA")
    assert assumed["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT_B}:assumed-role/{ROLE_B}/boto3-test"

    import boto3
    from conftest import REGION
    rekognition = boto3.client(
        "rekognition", endpoint_url=sim.endpoint_url, region_name=REGION,
        aws_access_key_id=credentials["AccessKeyId"], aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    projects = rekognition.describe_projects()["ProjectDescriptions"]
    assert project_arn(ACCOUNT_B, "b-dest", B_DEST_MILLIS) in [p["ProjectArn"] for p in projects]

    # Without its session token the key is refused.
    untokened = boto3.client(
        "rekognition", endpoint_url=sim.endpoint_url, region_name=REGION,
        aws_access_key_id=credentials["AccessKeyId"], aws_secret_access_key=credentials["SecretAccessKey"],
    )
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        untokened.describe_projects()
    assert refused.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_a_role_that_does_not_exist_is_access_denied(sim):
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        sim.sts().assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT_B}:role/no-such-role", RoleSessionName="boto3-test")
    error = refused.value.response["Error"]
    assert error["Code"] == "AccessDenied"
    assert "not authorized to perform: sts:AssumeRole" in error["Message"]
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_a_malformed_role_arn_is_a_validation_error(sim):
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        sim.sts().assume_role(RoleArn="arn:aws:iam::12:role/x", RoleSessionName="boto3-test")
    assert refused.value.response["Error"]["Code"] == "ValidationError"
