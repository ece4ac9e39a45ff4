"""Malformed invocation-log records: never wrapped, never a $0 call, never the end of everyone's report.

Each record below is one identity's only call, so each CSV row shows what became of exactly one record."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest

from local_aws.generate import put_records

from .support import ACCOUNT_ID, GROUP, START, configure, csv_rows, emails, run, summary_document, text_body

NOVA = "amazon.nova-lite-v1:0"


def arn(user: str) -> str:
    return f"arn:aws:iam::{ACCOUNT_ID}:user/{user}"


def call(n: int, user: str, input_tokens: object = 1_000_000, output_tokens: object = 100_000) -> dict:
    return {
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": (START + timedelta(minutes=n)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "accountId": ACCOUNT_ID,
        "identity": {"arn": arn(user)},
        "region": "us-east-1",
        "requestId": f"req-{n}",
        "operation": "Converse",
        "modelId": NOVA,
        "input": {"inputContentType": "application/json", "inputTokenCount": input_tokens},
        "output": {"outputContentType": "application/json", "outputTokenCount": output_tokens},
    }


BAD_COUNTS = {
    "wraps": 2**63,  # int64 would wrap to -9,223,372,036,854,775,808
    "negative": -5,
    "fraction": 12.5,
    "astronomic": 1e30,
    "twenty-digits": 10**19 + 7,
    "just-above-exact": 2**53,  # Logs Insights sums in double precision: from 2^53 on, not every integer exists
}


@pytest.fixture
def logs_with_bad_records(aws, monkeypatch):
    configure(aws, monkeypatch)
    records = [call(0, "good")]
    records += [call(n + 1, user, input_tokens=value) for n, (user, value) in enumerate(BAD_COUNTS.items())]
    records.append(call(20, "boolean", input_tokens=True))
    failed = call(21, "failed")
    del failed["input"], failed["output"]
    failed["errorCode"] = "ThrottlingException"
    records.append(failed)
    put_records(aws.client("logs"), GROUP, records)
    # A record cut off mid-way (no closing brace): it matches the invocation-log filter, but has no counts.
    truncated = json.dumps(call(30, "truncated"), separators=(",", ":"))
    truncated = truncated[: truncated.index('"input"') + 20]
    stamp = int((START + timedelta(minutes=30)).timestamp() * 1000)
    aws.client("logs").put_log_events(
        logGroupName=GROUP, logStreamName="bedrock-invocations", logEvents=[{"timestamp": stamp, "message": truncated}]
    )
    return aws


def test_bad_counts_are_invalid_rows_and_the_rest_stays_exact(logs_with_bad_records):
    aws = logs_with_bad_records
    response = run({}).response
    assert response["status"] == "ok"
    rows = {r["Identity ARN"]: r for r in csv_rows(aws, response)}

    # The good call: 1,000,000 x $0.06 + 100,000 x $0.24 per 1M tokens = $0.06 + $0.024 = $0.084
    assert rows[arn("good")]["Charges incurred"] == "0.084000"
    assert rows[arn("good")]["Pricing status"] == "priced"
    # The failed call is counted, and costs nothing
    assert (rows[arn("failed")]["Failed invocations"], rows[arn("failed")]["Charges incurred"]) == ("1", "0.000000")

    for user in BAD_COUNTS:
        row = rows[arn(user)]
        assert row["Charges incurred"] == "", user
        assert row["Pricing status"].startswith("invalid: "), user
        assert "input tokens" in row["Pricing status"], user
        assert row["Invocations"] == "1", user
        assert not row["Number of Input tokens"].startswith("-"), user
    assert "negative" in rows[arn("negative")]["Pricing status"]
    assert "not a whole number" in rows[arn("fraction")]["Pricing status"]
    assert "2^53" in rows[arn("wraps")]["Pricing status"]

    # Records with no readable counts for a successful call: counted, shown, never a $0 call
    for user in ("boolean", "truncated"):
        row = rows[arn(user)]
        assert row["Unreadable records"] == "1", user
        assert row["Charges incurred"] == "", user
        assert row["Pricing status"].startswith("invalid: "), user
    assert response["unreadable_records"] == 2

    # The totals are the good call's and nothing else; all 10 records are accounted for
    assert response["total_cost_usd"] == "0.084000"
    assert response["invocations"] == response["records_matched"] == 10
    assert response["invalid_rows"] == len(BAD_COUNTS) + 2
    document = summary_document(aws, response)
    assert Decimal(document["total_cost_usd"]) == Decimal("0.084")
    assert document["unreadable_records"] == 2

    # The email says so, and its subject is no negative fortune
    (message,) = emails(aws)
    assert message["Subject"].startswith(f"Bedrock usage {START.date().isoformat()}: $0.08 + ")
    body = text_body(message)
    assert "invalid: " in body and "Unreadable records: 2" in body
