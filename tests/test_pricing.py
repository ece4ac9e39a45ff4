"""Pricing arithmetic, worked out by hand, over a small price table written here (the real table is data and
is checked against FACTS.md's reference prices in tests/test_price_table.py)."""

import ast
from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lambda_function.pricing.engine import (
    PRICED,
    load_context_tiers,
    load_image_prices,
    load_price_table,
    parse_tiers,
    price_usage,
)
from lambda_function.pricing.model_ids import ModelCatalog, ModelRef
from lambda_function.pricing.profiles import normaliser
from lambda_function.pricing.service_options import load_service_options
from lambda_function.sources.usage import COLUMNS

from .depth import examples

PRICING_DIR = Path(__file__).resolve().parent.parent / "pricing"
HEADER = "model_id,region,scope,effective_date,input_per_mtok,output_per_mtok,cache_read_per_mtok,cache_write_per_mtok,source"
TABLE = """\
anthropic.claude-3-haiku-20240307-v1:0,us-east-1,in_region,2024-03-13,0.25,1.25,,,test
anthropic.claude-3-haiku-20240307-v1:0,eu-central-1,in_region,2024-03-13,0.30,1.50,,,test
anthropic.claude-sonnet-4-5-20250929-v1:0,us-east-1,global,2025-09-29,3,15,0.30,3.75,test
anthropic.claude-sonnet-4-5-20250929-v1:0,us-east-1,geo,2025-09-29,3.30,16.50,0.33,4.125,test
amazon.nova-lite-v1:0,us-east-1,in_region,2024-12-03,0.06,0.24,0.015,,test
amazon.titan-embed-text-v2:0,us-east-1,in_region,2024-04-30,0.02,,,,test
amazon.nova-micro-v1:0,us-east-1,in_region,2024-12-03,0.035,0.14,0.00875,,test
amazon.nova-micro-v1:0,us-east-1,in_region,2026-11-15,0.040,0.16,0.01,,test
"""


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    path = tmp_path_factory.mktemp("pricing") / "token_prices.csv"
    path.write_text(HEADER + "\n" + TABLE)
    return load_price_table(path)


CATALOG = ModelCatalog.load(PRICING_DIR)


def usage(
    model_id,
    region="us-east-1",
    day=date(2026, 11, 20),
    i=0,
    o=0,
    cr=0,
    cw=0,
    n=1,
    failed=0,
    band=0,
    cw1h=0,
    ttl_unknown=0,
    tier="default",
    latency="standard",
):
    return {
        "usage_date": day,
        "account_id": "123456789012",
        "identity_arn": "arn:aws:iam::123456789012:user/alice",
        "model_id": model_id,
        "region": region,
        "input_tokens": i,
        "output_tokens": o,
        "cache_read_tokens": cr,
        "cache_write_tokens": cw,
        "cache_write_1h_tokens": cw1h,
        "cache_write_ttl_unknown_tokens": ttl_unknown,
        "unreadable_records": 0,
        "invocations": n,
        "failed_invocations": failed,
        "input_band": band,
        "service_tier": tier,
        "latency": latency,
    }


SONNET_45 = "anthropic.claude-sonnet-4-5-20250929-v1:0"
CASES = [
    # Claude 3 Haiku in-region: 1,000,000 x 0.25 / 1M = 0.25; 200,000 x 1.25 / 1M = 0.25  -> 0.50
    (usage("anthropic.claude-3-haiku-20240307-v1:0", i=1_000_000, o=200_000), Decimal("0.50")),
    # the same tokens called from eu-central-1 cost that region's price: 0.30 + 200,000 x 1.50 / 1M = 0.60
    (usage("anthropic.claude-3-haiku-20240307-v1:0", "eu-central-1", i=1_000_000, o=200_000), Decimal("0.60")),
    # Sonnet 4.5 through the us. geo profile, with cache:
    #   120,000 x 3.30 = 0.396; 30,000 x 16.50 = 0.495; 400,000 x 0.33 = 0.132; 50,000 x 4.125 = 0.20625
    #   -> 1.22925
    (usage("us." + SONNET_45, i=120_000, o=30_000, cr=400_000, cw=50_000), Decimal("1.22925")),
    # the same through global.: 0.36 + 0.45 + 0.12 + 0.1875 = 1.1175 (geo is 1.1x global)
    (usage("global." + SONNET_45, i=120_000, o=30_000, cr=400_000, cw=50_000), Decimal("1.1175")),
    # an ARN model id prices like its base id: 0.25 + 0.25
    (
        usage(
            "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0",
            i=1_000_000,
            o=200_000,
        ),
        Decimal("0.50"),
    ),
    # Nova Lite: 3,333,333 x 0.06 / 1M = 0.19999998; 777,777 x 0.24 / 1M = 0.18666648; 100,000 x 0.015 = 0.0015
    (usage("amazon.nova-lite-v1:0", i=3_333_333, o=777_777, cr=100_000), Decimal("0.38816646")),
    # Titan Text Embeddings v2, input only: 12,345,678 x 0.02 / 1M = 0.24691356
    (usage("amazon.titan-embed-text-v2:0", i=12_345_678), Decimal("0.24691356")),
    # a price change on 2026-11-15: 1,000,000 Nova Micro input tokens cost 0.035 the day before, 0.040 on it
    (usage("amazon.nova-micro-v1:0", day=date(2026, 11, 14), i=1_000_000), Decimal("0.035")),
    (usage("amazon.nova-micro-v1:0", day=date(2026, 11, 15), i=1_000_000), Decimal("0.040")),
    # failed calls carry no tokens and cost nothing: a priced model's all-failed row is exactly 0
    (usage("anthropic.claude-3-haiku-20240307-v1:0", n=5, failed=5), Decimal("0")),
]


@pytest.mark.parametrize(("row", "expected"), CASES)
def test_hand_worked_charges(table, row, expected):
    priced = price_usage(pd.DataFrame([row], columns=COLUMNS), table, CATALOG.normalise)
    assert priced.loc[0, "pricing_status"] == PRICED
    assert priced.loc[0, "charge"] == expected
    assert isinstance(priced.loc[0, "charge"], Decimal)


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (usage("acme.unknown-model-v1:0", i=1000, o=10), "model acme.unknown-model-v1:0 is not in the price table"),
        # Nova Lite has no cache-write price: the row is unpriced, not priced without it
        (usage("amazon.nova-lite-v1:0", i=1000, cw=10), "no cache-write price"),
        # a model priced in us-east-1 only, called from another region
        (
            usage("amazon.nova-lite-v1:0", "ap-south-1", i=1000),
            "no in_region price for amazon.nova-lite-v1:0 in ap-south-1",
        ),
        # before the first price took effect
        (usage("amazon.nova-micro-v1:0", day=date(2024, 1, 1), i=1000), "on 2024-01-01"),
        (
            usage("arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123", i=1000),
            "application inference profile",
        ),
        (usage("arn:aws:bedrock:us-east-1:123456789012:provisioned-model/xyz", i=1000), "billed per hour"),
    ],
)
def test_unpriced_rows_keep_their_tokens_and_say_why(table, row, reason):
    priced = price_usage(pd.DataFrame([row], columns=COLUMNS), table, CATALOG.normalise)
    assert priced.loc[0, "charge"] is None
    assert priced.loc[0, "pricing_status"].startswith("unpriced: ")
    assert reason in priced.loc[0, "pricing_status"]
    assert priced.loc[0, "input_tokens"] == row["input_tokens"]


def test_a_malformed_price_row_names_the_line(tmp_path):
    path = tmp_path / "token_prices.csv"
    path.write_text(HEADER + "\namazon.nova-lite-v1:0,us-east-1,in_region,2024-12-03,zero,0.24,,,test\n")
    with pytest.raises(ValueError, match=r"token_prices.csv:2"):
        load_price_table(path)


REAL_TABLE = load_price_table(PRICING_DIR / "token_prices.csv")


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        # FACTS §3: Haiku 4.5 global 1/5/0.10/1.25 per 1M tokens.
        #   2,000,000 x 1 = 2.00; 100,000 x 5 = 0.50; 1,000,000 x 0.10 = 0.10; 80,000 x 1.25 = 0.10 -> 2.70
        (
            usage("global.anthropic.claude-haiku-4-5-20251001-v1:0", i=2_000_000, o=100_000, cr=1_000_000, cw=80_000),
            Decimal("2.70"),
        ),
        # FACTS §3: Claude 3.5 Haiku 0.80/4.00/0.08/1.00 through us.: geo = in-region for older models.
        #   500,000 x 0.80 = 0.40; 50,000 x 4 = 0.20; 250,000 x 0.08 = 0.02; 10,000 x 1.00 = 0.01 -> 0.63
        (
            usage("us.anthropic.claude-3-5-haiku-20241022-v1:0", i=500_000, o=50_000, cr=250_000, cw=10_000),
            Decimal("0.63"),
        ),
        # FACTS §3: Nova Micro 0.035/0.14: 1,000,000 x 0.035 + 1,000,000 x 0.14 = 0.175
        (usage("amazon.nova-micro-v1:0", i=1_000_000, o=1_000_000), Decimal("0.175")),
        # FACTS §3: Cohere Embed v3 0.10, input only: 3,000,000 x 0.10 = 0.30
        (usage("cohere.embed-english-v3", i=3_000_000), Decimal("0.30")),
    ],
)
def test_the_shipped_table_prices_the_reference_models(row, expected):
    priced = price_usage(pd.DataFrame([row], columns=COLUMNS), REAL_TABLE, CATALOG.normalise)
    assert priced.loc[0, "pricing_status"] == PRICED
    assert priced.loc[0, "charge"] == expected


def test_a_discount_and_negotiated_overrides(tmp_path):
    path = tmp_path / "token_prices.csv"
    path.write_text(HEADER + "\n" + TABLE)
    overrides = (
        HEADER + "\nanthropic.claude-3-haiku-20240307-v1:0,us-east-1,in_region,2026-11-01,0.20,1.00,,,EDP 2026\n"
    )
    table = load_price_table(path, overrides=overrides.encode(), discount_percent=Decimal("10"))
    haiku = "anthropic.claude-3-haiku-20240307-v1:0"
    rows = pd.DataFrame(
        [
            # before the override: list price less 10%: (0.25 + 200,000 x 1.25 / 1M) x 0.9 = 0.50 x 0.9 = 0.45
            usage(haiku, day=date(2026, 10, 31), i=1_000_000, o=200_000),
            # from the override on: its net price, no discount: 1,000,000 x 0.20 + 200,000 x 1.00 = 0.40
            usage(haiku, day=date(2026, 11, 20), i=1_000_000, o=200_000),
            # other rows keep the discounted list price: 3,333,333 x 0.06 x 0.9 / 1M = 0.179999982
            usage("amazon.nova-lite-v1:0", i=3_333_333),
        ],
        columns=COLUMNS,
    )
    priced = price_usage(rows, table, CATALOG.normalise)
    assert list(priced["charge"]) == [Decimal("0.45"), Decimal("0.40"), Decimal("0.179999982")]
    assert "less 10%" in table.version and "1 override rows" in table.version


def test_the_readme_lists_the_models_of_the_table():
    from pricing.models_doc import main as models_doc

    assert models_doc(["--check"]) == 0, "run `make pricing-docs`"


IMAGES = load_image_prices(PRICING_DIR)


def image_usage(model, w=-1, h=-1, q="-", steps=-1, per_call=-1, n=1, failed=0, region="us-east-1"):
    row = usage(model, region, n=n, failed=failed)
    row.update(image_width=w, image_height=h, image_quality=q, image_steps=steps, images_per_call=per_call)
    return row


TITAN = "amazon.titan-image-generator-v1"
SDXL = "stability.stable-diffusion-xl-v1"


@pytest.mark.parametrize(
    ("row", "images", "expected"),
    [
        # FACTS §3 Titan: <=1024^2 premium $0.012; 3 calls x 2 images = 6 x 0.012 = 0.072
        (image_usage(TITAN, 1024, 1024, "premium", per_call=2, n=3), 6, Decimal("0.072")),
        # <=512^2 standard $0.008; 4 calls, images per call not stated = 1 each: 4 x 0.008 = 0.032
        (image_usage(TITAN, 512, 512, "standard", n=4), 4, Decimal("0.032")),
        # size and quality not stated: the model's defaults (1024x1024 standard, $0.01); a failed call makes
        # no image: (5 - 1) x 0.01 = 0.04
        (image_usage(TITAN, n=5, failed=1), 4, Decimal("0.04")),
        # SDXL 1.0: $0.04 up to 50 steps, $0.08 above: 2 x 0.08 = 0.16 at 70 steps; 2 x 0.04 at 30
        (image_usage(SDXL, 1024, 1024, steps=70, n=2), 2, Decimal("0.16")),
        (image_usage(SDXL, 1024, 1024, steps=30, n=2), 2, Decimal("0.08")),
        # Nova Canvas 2048x2048 premium: $0.08
        (image_usage("amazon.nova-canvas-v1:0", 2048, 2048, "premium"), 1, Decimal("0.08")),
    ],
)
def test_images_are_priced_per_image(row, images, expected):
    priced = price_usage(pd.DataFrame([row]), REAL_TABLE, CATALOG.normalise, IMAGES)
    assert priced.loc[0, "pricing_status"] == PRICED
    assert priced.loc[0, "images"] == images
    assert priced.loc[0, "charge"] == expected
    assert priced.loc[0, "charge_micros"] == expected * 1_000_000  # each charge here a whole number of micro-dollars


def test_an_image_model_without_a_price_there_is_unpriced():
    priced = price_usage(
        pd.DataFrame([image_usage(TITAN, 1024, 1024, region="ap-south-1")]), REAL_TABLE, CATALOG.normalise, IMAGES
    )
    assert priced.loc[0, "charge"] is None and priced.loc[0, "charge_micros"] == 0
    assert (
        "no per-image price for amazon.titan-image-generator-v1 at 1024x1024 standard in ap-south-1"
        in (priced.loc[0, "pricing_status"])
    )


def test_an_application_inference_profile_prices_as_its_model(table):
    arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/team-search"
    # GetInferenceProfile said: Sonnet 4.5 in us-east-1, us-east-2 and us-west-2 -> a copy of the us. geo profile
    resolved = {arn: ModelRef(arn, SONNET_45, "geo", "application_profile", arn=arn)}
    row = usage(arn, i=120_000, o=30_000, cr=400_000, cw=50_000)
    priced = price_usage(pd.DataFrame([row], columns=COLUMNS), table, normaliser(CATALOG, resolved, {}))
    # the us. geo prices: 0.396 + 0.495 + 0.132 + 0.20625 = 1.22925
    assert priced.loc[0, "charge"] == Decimal("1.22925")
    assert priced.loc[0, "priced_model_id"] == SONNET_45


# -- long-context tiers --------------------------------------------------------------------------------------------

TIER_HEADER = (
    "model_id,above_input_tokens,effective_date,input_factor,output_factor,cache_read_factor,cache_write_factor,source"
)
# Two thresholds, so the query's bands are: 0 = up to 100K input tokens, 1 = above 100K, 2 = above 200K.
TIERS = parse_tiers(
    TIER_HEADER
    + "\n"
    + f"{SONNET_45},200000,2025-09-29,2,1.5,2,2,test\n"
    + "anthropic.claude-3-haiku-20240307-v1:0,100000,2026-11-15,3,3,1,1,test\n"
)


@pytest.mark.parametrize(
    ("row", "expected", "long_context"),
    [
        # us. Sonnet 4.5 above 200K: the geo prices x 2 input, x 1.5 output -> 6.60 / 24.75 per 1M:
        #   250,000 x 6.60 = 1.65; 2,000 x 24.75 = 0.0495 -> 1.6995
        (usage("us." + SONNET_45, i=250_000, o=2_000, band=2), Decimal("1.6995"), True),
        # above 100K only: below Sonnet 4.5's threshold, standard geo prices: 0.825 + 0.033 = 0.858
        (usage("us." + SONNET_45, i=250_000, o=2_000, band=1), Decimal("0.858"), False),
        # global. above 200K with cache: 6 / 22.50 / 0.60 / 7.50 per 1M:
        #   100,000 x 6 = 0.6; 1,000 x 22.50 = 0.0225; 150,000 x 0.60 = 0.09; 10,000 x 7.50 = 0.075 -> 0.7875
        (usage("global." + SONNET_45, i=100_000, o=1_000, cr=150_000, cw=10_000, band=2), Decimal("0.7875"), True),
        # Claude 3 Haiku's (made-up) tier from 2026-11-15, above 100K: 3 x 0.25 and 3 x 1.25 -> 0.75 + 0.75 = 1.50
        (
            usage("anthropic.claude-3-haiku-20240307-v1:0", i=1_000_000, o=200_000, band=1),
            Decimal("1.50"),
            True,
        ),
        # ... but not the day before its tier took effect: 0.25 + 0.25
        (
            usage("anthropic.claude-3-haiku-20240307-v1:0", day=date(2026, 11, 14), i=1_000_000, o=200_000, band=1),
            Decimal("0.50"),
            False,
        ),
        # a model with no tier bills long requests at its standard prices: Nova Lite 1,000,000 x 0.06 = 0.06
        (usage("amazon.nova-lite-v1:0", i=1_000_000, band=2), Decimal("0.06"), False),
    ],
)
def test_requests_above_a_models_threshold_are_priced_at_its_long_context_tier(table, row, expected, long_context):
    priced = price_usage(pd.DataFrame([row], columns=COLUMNS), table, CATALOG.normalise, tiers=TIERS)
    assert priced.loc[0, "pricing_status"] == PRICED
    assert priced.loc[0, "charge"] == expected
    assert priced.loc[0, "long_context"] == long_context


def test_the_shipped_tiers_price_sonnet_4_and_4_5_above_200k():
    tiers = load_context_tiers(PRICING_DIR)
    assert tiers.thresholds == (100_000, 200_000, 272_000)
    above_200k = 2  # band: above 100K and 200K, not 272K
    # FACTS §3 us. Sonnet 4.5 3.30/16.50 -> above 200K: 400,000 x 6.60 = 2.64; 10,000 x 24.75 = 0.2475 -> 2.8875
    row = usage("us." + SONNET_45, i=400_000, o=10_000, band=above_200k)
    priced = price_usage(pd.DataFrame([row], columns=COLUMNS), REAL_TABLE, CATALOG.normalise, tiers=tiers)
    assert priced.loc[0, "charge"] == Decimal("2.8875")
    # Sonnet 4 in-region 3/15 -> 6 / 22.50: 300,000 x 6 = 1.80; 4,000 x 22.50 = 0.09 -> 1.89
    row = usage("anthropic.claude-sonnet-4-20250514-v1:0", i=300_000, o=4_000, band=above_200k)
    priced = price_usage(pd.DataFrame([row], columns=COLUMNS), REAL_TABLE, CATALOG.normalise, tiers=tiers)
    assert priced.loc[0, "charge"] == Decimal("1.89")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (f"{SONNET_45},200k,2025-09-29,2,1.5,2,2,x", "context_tiers.csv:2: above_input_tokens '200k'"),
        (f"{SONNET_45},0,2025-09-29,2,1.5,2,2,x", "above_input_tokens '0' is not a positive"),
        (f"{SONNET_45},200000,2025-09-29,2,,2,2,x", "every factor is required"),
        (f"{SONNET_45},200000,someday,2,1.5,2,2,x", "effective_date 'someday'"),
    ],
)
def test_a_malformed_tier_row_names_the_line(line, message):
    with pytest.raises(ValueError, match=message):
        parse_tiers(TIER_HEADER + "\n" + line + "\n")


SONNET_35_V2 = "anthropic.claude-3-5-sonnet-20241022-v2:0"
SHIPPED_CASES = [
    # Claude 3.5 Sonnet v2 in us-east-1 the day before Public Extended Access, at launch prices:
    #   1,000,000 x 3 = 3; 100,000 x 15 = 1.5; 200,000 x 0.30 = 0.06; 40,000 x 3.75 = 0.15  -> 4.71
    (usage(SONNET_35_V2, day=date(2025, 11, 30), i=1_000_000, o=100_000, cr=200_000, cw=40_000), Decimal("4.71")),
    # ... and on 2025-12-01, twice that (FACTS §3: 6 / 30 / 0.60 / 7.50): 6 + 3 + 0.12 + 0.30 = 9.42
    (usage(SONNET_35_V2, day=date(2025, 12, 1), i=1_000_000, o=100_000, cr=200_000, cw=40_000), Decimal("9.42")),
    # Nova Pro with cache writes, published at $0: 100,000 x 0.80 = 0.08; 10,000 x 3.20 = 0.032;
    #   400,000 x 0.20 = 0.08; 300,000 x 0 = 0  -> 0.192 (it was unpriced for want of a cache-write price)
    (usage("amazon.nova-pro-v1:0", i=100_000, o=10_000, cr=400_000, cw=300_000), Decimal("0.192")),
    # Nova Pro called in ap-northeast-1 costs that region's price: 100,000 x 0.96 + 10,000 x 3.84 = 0.096 + 0.0384
    (usage("amazon.nova-pro-v1:0", "ap-northeast-1", i=100_000, o=10_000), Decimal("0.1344")),
    # global. Sonnet 4.5 called from sa-east-1 (no regional row there): the global price, as from anywhere:
    #   1,000,000 x 3 = 3; 100,000 x 15 = 1.5  -> 4.5
    (usage("global." + SONNET_45, "sa-east-1", i=1_000_000, o=100_000), Decimal("4.5")),
    # Kimi K3.1, released after the first snapshot: us. profile from us-east-2, 1,000,000 x 4.40 + 100,000 x 22
    (usage("us.moonshotai.kimi-k3.1", "us-east-2", i=1_000_000, o=100_000), Decimal("6.6")),
]


@pytest.mark.parametrize(("row", "expected"), SHIPPED_CASES)
def test_hand_worked_charges_from_the_shipped_table(row, expected):
    shipped = load_price_table(PRICING_DIR / "token_prices.csv")
    priced = price_usage(pd.DataFrame([row], columns=COLUMNS), shipped, CATALOG.normalise)
    assert priced.loc[0, "pricing_status"] == PRICED
    assert priced.loc[0, "charge"] == expected


@pytest.mark.parametrize(
    ("row", "expected", "status"),
    [
        # Sonnet 4.5 global, 1M cache writes of which 400,000 for an hour:
        #   600,000 x 3.75 = 2.25 (5-minute) + 400,000 x 6.00 = 2.40 (1-hour: 2 x input)  -> 4.65
        (usage("global." + SONNET_45, cw=1_000_000, cw1h=400_000), Decimal("4.65"), PRICED),
        # all 1M for an hour: 1,000,000 x 6 = 6.00
        (usage("global." + SONNET_45, cw=1_000_000, cw1h=1_000_000), Decimal("6"), PRICED),
        # through us. (geo, 1.1x): 1,000,000 x 6.60 = 6.60
        (usage("us." + SONNET_45, cw=1_000_000, cw1h=1_000_000), Decimal("6.6"), PRICED),
        # the TTL of 300,000 writes is not in the log: priced as 5-minute writes (1M x 3.75), and said so
        (
            usage("global." + SONNET_45, cw=1_000_000, ttl_unknown=300_000),
            Decimal("3.75"),
            "priced; cache TTL not logged",
        ),
    ],
)
def test_one_hour_cache_writes_cost_twice_the_input_price(row, expected, status):
    shipped = load_price_table(PRICING_DIR / "token_prices.csv")
    priced = price_usage(pd.DataFrame([row], columns=COLUMNS), shipped, CATALOG.normalise)
    assert (priced.loc[0, "charge"], priced.loc[0, "pricing_status"]) == (expected, status)


def test_a_model_without_a_1h_price_is_unpriced_for_its_1h_writes(table):
    # the module's small table has no 1-hour column at all: a 1-hour write there cannot be priced
    priced = price_usage(
        pd.DataFrame([usage("global." + SONNET_45, cw=10, cw1h=10)], columns=COLUMNS), table, CATALOG.normalise
    )
    assert priced.loc[0, "charge"] is None
    assert priced.loc[0, "pricing_status"].startswith("unpriced: no 1-hour cache-write price")


def test_more_one_hour_writes_than_writes_is_invalid():
    # the bodies say 500 one-hour writes, the records' own count says 300 writes in all: not a number to price
    row = {**usage("global." + SONNET_45, cw=300, cw1h=500), "invalid": ""}
    frame = pd.DataFrame([row], columns=[*COLUMNS, "invalid"])
    priced = price_usage(frame, load_price_table(PRICING_DIR / "token_prices.csv"), CATALOG.normalise)
    assert priced.loc[0, "charge"] is None
    assert priced.loc[0, "pricing_status"] == (
        "invalid: 500 1-hour cache-write tokens in the bodies, but 300 cache-write tokens logged in all"
    )


@pytest.mark.parametrize(
    ("row", "expected", "status"),
    [
        # latency-optimized Sonnet 4.5 through us. (geo): 1.2 x the geo price (3.30 -> 3.96, 16.50 -> 19.80):
        #   1,000,000 x 3.96 = 3.96; 100,000 x 19.80 = 1.98  -> 5.94
        (usage("us." + SONNET_45, i=1_000_000, o=100_000, latency="optimized"), Decimal("5.94"), PRICED),
        # the same call at standard latency: 3.30 + 1.65 = 4.95
        (usage("us." + SONNET_45, i=1_000_000, o=100_000), Decimal("4.95"), PRICED),
        # a tier the table has no price for: unpriced, named, never priced as standard
        (
            usage("us." + SONNET_45, i=1_000, tier="priority"),
            None,
            f"unpriced: no price for the priority tier of {SONNET_45} in service_options.csv",
        ),
        (
            usage("amazon.nova-lite-v1:0", i=1_000, latency="optimized"),
            None,
            "unpriced: no price for latency-optimized inference of amazon.nova-lite-v1:0 in service_options.csv",
        ),
        (
            usage("amazon.nova-lite-v1:0", i=1_000, tier="reserved"),
            None,
            "unpriced: reserved-tier calls are paid for as reserved capacity, not per token",
        ),
    ],
)
def test_latency_optimized_and_service_tiers(row, expected, status):
    shipped = load_price_table(PRICING_DIR / "token_prices.csv")
    options = load_service_options(PRICING_DIR)
    priced = price_usage(pd.DataFrame([row], columns=COLUMNS), shipped, CATALOG.normalise, options=options)
    assert (priced.loc[0, "charge"], priced.loc[0, "pricing_status"]) == (expected, status)


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at its top or late inside a function (`from a import b` counts as a.b too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_the_product_never_imports_the_maintainers_tools():
    # pricing/ ships as data only (scripts/package.py): an import of its code would fail in Lambda
    product = Path(__file__).resolve().parent.parent / "lambda_function"
    offenders = {
        str(path.relative_to(product.parent)): sorted(
            name for name in _imports(path) if name.split(".")[0] == "pricing"
        )
        for path in product.rglob("*.py")
    }
    assert not {path: names for path, names in offenders.items() if names}


def test_the_pricing_modules_import_each_other_without_a_cycle():
    package = Path(__file__).resolve().parent.parent / "lambda_function" / "pricing"
    modules = {path.stem for path in package.glob("*.py")} - {"__init__"}
    prefix = "lambda_function.pricing."
    graph = {
        module: {name.removeprefix(prefix) for name in _imports(package / f"{module}.py")} & modules - {module}
        for module in modules
    }
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, f"import cycle: {' -> '.join((*path, module))}"
        if module not in done:
            for imported in sorted(graph[module]):
                visit(imported, (*path, module))
            done.add(module)

    for module in sorted(modules):
        visit(module, ())
    assert graph["tables"] == set()  # the one table reader depends on nothing else of the package


def test_the_package_names_what_the_rest_of_the_function_uses():
    import lambda_function.pricing as pricing_package

    assert all(hasattr(pricing_package, name) for name in pricing_package.__all__)
    # and the modules stay importable by their own paths
    from lambda_function.pricing.engine import price_usage as deep

    assert pricing_package.price_usage is deep


# -- the report prices many rows at once; one row at a time in Decimal is the reference ------------------------------

_UNITS = st.one_of(st.none(), st.decimals(min_value=0, max_value=1000, places=6, allow_nan=False))


@settings(max_examples=examples(500), deadline=None)
@given(
    units=st.tuples(_UNITS, _UNITS, _UNITS, _UNITS, _UNITS),
    rows=st.lists(
        st.tuples(*(st.integers(0, 10**12) for _ in range(4)), st.integers(0, 10**12)), min_size=1, max_size=20
    ),
)
def test_many_rows_at_once_charge_exactly_what_one_row_at_a_time_does(units, rows):
    from lambda_function.pricing.engine import TOKEN_KINDS, TokenPrice, micro_dollars, token_charge, token_charges

    price = TokenPrice("m", "us-east-1", "in_region", date(2026, 1, 1), *units[:4], "test", units[4])
    # a row's 1-hour writes are part of its logged cache writes (rows where they are not are invalid, never priced)
    rows = [(i, o, r, w + h, h) for i, o, r, w, h in rows]
    columns = [column for column, _, _ in TOKEN_KINDS]
    counts = {c: np.array([row[k] for row in rows], dtype=np.int64) for k, c in enumerate(columns)}
    charges, statuses, micros = token_charges(price, counts)
    for row, charge, status, micro in zip(rows, charges, statuses, micros.tolist(), strict=True):
        expected, expected_status = token_charge(price, dict(zip(columns, row, strict=True)))
        assert (charge, status) == (expected, expected_status)
        # micro-dollars worked out on the integers: the Decimal charge rounded half up, 0 where unpriced
        assert micro == (0 if expected is None else micro_dollars(expected))


def test_a_charge_of_more_digits_than_decimals_default_precision_stays_exact():
    # 2^53 - 1 input tokens at $0.123456789012345 per 1M: 31 significant digits, where Decimal's default context
    # keeps 28. Worked out in integers: count x 123456789012345 (the unit in 10^-15 dollars) x 10^-21 dollars.
    from lambda_function.pricing.engine import TOKEN_KINDS, TokenPrice, micro_dollars, token_charges

    count = 2**53 - 1
    price = TokenPrice(
        "m", "us-east-1", "in_region", date(2026, 1, 1), Decimal("0.123456789012345"), None, None, None, "test", None
    )
    counts = {
        column: np.array([count if column == "input_tokens" else 0], dtype=np.int64) for column, _, _ in TOKEN_KINDS
    }
    (charge,), _, (micros,) = token_charges(price, counts)
    product = 9007199254740991 * 123456789012345  # 1111999897984709650337676533895 (31 digits)
    assert charge == Decimal("1111999897984709650337676533895E-21")
    assert str(product) == "1111999897984709650337676533895"
    # micro-dollars, half up: 1111999897.984709|650337676533895 -> 1111999897984710
    assert micro_dollars(charge) == micros == 1111999897984710


@settings(max_examples=examples(300), deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["m1", "m2", "m3"]), st.sampled_from([None, "standard", "optimized"]), st.integers(0, 3)
        ),  # fmt: skip
        max_size=30,
    )
)
def test_rows_are_quoted_once_per_distinct_key(rows):
    from lambda_function.pricing.engine import _distinct_keys

    columns = [pd.Series([r[0] for r in rows], dtype="category"), [r[1] for r in rows], pd.Series([r[2] for r in rows])]
    quote_of_row, keys = _distinct_keys(columns, len(rows))
    assert sorted(keys, key=repr) == sorted(set(rows), key=repr)  # each distinct key once
    assert [keys[q] for q in quote_of_row.tolist()] == rows  # and each row's key is its own


def test_keys_of_more_distinct_values_than_an_int64_combines_are_quoted_alike():
    # 6 columns of 2,000 distinct values each: 2000^6 (6.4e19) combinations do not fit one int64 of codes
    from lambda_function.pricing.engine import _distinct_keys

    size = 2_000
    columns = [pd.Series([f"{c}-{(i * (c + 1)) % size}" for i in range(size)]) for c in range(6)]
    rows = [tuple(column[i] for column in columns) for i in range(size)]
    columns[0] = pd.Series([*columns[0][: size - 1], columns[0][0]])  # the last row repeats the first's key
    for c in range(1, 6):
        columns[c] = pd.Series([*columns[c][: size - 1], columns[c][0]])
    rows[-1] = rows[0]
    quote_of_row, keys = _distinct_keys(columns, size)
    assert len(keys) == size - 1
    assert quote_of_row[-1] == quote_of_row[0]
    assert [keys[q] for q in quote_of_row.tolist()] == rows
