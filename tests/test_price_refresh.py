"""Prices that refresh themselves: the function's weekly run reads the AWS Price List into the report bucket, and
every report after it prices with that table — a model AWS started selling after the package was built included."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path

import pytest

from lambda_function.errors import ReportError
from local_aws.generate import put_records

from .faults import Faults
from .support import BUCKET, DAY, GROUP, NOW, START, configure, csv_rows, emails, run, summary_document, text_body

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "price_list"
NEW_MODEL = "acme.brand-new-v1:0"  # in no bundled table: only the refreshed one can price it


def product(sku: str, usagetype: str, usd: str) -> str:
    """A marketplace-offer item as the Price List sends it: a JSON string, model only in `servicename`."""
    return json.dumps(
        {
            "product": {
                "attributes": {
                    "servicecode": "AmazonBedrockFoundationModels",
                    "servicename": "Brand New (Amazon Bedrock Edition)",
                    "usagetype": usagetype,
                    "operation": "Usage",
                    "regionCode": "us-east-1",
                },
                "sku": sku,
            },
            "serviceCode": "AmazonBedrockFoundationModels",
            "terms": {
                "OnDemand": {
                    f"{sku}.T": {
                        "priceDimensions": {f"{sku}.T.D": {"unit": "1M tokens", "pricePerUnit": {"USD": usd}}},
                        "sku": sku,
                        "effectiveDate": "2026-11-01T00:00:00Z",
                    }
                }
            },
        }
    )


def price_list(extra: list[str]):
    """GetProducts answered from the recorded pages, one page per offer, plus `extra` marketplace items."""

    def respond(request):
        offer = json.loads(request.body)["ServiceCode"]
        items = []
        for path in sorted(FIXTURES.glob(f"{offer}.*.json")):
            items += json.loads(path.read_text())["PriceList"]
        if offer == "AmazonBedrockFoundationModels":
            items += extra
        return {"FormatVersion": "aws_v1", "PriceList": items}

    return respond


def call(day_start, n, model_id, i, o):
    return {
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": (day_start + timedelta(minutes=n)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "accountId": "123456789012",
        "identity": {"arn": "arn:aws:iam::123456789012:user/early-adopter"},
        "region": "us-east-1",
        "requestId": f"r-{day_start:%d}-{n}",
        "operation": "Converse",
        "modelId": model_id,
        "input": {"inputTokenCount": i},
        "output": {"outputTokenCount": o},
    }


@pytest.fixture
def account(aws, monkeypatch):
    configure(aws, monkeypatch)
    before = START - timedelta(days=1)
    put_records(
        aws.client("logs"),
        GROUP,
        [call(before, 1, NEW_MODEL, 1_000_000, 100_000), call(START, 1, NEW_MODEL, 1_000_000, 100_000)],
    )
    # the operator maps the new Price List name to its model id, in the bucket: no new package
    names = "offer,name,model_id,evidence\nAmazonBedrockFoundationModels,Brand New (Amazon Bedrock Edition),acme.brand-new-v1:0,operator\n"
    aws.client("s3").put_object(Bucket=BUCKET, Key="bedrock-usage/prices/price_list_names.csv", Body=names.encode())
    return aws


def refresh(faults: Faults):
    return run({"refresh_prices": True}, session=faults.session()).response


def test_a_model_only_the_refreshed_table_knows_is_priced_and_announced(account):
    # GIVEN yesterday's report, priced with the bundled table: the new model is unpriced
    before = run({"date": (DAY - timedelta(days=1)).isoformat()}, now=NOW - timedelta(days=1)).response
    assert before["unpriced_models"] == [NEW_MODEL]

    # WHEN the weekly refresh runs against the Price List, which now sells the model at $2 / $8 per 1M tokens
    faults = Faults()
    items = [
        product("NEWIN", "USE1-MP:USE1_InputTokenCount-Units", "2.0"),
        product("NEWOUT", "USE1-MP:USE1_OutputTokenCount-Units", "8.0"),
    ]
    faults.add("GetProducts", Faults.answer(price_list(items)), times=-1)
    answer = refresh(faults)
    assert answer["status"] == "ok" and answer["based_on"] == "bundled"
    # the key names the day and the bundled table it was built from (the first 12 hex digits of its SHA-256)
    bundled = hashlib.sha256((Path(__file__).resolve().parent.parent / "pricing" / "token_prices.csv").read_bytes())
    table_name = f"token_prices.{NOW.date().isoformat()}.{bundled.hexdigest()[:12]}.csv"
    assert answer["price_table"] == f"s3://{BUCKET}/bedrock-usage/prices/{table_name}"
    assert answer["added_rows"] >= 2  # the new model's in_region and geo rows at least

    # THEN today's report prices it: 1,000,000 x 2 + 100,000 x 8 per 1M = 2.00 + 0.80 = 2.80
    response = run({"date": DAY.isoformat()}).response
    (row,) = [r for r in csv_rows(account, response) if r["Model Id"] == NEW_MODEL]
    assert (row["Charges incurred"], row["Pricing status"]) == ("2.800000", "priced")
    # AND the footer names the refreshed table by its date, and the email says what changed since yesterday
    footer = summary_document(account, response)["footer"]
    assert footer["price_table_version"].startswith(f"{table_name}@")
    assert footer["price_changes"]["newly_priced"] == [NEW_MODEL]
    body = text_body(emails(account)[-1])
    assert "PRICES CHANGED since the previous report" in body and f"Newly priced: {NEW_MODEL}" in body


def test_a_failed_refresh_changes_nothing(account):
    faults = Faults()
    faults.add("GetProducts", Faults.error(400, "AccessDeniedException", "not authorized"), times=-1)
    with pytest.raises(Exception, match="AccessDenied"):
        refresh(faults)
    assert not [
        k
        for k in (o["Key"] for o in account.client("s3").list_objects_v2(Bucket=BUCKET)["Contents"])
        if "token_prices." in k
    ]
    # the report goes on with the bundled table
    assert run({"date": DAY.isoformat()}).response["unpriced_models"] == [NEW_MODEL]


def test_an_empty_price_list_writes_no_table(account):
    faults = Faults()
    faults.add("GetProducts", Faults.answer(lambda request: {"FormatVersion": "aws_v1", "PriceList": []}), times=-1)
    with pytest.raises(ReportError, match="no Bedrock products"):
        refresh(faults)


def test_a_table_refreshed_from_an_older_package_is_not_used(account):
    # GIVEN a refreshed table whose key names another bundled table (the package was updated since)
    stale = (Path(__file__).resolve().parent.parent / "pricing" / "token_prices.csv").read_text()
    stale += f"{NEW_MODEL},us-east-1,in_region,2024-01-01,1,1,,,,stale\n"
    account.client("s3").put_object(
        Bucket=BUCKET,
        Key="bedrock-usage/prices/token_prices.2026-01-01.000000000000.csv",
        Body=stale.encode(),
    )
    # THEN the report prices with the bundled table
    response = run({"date": DAY.isoformat()}).response
    assert response["unpriced_models"] == [NEW_MODEL]


def test_the_refresh_event_takes_no_other_key(account):
    answer = run({"refresh_prices": True, "date": DAY.isoformat()}).response
    assert answer["status"] == "error" and answer["error"]["field"] == "refresh_prices"


BUNDLED_TABLE = Path(__file__).resolve().parent.parent / "pricing" / "token_prices.csv"
SHA12 = hashlib.sha256(BUNDLED_TABLE.read_bytes()).hexdigest()[:12]


def _plant(aws, day: str, body: bytes) -> str:
    key = f"bedrock-usage/prices/token_prices.{day}.{SHA12}.csv"
    aws.client("s3").put_object(Bucket=BUCKET, Key=key, Body=body)
    return key


def _with_new_model(price: str = "2") -> str:
    """The bundled table plus a row for the new model: what a refresh would write."""
    return BUNDLED_TABLE.read_text() + f"{NEW_MODEL},us-east-1,in_region,2024-01-01,{price},8,,,,refresh\n"


def test_a_table_dated_after_today_is_ignored_and_named(account):
    # GIVEN a good refreshed table from yesterday, and one "from 2099" that prices the new model at 100x
    good = _plant(account, (NOW.date() - timedelta(days=1)).isoformat(), _with_new_model("2").encode())
    future = _plant(account, "2099-12-31", _with_new_model("200").encode())
    # WHEN the day is reported
    response = run({"date": DAY.isoformat()}).response
    # THEN yesterday's table priced it: 1,000,000 x 2 + 100,000 x 8 per 1M = 2.80, and the footer names the other
    (row,) = [r for r in csv_rows(account, response) if r["Model Id"] == NEW_MODEL]
    assert row["Charges incurred"] == "2.800000"
    footer = summary_document(account, response)["footer"]
    assert footer["price_table_key"] == good
    assert footer["price_tables_refused"] == [{"key": future, "why": f"dated 2099-12-31, after today ({NOW.date()})"}]
    assert f"Price table NOT used: {future}" in text_body(emails(account)[-1])


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (_with_new_model("-2").encode(), "is not a price"),
        (_with_new_model("5000").encode(), "$5000 per million tokens, more than any model costs"),
        (b"model_id,region\nx,y\n", "header must be"),
        (_with_new_model()[:-30].encode(), "columns, expected"),  # a row cut in the middle
        (_with_new_model().encode("utf-16"), "utf-8"),
        (BUNDLED_TABLE.read_text().splitlines()[0].encode() + b"\n", "has no price rows"),
    ],
    ids=["negative", "absurd", "columns", "cut-off", "not-utf8", "no-rows"],
)
def test_a_poisoned_table_is_never_used_and_every_report_still_goes_out(account, body, why):
    # GIVEN today's refreshed table is poisoned
    poisoned = _plant(account, NOW.date().isoformat(), body)
    # WHEN the day is reported, and the weekly refresh runs after it
    response = run({"date": DAY.isoformat()}).response
    # THEN the report goes out on the bundled table, naming the table it did not use and why
    assert response["status"] == "ok" and response["unpriced_models"] == [NEW_MODEL]
    (refused,) = summary_document(account, response)["footer"]["price_tables_refused"]
    assert refused["key"] == poisoned and why in refused["why"]
    # AND the weekly refresh does not build on it either
    faults = Faults()
    faults.add(
        "GetProducts", Faults.answer(price_list([product("X", "USE1-MP:USE1_InputTokenCount-Units", "2")])), times=-1
    )
    assert refresh(faults)["based_on"] == "bundled"
