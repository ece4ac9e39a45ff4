"""The settled day per identity from a CUR 2.0 export, end to end: a generated export (Parquet, the real column names)
in the embedded S3, the product's own query run by the embedded engine (DuckDB), the verdict in the response, the
settled day's summary, the settled CSV and the email. The report always goes out, whatever the bill says."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from lambda_function.bill import settled as settled_stage
from lambda_function.engine import EngineError, QueryAnswer
from lambda_function.errors import DeadlineExceeded
from lambda_function.store import report_key
from lambda_function.window import day_window
from local_aws.generate import generate_records, put_records

from .cur_lines import cur_line
from .support import BUCKET, DAY, END, GROUP, START, configure, emails, run, text_body

duckdb = pytest.importorskip("duckdb")

SETTLED = DAY - timedelta(days=3)  # RECONCILE_LAG_DAYS' default with CUR_EXPORT
PERIOD = f"{SETTLED:%Y-%m}"
EXPORT_BUCKET = "billing-exports"
EXPORT = f"s3://{EXPORT_BUCKET}/cur2/bedrock"
ACCOUNT = "111111111111"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
BOB = f"arn:aws:iam::{ACCOUNT}:user/bob"
MANTLE = f"arn:aws:iam::{ACCOUNT}:user/BedrockAPIKey-mantle"
AGENT = f"arn:aws:sts::{ACCOUNT}:assumed-role/Agents"
SONNET = "Claude Sonnet 4.5 (Amazon Bedrock Edition)"


def summary():
    """The settled day's summary: alice $4 (3 calls), bob $6 (5 calls), two sessions of the Agents role $1 and $2."""
    window = day_window(SETTLED, ZoneInfo("UTC"))
    identities = [(ALICE, "4", 3), (BOB, "6", 5), (f"{AGENT}/s1", "1", 1), (f"{AGENT}/s2", "2", 1)]
    return window, {
        "schema": "bedrock-usage-report/summary/1",
        "window": window.as_json(),
        "total_cost_usd": "13",
        "by_model": [],
        "by_region": [],
        "by_identity": [{"name": n, "cost_usd": c, "invocations": i} for n, c, i in identities],
        "footer": {},
    }


SONNET_ID = "anthropic.claude-sonnet-4-5-20250929-v1:0"
NOVA_LITE = "amazon.nova-lite-v1:0"


def report_csv():
    """The settled day's report CSV, as the summary says per identity: alice's Nova Lite $4 (the base id, 1 call $1;
    the us. profile, 2 calls $3), bob's Sonnet through the us. profile $6 (5 calls), the sessions' Nova Lite $1, $2."""
    from lambda_function.columns import CSV_COLUMNS

    rows = [
        (ALICE, NOVA_LITE, "1.000000", 1),
        (ALICE, f"us.{NOVA_LITE}", "3.000000", 2),
        (BOB, f"us.{SONNET_ID}", "6.000000", 5),
        (f"{AGENT}/s1", NOVA_LITE, "1.000000", 1),
        (f"{AGENT}/s2", NOVA_LITE, "2.000000", 1),
    ]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for identity, model, charge, calls in rows:
        writer.writerow([ACCOUNT, identity, model, "us-east-1", 100, 10, charge, calls, 0, 0, 0, "priced", 0, 0, 0, 0])
    return out.getvalue().encode()


def line(identity, usd, **extra):
    """One CUR 2.0 line item on the settled day (10:00 UTC unless said)."""
    when = extra.pop("line_item_usage_start_date", datetime.combine(SETTLED, time(10), tzinfo=UTC))
    return cur_line(identity, usd, when, account=ACCOUNT, **{"line_item_net_unblended_cost": None, **extra})


# alice exact (3 + 1), bob drifted (Sonnet billed 9 where we estimated 6), the role's sessions exact, a mantle-only
# API key (2.5, never logged), a tax line; and lines the query must leave out: another day, another service
EXPORT_LINES = [
    line(ALICE, "3"),
    line(ALICE, "1", usage_type="USE1-NovaLite-output-tokens"),
    line(BOB, "7", service=SONNET, usage_type="USE1-MP:USE1_InputTokenCount-Units"),
    line(BOB, "2", service=SONNET, usage_type="USE1-MP:USE1_OutputTokenCount-Units"),
    line(f"{AGENT}/s1", "1"),
    line(f"{AGENT}/s2", "2"),
    line(MANTLE, "2.5", service=SONNET, usage_type="USE1-MP:USE1_InputTokenCount-Units"),
    line(None, "0.9", line_item_line_item_type="Tax"),
    line(ALICE, "100", line_item_usage_start_date=datetime.combine(SETTLED, time(0), tzinfo=UTC) - timedelta(hours=1)),
    line(ALICE, "50", service="AmazonEC2", usage_type="BoxUsage"),
]


def parquet(lines):
    """The lines as one Parquet object, with CUR 2.0's types (the product a map, the start a timestamp)."""
    columns = {
        "line_item_iam_principal": "VARCHAR",
        "line_item_usage_account_id": "VARCHAR",
        "line_item_line_item_type": "VARCHAR",
        "line_item_product_code": "VARCHAR",
        "product_servicecode": "VARCHAR",
        "product": "MAP(VARCHAR, VARCHAR)",
        "bill_billing_entity": "VARCHAR",
        "line_item_usage_type": "VARCHAR",
        "line_item_usage_start_date": "TIMESTAMP",
        "line_item_unblended_cost": "DOUBLE",
        "line_item_net_unblended_cost": "DOUBLE",
    }
    connection = duckdb.connect(":memory:")
    connection.execute("CREATE TABLE cur (" + ", ".join(f"{n} {t}" for n, t in columns.items()) + ")")
    for item in lines:
        values = [item[name] for name in columns]
        values[columns_index(columns, "line_item_usage_start_date")] = item["line_item_usage_start_date"].replace(
            tzinfo=None
        )
        connection.execute("INSERT INTO cur VALUES (" + ", ".join("?" * len(columns)) + ")", values)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "part.parquet")
        connection.execute(f"COPY cur TO '{path}' (FORMAT PARQUET)")
        with open(path, "rb") as f:
            return f.read()


def columns_index(columns, name):
    return list(columns).index(name)


@pytest.fixture
def account(aws, monkeypatch):
    configure(aws, monkeypatch, CUR_EXPORT=EXPORT, BILL_ENGINE="embedded")
    monkeypatch.delenv("RECONCILE_LAG_DAYS", raising=False)
    put_records(aws.client("logs"), GROUP, generate_records(START, END, count=30, seed=5))
    window, document = summary()
    key = report_key("bedrock-usage", window).removesuffix(".csv") + ".json"
    s3 = aws.client("s3")
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(document).encode())
    s3.put_object(Bucket=BUCKET, Key=report_key("bedrock-usage", window), Body=report_csv())
    s3.create_bucket(Bucket=EXPORT_BUCKET)
    aws.settled_key = key
    aws.settled_csv_key = report_key("bedrock-usage", window)
    return aws


def export(aws, lines=EXPORT_LINES, period=PERIOD):
    key = f"cur2/bedrock/data/BILLING_PERIOD={period}/bedrock-00001.snappy.parquet"
    aws.client("s3").put_object(Bucket=EXPORT_BUCKET, Key=key, Body=parquet(lines))


def reconciled(**kwargs):
    report = run({"date": DAY.isoformat()}, **kwargs)
    response = report.response
    assert response["status"] == "ok" and response["email"]["sent"] is True  # the report goes out regardless
    return report, response["reconciliation"]


def test_the_settled_day_per_identity(account):
    export(account)
    report, result = reconciled()
    assert (result["status"], result["source"], result["day"], result["engine"]) == (
        "ok",
        "cur",
        SETTLED.isoformat(),
        "embedded",
    )
    # billed (Usage only, the day's Bedrock lines): 4 + 9 + 3 + 2.5 = 18.5; estimated 13; difference 5.5
    assert (result["billed_usd"], result["estimated_usd"], result["difference_usd"]) == (
        "18.500000",
        "13.000000",
        "5.500000",
    )
    # bob's drift (3) first, then the mantle key (2.5, not logged), then the exact ones
    ranked = [(e["identity"], e["difference_usd"], e["logged"]) for e in result["by_identity"]]
    assert ranked[:2] == [(BOB, "3.000000", True), (MANTLE, "2.500000", False)]
    assert {identity for identity, difference, _ in ranked[2:] if difference == "0.000000"} == {
        ALICE,
        f"{AGENT}/s1",
        f"{AGENT}/s2",
    }
    assert result["by_role"][0]["role"] == AGENT and result["by_role"][0]["sessions"] == 2
    assert result["by_role"][0]["billed_usd"] == "3.000000"
    assert result["billed_not_logged_usd"] == "2.500000"
    assert result["billed_not_logged"][0]["services"] == [SONNET]
    assert result["billed_not_logged"][0]["models"] == ["anthropic.claude-sonnet-4-5-20250929-v1:0"]
    assert result["other_line_types"] == {"Tax": "0.900000"}
    assert result["logged_not_billed"] == []
    assert result["bytes_scanned"] > 0 and result["scan_cost_usd"] is None  # no Athena: nothing paid per byte
    # the drift metric, as with Cost Explorer: 5.5 / 18.5 = 29.7 %
    (drift,) = [m for m in report.metrics if "ReconciliationDriftPercent" in m]
    assert (drift["ReconciliationDriftPercent"], drift["ReconciliationDriftAlert"]) == (29.7, 1)
    assert drift["BillQueryBytesScanned"] == result["bytes_scanned"] and "BillQueryCostUSD" not in drift
    # the settled CSV beside that day's report
    uri = result["settled_csv"]
    assert uri.startswith(f"s3://{BUCKET}/bedrock-usage/reports/{SETTLED:%Y/%m/%d}/bedrock-billed_")
    body = account.client("s3").get_object(Bucket=BUCKET, Key=uri.removeprefix(f"s3://{BUCKET}/"))["Body"].read()
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    # per identity, model and region, from the day's report CSV: the us. profiles meet the bill's base models
    assert rows[0] == {
        "Account Id": ACCOUNT,
        "Identity ARN": BOB,
        "Model Id": SONNET_ID,
        "Region Name": "us-east-1",
        "Invocations": "5",
        "Estimated charges": "6.000000",
        "Billed charges": "9.000000",
        "Difference": "3.000000",
        "Status": "matched",
    }
    assert [(r["Identity ARN"], r["Model Id"], r["Invocations"], r["Difference"], r["Status"]) for r in rows[1:]] == [
        (MANTLE, SONNET_ID, "0", "2.500000", "billed only"),
        (ALICE, NOVA_LITE, "3", "0.000000", "matched"),  # the base id and the us. profile, one row
        (f"{AGENT}/s1", NOVA_LITE, "1", "0.000000", "matched"),
        (f"{AGENT}/s2", NOVA_LITE, "1", "0.000000", "matched"),
    ]
    assert result["note"] == "per identity; the settled CSV per identity, model and region"
    # the settled day's summary holds the verdict
    document = json.loads(account.client("s3").get_object(Bucket=BUCKET, Key=account.settled_key)["Body"].read())
    assert document["reconciliation"] == result
    # the email's section
    body = text_body(emails(account)[0])
    assert f"SETTLED {SETTLED.isoformat()}: BILLED PER IDENTITY" in body
    assert "BedrockAPIKey-mantle" in body and uri in body
    assert "$2.50, anthropic.claude-sonnet-4-5-20250929-v1:0 — billed token usage with no logged call" in body
    assert "ESTIMATED VS BILLED" not in body


def settled_rows(account, result):
    key = result["settled_csv"].removeprefix(f"s3://{BUCKET}/")
    body = account.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return list(csv.DictReader(io.StringIO(body.decode())))


def test_without_the_days_report_csv_the_settled_csv_is_per_identity_and_says_so(account):
    # GIVEN the settled day's summary, but not its report CSV
    account.client("s3").delete_object(Bucket=BUCKET, Key=account.settled_csv_key)
    export(account)
    _, result = reconciled()
    # THEN the comparison is made per identity, the CSV too (no model, no region), and the note says why
    assert result["status"] == "ok" and result["by_identity"][0]["identity"] == BOB
    assert result["note"] == (
        f"per identity; the settled CSV per identity too: the report CSV of {SETTLED.isoformat()} is not there"
    )
    rows = settled_rows(account, result)
    assert (rows[0]["Identity ARN"], rows[0]["Model Id"], rows[0]["Region Name"]) == (BOB, "", "")
    assert (rows[0]["Estimated charges"], rows[0]["Billed charges"], rows[0]["Status"]) == (
        "6.000000",
        "9.000000",
        "matched",
    )
    assert "the report CSV of" in text_body(emails(account)[0])


def test_an_unreadable_report_csv_falls_back_per_identity(account):
    account.client("s3").put_object(Bucket=BUCKET, Key=account.settled_csv_key, Body=b"Account Id,Identity\n1,2\n")
    export(account)
    _, result = reconciled()
    assert result["status"] == "ok"
    assert result["note"].endswith(f"the report CSV of {SETTLED.isoformat()} cannot be read")
    assert settled_rows(account, result)[0]["Model Id"] == ""


def test_the_bill_not_settled_yet(account):
    _, result = reconciled()  # nothing exported for the month yet
    assert result["status"] == "unavailable" and result["source"] == "cur"
    assert result["why"].startswith(f"the bill for {SETTLED.isoformat()} is not settled yet: no objects under")
    assert f"reconciliation: unavailable: the bill for {SETTLED.isoformat()}" in text_body(emails(account)[0])


def test_the_month_exported_but_not_the_day(account):
    export(account, [line(ALICE, "50", service="AmazonEC2", usage_type="BoxUsage")])  # no Bedrock line yet
    _, result = reconciled()
    assert result["status"] == "unavailable"
    assert "the export has no Bedrock line for that day" in result["why"]


def test_an_unreadable_export(account):
    key = f"cur2/bedrock/data/BILLING_PERIOD={PERIOD}/bedrock-00001.snappy.parquet"
    account.client("s3").put_object(Bucket=EXPORT_BUCKET, Key=key, Body=b"not parquet")
    _, result = reconciled()
    assert result["status"] == "unavailable" and "embedded engine" in result["why"]


class FailingEngine:
    name = "fake"

    def __init__(self, error: Exception):
        self.error = error

    def run(self, sql, relations, *, deadline):
        raise self.error


@pytest.mark.parametrize(
    "error", [EngineError("Athena query abc FAILED: HIVE_BAD_DATA"), DeadlineExceeded("the run reached its deadline")]
)
def test_an_engine_failing_or_past_the_deadline_never_blocks_the_report(account, monkeypatch, error):
    export(account)
    monkeypatch.setattr(settled_stage, "bill_engine", lambda config, aws: FailingEngine(error))
    report, result = reconciled()
    assert result == {
        "status": "unavailable",
        "day": SETTLED.isoformat(),
        "why": str(error),
        "source": "cur",
    }
    assert [m for m in report.metrics if "ReconciliationDriftPercent" in m] == []


def test_the_query_the_engine_gets(account, monkeypatch):
    export(account)
    seen = []

    class Recording:
        name = "athena"

        def run(self, sql, relations, *, deadline):
            seen.append((sql, relations))
            columns = ("identity", "account", "line_type", "service", "usage_type", "usd")
            rows = ((ALICE, ACCOUNT, "Usage", "AmazonBedrock", "USE1-NovaLite-input-tokens", "13.0000000000"),)
            return QueryAnswer(columns, rows, bytes_scanned=2_000_000, engine="athena")

    monkeypatch.setattr(settled_stage, "bill_engine", lambda config, aws: Recording())
    from lambda_function.bill.cur import settled_query

    _, result = reconciled()
    # two queries of the one text: the settled day, then its month to date (from the 1st, same partition)
    (day_sql, relations), (month_sql, month_relations) = seen
    window = day_window(SETTLED, ZoneInfo("UTC"))
    assert day_sql == settled_query(window.start, window.end)
    assert month_sql == settled_query(day_window(SETTLED.replace(day=1), ZoneInfo("UTC")).start, window.end)
    assert f"billing_period IN ('{PERIOD}')" in day_sql and f"billing_period IN ('{PERIOD}')" in month_sql
    relation = relations["cur"]
    assert (relation.bucket, relation.prefix, relation.partitions) == (
        EXPORT_BUCKET,
        "cur2/bedrock/data",
        (("billing_period", PERIOD),),
    )
    assert month_relations == relations
    # 2 MB each; Athena bills at least 10 MB a query: 2 x $5 per TB x 10 MB = $0.00010
    assert (result["bytes_scanned"], result["scan_cost_usd"]) == (4_000_000, "0.000100")
    assert Decimal(result["billed_usd"]) == 13


def test_athena_needs_a_table(account, monkeypatch):
    monkeypatch.setenv("BILL_ENGINE", "athena")
    export(account)
    _, result = reconciled()
    assert result["status"] == "unavailable" and "CUR_TABLE" in result["why"]


def test_cost_explorer_is_not_asked_with_cur(account):
    export(account)
    reconciled()
    assert account.cost_explorer.requests == []


# -- Athena, at the HTTP boundary -------------------------------------------------------------------------------------


def to_athena(request):
    target = request.headers.get("X-Amz-Target", b"")  # Logs Insights has a GetQueryResults too
    return (target.decode() if isinstance(target, bytes) else target).startswith("AmazonAthena.")


def athena_faults(state="SUCCEEDED", reason=""):
    """Athena as botocore sees it: StartQueryExecution recorded, the query in `state`, one page of results."""
    from .faults import Faults

    faults, sent = Faults(), []

    def started(request):
        sent.append(json.loads(request.body))
        return {"QueryExecutionId": "q-1"}

    status = {"State": state, **({"StateChangeReason": reason} if reason else {})}
    execution = {"QueryExecutionId": "q-1", "Status": status, "Statistics": {"DataScannedInBytes": 52_000_000}}
    header = ["identity", "account", "line_type", "service", "usage_type", "usd"]
    data = [ALICE, ACCOUNT, "Usage", "AmazonBedrock", "USE1-NovaLite-input-tokens", "4.0000000000"]
    results = {
        "ResultSet": {
            "Rows": [{"Data": [{"VarCharValue": v} for v in row]} for row in (header, data)],
            "ResultSetMetadata": {"ColumnInfo": [{"Name": n, "Type": "varchar"} for n in header]},
        }
    }
    faults.add("StartQueryExecution", when=to_athena, action=faults.answer(started), times=-1)
    faults.add(
        "GetQueryExecution",
        when=to_athena,
        action=faults.answer(lambda request: {"QueryExecution": execution}),
        times=-1,
    )
    faults.add("GetQueryResults", when=to_athena, action=faults.answer(lambda request: results), times=-1)
    faults.add("StopQueryExecution", when=to_athena, action=faults.answer(lambda request: {}), times=-1)
    return faults, sent


@pytest.fixture
def athena(account, monkeypatch):
    monkeypatch.setenv("BILL_ENGINE", "athena")
    monkeypatch.setenv("CUR_TABLE", "cur_db.bedrock_export")
    monkeypatch.setenv("ATHENA_WORKGROUP", "bedrock-report")
    export(account)
    return account


def test_the_query_sent_to_athena_is_the_one_the_embedded_engine_runs(athena):
    from lambda_function.bill.cur import settled_query
    from lambda_function.engine import Relation, dialect

    faults, sent = athena_faults()
    report, result = reconciled(session=faults.session())
    request, month_request = sent  # the settled day, then its month to date
    window = day_window(SETTLED, ZoneInfo("UTC"))
    relation = Relation(EXPORT_BUCKET, "cur2/bedrock/data", glue_table="cur_db.bedrock_export")
    assert request["QueryString"] == dialect.to_athena(settled_query(window.start, window.end), {"cur": relation})
    assert '"cur_db"."bedrock_export" AS cur' in request["QueryString"]
    assert request["WorkGroup"] == "bedrock-report"
    # alice's 4 billed, as estimated; the others logged and not billed
    month_start = day_window(SETTLED.replace(day=1), ZoneInfo("UTC")).start
    assert month_request["QueryString"] == dialect.to_athena(settled_query(month_start, window.end), {"cur": relation})
    # 52 MB scanned by each of the two queries: 104 MB, $5 per TB x 104 MB = $0.00052
    assert (result["status"], result["engine"], result["bytes_scanned"]) == ("ok", "athena", 104_000_000)
    assert result["scan_cost_usd"] == "0.000520"
    (metric,) = [m for m in report.metrics if "BillQueryCostUSD" in m]
    assert (metric["BillQueryBytesScanned"], metric["BillQueryCostUSD"]) == (104_000_000, 0.00052)
    assert result["logged_not_billed"] == [BOB, f"{AGENT}/s1", f"{AGENT}/s2"]


def test_athena_failing_never_blocks_the_report(athena):
    faults, _ = athena_faults("FAILED", "HIVE_CURSOR_ERROR: cannot read the export")
    report, result = reconciled(session=faults.session())
    assert (result["status"], result["source"]) == ("unavailable", "cur")
    assert "HIVE_CURSOR_ERROR" in result["why"]
    assert "HIVE_CURSOR_ERROR" in text_body(emails(athena)[0])


def test_athena_refusing_the_query_never_blocks_the_report(athena):
    from .faults import Faults

    faults = Faults()
    faults.add("StartQueryExecution", faults.error(400, "AccessDeniedException", "not allowed"), times=-1)
    _, result = reconciled(session=faults.session())
    assert result["status"] == "unavailable" and "AccessDeniedException" in result["why"]


def test_a_summary_without_identities_is_not_compared_per_identity(account):
    # GIVEN the settled day's summary written before it had a cost per identity
    s3 = account.client("s3")
    document = json.loads(s3.get_object(Bucket=BUCKET, Key=account.settled_key)["Body"].read())
    del document["by_identity"]
    s3.put_object(Bucket=BUCKET, Key=account.settled_key, Body=json.dumps(document).encode())
    export(account)
    _, result = reconciled()
    # THEN not every billed identity "billed, not logged": the comparison says why it is not made
    assert result["status"] == "unavailable"
    assert result["why"] == f"the summary of {SETTLED.isoformat()} has no cost per identity to compare"


def test_many_identities_the_email_shows_the_largest_and_counts_the_rest(account, monkeypatch):
    export(account)
    columns = ("identity", "account", "line_type", "service", "usage_type", "usd")
    # 30 sessions of a role billed, none logged (sessions named per call), besides the summary's 4 identities
    rows = tuple(
        (f"{AGENT}/call-{n:02}", ACCOUNT, "Usage", "AmazonBedrock", "USE1-NovaLite-input-tokens", f"{n + 1}.0")
        for n in range(30)
    )

    class Engine:
        name = "embedded"

        def run(self, sql, relations, *, deadline):
            return QueryAnswer(columns, rows, bytes_scanned=1, engine="embedded")

    monkeypatch.setattr(settled_stage, "bill_engine", lambda config, aws: Engine())
    _, result = reconciled()
    assert (result["identities"], len(result["by_identity"]), result["billed_not_logged_count"]) == (34, 34, 30)
    assert result["by_identity"][0]["identity"] == f"{AGENT}/call-29"  # billed $30, not logged: the largest
    body = text_body(emails(account)[0])
    assert "... and 9 more identities (every one is in the settled CSV)" in body  # 34 - the email's 25
