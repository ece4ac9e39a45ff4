"""Estimated vs billed: a settled day's JSON summary against Cost Explorer (the embedded double, seeded with billing
line items), every figure worked out by hand. The report itself always goes out, whatever the reconciliation says."""

from __future__ import annotations

import json
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from lambda_function.store import report_key
from lambda_function.window import day_window
from local_aws.cost_explorer import LineItem
from local_aws.generate import generate_records, put_records

from .faults import Faults
from .support import BUCKET, DAY, END, GROUP, START, configure, emails, run, text_body

SETTLED = DAY - timedelta(days=2)  # RECONCILE_LAG_DAYS, 2 by default
LOGGED = "111111111111"
SONNET = "Claude Sonnet 4.5 (Amazon Bedrock Edition)"


def summary(total="10", sonnet="6", nova="4"):
    """The settled day's summary as a report left it: $6 on Sonnet 4.5 (us.), $4 on Nova Lite, all in us-east-1."""
    window = day_window(SETTLED, ZoneInfo("UTC"))
    return window, {
        "schema": "bedrock-usage-report/summary/1",
        "window": window.as_json(),
        "total_cost_usd": total,
        "by_model": [
            {"name": "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "cost_usd": sonnet, "invocations": 3},
            {"name": "amazon.nova-lite-v1:0", "cost_usd": nova, "invocations": 5},
        ],
        "by_region": [{"name": "us-east-1", "cost_usd": total, "invocations": 8}],
        "by_identity": [{"name": f"arn:aws:iam::{LOGGED}:user/alice", "cost_usd": total, "invocations": 8}],
        "footer": {},
    }


def bill(service, usage_type, usd, region="us-east-1", account=LOGGED, day=SETTLED):
    return LineItem(day.isoformat(), service, usage_type, region, account, usd)


# What the settled day's logs explain, billed exactly: Sonnet 4 + 2 = 6, Nova Lite 3 + 1 = 4
EXACT = [
    bill(SONNET, "USE1-MP:USE1_InputTokenCount-Units", "4"),
    bill(SONNET, "USE1-MP:USE1_OutputTokenCount-Units", "2"),
    bill("Amazon Bedrock", "USE1-NovaLite-input-tokens", "3"),
    bill("Amazon Bedrock", "USE1-NovaLite-output-tokens", "1"),
]


@pytest.fixture
def account(aws, monkeypatch):
    configure(aws, monkeypatch)
    put_records(aws.client("logs"), GROUP, generate_records(START, END, count=50, seed=3))
    window, document = summary()
    key = report_key("bedrock-usage", window).removesuffix(".csv") + ".json"
    aws.client("s3").put_object(Bucket=BUCKET, Key=key, Body=json.dumps(document).encode())
    aws.settled_key = key
    return aws


def reconciled(aws, *items):
    aws.cost_explorer.add(*items)
    response = run({"date": DAY.isoformat()}).response
    assert response["status"] == "ok" and response["email"]["sent"] is True  # the report goes out regardless
    return response["reconciliation"]


def test_an_exact_match(account):
    result = reconciled(account, *EXACT)
    assert (result["status"], result["day"], result["source"]) == ("ok", SETTLED.isoformat(), "cost_explorer")
    # billed 10 = estimated 10: difference 0, coverage 100 %
    assert (result["billed_usd"], result["estimated_usd"], result["difference_usd"]) == (
        "10.000000",
        "10.000000",
        "0.000000",
    )
    assert (result["coverage_percent"], result["drift_percent"], result["alert"]) == ("100.0", "0.0", False)
    assert result["unexplained"] == [] and result["unlogged"] == []
    assert result["accounts_compared"] == [LOGGED]
    models = {m["name"]: (m["billed_usd"], m["estimated_usd"], m["likely_cause"]) for m in result["by_model"]}
    assert models == {
        "anthropic.claude-sonnet-4-5-20250929-v1:0": ("6.000000", "6.000000", ""),
        "amazon.nova-lite-v1:0": ("4.000000", "4.000000", ""),
    }
    # the month to date: this day is the only one billed and the only one reported
    assert result["month_to_date"]["billed_usd"] == "10.000000"
    assert result["month_to_date"]["days_estimated"] == 1
    # AND the settled day's JSON summary holds it, updated in place
    document = json.loads(account.client("s3").get_object(Bucket=BUCKET, Key=account.settled_key)["Body"].read())
    assert document["reconciliation"] == result and document["total_cost_usd"] == "10"


def test_a_model_billed_at_twice_our_price(account):
    # Nova Lite billed 6 + 2 = 8 where we estimated 4
    items = EXACT[:2] + [
        bill("Amazon Bedrock", "USE1-NovaLite-input-tokens", "6"),
        bill("Amazon Bedrock", "USE1-NovaLite-output-tokens", "2"),
    ]
    result = reconciled(account, *items)
    # billed 14, estimated 10: difference 4 = 28.6 % of the bill (> 5 % and > $1: alert); coverage 10 / 14 = 71.4 %
    assert (result["billed_usd"], result["difference_usd"], result["drift_percent"]) == (
        "14.000000",
        "4.000000",
        "28.6",
    )
    assert (result["coverage_percent"], result["alert"]) == ("71.4", True)
    (top, *_) = result["by_model"]  # the largest difference first
    assert (top["name"], top["difference_usd"]) == ("amazon.nova-lite-v1:0", "4.000000")
    assert top["likely_cause"] == "billed at about 2.00x our estimate: check this model's price row"
    body = text_body(emails(account)[0])
    assert "ESTIMATED VS BILLED" in body and "billed at about 2.00x our estimate" in body
    assert "BILLED PER IDENTITY" not in body  # the CUR section is CUR's alone


def test_a_region_billed_with_no_logs_and_a_batch_job(account):
    items = EXACT + [
        # Sonnet billed in eu-west-1, where no invocation log comes from: logging is off there
        bill(SONNET, "EUW1-MP:EUW1_InputTokenCount-Units", "2", region="eu-west-1"),
        # a batch job: billed, never in the invocation logs
        bill("Amazon Bedrock", "USE1-NovaLite-batch-input-tokens", "1.5"),
    ]
    result = reconciled(account, *items)
    # billed 10 + 2 + 1.5 = 13.5; estimated 10; difference 3.5
    assert (result["billed_usd"], result["difference_usd"]) == ("13.500000", "3.500000")
    assert result["unexplained"] == [
        {"kind": "batch inference", "billed_usd": "1.500000", "usage_types": ["USE1-NovaLite-batch-input-tokens"]}
    ]
    assert result["unlogged"] == [
        {
            "region": "eu-west-1",
            "billed_usd": "2.000000",
            "why": "billed here, but no invocation logs: logging is off here",
        }
    ]
    regions = {r["name"]: (r["billed_usd"], r["estimated_usd"]) for r in result["by_region"]}
    # token charges by region: us-east-1 10 (batch is not a token charge of the logs), eu-west-1 2
    assert regions == {"eu-west-1": ("2.000000", "0.000000"), "us-east-1": ("10.000000", "10.000000")}


def test_linked_accounts(account):
    # the payer sees a second account's Bedrock bill, and that account logs nothing here
    result = reconciled(
        account, *EXACT, bill("Amazon Bedrock", "USE1-NovaLite-input-tokens", "0.75", account="222222222222")
    )
    assert result["accounts_compared"] == [LOGGED]
    assert result["by_account"] == [
        {
            "name": LOGGED,
            "billed_usd": "10.000000",
            "estimated_usd": "10.000000",
            "difference_usd": "0.000000",
            "coverage_percent": "100.0",
        }
    ]
    assert {
        "account": "222222222222",
        "billed_usd": "0.750000",
        "why": "billed, but no invocation logs from this account",
    } in result["unlogged"]


def test_cost_explorer_unavailable_never_blocks_the_report(account):
    account.cost_explorer.fail_next("AccessDeniedException")
    result = reconciled(account, *EXACT)
    assert result["status"] == "unavailable" and "AccessDeniedException" in result["why"]
    assert "reconciliation: unavailable: AccessDeniedException" in text_body(emails(account)[0])


def test_no_settled_report_to_compare_with(aws, monkeypatch):
    configure(aws, monkeypatch)
    put_records(aws.client("logs"), GROUP, generate_records(START, END, count=20, seed=4))
    result = run({"date": DAY.isoformat()}).response["reconciliation"]
    assert result == {
        "status": "unavailable",
        "day": SETTLED.isoformat(),
        "why": f"no report for {SETTLED.isoformat()} to compare with",
        "source": "cost_explorer",
    }
    assert aws.cost_explorer.requests == []  # nothing paid for


def test_a_handful_of_requests_and_the_drift_metric(account):
    account.cost_explorer.add(*EXACT)
    report = run({"date": DAY.isoformat()})
    # GetDimensionValues + 2 GetCostAndUsage for the day, GetDimensionValues + 1 for the month: $0.05 a run
    assert [op for op, _ in account.cost_explorer.requests] == [
        "GetDimensionValues",
        "GetCostAndUsage",
        "GetCostAndUsage",
        "GetDimensionValues",
        "GetCostAndUsage",
    ]
    services = account.cost_explorer.requests[1][1]["Filter"]["Dimensions"]["Values"]
    assert services == ["Amazon Bedrock", SONNET]  # discovered, not a fixed list
    (drift,) = [m for m in report.metrics if "ReconciliationDriftPercent" in m]
    assert (drift["ReconciliationDriftPercent"], drift["ReconciliationDriftAlert"], drift["day"]) == (
        0.0,
        0,
        SETTLED.isoformat(),
    )
    assert drift["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "BedrockUsageReport"


def test_the_month_to_date_counts_a_service_billed_on_earlier_days_only(account):
    if SETTLED.day == 1:
        pytest.skip("the settled day is the 1st: no earlier day in its month")
    earlier = SETTLED - timedelta(days=1)
    # Haiku 4.5 billed $2.50 the day before, not on the settled day itself
    haiku = bill("Claude Haiku 4.5 (Amazon Bedrock Edition)", "USE1-MP:USE1_InputTokenCount-Units", "2.5", day=earlier)
    result = reconciled(account, *EXACT, haiku)
    # the day: 10 billed as before; the month to date: 10 + 2.50 (no report for the earlier day: estimated 10)
    assert result["billed_usd"] == "10.000000"
    assert result["month_to_date"]["billed_usd"] == "12.500000"
    assert result["month_to_date"]["estimated_usd"] == "10.000000"


def test_every_page_of_the_services_is_read(account):
    # GIVEN Cost Explorer answering GetDimensionValues one service a page: "Amazon Bedrock", then Sonnet's
    account.cost_explorer.dimension_page_size = 1
    result = reconciled(account, *EXACT)
    # THEN both are billed: 4 + 2 (Sonnet) + 3 + 1 (Nova Lite) = 10, not the first page's 4 (Nova Lite alone)
    assert (result["status"], result["billed_usd"], result["difference_usd"]) == ("ok", "10.000000", "0.000000")


def test_a_bill_in_another_currency_is_not_compared_as_dollars(account):
    account.cost_explorer.unit = "EUR"
    account.cost_explorer.add(*EXACT)
    report = run({"date": DAY.isoformat()})
    result = report.response["reconciliation"]
    assert result["status"] == "unavailable" and "in EUR, not USD" in result["why"]
    assert report.response["email"]["sent"] is True
    assert [m for m in report.metrics if "ReconciliationDriftPercent" in m] == []  # no drift, no alarm


@pytest.mark.parametrize("amount", ["", "NaN", "Infinity", "12,50"])
def test_an_amount_that_is_no_number_makes_the_reconciliation_unavailable(account, amount):
    # GIVEN Cost Explorer's GetCostAndUsage answering with an amount that is not a number (at the HTTP boundary)
    faults = Faults()
    bad = {"Amount": amount, "Unit": "USD"}
    result = {"TimePeriod": {"Start": SETTLED.isoformat(), "End": DAY.isoformat()}, "Estimated": False}
    faults.add(
        "GetCostAndUsage",
        faults.answer(
            lambda request: {
                "ResultsByTime": [
                    {
                        **result,
                        "Groups": [
                            {"Keys": [SONNET, "USE1-MP:USE1_InputTokenCount-Units"], "Metrics": {"UnblendedCost": bad}}
                        ],
                        "Total": {},
                    }
                ]
            }
        ),
        times=-1,
    )
    account.cost_explorer.add(*EXACT)
    response = run({"date": DAY.isoformat()}, session=faults.session()).response
    # THEN the report goes out, and the reconciliation names the value instead of comparing it
    assert response["email"]["sent"] is True
    assert response["reconciliation"]["status"] == "unavailable"
    assert f"the amount {amount!r}, not a number" in response["reconciliation"]["why"]


@pytest.mark.parametrize(
    "change",
    [
        {"total_cost_usd": "ten"},
        {"by_model": [{"name": "amazon.nova-lite-v1:0", "invocations": 5}]},  # its cost missing
    ],
)
def test_a_settled_summary_that_cannot_be_read_makes_the_reconciliation_unavailable(account, change):
    s3 = account.client("s3")
    document = json.loads(s3.get_object(Bucket=BUCKET, Key=account.settled_key)["Body"].read())
    s3.put_object(Bucket=BUCKET, Key=account.settled_key, Body=json.dumps({**document, **change}).encode())
    result = reconciled(account, *EXACT)
    assert result == {
        "status": "unavailable",
        "day": SETTLED.isoformat(),
        "why": f"the summary of {SETTLED.isoformat()} cannot be read: nothing to compare with",
        "source": "cost_explorer",
    }
