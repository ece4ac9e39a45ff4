"""The price table as data and its refresh tool: Price List parsing on recorded products (unit conversions worked
by hand), the merge with the curated table, the boto3 adapter against botocore's Stubber, and a validation of the
committed CSVs, including FACTS.md §3's reference prices written out here."""

import csv
import io
import json
import re
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from lambda_function.pricing.engine import load_price_table
from lambda_function.pricing.model_ids import read_pairs
from lambda_function.pricing.price_list import (
    BEDROCK,
    FOUNDATION_MODELS,
    PriceRecord,
    Skipped,
    _factor_lines,
    assemble,
    fetch_products,
    format_table,
    merge,
    parse_product,
    plain,
    price_list_names,
    read_names,
    refresh,
    tokens_per_unit,
)
from lambda_function.pricing.tables import SCOPES, parse_table
from lambda_function.pricing.tables import TABLE_HEADER as HEADER
from lambda_function.pricing.tables import TokenPrice as PriceRow
from pricing.refresh import curated_factors, main

ROOT = Path(__file__).resolve().parent.parent
PRICING = ROOT / "pricing"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "price_list"
REGIONS_BY_PREFIX = read_pairs(PRICING / "usagetype_regions.csv", "prefix", "region")
NAMES = read_names(PRICING / "price_list_names.csv")
ALIASES = read_pairs(PRICING / "model_aliases.csv", "alias", "model_id")
D = Decimal
REFRESHED = date(2026, 11, 23)


def recorded(offer):
    """The PriceList items of the recorded get_products pages of one offer, by SKU."""
    items = {}
    for path in sorted(FIXTURES.glob(f"{offer}.page*.json")):
        for text in json.loads(path.read_text())["PriceList"]:
            items[json.loads(text)["product"]["sku"]] = text
    return items


BEDROCK_ITEMS = recorded(BEDROCK)
MARKETPLACE_ITEMS = recorded(FOUNDATION_MODELS)


# --- units ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("unit", "offer", "tokens"),
    [
        ("1K tokens", BEDROCK, 1_000),
        ("1M tokens", FOUNDATION_MODELS, 1_000_000),
        ("1M Tokens", BEDROCK, 1_000_000),
        ("1000 Tokens", BEDROCK, 1_000),
        ("1,000,000 tokens", BEDROCK, 1_000_000),
        # the marketplace offer's opaque unit is per 1M tokens; nowhere else is an opaque unit read
        ("Units", FOUNDATION_MODELS, 1_000_000),
        ("Units", BEDROCK, None),
        # "Tokens" alone does not say how many: never scaled by a guess
        ("Tokens", BEDROCK, None),
        ("Images", BEDROCK, None),
        ("", BEDROCK, None),
    ],
)
def test_tokens_per_unit(unit, offer, tokens):
    assert tokens_per_unit(unit, offer) == tokens


# --- parsing the recorded products ------------------------------------------------------------------------------

# sku -> (name, region, routing, charge, USD per 1M tokens), each conversion worked by hand
BEDROCK_PRICES = {
    # $0.00006 per 1K tokens x 1,000 = $0.06 per 1M
    "B01NOVALITEIN": ("Nova Lite", "us-east-1", "regional", "input", "0.06"),
    # $0.00024 per 1K x 1,000 = $0.24 per 1M
    "B02NOVALITEOUT": ("Nova Lite", "us-east-1", "regional", "output", "0.24"),
    # featuretype "Prompt cache read" marks the cache price: $0.000015 per 1K x 1,000 = $0.015 (0.25 x input)
    "B03NOVALITECR": ("Nova Lite", "us-east-1", "regional", "cache_read", "0.015"),
    # no regionCode: the region comes from the usagetype prefix EUC1; $0.000046 per 1K x 1,000 = $0.046
    "B07NOVAMICROIN": ("Nova Micro", "eu-central-1", "regional", "input", "0.046"),
    # $0.000184 per 1K x 1,000 = $0.184
    "B08NOVAMICROOUT": ("Nova Micro", "eu-central-1", "regional", "output", "0.184"),
    # Titan names the model in titanModel; $0.00002 per 1K x 1,000 = $0.02
    "B09TITANEMBV2": ("Titan Text Embeddings V2", "us-east-1", "regional", "input", "0.02"),
    # $0.00025 per 1K x 1,000 = $0.25 ; $0.00125 per 1K x 1,000 = $1.25
    "B10HAIKU3IN": ("Claude 3 Haiku", "us-east-1", "regional", "input", "0.25"),
    "B11HAIKU3OUT": ("Claude 3 Haiku", "us-east-1", "regional", "output", "1.25"),
    # "-cross-region-global" in the usagetype is the global profile's price: $0.0003 per 1K = $0.30 per 1M,
    # the regional one $0.00033 per 1K = $0.33 (1.1 x)
    "B12NOVA2LITEIN": ("Nova 2 Lite", "us-east-1", "regional", "input", "0.33"),
    "B13NOVA2LITEGIN": ("Nova 2 Lite", "us-east-1", "global", "input", "0.30"),
    "B14NOVA2LITEOUT": ("Nova 2 Lite", "us-east-1", "regional", "output", "2.75"),
    "B15NOVA2LITEGOUT": ("Nova 2 Lite", "us-east-1", "global", "output", "2.5"),
    # the same offer also publishes per 1M tokens: $0.15 per 1M stays $0.15 (x 1,000,000 / 1,000,000)
    "B16GPTOSSIN": ("gpt-oss-120b", "us-west-2", "regional", "input", "0.15"),
    "B17GPTOSSOUT": ("gpt-oss-120b", "us-west-2", "regional", "output", "0.6"),
    "B18FUTUREIN": ("Some Future Model", "us-east-1", "regional", "input", "1"),
    # the real cache-read shape: no featuretype; inferenceType "Prompt cache read input tokens", usagetype
    # "...-cache-read-input-token-count" (FACTS §3); $0.0002 per 1K x 1,000 = $0.20 (0.25 x Nova Pro's 0.80)
    "B22NOVAPROCR": ("Nova Pro", "us-east-1", "regional", "cache_read", "0.2"),
    # labelled "Input tokens", but the usagetype says cache read: the usagetype decides, so it never
    # overwrites the input price
    "B23NOVAPROCRX": ("Nova Pro", "us-east-1", "regional", "cache_read", "0.2"),
    # the Price List's "Nova 2.0 Lite" (price_list_names.csv maps it): $0.00033 per 1K = $0.33 per 1M
    "B24NOVA20LITEIN": ("Nova 2.0 Lite", "us-east-1", "regional", "input", "0.33"),
}
MARKETPLACE_PRICES = {
    # unit "1M tokens": $3.30 per 1M as published
    "F01S45IN": ("Claude Sonnet 4.5 (Amazon Bedrock Edition)", "us-east-1", "regional", "input", "3.3"),
    "F02S45OUT": ("Claude Sonnet 4.5 (Amazon Bedrock Edition)", "us-east-1", "regional", "output", "16.5"),
    "F03S45CR": ("Claude Sonnet 4.5 (Amazon Bedrock Edition)", "us-east-1", "regional", "cache_read", "0.33"),
    "F04S45CW": ("Claude Sonnet 4.5 (Amazon Bedrock Edition)", "us-east-1", "regional", "cache_write", "4.125"),
    "F05S45GIN": ("Claude Sonnet 4.5 (Amazon Bedrock Edition)", "us-east-1", "global", "input", "3"),
    "F06S45GOUT": ("Claude Sonnet 4.5 (Amazon Bedrock Edition)", "us-east-1", "global", "output", "15"),
    "F07S45GCR": ("Claude Sonnet 4.5 (Amazon Bedrock Edition)", "us-east-1", "global", "cache_read", "0.3"),
    "F08S45GCW": ("Claude Sonnet 4.5 (Amazon Bedrock Edition)", "us-east-1", "global", "cache_write", "3.75"),
    # the 1-hour cache-write SKU has its own column now: $6.60 (2 x the regional input price 3.30)
    "F11S45CW1H": ("Claude Sonnet 4.5 (Amazon Bedrock Edition)", "us-east-1", "regional", "cache_write_1h", "6.6"),
    # unit "Units" in this offer is per 1M tokens: $1.10 stays $1.10
    "F12H45IN": ("Claude Haiku 4.5 (Amazon Bedrock Edition)", "eu-north-1", "regional", "input", "1.1"),
    "F13H45OUT": ("Claude Haiku 4.5 (Amazon Bedrock Edition)", "eu-north-1", "regional", "output", "5.5"),
    "F14H45GIN": ("Claude Haiku 4.5 (Amazon Bedrock Edition)", "eu-north-1", "global", "input", "1"),
    "F15H45GOUT": ("Claude Haiku 4.5 (Amazon Bedrock Edition)", "eu-north-1", "global", "output", "5"),
    # snake_case usagetypes, no regionCode (USW2 -> us-west-2)
    "F16O47IN": ("Claude Opus 4.7 (Amazon Bedrock Edition)", "us-west-2", "regional", "input", "5.5"),
    "F17O47OUT": ("Claude Opus 4.7 (Amazon Bedrock Edition)", "us-west-2", "regional", "output", "27.5"),
    "F18O47GIN": ("Claude Opus 4.7 (Amazon Bedrock Edition)", "us-west-2", "global", "input", "5"),
    "F19O47GOUT": ("Claude Opus 4.7 (Amazon Bedrock Edition)", "us-west-2", "global", "output", "25"),
    "F22H35IN": ("Claude 3.5 Haiku (Amazon Bedrock Edition)", "us-west-2", "regional", "input", "0.8"),
    "F23H35INOLD": ("Claude 3.5 Haiku (Amazon Bedrock Edition)", "us-west-2", "regional", "input", "1"),
    "F24H35OUT": ("Claude 3.5 Haiku (Amazon Bedrock Edition)", "us-west-2", "regional", "output", "4"),
}
SKIPPED = {
    "B19CANVAS": "not a token charge",
    "B20CUSTOM": "model customization",
    "B21LLAMATOKENS": "unknown unit 'Tokens'",
    "F20CLAUDE21": "context-window listing",
    "F21RERANK": "not a token charge",
}


# Option prices: read as the standard item they are an option of, marked with the option
# sku -> (name, charge, option, USD per 1M tokens)
OPTION_PRICES = {
    # "-flex" in the usagetype and "flex" in inferenceType and service_tier: $0.00003 per 1K = $0.03 per 1M
    "B05NOVALITEFLEX": ("Nova Lite", "input", "flex", "0.03"),
    # the model name "Nova Pro Latency Optimized" is Nova Pro's latency-optimized price: $0.001 per 1K = $1
    "B06NOVAPROLAT": ("Nova Pro", "input", "latency-optimized", "1"),
    # "_LatencyOptimized" in the usagetype: $3.96 per 1M
    "F10S45LAT": ("Claude Sonnet 4.5 (Amazon Bedrock Edition)", "input", "latency-optimized", "3.96"),
    # batch is read (and only reported: batch jobs leave no token logs): "-batch" in the usagetype, feature
    # "Batch Inference"; $0.00003 per 1K = $0.03 per 1M
    "B04NOVALITEBATCH": ("Nova Lite", "input", "batch", "0.03"),
    # "_Batch_" in the usagetype: $1.65 per 1M
    "F09S45BATCH": ("Claude Sonnet 4.5 (Amazon Bedrock Edition)", "input", "batch", "1.65"),
}


def test_every_recorded_product_is_covered_by_a_case():
    priced = set(BEDROCK_PRICES) | set(MARKETPLACE_PRICES) | set(OPTION_PRICES)
    assert set(BEDROCK_ITEMS) | set(MARKETPLACE_ITEMS) == priced | set(SKIPPED)


@pytest.mark.parametrize(("sku", "expected"), sorted(OPTION_PRICES.items()))
def test_parse_an_option_price(sku, expected):
    offer, items = (BEDROCK, BEDROCK_ITEMS) if sku.startswith("B") else (FOUNDATION_MODELS, MARKETPLACE_ITEMS)
    record = parse_product(items[sku], offer, REGIONS_BY_PREFIX)
    assert isinstance(record, PriceRecord)
    assert (record.name, record.charge, record.option, record.per_mtok) == (*expected[:3], D(expected[3]))


def test_option_prices_become_factors_compared_with_the_curated_tables():
    assembly = fetched_rows()
    got = {(f.model_id, f.option, f.charge): f.factor for f in assembly.factors}
    # 3.96 / 3.30 = 1.2 (Sonnet 4.5, us-east-1, regional); 0.03 / 0.06 = 0.5 (Nova Lite flex and batch);
    # 1.65 / 3.30 = 0.5 (Sonnet 4.5 batch);
    # Nova Pro's latency-optimized price has no standard input price beside it in these pages: no factor
    assert got == {
        ("anthropic.claude-sonnet-4-5-20250929-v1:0", "latency-optimized", "input"): D("1.2"),
        ("anthropic.claude-sonnet-4-5-20250929-v1:0", "batch", "input"): D("0.5"),
        ("amazon.nova-lite-v1:0", "flex", "input"): D("0.5"),
        ("amazon.nova-lite-v1:0", "batch", "input"): D("0.5"),
    }
    # the option SKUs never become standard rows
    rows = {row.key: row for row in assembly.rows}
    assert rows[("amazon.nova-lite-v1:0", "us-east-1", "in_region")].input == D("0.06")
    lines = _factor_lines(assembly.factors, curated_factors(PRICING))
    assert lines == [
        "  amazon.nova-lite-v1:0 batch input x0.5 (batch: reported only, batch jobs leave no token logs)",
        "  amazon.nova-lite-v1:0 flex input x0.5 (no row in service_options.csv)",
        "  anthropic.claude-sonnet-4-5-20250929-v1:0 batch input x0.5 (batch: reported only, batch jobs leave no token logs)",
        "  anthropic.claude-sonnet-4-5-20250929-v1:0 latency-optimized input x1.2 (service_options.csv has x1.2: agrees)",
    ]


@pytest.mark.parametrize(
    ("offer", "sku", "expected"),
    [(BEDROCK, sku, want) for sku, want in BEDROCK_PRICES.items()]
    + [(FOUNDATION_MODELS, sku, want) for sku, want in MARKETPLACE_PRICES.items()],
)
def test_parse_a_token_price(offer, sku, expected):
    items = BEDROCK_ITEMS if offer == BEDROCK else MARKETPLACE_ITEMS
    record = parse_product(items[sku], offer, REGIONS_BY_PREFIX)
    assert isinstance(record, PriceRecord)
    name, region, routing, charge, per_mtok = expected
    assert (record.name, record.region, record.routing, record.charge) == (name, region, routing, charge)
    assert record.per_mtok == D(per_mtok)
    assert isinstance(record.per_mtok, Decimal)
    assert record.effective == date(2026, 11, 1)


@pytest.mark.parametrize(("sku", "reason"), sorted(SKIPPED.items()))
def test_parse_skips_what_the_table_cannot_hold(sku, reason):
    offer, items = (BEDROCK, BEDROCK_ITEMS) if sku.startswith("B") else (FOUNDATION_MODELS, MARKETPLACE_ITEMS)
    skipped = parse_product(items[sku], offer, REGIONS_BY_PREFIX)
    assert isinstance(skipped, Skipped)
    assert (skipped.sku, skipped.reason) == (sku, reason)


def test_parse_rejects_a_product_without_a_region_or_json():
    product = json.loads(BEDROCK_ITEMS["B07NOVAMICROIN"])
    product["product"]["attributes"]["usagetype"] = "XXX9-NovaMicro-input-tokens"  # no regionCode, unknown prefix
    assert parse_product(json.dumps(product), BEDROCK, REGIONS_BY_PREFIX).reason == "unknown region"
    assert parse_product("{not json", BEDROCK, REGIONS_BY_PREFIX).reason == "not JSON"


def first_dimension(product):
    return next(iter(next(iter(product["terms"]["OnDemand"].values()))["priceDimensions"].values()))


def test_parse_does_not_guess_between_tiers_and_reads_numbers_exactly():
    product = json.loads(BEDROCK_ITEMS["B01NOVALITEIN"])
    dimensions = next(iter(product["terms"]["OnDemand"].values()))["priceDimensions"]
    dimensions["second"] = {**first_dimension(product), "beginRange": "1000000", "pricePerUnit": {"USD": "0.00005"}}
    assert (
        parse_product(json.dumps(product), BEDROCK, REGIONS_BY_PREFIX).reason
        == "several prices (tiered) for one product"
    )
    # a price published as a JSON number is read as a Decimal, never through a float: 0.00006 x 1,000 = 0.06
    text = BEDROCK_ITEMS["B01NOVALITEIN"].replace('"USD":"0.0000600000"', '"USD":0.00006')
    assert parse_product(text, BEDROCK, REGIONS_BY_PREFIX).per_mtok == D("0.06")


def test_a_price_stays_exact():
    # 0.0000087500 per 1K tokens x 1,000 = 0.00875 per 1M, exactly, and written without an exponent
    product = json.loads(BEDROCK_ITEMS["B01NOVALITEIN"])
    first_dimension(product)["pricePerUnit"]["USD"] = "0.0000087500"
    record = parse_product(json.dumps(product), BEDROCK, REGIONS_BY_PREFIX)
    assert record.per_mtok == D("0.00875")
    assert plain(record.per_mtok) == "0.00875"
    assert plain(D("8.75E-3")) == "0.00875"
    assert plain(D("1.5E+1")) == "15"
    assert plain(D("4.1250000000")) == "4.125"


# --- from records to rows ---------------------------------------------------------------------------------------


def fetched_rows():
    records = [
        parsed
        for offer, items in ((BEDROCK, BEDROCK_ITEMS), (FOUNDATION_MODELS, MARKETPLACE_ITEMS))
        for text in items.values()
        if isinstance(parsed := parse_product(text, offer, REGIONS_BY_PREFIX), PriceRecord)
    ]
    return assemble(records, NAMES, ALIASES, known=set(), source="2026-11-23")


def test_assemble_groups_charges_into_rows_per_scope():
    assembly = fetched_rows()
    rows = {row.key: row for row in assembly.rows}
    sonnet = "anthropic.claude-sonnet-4-5-20250929-v1:0"
    # the regional SKU prices both a base id called in-region and a geo profile; the Global SKU the global. one
    for scope in ("in_region", "geo"):
        assert rows[(sonnet, "us-east-1", scope)].prices == (D("3.3"), D("16.5"), D("0.33"), D("4.125"))
    assert rows[(sonnet, "us-east-1", "global")].prices == (D("3"), D("15"), D("0.3"), D("3.75"))
    assert rows[("amazon.nova-lite-v1:0", "us-east-1", "in_region")].prices == (D("0.06"), D("0.24"), D("0.015"), None)
    assert rows[("amazon.titan-embed-text-v2:0", "us-east-1", "geo")].prices == (D("0.02"), None, None, None)
    assert rows[("amazon.nova-2-lite-v1:0", "us-east-1", "global")].prices == (D("0.30"), D("2.5"), None, None)
    assert rows[("anthropic.claude-opus-4-7", "us-west-2", "global")].prices == (D("5"), D("25"), None, None)
    # the source names the offer, the SKU of each charge (column order) and the terms' effective date
    assert rows[(sonnet, "us-east-1", "global")].source == (
        "aws-price-list AmazonBedrockFoundationModels sku F05S45GIN,F06S45GOUT,F07S45GCR,F08S45GCW effective 2026-11-01"
    )
    assert rows[(sonnet, "us-east-1", "global")].effective == date(2026, 11, 1)
    # the 1-hour cache write has its own column (regional SKU only here)
    assert [rows[(sonnet, "us-east-1", scope)].cache_write_1h for scope in ("in_region", "geo", "global")] == [
        D("6.6"),
        D("6.6"),
        None,
    ]
    # Nova Pro: both cache-read items give the cache-read price; the one labelled "Input tokens" is not an input price
    nova_pro = rows[("amazon.nova-pro-v1:0", "us-east-1", "in_region")]
    assert (nova_pro.input, nova_pro.cache_read) == (None, D("0.2"))


def test_assemble_reports_unmapped_names_and_leaves_out_conflicting_prices():
    assembly = fetched_rows()
    assert dict(assembly.unmapped) == {(BEDROCK, "Some Future Model"): 1}
    # two SKUs give Claude 3.5 Haiku's us-west-2 input price (0.8 and 1): neither is guessed, the output stays
    assert assembly.conflicts == [
        "anthropic.claude-3-5-haiku-20241022-v1:0 us-west-2 regional input: F22H35IN=0.8, F23H35INOLD=1 (left out)"
    ]
    haiku = {row.key: row for row in assembly.rows}[("anthropic.claude-3-5-haiku-20241022-v1:0", "us-west-2", "geo")]
    assert haiku.prices == (None, D("4"), None, None)


def test_a_name_resolves_through_names_then_aliases_then_exact_ids():
    record = parse_product(BEDROCK_ITEMS["B18FUTUREIN"], BEDROCK, REGIONS_BY_PREFIX)
    assert assemble([record], NAMES, ALIASES, known=set(), source="x").unmapped
    # a display name listed as an alias
    rows = assemble([record], {}, {"Some Future Model": "acme.future-v1:0"}, known=set(), source="x").rows
    assert {row.model_id for row in rows} == {"acme.future-v1:0"}
    # a SKU that already names the model by its invocation id
    aliased = PriceRecord(
        BEDROCK, "acme.future-v1:0", "us-east-1", "regional", "input", D(1), date(2026, 1, 1), "s", ""
    )
    assert assemble([aliased], {}, {}, known={"acme.future-v1:0"}, source="x").rows


# --- merge ------------------------------------------------------------------------------------------------------


def row(model, region, scope, day, i=None, o=None, cr=None, cw=None, source="curated"):
    price = lambda x: None if x is None else D(x)  # noqa: E731
    return PriceRow(model, region, scope, date.fromisoformat(day), price(i), price(o), price(cr), price(cw), source)


SONNET = "anthropic.claude-sonnet-4-5-20250929-v1:0"
CURATED = [
    # equal to the API: unchanged
    row("amazon.nova-lite-v1:0", "us-east-1", "in_region", "2024-12-03", "0.06", "0.24", "0.015"),
    row(SONNET, "us-east-1", "global", "2025-09-29", "3", "15", "0.30", "3.75"),
    # a wrong geo price (= global): the API's 1.1 x price is appended from the API's date, the old row kept
    row(SONNET, "us-east-1", "geo", "2025-09-29", "3", "15", "0.30", "3.75"),
    # the API lists no cache price for Nova Micro in eu-central-1: the curated one is kept, so no change
    row("amazon.nova-micro-v1:0", "eu-central-1", "in_region", "2024-12-03", "0.046", "0.184", "0.0115"),
    # a curated row of the same date as the API's but another price: replaced (a correction)
    row("anthropic.claude-haiku-4-5-20251001-v1:0", "eu-north-1", "geo", "2026-11-01", "1", "5"),
    # a curated change dated after the API's date: the API price comes back from the refresh day
    row("anthropic.claude-opus-4-7", "us-west-2", "global", "2026-11-10", "4", "20"),
    # a key the API says nothing about: kept as it is
    row("meta.llama3-8b-instruct-v1:0", "us-east-1", "in_region", "2024-04-23", "0.3", "0.6"),
]


def test_merge_keeps_history_and_reports_every_change():
    merged = merge(CURATED, fetched_rows().rows, today=REFRESHED)
    rows = {(r.key, r.effective): r for r in merged.rows}

    # changed: a new row from the API's effective date; the old row stays for reports of past windows
    assert [(old.key, new.effective, new.prices) for old, new in merged.changed] == [
        (
            ("anthropic.claude-opus-4-7", "us-west-2", "global"),
            date(2026, 11, 23),  # the API's 2026-11-01 is before the curated 2026-11-10: from the refresh day
            (D("5"), D("25"), None, None),
        ),
        ((SONNET, "us-east-1", "geo"), date(2026, 11, 1), (D("3.3"), D("16.5"), D("0.33"), D("4.125"))),
    ]
    assert ((SONNET, "us-east-1", "geo"), date(2025, 9, 29)) in rows

    # removed: the same-date curated row, replaced by the API's
    haiku = ("anthropic.claude-haiku-4-5-20251001-v1:0", "eu-north-1", "geo")
    assert [(old.key, old.prices, new.prices) for old, new in merged.removed] == [
        (haiku, (D("1"), D("5"), None, None), (D("1.1"), D("5.5"), None, None))
    ]
    assert rows[(haiku, date(2026, 11, 1))].input == D("1.1")

    # added: keys the curated table did not have, from the API's date
    added = {r.key for r in merged.added}
    assert ("amazon.nova-micro-v1:0", "eu-central-1", "geo") in added
    assert (SONNET, "us-east-1", "in_region") in added
    assert all(r.effective == date(2026, 11, 1) for r in merged.added)

    # unchanged and kept
    assert rows[(("amazon.nova-micro-v1:0", "eu-central-1", "in_region"), date(2024, 12, 3))].cache_read == D("0.0115")
    assert rows[(("meta.llama3-8b-instruct-v1:0", "us-east-1", "in_region"), date(2024, 4, 23))].source == "curated"
    assert merged.unchanged == 3  # Nova Lite, Sonnet 4.5 global, Nova Micro eu-central-1 in_region
    assert merged.kept == 1  # Llama 3 8B
    assert len(merged.rows) == len(CURATED) + len(merged.added) + len(merged.changed)


def test_merge_notes_which_charges_it_kept_from_the_curated_row():
    curated = [row("amazon.nova-micro-v1:0", "eu-central-1", "geo", "2024-12-03", "0.04", "0.16", "0.01", source="old")]
    merged = merge(curated, fetched_rows().rows, today=REFRESHED)
    (_, new), *_ = [c for c in merged.changed if c[0].key == curated[0].key]
    assert new.prices == (D("0.046"), D("0.184"), D("0.01"), None)
    assert new.source == (
        "aws-price-list AmazonBedrock sku B07NOVAMICROIN,B08NOVAMICROOUT effective 2026-11-01; cache_read kept from old"
    )


def test_merge_of_a_table_with_itself_changes_nothing():
    table = parse_table((PRICING / "token_prices.csv").read_text())
    # The API answers one price per key, never a history: fold in the latest row of each key.
    latest = {row.key: row for row in sorted(table, key=lambda row: row.effective)}
    merged = merge(table, list(latest.values()), today=REFRESHED)
    assert (merged.added, merged.changed, merged.removed) == ([], [], [])
    assert format_table(merged.rows) == format_table(table)


# --- the command, offline and against a stubbed AWS -------------------------------------------------------------


def write_table(path, rows):
    path.write_text(format_table(rows))
    return path


def test_main_dry_run_reports_and_writes_nothing(tmp_path):
    table = write_table(tmp_path / "token_prices.csv", CURATED)
    before = table.read_text()
    out = io.StringIO()
    code = main(["--table", str(table), "--from-dir", str(FIXTURES), "--today", "2026-11-23", "--dry-run"], out=out)
    assert code == 0
    assert table.read_text() == before
    text = out.getvalue()
    assert "AmazonBedrock: 24 products read" in text
    assert "AmazonBedrockFoundationModels: 24 products read" in text
    assert "unmapped AmazonBedrock name 'Some Future Model'" in text
    assert "changed 2 rows" in text and "removed 1 rows" in text
    assert f"  ~ {SONNET} us-east-1 geo from 2025-09-29: 3/15/0.3/3.75  ->  " in text
    assert "dry run: nothing written" in text


def test_main_writes_a_sorted_table_and_a_second_run_is_a_no_op(tmp_path):
    table = write_table(tmp_path / "token_prices.csv", CURATED)
    args = ["--table", str(table), "--from-dir", str(FIXTURES), "--today", "2026-11-23"]
    assert main(args, out=io.StringIO()) == 0
    first = table.read_text()
    rows = parse_table(first)
    assert [r.key + (r.effective,) for r in rows] == sorted(r.key + (r.effective,) for r in rows)
    out = io.StringIO()
    assert main(args, out=out) == 0
    assert table.read_text() == first
    assert "added 0 rows" in out.getvalue() and "changed 0 rows" in out.getvalue()


def test_main_region_filter_keeps_other_regions_out(tmp_path):
    table = write_table(tmp_path / "token_prices.csv", CURATED)
    args = ["--table", str(table), "--from-dir", str(FIXTURES), "--today", "2026-11-23", "--region", "eu-north-1"]
    assert main(args, out=io.StringIO()) == 0
    new_rows = set(parse_table(table.read_text())) - set(CURATED)
    assert {r.region for r in new_rows} == {"eu-north-1"}
    assert {r.scope for r in new_rows} == {"in_region", "geo", "global"}


def test_main_refuses_an_empty_price_list(tmp_path):
    table = write_table(tmp_path / "token_prices.csv", CURATED)
    before = table.read_text()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["--table", str(table), "--from-dir", str(empty)], out=io.StringIO()) == 1
    assert table.read_text() == before


def page(offer, number):
    return json.loads((FIXTURES / f"{offer}.page{number}.json").read_text())


def test_fetch_products_follows_pages_with_the_documented_request():
    client = boto3.client("pricing", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    request = {"ServiceCode": BEDROCK, "Filters": [], "FormatVersion": "aws_v1"}
    with Stubber(client) as stub:
        stub.add_response("get_products", page(BEDROCK, 1), request)
        stub.add_response("get_products", page(BEDROCK, 2), {**request, "NextToken": "page-2-token"})
        items = list(fetch_products(client, BEDROCK))
        stub.assert_no_pending_responses()
    assert len(items) == len(BEDROCK_ITEMS) == 24


def test_fetch_products_filters_by_region_code():
    client = boto3.client("pricing", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        for region in ("us-east-1", "eu-north-1"):
            stub.add_response(
                "get_products",
                {"FormatVersion": "aws_v1", "PriceList": []},
                {
                    "ServiceCode": FOUNDATION_MODELS,
                    "Filters": [{"Type": "TERM_MATCH", "Field": "regionCode", "Value": region}],
                    "FormatVersion": "aws_v1",
                },
            )
        assert list(fetch_products(client, FOUNDATION_MODELS, ["us-east-1", "eu-north-1"])) == []
        stub.assert_no_pending_responses()


def test_main_uses_the_client_it_is_given(tmp_path):
    table = write_table(tmp_path / "token_prices.csv", CURATED)
    client = boto3.client("pricing", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        stub.add_response("get_products", page(FOUNDATION_MODELS, 1))
        out = io.StringIO()
        code = main(["--table", str(table), "--offer", FOUNDATION_MODELS], client=client, today=REFRESHED, out=out)
        stub.assert_no_pending_responses()
    assert code == 0
    assert f"{SONNET},us-east-1,in_region,2026-11-01,3.3,16.5,0.33,4.125" in table.read_text()


def test_refresh_is_pure_and_deterministic():
    products = {BEDROCK: list(BEDROCK_ITEMS.values()), FOUNDATION_MODELS: list(MARKETPLACE_ITEMS.values())}
    first = refresh(products, CURATED, NAMES, ALIASES, REGIONS_BY_PREFIX, REFRESHED)
    again = refresh(
        {k: list(reversed(v)) for k, v in products.items()}, CURATED, NAMES, ALIASES, REGIONS_BY_PREFIX, REFRESHED
    )
    assert format_table(first[0].rows) == format_table(again[0].rows)
    assert first[1] == again[1]


# --- the committed tables ---------------------------------------------------------------------------------------

TOKEN_TEXT = (PRICING / "token_prices.csv").read_text(encoding="utf-8")
TOKEN_ROWS = parse_table(TOKEN_TEXT)
PLAIN_DECIMAL = re.compile(r"^(0|[1-9]\d*)(\.\d*[1-9])?$")  # no exponent, no trailing zeros, no sign

# FACTS.md §3, us-east-1, USD per 1M tokens: (model, scope, input, output, cache read, cache write); None = no price
FACTS_REFERENCE = [
    ("anthropic.claude-3-haiku-20240307-v1:0", "in_region", "0.25", "1.25", None, None),
    ("anthropic.claude-3-5-haiku-20241022-v1:0", "in_region", "0.80", "4.00", "0.08", "1.00"),
    ("anthropic.claude-3-5-sonnet-20241022-v2:0", "in_region", "3", "15", "0.30", "3.75"),
    ("anthropic.claude-3-7-sonnet-20250219-v1:0", "in_region", "3", "15", "0.30", "3.75"),
    ("anthropic.claude-sonnet-4-20250514-v1:0", "in_region", "3", "15", "0.30", "3.75"),
    ("anthropic.claude-sonnet-4-5-20250929-v1:0", "global", "3", "15", "0.30", "3.75"),
    ("anthropic.claude-sonnet-4-5-20250929-v1:0", "geo", "3.30", "16.50", "0.33", "4.125"),
    ("anthropic.claude-haiku-4-5-20251001-v1:0", "global", "1", "5", "0.10", "1.25"),
    ("anthropic.claude-opus-4-20250514-v1:0", "in_region", "15", "75", "1.50", "18.75"),
    ("anthropic.claude-opus-4-1-20250805-v1:0", "in_region", "15", "75", "1.50", "18.75"),
    ("anthropic.claude-opus-4-5-20251101-v1:0", "global", "5", "25", "0.50", "6.25"),
    # Nova: cache writes are published at $0 (FACTS §3)
    ("amazon.nova-micro-v1:0", "in_region", "0.035", "0.14", "0.00875", "0"),
    ("amazon.nova-lite-v1:0", "in_region", "0.06", "0.24", "0.015", "0"),
    ("amazon.nova-pro-v1:0", "in_region", "0.80", "3.20", "0.20", "0"),
    ("amazon.titan-embed-text-v2:0", "in_region", "0.02", None, None, None),
    ("cohere.embed-english-v3", "in_region", "0.10", None, None, None),
    ("cohere.embed-multilingual-v3", "in_region", "0.10", None, None, None),
    # FACTS' "Claude 3.5 Sonnet" 3/15 also holds for v1, which (AWS pricing page) has no prompt caching
    ("anthropic.claude-3-5-sonnet-20240620-v1:0", "in_region", "3", "15", None, None),
]


# Claude 3.5 Sonnet v1/v2 entered Public Extended Access on 2025-12-01 at twice the price (FACTS §3): the launch
# prices above are those of the day before.
EXTENDED_ACCESS = date(2025, 12, 1)
LAUNCH_PRICED = {"anthropic.claude-3-5-sonnet-20241022-v2:0", "anthropic.claude-3-5-sonnet-20240620-v1:0"}


def current(model_id, region, scope, day=date(2026, 11, 23)):
    rows = [r for r in TOKEN_ROWS if r.key == (model_id, region, scope) and r.effective <= day]
    assert rows, f"no {scope} price for {model_id} in {region}"
    return max(rows, key=lambda r: r.effective)


def test_token_table_is_well_formed():
    reader = csv.reader(io.StringIO(TOKEN_TEXT))
    assert tuple(next(reader)) == HEADER
    for line, cells in enumerate(reader, start=2):
        assert len(cells) == len(HEADER), line
        model_id, region, scope, _, *prices, source = cells
        assert scope in SCOPES, line
        assert re.fullmatch(r"[a-z0-9-]+\.[a-z0-9.:-]+", model_id), f"{line}: {model_id} is not a base model id"
        assert not model_id.startswith(("us.", "eu.", "apac.", "jp.", "au.", "in.", "us-gov.", "global.", "arn:"))
        assert re.fullmatch(r"[a-z]{2}(-gov)?-[a-z]+-\d", region), f"{line}: region {region}"
        assert all(p == "" or PLAIN_DECIMAL.match(p) for p in prices), f"{line}: {prices} must be plain decimals"
        assert prices[0], f"{line}: every row has an input price"
        assert source.strip(), f"{line}: every row cites its source"


def test_token_table_has_no_duplicate_keys_and_is_in_canonical_order():
    keys = [r.key + (r.effective,) for r in TOKEN_ROWS]
    assert len(keys) == len(set(keys))
    assert format_table(TOKEN_ROWS) == TOKEN_TEXT  # sorted, plain decimals: what the refresh tool writes


def test_token_table_loads_in_the_product():
    table = load_price_table(PRICING / "token_prices.csv")
    assert len(table) == len(TOKEN_ROWS)


@pytest.mark.parametrize(("model_id", "scope", *"ioRw"), FACTS_REFERENCE)
def test_facts_reference_prices_are_present_exactly(model_id, scope, i, o, R, w):
    day = EXTENDED_ACCESS - timedelta(days=1) if model_id in LAUNCH_PRICED else date(2026, 11, 23)
    price = current(model_id, "us-east-1", scope, day)
    assert price.prices == tuple(None if x is None else D(x) for x in (i, o, R, w))


@pytest.mark.parametrize(
    "model_id",
    [
        "anthropic.claude-sonnet-4-5-20250929-v1:0",
        "anthropic.claude-haiku-4-5-20251001-v1:0",
        "anthropic.claude-opus-4-5-20251101-v1:0",
    ],
)
def test_geo_costs_1_1_times_global_for_the_newer_anthropic_models(model_id):
    # e.g. Haiku 4.5: 1 x 1.1 = 1.1 input, 5 x 1.1 = 5.5 output, 0.10 x 1.1 = 0.11, 1.25 x 1.1 = 1.375
    geo, glob = current(model_id, "us-east-1", "geo"), current(model_id, "us-east-1", "global")
    assert all(g is not None for g in glob.prices)
    assert geo.prices == tuple(g * D("1.1") for g in glob.prices)
    # a base id called in-region pays the regional (geo) price, not the global one
    assert current(model_id, "us-east-1", "in_region").prices == geo.prices


@pytest.mark.parametrize(
    "model_id",
    [
        "anthropic.claude-3-5-haiku-20241022-v1:0",
        "anthropic.claude-3-7-sonnet-20250219-v1:0",
        "anthropic.claude-sonnet-4-20250514-v1:0",
        "anthropic.claude-opus-4-1-20250805-v1:0",
        "amazon.nova-pro-v1:0",
    ],
)
def test_geo_equals_in_region_for_older_models(model_id):
    for region in ("us-east-1", "us-west-2"):
        assert current(model_id, region, "geo").prices == current(model_id, region, "in_region").prices


def test_embedding_models_have_no_output_price():
    embeddings = {r.model_id for r in TOKEN_ROWS if "embed" in r.model_id}
    assert {"amazon.titan-embed-text-v2:0", "cohere.embed-english-v3"} <= embeddings
    assert all(r.output is None for r in TOKEN_ROWS if r.model_id in embeddings)


def test_image_table_is_well_formed():
    text = (PRICING / "image_prices.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(csv.reader(io.StringIO(text)).__next__()) == (
        "model_id",
        "region",
        "effective_date",
        "max_width",
        "max_height",
        "quality",
        "max_steps",
        "price_per_image",
        "source",
    )
    keys = set()
    for row in rows:
        date.fromisoformat(row["effective_date"])
        assert PLAIN_DECIMAL.match(row["price_per_image"]), row
        assert all(row[c] == "" or row[c].isdigit() for c in ("max_width", "max_height", "max_steps")), row
        assert row["quality"] in ("", "standard", "premium"), row
        assert row["source"], row
        key = tuple(
            row[c] for c in ("model_id", "region", "effective_date", "max_width", "max_height", "quality", "max_steps")
        )
        assert key not in keys, row
        keys.add(key)
    prices = {
        (r["model_id"], r["region"], r["max_width"], r["quality"], r["max_steps"]): D(r["price_per_image"])
        for r in rows
    }
    # FACTS §3: Titan Image Generator <=512: 0.008 standard / 0.01 premium; <=1024: 0.01 / 0.012
    for model_id in ("amazon.titan-image-generator-v1", "amazon.titan-image-generator-v2:0"):
        assert prices[(model_id, "us-east-1", "512", "standard", "")] == D("0.008")
        assert prices[(model_id, "us-east-1", "512", "premium", "")] == D("0.01")
        assert prices[(model_id, "us-east-1", "1024", "standard", "")] == D("0.01")
        assert prices[(model_id, "us-east-1", "1024", "premium", "")] == D("0.012")
    # SDXL 1.0: 0.04 up to 50 steps, 0.08 above
    assert prices[("stability.stable-diffusion-xl-v1", "us-east-1", "1024", "", "50")] == D("0.04")
    assert prices[("stability.stable-diffusion-xl-v1", "us-east-1", "1024", "", "")] == D("0.08")


def test_aliases_point_at_priced_models_and_shadow_none():
    image_models = {row["model_id"] for row in csv.DictReader((PRICING / "image_prices.csv").open())}
    priced = {r.model_id for r in TOKEN_ROWS} | image_models
    for alias, model_id in ALIASES.items():
        assert model_id in priced, f"alias {alias} -> {model_id} has no price"
        assert alias not in priced, f"alias {alias} would hide a priced model id"


def test_price_list_names_point_at_priced_models():
    priced = {r.model_id for r in TOKEN_ROWS}
    rows = list(csv.DictReader((PRICING / "price_list_names.csv").open()))
    assert {row["offer"] for row in rows} <= {BEDROCK, FOUNDATION_MODELS}
    assert all(row["evidence"] in ("observed", "pattern") for row in rows)
    assert [row["model_id"] for row in rows if row["model_id"] not in priced] == []
    assert len({(row["offer"], row["name"]) for row in rows}) == len(rows)


def test_the_names_are_the_bundled_ones_with_the_operators_rows_over_them():
    # the one loader of the weekly refresh and the reconciliation with the bill
    bundled, regions = price_list_names()
    assert bundled == NAMES and regions == REGIONS_BY_PREFIX
    extra = (
        "offer,name,model_id,evidence\n"
        f"{BEDROCK},Claude 3 Haiku,acme.haiku-fork-v1:0,operator\n"
        f"{FOUNDATION_MODELS},Brand New (Amazon Bedrock Edition),acme.brand-new-v1:0,operator\n"
    )
    names = price_list_names(extra.encode()).names
    assert names[(BEDROCK, "Claude 3 Haiku")] == "acme.haiku-fork-v1:0"  # the operator's row wins
    assert names[(FOUNDATION_MODELS, "Brand New (Amazon Bedrock Edition)")] == "acme.brand-new-v1:0"
    assert len(names) == len(NAMES) + 1
    assert price_list_names(b"").names == NAMES == price_list_names(None).names


def test_usagetype_prefixes_name_regions():
    assert REGIONS_BY_PREFIX["USE1"] == "us-east-1"
    assert REGIONS_BY_PREFIX["APS3"] == "ap-south-1"  # the billing prefix is not derived from the region name
    assert len(set(REGIONS_BY_PREFIX.values())) == len(REGIONS_BY_PREFIX)


@pytest.mark.parametrize("model_id", sorted(LAUNCH_PRICED))
def test_claude_3_5_sonnet_costs_twice_as_much_from_extended_access(model_id):
    # FACTS §3: $6 / $30 per 1M tokens from 2025-12-01 (v2 cache read $0.60, write $7.50), in every region it had
    cached = model_id.endswith("v2:0")
    regions = {r.region for r in TOKEN_ROWS if r.model_id == model_id}
    assert len(regions) >= 12
    for region in regions:
        for scope in ("in_region", "geo"):
            before = current(model_id, region, scope, EXTENDED_ACCESS - timedelta(days=1))
            after = current(model_id, region, scope, EXTENDED_ACCESS)
            assert after.effective == EXTENDED_ACCESS
            assert after.input == 2 * before.input and after.output == 2 * before.output
            if not region.startswith("us-gov-"):  # GovCloud doubles its own, higher launch price
                assert after.prices == (D("6"), D("30"), D("0.6") if cached else None, D("7.5") if cached else None)


def test_nova_cache_writes_are_priced_at_zero_and_premier_reads_at_a_quarter():
    nova_text = {r.model_id for r in TOKEN_ROWS if r.model_id.startswith("amazon.nova") and "embed" not in r.model_id}
    assert all(r.cache_write == 0 for r in TOKEN_ROWS if r.model_id in nova_text)
    premier = current("amazon.nova-premier-v1:0", "us-east-1", "in_region")
    assert premier.cache_read == D("0.625") == premier.input / 4
