"""What the fault and bad-input tests share: a configured account on the embedded AWS, a run of the product
with injected time, and reading back what a user would see."""

from __future__ import annotations

import csv
import email
import email.policy
import io
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from lambda_function.config import load_config
from lambda_function.handler import AwsClients, ReportRun, run_report

GROUP = "/aws/bedrock/modelinvocations"
BUCKET = "fault-reports"
SENDER = "reports@example.com"
ACCOUNT_ID = "123456789012"
# moto keeps 14 days of log events: the windows are yesterday's (UTC), whatever day the suite runs.
TODAY = datetime.now(UTC).date()
DAY = TODAY - timedelta(days=1)
START = datetime.combine(DAY, time(0), tzinfo=UTC)
END = START + timedelta(days=1)
NOW = datetime.combine(TODAY, time(6, 0), tzinfo=UTC)


def configure(aws: Any, monkeypatch: Any, **env: str) -> None:
    """A bucket, a verified sender and the function's settings (RECIPIENTS etc. may be overridden)."""
    aws.client("s3").create_bucket(Bucket=BUCKET)
    aws.client("ses").verify_email_identity(EmailAddress=SENDER)
    settings = {
        "LOG_GROUP_NAMES": GROUP,
        "REPORT_BUCKET": BUCKET,
        "SENDER": f"Bedrock reports <{SENDER}>",
        "RECIPIENTS": "finops@example.com",
        "REPORT_TIMEZONE": "UTC",
        **env,
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    for name in ("PRICE_TABLE", "PRICE_OVERRIDES", "PRICE_DISCOUNT_PERCENT"):
        if name not in env:
            monkeypatch.delenv(name, raising=False)


@dataclass
class FakeTime:
    """A monotonic clock that only moves when the product sleeps (or the test says so): tests never wait."""

    now: float = 1_000.0
    slept: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def run(event: dict[str, Any], *, session: Any = None, now: datetime = NOW, **kwargs: Any) -> ReportRun:
    """One run of the product as Lambda would make it, with botocore's hooks from `session` (faults)."""
    config = load_config(os.environ)
    aws = AwsClients(config.default_region, session=session)
    kwargs.setdefault("sleep", lambda seconds: None)
    return run_report(event, config, aws, now=now, **kwargs)


def csv_rows(aws: Any, response: dict[str, Any]) -> list[dict[str, str]]:
    key = response["s3_uri"].removeprefix(f"s3://{BUCKET}/")
    data = aws.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def summary_document(aws: Any, response: dict[str, Any]) -> dict[str, Any]:
    key = response["summary_uri"].removeprefix(f"s3://{BUCKET}/")
    return json.loads(aws.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read())


def emails(aws: Any) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(m.raw_data.encode("utf-8"), policy=email.policy.default)  # type: ignore[misc]
        for m in aws.sent_emails()
    ]


def recipients_of(aws: Any) -> list[str]:
    """Every address SES delivered to, once per message (a duplicate shows as two entries)."""
    return sorted(address for message in aws.sent_emails() for address in set(message.destinations))


def text_body(message: email.message.EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]


def objects(aws: Any) -> list[str]:
    return [o["Key"] for o in aws.client("s3").list_objects_v2(Bucket=BUCKET).get("Contents", [])]
