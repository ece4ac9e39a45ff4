"""The maintainer's cross-check against LiteLLM's price file: which keys it tries, and how it judges."""

from __future__ import annotations

from decimal import Decimal

from pricing.crosscheck import Entry, compare, entries, explain, explanations, identity

PRICES = {
    "sample_spec": {"mode": "chat"},
    "us.anthropic.claude-haiku-4-5-20251001-v1:0": {
        "litellm_provider": "bedrock_converse",
        "mode": "chat",
        "input_cost_per_token": 1.1e-06,
        "output_cost_per_token": 5.5e-06,
    },
    "bedrock/eu-west-3/mistral.mistral-large-2402-v1:0": {
        "litellm_provider": "bedrock",
        "mode": "chat",
        "input_cost_per_token": 1.04e-05,
        "output_cost_per_token": 3.12e-05,
    },
    "amazon.titan-embed-text-v2:0": {
        "litellm_provider": "bedrock",
        "mode": "embedding",
        "input_cost_per_token": 2e-08,
        "output_cost_per_token": 0.0,
    },
    "bedrock/invoke/anthropic.claude-3-5-sonnet-20240620-v1:0": {"litellm_provider": "bedrock", "mode": "chat"},
    "claude-sonnet-4-5-20250929-v1:0": {"litellm_provider": "bedrock", "mode": "chat"},
    "twelvelabs.pegasus-1-2-v1:0": {
        "litellm_provider": "bedrock",
        "mode": "chat",
        "output_cost_per_token": 7.5e-06,
        "input_cost_per_video_per_second": 0.00049,
    },
    "bedrock_mantle/us-east-1/openai.gpt-oss-20b": {"litellm_provider": "bedrock_mantle", "mode": "chat"},
    "bedrock/us-east-1/amazon.titan-image-generator-v1": {"litellm_provider": "bedrock", "mode": "image_generation"},
}


def test_which_keys_are_tried_and_from_where():
    found, skipped = entries(PRICES)
    assert [(e.model_id, e.region, e.expected, e.chat) for e in found] == [
        # embeddings: 1M input x 0.02 per 1M
        ("amazon.titan-embed-text-v2:0", "us-east-1", Decimal("0.02"), False),
        # a region key: 1M x 10.40 + 1M x 31.20
        ("mistral.mistral-large-2402-v1:0", "eu-west-3", Decimal("41.6"), True),
        # a geography key, tried from one region of it: 1.10 + 5.50
        ("us.anthropic.claude-haiku-4-5-20251001-v1:0", "us-east-1", Decimal("6.6"), True),
    ]
    assert dict(skipped) == {
        "bedrock/invoke/anthropic.claude-3-5-sonnet-20240620-v1:0": "route or alias 'invoke', not a region",
        "claude-sonnet-4-5-20250929-v1:0": "not a Bedrock model id",
        "twelvelabs.pegasus-1-2-v1:0": "video model billed per second of video, not per token",
    }


def test_a_difference_is_explained_or_flagged():
    found = [
        Entry(
            "anthropic.claude-3-5-sonnet-20241022-v2:0",
            "anthropic.claude-3-5-sonnet-20241022-v2:0",
            "us-east-1",
            Decimal(18),
            True,
        ),
        Entry("acme.model-v1:0", "acme.model-v1:0", "us-east-1", Decimal(10), True),
        Entry("acme.close-v1:0", "acme.close-v1:0", "us-east-1", Decimal(10), True),
        Entry("acme.unknown-v1:0", "acme.unknown-v1:0", "us-east-1", Decimal(10), True),
    ]
    rows = [
        {"Identity ARN": identity(0), "Charges incurred": "36.000000", "Pricing status": "priced"},
        {"Identity ARN": identity(1), "Charges incurred": "11.000000", "Pricing status": "priced"},
        {"Identity ARN": identity(2), "Charges incurred": "10.090000", "Pricing status": "priced"},  # 0.9 %: agrees
        {"Identity ARN": identity(3), "Charges incurred": "", "Pricing status": "unpriced: not in the table"},
    ]
    outcome = compare(found, rows, skipped=[])
    assert (outcome.entries, outcome.priced, outcome.share) == (4, 3, Decimal("75.0"))
    assert [(e.key, ours) for e, ours, _ in outcome.differences] == [
        ("anthropic.claude-3-5-sonnet-20241022-v2:0", Decimal(36)),
        ("acme.model-v1:0", Decimal(11)),
    ]
    assert outcome.differences[0][2].startswith("Public Extended Access")
    assert outcome.differences[1][2] == "UNEXPLAINED"
    assert [e.key for e, _ in outcome.unpriced] == ["acme.unknown-v1:0"]


def test_every_explanation_pattern_is_used_by_a_key_it_can_match():
    for pattern, reason in explanations():
        assert reason and pattern
    assert explain("us.anthropic.claude-3-5-sonnet-20240620-v1:0", explanations()).startswith("Public Extended")
