"""Every model-id form of FACTS §1 normalises to the base model id and the inference scope prices use."""

from pathlib import Path

import pytest

from lambda_function.pricing.model_ids import ModelCatalog

CATALOG = ModelCatalog.load(Path(__file__).resolve().parent.parent / "pricing")


@pytest.mark.parametrize(
    ("raw", "model_id", "scope", "kind"),
    [
        ("anthropic.claude-3-haiku-20240307-v1:0", "anthropic.claude-3-haiku-20240307-v1:0", "in_region", "foundation"),
        ("amazon.nova-lite-v1:0", "amazon.nova-lite-v1:0", "in_region", "foundation"),
        (
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "anthropic.claude-sonnet-4-5-20250929-v1:0",
            "geo",
            "foundation",
        ),
        ("eu.amazon.nova-pro-v1:0", "amazon.nova-pro-v1:0", "geo", "foundation"),
        ("apac.amazon.nova-micro-v1:0", "amazon.nova-micro-v1:0", "geo", "foundation"),
        (
            "us-gov.anthropic.claude-3-haiku-20240307-v1:0",
            "anthropic.claude-3-haiku-20240307-v1:0",
            "geo",
            "foundation",
        ),
        (
            "global.anthropic.claude-haiku-4-5-20251001-v1:0",
            "anthropic.claude-haiku-4-5-20251001-v1:0",
            "global",
            "foundation",
        ),
        (
            "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0",
            "anthropic.claude-3-haiku-20240307-v1:0",
            "in_region",
            "foundation",
        ),
        (
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-lite-v1:0",
            "amazon.nova-lite-v1:0",
            "geo",
            "foundation",
        ),
        (
            "anthropic.claude-3-haiku-20240307-v1:0:200k",
            "anthropic.claude-3-haiku-20240307-v1:0",
            "in_region",
            "foundation",
        ),
        (
            "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6",
            "",
            "in_region",
            "application_profile",
        ),
        ("arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abcdef123456", "", "in_region", "provisioned"),
    ],
)
def test_normalise(raw, model_id, scope, kind):
    ref = CATALOG.normalise(raw)
    assert (ref.model_id, ref.scope, ref.kind) == (model_id, scope, kind)
    assert ref.raw == raw


def test_an_unknown_prefix_is_part_of_the_id():
    # "acme" is not a profile prefix: the id stays whole (and will be reported unpriced, not guessed)
    assert CATALOG.normalise("acme.unknown-model-v1:0").model_id == "acme.unknown-model-v1:0"


def test_the_india_geo_prefix():
    ref = CATALOG.normalise("in.amazon.nova-lite-v1:0")
    assert (ref.model_id, ref.scope) == ("amazon.nova-lite-v1:0", "geo")
