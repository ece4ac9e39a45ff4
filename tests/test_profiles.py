"""Application inference profiles resolved through bedrock:GetInferenceProfile (moto has no Bedrock: Stubber)."""

from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from lambda_function.pricing.model_ids import ModelCatalog
from lambda_function.pricing.profiles import normaliser, resolve_profiles

CATALOG = ModelCatalog.load(Path(__file__).resolve().parent.parent / "pricing")
ACCOUNT = "123456789012"
APP = f"arn:aws:bedrock:us-east-1:{ACCOUNT}:application-inference-profile/"
SONNET = "anthropic.claude-sonnet-4-5-20250929-v1:0"


def model_arn(region, model=SONNET):
    return f"arn:aws:bedrock:{region}::foundation-model/{model}"


@pytest.mark.parametrize(
    ("regions", "scope"),
    [
        (["us-east-1"], "in_region"),  # made from the base model
        (["us-east-1", "us-east-2", "us-west-2"], "geo"),  # copied from us.anthropic...
        (["us-east-1", "eu-west-1", "ap-northeast-1"], "global"),  # copied from global.anthropic...
    ],
)
def test_profile_resolves_to_model_and_scope(regions, scope):
    client = boto3.client("bedrock", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        stub.add_response(
            "get_inference_profile",
            {
                "inferenceProfileName": "team-a",
                "inferenceProfileArn": APP + "team-a",
                "inferenceProfileId": "team-a",
                "status": "ACTIVE",
                "type": "APPLICATION",
                "models": [{"modelArn": model_arn(r)} for r in regions],
            },
            {"inferenceProfileIdentifier": APP + "team-a"},
        )
        # asked once even though the id appears twice
        refs, failures = resolve_profiles(
            [APP + "team-a", APP + "team-a", "amazon.nova-lite-v1:0"], CATALOG, lambda r: client
        )
    assert failures == {}
    ref = refs[APP + "team-a"]
    assert (ref.model_id, ref.scope, ref.kind) == (SONNET, scope, "application_profile")


def test_a_profile_that_cannot_be_read_says_why():
    client = boto3.client("bedrock", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        stub.add_client_error("get_inference_profile", service_error_code="AccessDeniedException", http_status_code=403)
        refs, failures = resolve_profiles([APP + "gone"], CATALOG, lambda r: client)
    assert refs == {}
    assert failures == {APP + "gone": "GetInferenceProfile failed: AccessDeniedException"}
    ref = normaliser(CATALOG, refs, failures)(APP + "gone")
    assert ref.model_id == "" and "AccessDeniedException" in ref.problem
