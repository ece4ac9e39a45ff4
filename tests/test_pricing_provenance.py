"""Issue 22: every price row says where it comes from, and the rows the issue corrected price calls as worked out
here by hand from the shipped tables (pricing/*.csv)."""

from __future__ import annotations

import csv
from datetime import date
from decimal import Decimal

import pandas as pd
import pytest

from lambda_function.pricing.engine import PRICED, load_price_table, price_usage
from lambda_function.pricing.provenance import KINDS, source_date, source_kind
from lambda_function.pricing.service_options import load_service_options
from lambda_function.sources.usage import COLUMNS
from pricing.audit import audit

from .test_pricing import CATALOG, PRICING_DIR, usage

SHIPPED = load_price_table(PRICING_DIR / "token_prices.csv")
OPTIONS = load_service_options(PRICING_DIR)
PRICE_TABLES = ("token_prices.csv", "service_options.csv", "context_tiers.csv", "image_prices.csv")


def priced(row):
    frame = price_usage(pd.DataFrame([row], columns=COLUMNS), SHIPPED, CATALOG.normalise, options=OPTIONS)
    return frame.loc[0, "charge"], frame.loc[0, "pricing_status"]


@pytest.mark.parametrize("table", PRICE_TABLES)
def test_every_row_of_every_price_table_has_a_source_of_a_known_kind(table):
    with (PRICING_DIR / table).open(newline="", encoding="utf-8") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            assert row["source"].strip(), f"{table}:{line} has no source"
            assert source_kind(row["source"]) in KINDS, f"{table}:{line}: {row['source']!r}"


@pytest.mark.parametrize(
    ("source", "kind", "day"),
    [
        ("aws-price-list AmazonBedrock sku ABC123 effective 2026-11-01", "price-list", date(2026, 11, 1)),
        ("aws-page What's New read 2026-12-05: GPT-5.6 Luna", "aws-page", date(2026, 12, 5)),
        ("derived: geo = 1.1 x global", "derived", None),
        ("litellm 1.110.2 us.amazon.nova-lite-v1:0", "public-file", None),
        ("FACTS.md reference", "unknown", None),
        ("", "unknown", None),
    ],
)
def test_source_kind_and_date(source, kind, day):
    assert (source_kind(source), source_date(source)) == (kind, day)


def test_every_service_option_is_for_a_model_of_the_token_table():
    with (PRICING_DIR / "service_options.csv").open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            assert SHIPPED.knows(row["model_id"]), row["model_id"]


LUNA, TERRA = "openai.gpt-5.6-luna", "openai.gpt-5.6-terra"
FABLE_52 = "anthropic.claude-fable-5-2"
SONNET_55 = "anthropic.claude-sonnet-5-5"
NOVA_PRO = "amazon.nova-pro-v1:0"


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        # GPT-5.6 Luna through us. on 2026-07-20, a backfill of its launch price (geo 1.10 / 6.60):
        #   1,000,000 x 1.10 = 1.10; 100,000 x 6.60 = 0.66  -> 1.76
        (usage(f"us.{LUNA}", day=date(2026, 7, 20), i=1_000_000, o=100_000), Decimal("1.76")),
        # the same on 2026-08-01, after the 80 % cut (geo 0.22 / 1.32): 0.22 + 0.132 = 0.352
        (usage(f"us.{LUNA}", day=date(2026, 8, 1), i=1_000_000, o=100_000), Decimal("0.352")),
        # global. on 2026-07-29, the launch price's last day (1.00 / 6.00): 1.00 + 0.60 = 1.60
        (usage(f"global.{LUNA}", day=date(2026, 7, 29), i=1_000_000, o=100_000), Decimal("1.6")),
        # Terra through us. before and after 2026-07-30: 2.75 + 100,000 x 16.50 = 4.40; 2.20 + 1.32 = 3.52
        (usage(f"us.{TERRA}", day=date(2026, 7, 29), i=1_000_000, o=100_000), Decimal("4.4")),
        (usage(f"us.{TERRA}", day=date(2026, 7, 30), i=1_000_000, o=100_000), Decimal("3.52")),
        # GovCloud Luna (us-gov. from us-gov-west-1), 1.2 x the commercial geo price after the cut:
        #   0.264 + 100,000 x 1.584 = 0.264 + 0.1584 = 0.4224
        (usage(f"us-gov.{LUNA}", "us-gov-west-1", day=date(2026, 8, 1), i=1_000_000, o=100_000), Decimal("0.4224")),
        # Luna through in. from ap-south-1, 1.1 x global after the cut: 0.22 + 0.132 = 0.352
        (usage(f"in.{LUNA}", "ap-south-1", day=date(2026, 8, 1), i=1_000_000, o=100_000), Decimal("0.352")),
        # Claude Fable 5.2 global on 2026-11-20: 8 / 40, cache read 0.20, cache write 1.25 x 8 = 10:
        #   1,000,000 x 8 = 8; 100,000 x 40 = 4; 1,000,000 x 0.20 = 0.20; 100,000 x 10 = 1  -> 13.20
        (usage(f"global.{FABLE_52}", i=1_000_000, o=100_000, cr=1_000_000, cw=100_000), Decimal("13.2")),
        # ... and through us. (geo, +10 %: 8.80 / 44 / 0.22 / 11): 8.80 + 4.40 + 0.22 + 1.10 = 14.52
        (usage(f"us.{FABLE_52}", i=1_000_000, o=100_000, cr=1_000_000, cw=100_000), Decimal("14.52")),
        # a 1-hour write of Fable 5.2 global: 2 x input = 16; 100,000 x 16 = 1.60
        (usage(f"global.{FABLE_52}", cw=100_000, cw1h=100_000), Decimal("1.6")),
        # Nova Lite in Tokyo, 1.2 x us-east-1 (0.06 / 0.24 -> 0.072 / 0.288):
        #   1,000,000 x 0.072 = 0.072; 1,000,000 x 0.288 = 0.288  -> 0.36
        (usage("amazon.nova-lite-v1:0", "ap-northeast-1", i=1_000_000, o=1_000_000), Decimal("0.36")),
        # Nova Micro in Tokyo, 1.2 x 0.035 / 0.14 = 0.042 / 0.168: 0.042 + 0.168 = 0.21
        (usage("amazon.nova-micro-v1:0", "ap-northeast-1", i=1_000_000, o=1_000_000), Decimal("0.21")),
        # Llama 3 8B in us-gov-east-1, output 0.60 like us-gov-west-1 (not the 70B's 2.65):
        #   1,000,000 x 0.30 = 0.30; 1,000,000 x 0.60 = 0.60  -> 0.90
        (usage("meta.llama3-8b-instruct-v1:0", "us-gov-east-1", i=1_000_000, o=1_000_000), Decimal("0.9")),
        # Titan Text Embeddings v2 in either GovCloud region, 1.2 x 0.02 = 0.024: 10,000,000 x 0.024 = 0.24
        (usage("amazon.titan-embed-text-v2:0", "us-gov-west-1", i=10_000_000), Decimal("0.24")),
        (usage("amazon.titan-embed-text-v2:0", "us-gov-east-1", i=10_000_000), Decimal("0.24")),
        # Sonnet 5.5 cache reads through global.: 0.20 on 2026-10-06, 0.10 from 2026-10-07:
        #   1,000,000 x 0.20 = 0.20; 1,000,000 x 0.10 = 0.10
        (usage(f"global.{SONNET_55}", day=date(2026, 10, 6), cr=1_000_000), Decimal("0.2")),
        (usage(f"global.{SONNET_55}", day=date(2026, 10, 7), cr=1_000_000), Decimal("0.1")),
        # ... and through us. (geo): 0.22, then 0.11
        (usage(f"us.{SONNET_55}", day=date(2026, 10, 6), cr=1_000_000), Decimal("0.22")),
        (usage(f"us.{SONNET_55}", day=date(2026, 10, 7), cr=1_000_000), Decimal("0.11")),
        # latency-optimized Nova Pro in us-east-1, 1.25 x 0.80 / 3.20 = 1.00 / 4.00:
        #   1,000,000 x 1.00 = 1.00; 100,000 x 4.00 = 0.40  -> 1.40
        (usage(NOVA_PRO, i=1_000_000, o=100_000, latency="optimized"), Decimal("1.4")),
        # latency-optimized Llama 3.1 70B through us. (0.72 / 0.72, x1.25 = 0.90): 0.90 + 0.09 = 0.99
        (usage("us.meta.llama3-1-70b-instruct-v1:0", i=1_000_000, o=100_000, latency="optimized"), Decimal("0.99")),
        # priority Nova Pro, 1.75 x 0.80 / 3.20 / 0.20 = 1.40 / 5.60 / 0.35:
        #   1,000,000 x 1.40 = 1.40; 100,000 x 5.60 = 0.56; 1,000,000 x 0.35 = 0.35  -> 2.31
        (usage(NOVA_PRO, i=1_000_000, o=100_000, cr=1_000_000, tier="priority"), Decimal("2.31")),
        # flex Nova Pro, 0.5 x: 0.40 + 0.16 + 0.10 = 0.66
        (usage(NOVA_PRO, i=1_000_000, o=100_000, cr=1_000_000, tier="flex"), Decimal("0.66")),
        # flex DeepSeek V3.2 in us-east-1, 0.5 x 0.62 / 1.85 = 0.31 / 0.925: 0.31 + 0.0925 = 0.4025
        (usage("deepseek.v3.2", i=1_000_000, o=100_000, tier="flex"), Decimal("0.4025")),
    ],
)
def test_the_corrected_rows_price_by_hand(row, expected):
    assert priced(row) == (expected, PRICED)


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        # GPT-5.6 Luna had no price before its launch: a call of 2026-07-12 is unpriced, never at a later price
        (
            usage(f"us.{LUNA}", day=date(2026, 7, 12), i=1_000),
            f"unpriced: no geo price for {LUNA} in us-east-1 on 2026-07-12",
        ),
        # Fable 5.2 before 2026-11-09
        (
            usage(f"global.{FABLE_52}", day=date(2026, 11, 8), i=1_000),
            f"unpriced: no global price for {FABLE_52} in us-east-1 on 2026-11-08",
        ),
        # Titan Text Express in GovCloud: the two regions' prices disagree, so there is none
        (
            usage("amazon.titan-text-express-v1", "us-gov-west-1", i=1_000),
            "unpriced: no in_region price for amazon.titan-text-express-v1 in us-gov-west-1 on 2026-11-20",
        ),
        # Nova 2 Lite has no apac. profile: ap-southeast-2 calls of its base id are unpriced
        (
            usage("amazon.nova-2-lite-v1:0", "ap-southeast-2", i=1_000),
            "unpriced: no in_region price for amazon.nova-2-lite-v1:0 in ap-southeast-2 on 2026-11-20",
        ),
        # a tier with no row for the model: unpriced with the reason, never at the standard rate
        (
            usage("anthropic.claude-3-haiku-20240307-v1:0", i=1_000, tier="flex"),
            "unpriced: no price for the flex tier of anthropic.claude-3-haiku-20240307-v1:0 in service_options.csv",
        ),
        (
            usage(f"global.{FABLE_52}", i=1_000, latency="optimized"),
            f"unpriced: no price for latency-optimized inference of {FABLE_52} in service_options.csv",
        ),
    ],
)
def test_calls_without_a_price_stay_unpriced_with_the_reason(row, reason):
    assert priced(row) == (None, reason)


def test_the_audit_counts_every_row_by_kind():
    text = audit(PRICING_DIR, date(2026, 12, 5))
    total = 0
    for table in PRICE_TABLES:
        with (PRICING_DIR / table).open(newline="", encoding="utf-8") as handle:
            total += sum(1 for _ in csv.DictReader(handle))
    all_line = next(line for line in text.splitlines() if line.startswith("| all |"))
    cells = [cell.strip() for cell in all_line.strip("|").split("|")]
    assert cells[-1] == str(total) and cells[-2] == "0"  # every row counted, none of unknown kind
    assert "apac. key, not region evidence" in text
    # a year on, every dated source is older than 90 days
    later = audit(PRICING_DIR, date(2027, 12, 5))
    assert "older than 90 days (before 2027-09-06): 0" not in later
