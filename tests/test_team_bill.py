"""Billed per team without CUR: the settled day's Cost Explorer bill grouped by the `iamPrincipal/<key>` cost
allocation tag, against the settled summary's estimate per attribution value; and, with CUR, the month to date
billed from the export. Every figure worked out by hand; the report always goes out."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from lambda_function.bill import reconcile
from lambda_function.sources.attribution import UNATTRIBUTED
from lambda_function.store import report_key
from lambda_function.window import day_window
from local_aws.cost_explorer import LineItem
from local_aws.generate import generate_records, put_records

from .support import BUCKET, DAY, END, GROUP, START, configure, emails, run, text_body

SETTLED = DAY - timedelta(days=2)  # RECONCILE_LAG_DAYS, 2 by default
LOGGED = "111111111111"
SONNET = "Claude Sonnet 4.5 (Amazon Bedrock Edition)"
TAG = "iamPrincipal/team"


def summary(day=SETTLED, teams=(("platform", "6"), ("research", "2"), (UNATTRIBUTED, "2"))):
    """The settled day's summary: $10, per team platform $6, research $2, unattributed $2."""
    window = day_window(day, ZoneInfo("UTC"))
    total = str(sum(int(cost) for _, cost in teams))
    return window, {
        "schema": "bedrock-usage-report/summary/1",
        "window": window.as_json(),
        "total_cost_usd": total,
        "by_model": [
            {"name": "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "cost_usd": "6", "invocations": 3},
            {"name": "amazon.nova-lite-v1:0", "cost_usd": "4", "invocations": 5},
        ],
        "by_region": [{"name": "us-east-1", "cost_usd": total, "invocations": 8}],
        "by_identity": [{"name": f"arn:aws:iam::{LOGGED}:user/alice", "cost_usd": total, "invocations": 8}],
        "by_attribution": {"team": [{"name": n, "cost_usd": c, "invocations": 1} for n, c in teams]},
        "footer": {},
    }


def bill(service, usage_type, usd, team=None, day=SETTLED):
    tags = ((TAG, team),) if team is not None else ()
    return LineItem(day.isoformat(), service, usage_type, "us-east-1", LOGGED, usd, tags=tags)


# platform billed 4 + 2 = 6 (exact), research 3 (estimated 2), untagged 1 (estimated 2 unattributed); an EC2 line
# tagged platform and a Bedrock line of another day are not the day's Bedrock bill
BILL = [
    bill(SONNET, "USE1-MP:USE1_InputTokenCount-Units", "4", team="platform"),
    bill(SONNET, "USE1-MP:USE1_OutputTokenCount-Units", "2", team="platform"),
    bill("Amazon Bedrock", "USE1-NovaLite-input-tokens", "3", team="research"),
    bill("Amazon Bedrock", "USE1-NovaLite-output-tokens", "1"),
    bill("Amazon Elastic Compute Cloud - Compute", "USE1-BoxUsage:t3.micro", "50", team="platform"),
    bill("Amazon Bedrock", "USE1-NovaLite-input-tokens", "7", team="research", day=SETTLED - timedelta(days=1)),
]


def put_summary(aws, window, document):
    key = report_key("bedrock-usage", window).removesuffix(".csv") + ".json"
    aws.client("s3").put_object(Bucket=BUCKET, Key=key, Body=json.dumps(document).encode())
    return key


@pytest.fixture
def account(aws, monkeypatch):
    configure(aws, monkeypatch, ATTRIBUTION_KEYS="team")
    put_records(aws.client("logs"), GROUP, generate_records(START, END, count=20, seed=3))
    put_summary(aws, *summary())
    return aws


def reconciled(aws, *items):
    aws.cost_explorer.add(*items)
    response = run({"date": DAY.isoformat()}).response
    assert response["status"] == "ok" and response["email"]["sent"] is True  # the report goes out regardless
    return response["reconciliation"]


def tag_requests(aws):
    requests = aws.cost_explorer.requests
    return [
        p for op, p in requests if op == "GetCostAndUsage" and any(g["Type"] == "TAG" for g in p.get("GroupBy", []))
    ]


def test_billed_per_team(account):
    assert UNATTRIBUTED == reconcile.UNTAGGED  # untagged spend is named as the estimate names spend without a value
    result = reconciled(account, *BILL)
    assert result["status"] == "ok" and result["billed_usd"] == "10.000000"
    teams = [(t["name"], t["billed_usd"], t["estimated_usd"], t["difference_usd"], t["coverage_percent"]) for t in
             result["by_team"]["team"]]  # fmt: skip
    # the largest differences first (research +1, unattributed -1: by name), then platform exact
    assert teams == [
        ("research", "3.000000", "2.000000", "1.000000", "66.7"),
        (UNATTRIBUTED, "1.000000", "2.000000", "-1.000000", "200.0"),
        ("platform", "6.000000", "6.000000", "0.000000", "100.0"),
    ]
    assert "by_team_unavailable" not in result
    # one more request per key, grouped by the principal tag, over the day's Bedrock services only
    (request,) = tag_requests(account)
    assert request["GroupBy"] == [{"Type": "TAG", "Key": TAG}]
    assert request["TimePeriod"] == {"Start": SETTLED.isoformat(), "End": (SETTLED + timedelta(days=1)).isoformat()}
    assert request["Filter"] == {"Dimensions": {"Key": "SERVICE", "Values": ["Amazon Bedrock", SONNET]}}
    body = text_body(emails(account)[0])
    assert "Billed per team (iamPrincipal/team):\n    research: billed $3.00, estimated $2.00 (coverage 66.7%)" in body


def test_every_page_of_teams_is_read(account):
    # 60 teams of $0.10 each (the double pages at 50 groups), estimated at nothing: 6.00 billed in all
    result = reconciled(account, *[bill("Amazon Bedrock", "USE1-NovaLite-input-tokens", "0.1", f"t{n:02}") for n in
                                   range(60)])  # fmt: skip
    teams = result["by_team"]["team"]
    billed = {t["name"]: t["billed_usd"] for t in teams if t["billed_usd"] != "0.000000"}
    assert len(billed) == 60 and set(billed.values()) == {"0.100000"}
    assert len(tag_requests(account)) == 2  # two pages
    # the estimate's teams are there too, billed nothing (no coverage to give)
    assert {t["name"]: t["coverage_percent"] for t in teams if t["billed_usd"] == "0.000000"} == {
        "platform": None,
        "research": None,
        UNATTRIBUTED: None,
    }


def test_a_failing_team_request_leaves_by_team_out(account):
    # GetDimensionValues, the two day requests, the month's GetDimensionValues and total: then the tag request fails
    account.cost_explorer.fail_next("AccessDeniedException", after=5)
    result = reconciled(account, *BILL)
    assert result["status"] == "ok" and result["billed_usd"] == "10.000000"  # the rest stands
    assert "by_team" not in result
    assert result["by_team_unavailable"].startswith("AccessDeniedException")
    assert "Billed per team: unavailable: AccessDeniedException" in text_body(emails(account)[0])


def test_no_attribution_keys_no_team_request(aws, monkeypatch):
    configure(aws, monkeypatch)
    put_records(aws.client("logs"), GROUP, generate_records(START, END, count=20, seed=3))
    put_summary(aws, *summary())
    result = reconciled(aws, *BILL)
    assert "by_team" not in result and "by_team_unavailable" not in result
    assert tag_requests(aws) == []


def test_the_double_names_tag_groups_as_cost_explorer_does():
    item = bill("Amazon Bedrock", "USE1-NovaLite-input-tokens", "1", team="platform")
    assert item.group_key("TAG", TAG) == "iamPrincipal/team$platform"
    assert item.group_key("TAG", "iamPrincipal/project") == "iamPrincipal/project$"
    assert item.group_key("DIMENSION", "SERVICE") == "Amazon Bedrock"


# -- the month to date with CUR --------------------------------------------------------------------------------------

# RECONCILE_LAG_DAYS' default with CUR_EXPORT is 3; the report day is chosen so that the settled day is never a 1st
# (a day before it in the same month), whatever day the suite runs
CUR_DAY = DAY if (DAY - timedelta(days=3)).day > 1 else DAY - timedelta(days=1)
CUR_SETTLED = CUR_DAY - timedelta(days=3)


def at(day, hour=10):
    return datetime.combine(day, time(hour), tzinfo=UTC)


@pytest.fixture
def cur_account(aws, monkeypatch):
    from .test_cur_settled import EXPORT, EXPORT_BUCKET

    configure(aws, monkeypatch, CUR_EXPORT=EXPORT, BILL_ENGINE="embedded")
    monkeypatch.delenv("RECONCILE_LAG_DAYS", raising=False)
    put_records(aws.client("logs"), GROUP, generate_records(START, END, count=20, seed=5))
    aws.client("s3").create_bucket(Bucket=EXPORT_BUCKET)
    return aws


def cur_export(aws, lines):
    from .test_cur_settled import EXPORT_BUCKET, parquet

    by_period: dict[str, list] = {}
    for item in lines:
        by_period.setdefault(f"{item['line_item_usage_start_date']:%Y-%m}", []).append(item)
    for period, items in by_period.items():
        key = f"cur2/bedrock/data/BILLING_PERIOD={period}/bedrock-00001.snappy.parquet"
        aws.client("s3").put_object(Bucket=EXPORT_BUCKET, Key=key, Body=parquet(items))


def cur_summary(day, total):
    from .test_cur_settled import ALICE

    window = day_window(day, ZoneInfo("UTC"))
    return window, {
        "schema": "bedrock-usage-report/summary/1",
        "window": window.as_json(),
        "total_cost_usd": total,
        "by_model": [],
        "by_region": [],
        "by_identity": [{"name": ALICE, "cost_usd": total, "invocations": 2}],
        "footer": {},
    }


def test_the_month_to_date_with_cur(cur_account):
    from .test_cur_settled import ALICE, line

    earlier = CUR_SETTLED - timedelta(days=1)  # in the month
    before_month = CUR_SETTLED.replace(day=1) - timedelta(days=1)
    cur_export(
        cur_account,
        [
            line(ALICE, "4", line_item_usage_start_date=at(CUR_SETTLED)),
            line(None, "0.9", line_item_line_item_type="Tax", line_item_usage_start_date=at(CUR_SETTLED)),
            line(ALICE, "2", line_item_usage_start_date=at(earlier)),
            line(ALICE, "100", line_item_usage_start_date=at(before_month, 23)),  # the month before: not counted
            line(ALICE, "50", line_item_usage_start_date=at(CUR_SETTLED + timedelta(days=1), 0)),  # after: not counted
        ],
    )
    put_summary(cur_account, *cur_summary(CUR_SETTLED, "4"))
    put_summary(cur_account, *cur_summary(earlier, "3"))
    report = run({"date": CUR_DAY.isoformat()})
    assert report.response["email"]["sent"] is True
    result = report.response["reconciliation"]
    assert (result["status"], result["source"], result["billed_usd"]) == ("ok", "cur", "4.000000")
    # billed: 4 on the day (the tax apart) + 2 the day before = 6; estimated 4 + 3 = 7 (2 days reported of the
    # month's first CUR_SETTLED.day); difference -1; coverage 7 / 6 = 116.7 %
    assert result["month_to_date"] == {
        "billed_usd": "6.000000",
        "estimated_usd": "7.000000",
        "difference_usd": "-1.000000",
        "coverage_percent": "116.7",
        "days_estimated": 2,
        "days": CUR_SETTLED.day,
    }
    body = text_body(emails(cur_account)[0])
    assert "Month to date: billed $6.00, estimated $7.00 (2 of" in body
    assert result["bytes_scanned"] > 0 and result["scan_cost_usd"] is None


def test_the_month_to_date_query_failing_leaves_the_day(cur_account, monkeypatch):
    from lambda_function.bill import settled as settled_stage
    from lambda_function.engine import EngineError

    from .test_cur_settled import ALICE, line

    cur_export(cur_account, [line(ALICE, "4", line_item_usage_start_date=at(CUR_SETTLED))])
    put_summary(cur_account, *cur_summary(CUR_SETTLED, "4"))
    engines = settled_stage.bill_engine
    calls = []

    class Failing:
        def run(self, *args, **kwargs):
            raise EngineError("Athena query FAILED: injected")

    def second_fails(config, aws):
        calls.append(1)
        return engines(config, aws) if len(calls) == 1 else Failing()

    monkeypatch.setattr(settled_stage, "bill_engine", second_fails)
    result = run({"date": CUR_DAY.isoformat()}).response["reconciliation"]
    assert (result["status"], result["billed_usd"], len(calls)) == ("ok", "4.000000", 2)
    assert "month_to_date" not in result
    assert result["month_to_date_unavailable"] == "Athena query FAILED: injected"
