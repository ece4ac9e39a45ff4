"""LOG_SOURCE=s3: the invocation logs delivered to S3, aggregated by the SQL on the engine seam (the embedded engine
here, DuckDB over the same objects Athena reads), give the report Logs Insights gives, byte for byte; and every gap
(an hour without objects, an object cut short, a line that is not JSON) is named, never a silent under-count."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from local_aws.generate import generate_records, put_records
from local_aws.s3_delivery import put_delivered
from tests.support import ACCOUNT_ID, BUCKET, GROUP, SENDER, run, summary_document

LOGS_BUCKET = "bedrock-invocation-logs"
LOCATION = f"s3://{LOGS_BUCKET}/bedrock"
TODAY = datetime.now(UTC).date()
DAY = TODAY - timedelta(days=1)
START = datetime.combine(DAY, time(0), tzinfo=UTC)
END = START + timedelta(days=1)
NOW = datetime.combine(TODAY, time(6, 0), tzinfo=UTC)


def _account(aws, monkeypatch, records, **env):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.create_bucket(Bucket=LOGS_BUCKET)
    aws.client("ses").verify_email_identity(EmailAddress=SENDER)
    put_records(aws.client("logs"), GROUP, records)
    keys = put_delivered(s3, LOCATION, ACCOUNT_ID, "us-east-1", records, late_seconds=env.pop("late_seconds", 0))
    for name, value in {
        "LOG_GROUP_NAMES": GROUP,
        "REPORT_BUCKET": BUCKET,
        "SENDER": SENDER,
        "RECIPIENTS": "finops@example.com",
        "REPORT_TIMEZONE": "UTC",
        "LOG_S3_LOCATION": LOCATION,
        **env,
    }.items():
        monkeypatch.setenv(name, value)
    return keys


def _report(aws, monkeypatch, source, day=DAY):
    monkeypatch.setenv("LOG_SOURCE", source)
    result = run({"date": day.isoformat(), "send_email": False}, now=NOW)
    assert result.response["status"] == "ok", result.response
    return result


def test_the_same_report_from_either_source(aws, monkeypatch):
    records = generate_records(START, END, count=2_000, seed=5, large_record_rate=0.02)
    _account(aws, monkeypatch, records, ATTRIBUTION_KEYS="team", late_seconds=30)
    insights = _report(aws, monkeypatch, "cloudwatch")
    s3 = _report(aws, monkeypatch, "s3")
    assert s3.csv == insights.csv
    assert s3.response["invocations"] == insights.response["invocations"] == len(records)
    footer = summary_document(aws, s3.response)["footer"]
    assert footer["source"] == "s3"
    assert footer["records_matched"] == len(records)
