"""The run's CloudWatch metrics as CloudWatch reads them: the Embedded Metric Format lines the Lambda entry point
prints, checked against the specification (docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/
CloudWatch_Embedded_Metric_Format_Specification.html), and what `ReportDelivered` counts for the heartbeat alarm."""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from lambda_function import lambda_handler
from lambda_function.request import parse_request
from lambda_function.store import report_key
from lambda_function.window import day_window
from local_aws.cost_explorer import LineItem
from local_aws.generate import generate_records, put_records

from .support import BUCKET, DAY, END, GROUP, START, TODAY, configure

NAMESPACE = "BedrockUsageReport"
FUNCTION = "bedrock-usage-report-prod"
# What the stack's schedule sends (<aws.scheduler.scheduled-time>): midnight today reports yesterday
SCHEDULED = {"scheduled_time": f"{TODAY.isoformat()}T00:00:00Z"}
MANUAL = {"date": DAY.isoformat()}
# The units CloudWatch accepts (MetricDatum.Unit)
UNITS = {
    *("Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes"),
    *("Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "None"),
    *("Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second"),
    *("Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second"),
}


class Context:
    """Lambda's context object, as much of it as the entry point reads."""

    function_name = FUNCTION
    aws_request_id = "8f6c1f0e-0000-4000-8000-000000000001"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


@pytest.fixture
def account(aws, monkeypatch):
    configure(aws, monkeypatch)
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    monkeypatch.delenv("POWERTOOLS_SERVICE_NAME", raising=False)
    monkeypatch.delenv("POWERTOOLS_METRICS_NAMESPACE", raising=False)
    put_records(aws.client("logs"), GROUP, generate_records(START, END, count=60, seed=5))
    # The Lambda entry point sleeps for real between polls (no injected sleep): queries complete at the first poll
    # here; polling itself is tested in test_insights_runner.py and test_deadlines.py.
    aws.insights.polls_until_running = aws.insights.polls_until_complete = 0
    return aws


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # json.loads accepts NaN and Infinity; CloudWatch does not


def emf_lines(capsys) -> list[dict[str, Any]]:
    """The EMF records among the lines printed to stdout, each parsed as strict JSON."""
    records = []
    for line in capsys.readouterr().out.splitlines():
        if '"_aws"' in line:
            record = json.loads(line, parse_constant=_no_constants)
            assert isinstance(record, dict), line
            records.append(record)
    return records


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_emf(record: dict[str, Any], *, function_name: str = FUNCTION) -> None:
    """One record against the specification, and the stack's own rules: the namespace, FunctionName on every
    metric, and nothing else as a dimension (an alarm selects a metric by its exact set of dimensions)."""
    metadata = record["_aws"]
    timestamp = metadata["Timestamp"]
    # Timestamp: required, an integer of milliseconds since the epoch; CloudWatch drops points older than two weeks
    assert isinstance(timestamp, int) and not isinstance(timestamp, bool), timestamp
    assert abs(timestamp - time.time() * 1000) <= 60_000, f"Timestamp {timestamp} is not within a minute of now"
    directives = metadata["CloudWatchMetrics"]
    assert isinstance(directives, list) and directives
    for directive in directives:
        assert directive["Namespace"] == NAMESPACE
        dimension_sets = directive["Dimensions"]
        assert isinstance(dimension_sets, list) and dimension_sets
        for names in dimension_sets:
            assert isinstance(names, list) and len(names) <= 30
            for name in names:
                # each dimension name is a top-level member, and its value a string
                assert isinstance(name, str) and isinstance(record.get(name), str) and record[name], name
            assert names == ["FunctionName"]
        assert record["FunctionName"] == function_name
        metrics = directive["Metrics"]
        assert isinstance(metrics, list) and 0 < len(metrics) <= 100
        assert len({m["Name"] for m in metrics}) == len(metrics)
        for metric in metrics:
            name = metric["Name"]
            assert isinstance(name, str) and 1 <= len(name) <= 255
            assert metric.get("Unit", "None") in UNITS, metric
            assert metric.get("StorageResolution", 60) in (1, 60), metric
            # each metric is a top-level member: a number, or an array of at most 100 numbers
            value = record[name]
            values = value if isinstance(value, list) else [value]
            assert 0 < len(values) <= 100 and all(is_number(v) for v in values), (name, value)


def metric(records: list[dict[str, Any]], name: str) -> float | None:
    """The metric's total over the records that declare it (None when no record does): what Sum reads."""
    found = [
        record[name]
        for record in records
        for directive in record["_aws"]["CloudWatchMetrics"]
        if any(m["Name"] == name for m in directive["Metrics"])
    ]
    if not found:
        return None
    return sum(sum(v) if isinstance(v, list) else v for v in found)


def run_lambda(event: dict[str, Any], capsys, context: Any = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    capsys.readouterr()  # only this run's lines
    response = lambda_handler(event, Context() if context is None else context)
    records = emf_lines(capsys)
    for record in records:
        check_emf(record, function_name=getattr(context, "function_name", FUNCTION) if context else FUNCTION)
    return response, records


def test_a_scheduled_run_that_delivered_counts_one_delivery(account, capsys):
    response, records = run_lambda(SCHEDULED, capsys)
    assert response["status"] == "ok" and response["email"]["sent"] is True
    assert response["window"]["label"] == DAY.isoformat()
    assert metric(records, "ReportDelivered") == 1
    # the run's numbers, beside it and named as before
    (record,) = [r for r in records if "ReportDelivered" in r]
    assert metric(records, "TotalCostUSD") == pytest.approx(float(response["total_cost_usd"]))
    assert metric(records, "Invocations") == response["invocations"] == 60
    for name in ("UnpricedInvocations", "BytesScanned", "Queries"):
        assert metric(records, name) is not None
    assert record["window"] == DAY.isoformat()


def test_a_retry_of_a_scheduled_run_whose_email_went_out_still_counts(account, capsys):
    run_lambda(SCHEDULED, capsys)
    response, records = run_lambda(SCHEDULED, capsys)
    assert response["email"]["sent"] is False and len(account.sent_emails()) == 1  # already sent: not again
    assert metric(records, "ReportDelivered") == 1


@pytest.mark.parametrize(
    "event",
    [MANUAL, {**SCHEDULED, "send_email": False}, {"date": DAY.isoformat(), "send_email": False}, {}],
    ids=["manual", "scheduled-without-email", "manual-without-email", "empty-event-by-hand"],
)
def test_a_run_that_is_not_a_scheduled_delivery_does_not_count(account, capsys, event):
    response, records = run_lambda(event, capsys)
    assert response["status"] == "ok"
    # a manual run emails the report, yet the heartbeat (Sum over 26 h < 1, missing data breaching) must not see it
    assert not metric(records, "ReportDelivered")


def test_the_function_name_comes_from_the_environment_without_a_context(account, capsys, monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "bedrock-usage-report-staging")
    capsys.readouterr()
    lambda_handler(SCHEDULED, None)
    records = emf_lines(capsys)
    assert records
    for record in records:
        check_emf(record, function_name="bedrock-usage-report-staging")
    assert metric(records, "ReportDelivered") == 1


def test_a_service_name_in_the_environment_adds_no_dimension(account, capsys, monkeypatch):
    # Powertools adds a `service` dimension when POWERTOOLS_SERVICE_NAME is set: the alarms would then miss the metric
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "bedrock-usage-report")
    _, records = run_lambda(SCHEDULED, capsys)  # check_emf: the dimensions are FunctionName alone
    assert metric(records, "ReportDelivered") == 1


SETTLED = DAY - timedelta(days=2)  # RECONCILE_LAG_DAYS, 2 by default
SONNET = "Claude Sonnet 4.5 (Amazon Bedrock Edition)"


def test_the_drift_metric_meets_the_specification_too(account, capsys):
    # GIVEN the summary of the day now settled, and what Cost Explorer billed for it ($12.50 against $10 estimated)
    window = day_window(SETTLED, ZoneInfo("UTC"))
    summary = {
        "schema": "bedrock-usage-report/summary/1",
        "window": window.as_json(),
        "total_cost_usd": "10",
        "by_model": [{"name": "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "cost_usd": "10", "invocations": 3}],
        "by_region": [{"name": "us-east-1", "cost_usd": "10", "invocations": 3}],
        "by_identity": [{"name": "arn:aws:iam::111111111111:user/alice", "cost_usd": "10", "invocations": 3}],
        "footer": {},
    }
    key = report_key("bedrock-usage", window).removesuffix(".csv") + ".json"
    account.client("s3").put_object(Bucket=BUCKET, Key=key, Body=json.dumps(summary).encode())
    usage = "USE1-MP:USE1_InputTokenCount-Units"
    account.cost_explorer.add(LineItem(SETTLED.isoformat(), SONNET, usage, "us-east-1", "111111111111", "12.5"))

    # WHEN the scheduled run reports yesterday
    response, records = run_lambda(SCHEDULED, capsys)

    # THEN the drift is measured, on a line that meets the specification like the report's (run_lambda checks)
    assert response["reconciliation"]["status"] == "ok"
    assert metric(records, "ReconciliationDriftPercent") == pytest.approx(20.0)  # of the bill
    assert metric(records, "ReconciliationDriftAlert") == 1
    assert [r["day"] for r in records if "ReconciliationDriftPercent" in r] == [SETTLED.isoformat()]


def test_a_refused_request_prints_no_metrics(account, capsys):
    response, records = run_lambda({"date": "yesterday"}, capsys)
    assert response["status"] == "error" and records == []


@pytest.mark.parametrize(
    ("event", "scheduled"),
    [
        (SCHEDULED, True),
        ({**SCHEDULED, "send_email": False}, True),
        (
            {
                "version": "0",
                "id": "1",
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "time": END.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
            True,
        ),
        ({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}, True),
        ({}, False),
        (None, False),
        (MANUAL, False),
        ({"period": "previous_day"}, False),
        ({"start": START.isoformat(), "end": END.isoformat()}, False),
    ],
)
def test_which_requests_came_from_the_schedule(event, scheduled):
    now = datetime.combine(TODAY, datetime.min.time(), tzinfo=UTC) + timedelta(hours=6)
    request = parse_request(event, tz=ZoneInfo("UTC"), now=now, default_recipients=("finops@example.com",))
    assert request.scheduled is scheduled
