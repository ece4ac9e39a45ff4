"""The month, billed: a whole calendar month's report with a CUR 2.0 export (CUR_EXPORT) compared with that month's
bill per identity and per team (the `iamPrincipal/<key>` cost allocation tag in `resource_tags`), under
`reconciliation.month_billed` of the month's own result. A generated export (Parquet, the real column names) in the
embedded S3, the product's own queries run by the embedded engine (DuckDB). Never blocks the report."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from lambda_function.bill import month as month_stage
from lambda_function.bill import settled as settled_stage
from lambda_function.bill.cur import settled_query
from lambda_function.config import load_config
from lambda_function.engine import EngineError, QueryAnswer
from lambda_function.handler import AwsClients
from lambda_function.store import ReportStore, report_key
from lambda_function.window import ReportWindow, local_midnight
from local_aws.cur_parquet import cur_parquet
from local_aws.generate import generate_records, put_records

from .cur_lines import cur_line
from .support import BUCKET, END, GROUP, START, TODAY, configure, emails, run, summary_document, text_body

duckdb = pytest.importorskip("duckdb")

UTC_ZONE = ZoneInfo("UTC")
EXPORT_BUCKET = "billing-exports"
EXPORT = f"s3://{EXPORT_BUCKET}/cur2/bedrock"
ACCOUNT = "111111111111"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
BOB = f"arn:aws:iam::{ACCOUNT}:user/bob"
SONNET = "Claude Sonnet 4.5 (Amazon Bedrock Edition)"


def first_of_previous(day: date) -> date:
    return (day.replace(day=1) - timedelta(days=1)).replace(day=1)


# the month two before today's: ended long enough ago to be complete in the bill, whatever day the suite runs
FIRST = first_of_previous(first_of_previous(TODAY))
NEXT = (FIRST + timedelta(days=32)).replace(day=1)
MONTH = f"{FIRST:%Y-%m}"
WINDOW = ReportWindow(local_midnight(FIRST, UTC_ZONE), local_midnight(NEXT, UTC_ZONE), UTC_ZONE)


def at(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


def line(identity, usd, when, team=None, **extra):
    """One CUR 2.0 line item; `team` is the principal's `team` tag as the export carries it (`iamPrincipal/team`)."""
    tags = {"iamPrincipal/team": team, "user_project": "x"} if team else {"user_project": "x"}
    return cur_line(identity, usd, when, account=ACCOUNT, **{"resource_tags": tags, **extra})


def month_lines(first: date, following: date):
    """Hand-worked: alice (team ml) $30 on the 3rd + $12 on the 20th = $42, bob (no team tag) $25 of marketplace
    Sonnet on the 15th; a tax line $4.20 apart; left out: alice's $100 an hour before the month and $7 at the next
    month's first hour, an EC2 line of $50."""
    return [
        line(ALICE, "30", at(first + timedelta(days=2)), team="ml"),
        line(ALICE, "12", at(first + timedelta(days=19)), usage_type="USE1-NovaLite-output-tokens", team="ml"),
        line(
            BOB, "25", at(first + timedelta(days=14)), service=SONNET, usage_type="USE1-MP:USE1_InputTokenCount-Units"
        ),
        line(None, "4.2", at(first + timedelta(days=27)), line_item_line_item_type="Tax"),
        line(ALICE, "100", at(first, 0) - timedelta(hours=1), team="ml"),
        line(ALICE, "7", at(following, 0), team="ml"),
        line(ALICE, "50", at(first + timedelta(days=3)), service="AmazonEC2", usage_type="BoxUsage", team="ml"),
    ]


def export(aws, lines, period):
    key = f"cur2/bedrock/data/BILLING_PERIOD={period}/bedrock-00001.snappy.parquet"
    aws.client("s3").put_object(Bucket=EXPORT_BUCKET, Key=key, Body=cur_parquet(lines))


def month_summary():
    """The month's summary: alice $40 (team ml), bob $25 (no team: `unattributed`); $65 in all."""
    spends = [(ALICE, "40", 30), (BOB, "25", 12)]
    return {
        "schema": "bedrock-usage-report/summary/1",
        "window": WINDOW.as_json(),
        "total_cost_usd": "65",
        "by_model": [],
        "by_region": [],
        "by_identity": [{"name": n, "cost_usd": c, "invocations": i} for n, c, i in spends],
        "by_attribution": {
            "team": [{"name": "ml", "cost_usd": "40", "invocations": 30}, {"name": "unattributed", "cost_usd": "25"}]
        },
        "footer": {},
    }


@pytest.fixture
def account(aws, monkeypatch):
    configure(aws, monkeypatch, CUR_EXPORT=EXPORT, BILL_ENGINE="embedded", ATTRIBUTION_KEYS="team")
    monkeypatch.delenv("RECONCILE_LAG_DAYS", raising=False)
    aws.client("s3").create_bucket(Bucket=EXPORT_BUCKET)
    key = report_key("bedrock-usage", WINDOW).removesuffix(".csv") + ".json"
    aws.client("s3").put_object(Bucket=BUCKET, Key=key, Body=json.dumps(month_summary()).encode())
    aws.month_key = key
    return aws


def reconcile_month(window=WINDOW, now=None):
    """The bill stage for a month's report, as run_report calls it once the month's summary is stored (by default
    a week after the month: settled)."""
    config = load_config(os.environ)
    clients = AwsClients(config.default_region)
    store = ReportStore(clients.client("s3"), config.report_bucket, config.report_prefix, config.timezone)
    now = now or window.end + timedelta(days=7)
    return settled_stage.reconcile_settled_day(config, clients, store, window, catalog=None, now=now).result


def test_the_month_billed_per_identity_and_team(account):
    export(account, month_lines(FIRST, NEXT), MONTH)
    export(account, [line(ALICE, "7", at(NEXT, 0), team="ml")], f"{NEXT:%Y-%m}")  # the next month's partition
    result = reconcile_month()
    billed = result["month_billed"]
    assert (billed["status"], billed["source"], billed["month"], billed["engine"]) == ("ok", "cur", MONTH, "embedded")
    # billed (Usage, the month's Bedrock lines): 30 + 12 + 25 = 67; estimated 65; difference 2
    assert (billed["billed_usd"], billed["estimated_usd"], billed["difference_usd"]) == (
        "67.000000",
        "65.000000",
        "2.000000",
    )
    assert [
        (e["identity"], e["billed_usd"], e["estimated_usd"], e["difference_usd"]) for e in billed["by_identity"]
    ] == [
        (ALICE, "42.000000", "40.000000", "2.000000"),
        (BOB, "25.000000", "25.000000", "0.000000"),
    ]
    # per team through the iamPrincipal/team tag: ml billed 42 against 40; bob's untagged usage is `unattributed`
    assert [
        (t["name"], t["billed_usd"], t["estimated_usd"], t["difference_usd"]) for t in billed["by_team"]["team"]
    ] == [
        ("ml", "42.000000", "40.000000", "2.000000"),
        ("unattributed", "25.000000", "25.000000", "0.000000"),
    ]
    assert billed["other_line_types"] == {"Tax": "4.200000"}  # apart, never mixed in
    assert billed["billed_not_logged"] == [] and billed["logged_not_billed"] == []
    assert billed["bytes_scanned"] > 0 and billed["scan_cost_usd"] is None
    # written back into the month's own summary
    document = json.loads(account.client("s3").get_object(Bucket=BUCKET, Key=account.month_key)["Body"].read())
    assert document["reconciliation"] == result


def test_the_two_queries_the_engine_gets(account, monkeypatch):
    export(account, month_lines(FIRST, NEXT), MONTH)
    seen = []

    class Recording:
        name = "athena"

        def run(self, sql, relations, *, deadline):
            seen.append((sql, relations["cur"].partitions))
            if "AS team" in sql:
                return QueryAnswer(("team", "usd"), (("ml", "40.0"), (None, "25.0")), bytes_scanned=1, engine="athena")
            columns = ("identity", "account", "line_type", "service", "usage_type", "usd")
            rows = ((ALICE, ACCOUNT, "Usage", "AmazonBedrock", "USE1-NovaLite-input-tokens", "40.0"),)
            return QueryAnswer(columns, rows, bytes_scanned=1, engine="athena")

    monkeypatch.setattr(settled_stage, "bill_engine", lambda config, aws: Recording())
    monkeypatch.setenv("CUR_TABLE", "cur_db.bedrock_export")
    billed = reconcile_month()["month_billed"]
    (identity_sql, partitions), (team_sql, _) = seen
    # the settled day's query text over the month's window; the team query groups by the tag, Usage lines only
    assert identity_sql == settled_query(WINDOW.start, WINDOW.end)
    assert team_sql == month_stage.team_query(WINDOW.start, WINDOW.end, "UnblendedCost", "team")
    assert "element_at(resource_tags, 'iamPrincipal/team') AS team" in team_sql
    assert "line_item_line_item_type = 'Usage'" in team_sql
    assert partitions == (("billing_period", MONTH),) and f"billing_period IN ('{MONTH}')" in team_sql
    # Athena's minimum of 10 MB a query, twice: $0.0001
    assert (billed["bytes_scanned"], billed["scan_cost_usd"]) == (2, "0.000100")
    # the tag's NULL (usage without the tag) meets the estimate's `unattributed`
    assert [(t["name"], t["billed_usd"], t["difference_usd"]) for t in billed["by_team"]["team"]] == [
        ("ml", "40.000000", "0.000000"),
        ("unattributed", "25.000000", "0.000000"),
    ]


def test_a_month_not_complete_in_the_bill(account, monkeypatch):
    # no objects for the month's billing period yet
    billed = reconcile_month()["month_billed"]
    assert billed["status"] == "unavailable" and billed["month"] == MONTH
    assert billed["why"] == f"the month is not complete in the bill: no objects for the billing period(s) {MONTH}"
    # the month ended less than 3 days ago (2 days 23 hours): not read at all
    export(account, month_lines(FIRST, NEXT), MONTH)
    billed = reconcile_month(now=WINDOW.end + timedelta(days=3) - timedelta(hours=1))["month_billed"]
    assert billed["status"] == "unavailable" and billed["why"].startswith("the month is not complete in the bill yet")


class FailingEngine:
    name = "fake"

    def __init__(self, error):
        self.error = error

    def run(self, sql, relations, *, deadline):
        raise self.error


def test_the_engine_failing_is_unavailable_with_the_reason(account, monkeypatch):
    export(account, month_lines(FIRST, NEXT), MONTH)
    error = EngineError("Athena query abc FAILED: HIVE_BAD_DATA")
    monkeypatch.setattr(settled_stage, "bill_engine", lambda config, aws: FailingEngine(error))
    assert reconcile_month()["month_billed"] == {
        "status": "unavailable",
        "source": "cur",
        "month": MONTH,
        "why": str(error),
    }


def test_the_team_query_failing_leaves_per_identity(account, monkeypatch):
    export(account, month_lines(FIRST, NEXT), MONTH)
    real = settled_stage.bill_engine

    class TeamFails:
        name = "embedded"

        def __init__(self, engine):
            self.engine = engine

        def run(self, sql, relations, *, deadline):
            if "AS team" in sql:
                raise EngineError("resource_tags: no such column")
            return self.engine.run(sql, relations, deadline=deadline)

    monkeypatch.setattr(settled_stage, "bill_engine", lambda config, aws: TeamFails(real(config, aws)))
    billed = reconcile_month()["month_billed"]
    assert billed["status"] == "ok" and billed["billed_usd"] == "67.000000"
    assert "by_team" not in billed and billed["by_team_unavailable"] == "resource_tags: no such column"


def test_only_a_whole_calendar_month():
    berlin, la = ZoneInfo("Europe/Berlin"), ZoneInfo("America/Los_Angeles")
    november = ReportWindow(
        local_midnight(date(2026, 11, 1), berlin), local_midnight(date(2026, 12, 1), berlin), berlin
    )
    assert month_stage.whole_month(november) == date(2026, 11, 1)
    # Berlin's November starts at 23:00 UTC on 31 October: the October partition is read too
    assert "billing_period IN ('2026-10', '2026-11')" in settled_query(november.start, november.end)
    december = ReportWindow(local_midnight(date(2026, 12, 1), la), local_midnight(date(2027, 1, 1), la), la)
    assert month_stage.whole_month(december) == date(2026, 12, 1)
    week = ReportWindow(local_midnight(date(2026, 11, 1), la), local_midnight(date(2026, 11, 8), la), la)
    two = ReportWindow(local_midnight(date(2026, 10, 1), la), local_midnight(date(2026, 12, 1), la), la)
    late = ReportWindow(local_midnight(date(2026, 11, 2), la), local_midnight(date(2026, 12, 1), la), la)
    assert [month_stage.whole_month(w) for w in (week, two, late)] == [None, None, None]


def test_a_week_gets_no_month_billed(account):
    week = ReportWindow(WINDOW.start, WINDOW.start + timedelta(days=7), UTC_ZONE)
    assert reconcile_month(week) is None


def test_the_previous_month_report_carries_the_month_billed(account, monkeypatch):
    # GIVEN last month's logs and its bill (alice and bob, as above; complete: the settle time made 0 for the test)
    monkeypatch.setattr(month_stage, "SETTLE_DAYS", 0)
    first = first_of_previous(TODAY)
    following = TODAY.replace(day=1)
    put_records(account.client("logs"), GROUP, generate_records(START, END, count=20, seed=3))
    export(account, month_lines(first, following), f"{first:%Y-%m}")
    # WHEN the monthly report runs
    report = run({"period": "previous_month"})
    response = report.response
    assert response["status"] == "ok" and response["email"]["sent"] is True
    billed = response["reconciliation"]["month_billed"]
    # THEN the month's bill against the month's own report: what the run just estimated per identity
    assert (billed["status"], billed["month"], billed["billed_usd"]) == ("ok", f"{first:%Y-%m}", "67.000000")
    assert Decimal(billed["estimated_usd"]) == Decimal(response["total_cost_usd"]).quantize(Decimal("0.000001"))
    assert billed["other_line_types"] == {"Tax": "4.200000"}
    assert "team" in billed["by_team"]
    # in the month's summary, and the email's section
    assert summary_document(account, response)["reconciliation"] == response["reconciliation"]
    body = text_body(emails(account)[0])
    assert f"BILLED FOR {first:%Y-%m}: PER IDENTITY AND TEAM (CUR 2.0, UnblendedCost)" in body
    assert "Tax, not compared: $4.20" in body
    assert "SETTLED" not in body and "ESTIMATED VS BILLED" not in body
    assert f"Billed for {first:%Y-%m}: per identity and team" in report.html
    # AND its own metrics: the month's drift ((67 - estimated) / 67, as the result says) and what its two queries
    # read, never the settled day's ReconciliationDrift* that the daily drift alarm watches
    estimated = Decimal(billed["estimated_usd"])
    drift = ((Decimal(67) - estimated) / Decimal(67) * 100).quantize(Decimal("0.1"))
    (metric,) = [m for m in report.metrics if "MonthBilledDriftPercent" in m]
    assert metric["MonthBilledDriftPercent"] == float(drift) == float(billed["drift_percent"])
    assert metric["BillQueryBytesScanned"] == billed["bytes_scanned"] > 0
    assert metric["month"] == f"{first:%Y-%m}"
    assert not [m for m in report.metrics if "ReconciliationDriftPercent" in m]
