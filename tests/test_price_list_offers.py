"""The refresh on Price List offer files in the published bulk shape (tests/fixtures/price_list/bulk/, reconstructed:
see its README): it reproduces the curated rows it covers to the cent, writes option prices as dated rows of the
factor tables, reads the third offer, and folds older versions of the Price List (the Bulk API, answered at the
HTTP boundary) into dated rows."""

from __future__ import annotations

import io
import json
import shutil
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from lambda_function.pricing.price_list import (
    CONTEXT_TIERS,
    SERVICE_OPTIONS,
    offer_file_items,
    parse_factor_table,
    refresh,
)
from lambda_function.pricing.tables import parse_table
from pricing.refresh import main

from .faults import Faults

ROOT = Path(__file__).resolve().parent.parent
BULK = Path(__file__).resolve().parent / "fixtures" / "price_list" / "bulk"
CURRENT = "20261201000000"
SONNET = "anthropic.claude-sonnet-4-5-20250929-v1:0"
NOVA_PRO = "amazon.nova-pro-v1:0"
COVERED = {SONNET, NOVA_PRO, "anthropic.claude-3-haiku-20240307-v1:0", "amazon.titan-embed-text-v2:0"}
D = Decimal


def curated_dir(tmp_path: Path) -> Path:
    """The committed rows the fixtures cover (us-east-1), and the committed factor rows of Sonnet 4.5."""
    lines = (ROOT / "pricing" / "token_prices.csv").read_text().splitlines(keepends=True)
    keep = [lines[0]] + [ln for ln in lines[1:] if ln.split(",")[0] in COVERED and ln.split(",")[1] == "us-east-1"]
    (tmp_path / "token_prices.csv").write_text("".join(keep))
    for name in (SERVICE_OPTIONS, CONTEXT_TIERS):
        lines = (ROOT / "pricing" / name).read_text().splitlines(keepends=True)
        (tmp_path / name).write_text("".join([lines[0]] + [ln for ln in lines[1:] if ln.startswith(SONNET + ",")]))
    return tmp_path


def current_files(tmp_path: Path) -> Path:
    pages = tmp_path / "offers"
    pages.mkdir()
    for path in BULK.glob(f"*.{CURRENT}.json"):
        shutil.copy(path, pages / path.name)
    return pages


def test_the_refresh_on_the_offer_files_reproduces_the_curated_rows_to_the_cent(tmp_path):
    (tmp_path / "t").mkdir()
    table_dir = curated_dir(tmp_path / "t")
    table = table_dir / "token_prices.csv"
    (curated_latency,) = [
        r
        for r in parse_factor_table(SERVICE_OPTIONS, (table_dir / SERVICE_OPTIONS).read_text())
        if r.option == "latency-optimized"
    ]
    before = table.read_text()
    assert len(before.splitlines()) == 1 + 9  # Sonnet 4.5 x3 scopes, Nova Pro x2, Haiku 3 x2, Titan v2 x2
    out = io.StringIO()
    args = ["--table", str(table), "--from-dir", str(current_files(tmp_path)), "--today", "2026-12-05"]
    assert main(args, out=out) == 0
    text = out.getvalue()
    # every covered row agrees with the Price List to the cent: nothing added, changed or replaced
    assert table.read_text() == before
    assert "added 0 rows" in text and "changed 0 rows" in text and "removed 0 rows" in text
    assert "unchanged 9 rows" in text
    # the three offers are read; the third offer's items that are not token prices are listed, not guessed
    assert "AmazonBedrockService: 4 products read" in text
    for usagetype in (
        "USE1-ContentPolicy-TextUnits",
        "USE1-StructuredDataRetrieval-Requests",
        "USE1-FlowNodeTransitions",
    ):
        assert f"AmazonBedrockService item not mapped: usagetype '{usagetype}'" in text
    # batch is read and reported only: 0.0004 / 0.0008 = 0.5 (Nova Pro), 1.5 / 3 = 0.5 (Sonnet 4.5 global)
    assert f"  {NOVA_PRO} batch input x0.5 (batch: reported only" in text
    assert f"  {SONNET} batch input x0.5 (batch: reported only" in text

    options = {
        (r.model_id, r.option): r
        for r in parse_factor_table(SERVICE_OPTIONS, (table_dir / SERVICE_OPTIONS).read_text())
    }
    # the curated Sonnet 4.5 latency-optimized row agrees (3.96 / 3.30 = 19.8 / 16.5 = 1.2): kept as it was
    assert options[(SONNET, "latency-optimized")] == curated_latency
    # priority: 0.0014 / 0.0008 = 0.0056 / 0.0032 = 0.00035 / 0.0002 = 1.75; cache write is $0 standard: 1
    priority = options[(NOVA_PRO, "priority")]
    assert (priority.effective.isoformat(), priority.factors) == ("2025-11-18", (D("1.75"), D("1.75"), D("1.75"), D(1)))
    assert (
        priority.source == "aws-price-list AmazonBedrock sku NPRO-PRI-CR,NPRO-PRI-IN,NPRO-PRI-OUT effective 2025-11-18"
    )
    # flex: 0.0004 / 0.0008 = 0.0016 / 0.0032 = 0.0001 / 0.0002 = 0.5
    assert options[(NOVA_PRO, "flex")].factors == (D("0.5"), D("0.5"), D("0.5"), D(1))
    # latency-optimized Nova Pro (1.25 x input and output) has no cache-read price: not written, said so
    assert (NOVA_PRO, "latency-optimized") not in options
    assert f"{NOVA_PRO} latency-optimized: no Price List factor for cache_read: not written" in text
    # long context: 6.6 / 3.3 = 2, 24.75 / 16.5 = 1.5, 0.66 / 0.33 = 2, 8.25 / 4.125 = 2: the curated tier agrees
    tiers = parse_factor_table(CONTEXT_TIERS, (table_dir / CONTEXT_TIERS).read_text())
    assert [(t.option, t.factors) for t in tiers] == [("200000", (D(2), D("1.5"), D(2), D(2)))]

    # a second run changes nothing
    again = io.StringIO()
    tables = {name: (table_dir / name).read_text() for name in (SERVICE_OPTIONS, CONTEXT_TIERS)}
    assert main(args, out=again) == 0
    assert "factor tables: 0 rows added, 0 changed" in again.getvalue()
    assert {name: (table_dir / name).read_text() for name in tables} == tables


def products(version: str, edit=None) -> dict[str, list[str]]:
    found = {}
    for path in BULK.glob(f"*.{version}.json"):
        document = json.loads(path.read_text(), parse_float=str)
        if edit:
            edit(document)
        found[document["offerCode"]] = list(offer_file_items(document))
    return found


def test_a_changed_option_price_becomes_a_new_dated_factor_row(tmp_path):
    table_dir = tmp_path / "t"
    table_dir.mkdir()
    curated_dir(table_dir)
    curated = parse_table((table_dir / "token_prices.csv").read_text())
    factor_tables = {name: (table_dir / name).read_text() for name in (SERVICE_OPTIONS, CONTEXT_TIERS)}

    def dearer_long_context(document):
        # a newer version: long-context input 2.2 x from 2026-12-01 (7.26 / 3.30 regional, 6.60 / 3 global)
        for sku, usd in (("S45-LC-IN", "7.26"), ("S45-G-LC-IN", "6.6")):
            (term,) = document["terms"]["OnDemand"].get(sku, {"x": None}).values()
            if term:
                term["effectiveDate"] = "2026-12-01T00:00:00Z"
                (dimension,) = term["priceDimensions"].values()
                dimension["pricePerUnit"]["USD"] = usd

    merged, text = refresh(
        products(CURRENT, dearer_long_context),
        curated,
        {},
        {"Claude Sonnet 4.5 (Amazon Bedrock Edition)": SONNET, "Nova Pro": NOVA_PRO},
        {},
        datetime(2026, 12, 5, tzinfo=UTC).date(),
        factor_tables=factor_tables,
    )
    tiers = parse_factor_table(CONTEXT_TIERS, merged.factor_tables[CONTEXT_TIERS])
    # the old tier stays for windows before the change; the new one from the Price List's effective date
    assert [(t.effective.isoformat(), t.factors) for t in tiers] == [
        ("2025-09-29", (D(2), D("1.5"), D(2), D(2))),
        ("2026-12-01", (D("2.2"), D("1.5"), D(2), D(2))),
    ]
    assert tiers[1].source.startswith("aws-price-list AmazonBedrockFoundationModels sku S45-G-LC-IN,S45-G-LC-OUT,")
    assert tiers[1].source.endswith(" effective 2026-12-01")
    assert f"~ {CONTEXT_TIERS} {SONNET} 200000 from 2025-09-29: x2/1.5/2/2  ->  " in text


def bulk_api(faults: Faults, versions: dict[str, list[str]]) -> dict[str, bytes]:
    """ListPriceLists and GetPriceListFileUrl answered at the HTTP boundary from the fixture versions: per offer,
    the newest version published on or before the EffectiveDate asked. Returns the files by URL (the opener's)."""
    files = {}
    for path in BULK.glob("*.json"):
        offer, version, _ = path.name.split(".")
        files[f"https://pricing.example/offers/{offer}/{version}.json"] = path.read_bytes()

    def list_price_lists(request):
        body = json.loads(request.body)
        asked = datetime.fromtimestamp(body["EffectiveDate"], tz=UTC).strftime("%Y%m%d%H%M%S")
        assert (body["CurrencyCode"], body.get("RegionCode")) == ("USD", "us-east-1")
        published = [v for v in versions.get(body["ServiceCode"], []) if v <= asked]
        lists = (
            [
                {
                    "PriceListArn": f"arn:aws:pricing:::price-list/aws/{body['ServiceCode']}/USD/{max(published)}/us-east-1",
                    "RegionCode": "us-east-1",
                    "CurrencyCode": "USD",
                    "FileFormats": ["json", "csv"],
                }
            ]
            if published
            else []
        )
        return {"PriceLists": lists}

    def file_url(request):
        body = json.loads(request.body)
        assert body["FileFormat"] == "json"
        _, _, offer, _, version, _ = body["PriceListArn"].split("/")
        return {"Url": f"https://pricing.example/offers/{offer}/{version}.json"}

    def get_products(request):
        offer = json.loads(request.body)["ServiceCode"]
        return {"FormatVersion": "aws_v1", "PriceList": products(CURRENT).get(offer, [])}

    faults.add("ListPriceLists", Faults.answer(list_price_lists), times=-1)
    faults.add("GetPriceListFileUrl", Faults.answer(file_url), times=-1)
    faults.add("GetProducts", Faults.answer(get_products), times=-1)
    return files


def test_history_since_reads_each_months_price_list_and_dates_each_change(tmp_path):
    # GIVEN a table with GPT-5.6 Luna at its cut price only (as seeded, from 2024-01-01)
    luna = "openai.gpt-5.6-luna"
    table = tmp_path / "token_prices.csv"
    header = (ROOT / "pricing" / "token_prices.csv").read_text().splitlines()[0]
    table.write_text(
        f"{header}\n{luna},us-east-1,geo,2024-01-01,0.22,1.32,,,,seed\n{luna},us-east-1,in_region,2024-01-01,0.22,1.32,,,,seed\n"
    )
    # AND a Price List whose AmazonBedrock offer has a version from launch (13 July, $1.10 / $6.60 per 1M) and
    # one from 1 August (the cut, effective 30 July); the current version does not list Luna
    faults = Faults()
    files = bulk_api(faults, {"AmazonBedrock": ["20260713000000", "20260801000000", CURRENT]})
    client = faults.session().client(
        "pricing", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    opened: list[str] = []

    def opener(url: str) -> bytes:
        opened.append(url)
        return files[url]

    out = io.StringIO()
    args = ["--table", str(table), "--history-since", "2026-07-14", "--region", "us-east-1", "--today", "2026-12-05"]
    assert main(args, client=client, out=out, opener=opener) == 0
    # THEN 14 July and the start of each month since were asked for, and each file was downloaded once
    assert faults.count("ListPriceLists") == 6 * 3  # 6 days x 3 offers
    assert sorted(url.rsplit("/", 1)[1] for url in opened) == [
        "20260713000000.json",
        "20260801000000.json",
        "20261201000000.json",
    ]
    # AND each price the history shows is a row from the day it took effect; the seed row stays
    rows = [
        (r.scope, r.effective.isoformat(), r.input, r.output, r.source)
        for r in parse_table(table.read_text())
        if r.model_id == luna
    ]
    launch = "aws-price-list AmazonBedrock sku LUNA-IN,LUNA-OUT effective 2026-07-13"
    cut = "aws-price-list AmazonBedrock sku LUNA-IN,LUNA-OUT effective 2026-07-30"
    assert rows == [
        ("geo", "2024-01-01", D("0.22"), D("1.32"), "seed"),
        ("geo", "2026-07-13", D("1.1"), D("6.6"), launch),
        ("geo", "2026-07-30", D("0.22"), D("1.32"), cut),
        ("in_region", "2024-01-01", D("0.22"), D("1.32"), "seed"),
        ("in_region", "2026-07-13", D("1.1"), D("6.6"), launch),
        ("in_region", "2026-07-30", D("0.22"), D("1.32"), cut),
    ]
    assert "history 2026-07-14: 2 products read, 0 rows added, 2 changed" in out.getvalue()

    # AND the history read again changes nothing (the rows are there)
    again = io.StringIO()
    before = table.read_text()
    faults2 = Faults()
    bulk_api(faults2, {"AmazonBedrock": ["20260713000000", "20260801000000", CURRENT]})
    client2 = faults2.session().client(
        "pricing", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    assert main(args, client=client2, out=again, opener=opener) == 0
    assert table.read_text() == before
