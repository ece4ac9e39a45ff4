"""`make demo`: a realistic day of Bedrock invocation logs on an embedded AWS, the real handler, and what a
user would receive — the CSV downloaded back from S3 and the email read back from SES — written to out/.
"""

from __future__ import annotations

import argparse
import email
import json
import logging
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from lambda_function import lambda_handler

from .embedded import EmbeddedAws, embedded_aws
from .generate import generate_records, permission_check_line, put_records

LOG_GROUP = "/aws/bedrock/modelinvocations"
BUCKET = "demo-bedrock-usage-reports"
SENDER = "Bedrock reports <reports@example.com>"
RECIPIENTS = "finops@example.com,platform-team@example.com"


@dataclass
class FakeLambdaContext:
    """Enough of Lambda's context object for the handler's deadline: a 15-minute function."""

    timeout_ms: int = 15 * 60 * 1000

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_ms


def seed_account(aws: EmbeddedAws, records: list[dict[str, Any]]) -> None:
    aws.client("s3").create_bucket(Bucket=BUCKET)
    aws.client("ses").verify_email_identity(EmailAddress="reports@example.com")
    logs = aws.client("logs")
    put_records(logs, LOG_GROUP, records)
    # the one-off non-JSON line Bedrock writes when logging is set up: the report must skip it
    first = min(r["timestamp"] for r in records)
    stamp = int(datetime.strptime(first, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp() * 1000)
    logs.put_log_events(
        logGroupName=LOG_GROUP,
        logStreamName="bedrock-invocations",
        logEvents=[{"timestamp": stamp, "message": permission_check_line()}],
    )


def report_environment(timezone: str) -> dict[str, str]:
    return {
        "LOG_GROUP_NAMES": LOG_GROUP,
        "REPORT_BUCKET": BUCKET,
        "REPORT_PREFIX": "bedrock-usage",
        "SENDER": SENDER,
        "RECIPIENTS": RECIPIENTS,
        "REPORT_TIMEZONE": timezone,
    }


def read_back(aws: EmbeddedAws, response: dict[str, Any], out: Path) -> dict[str, str]:
    """Download the CSV from S3 and take the raw email from SES, as a user would see them."""
    out.mkdir(parents=True, exist_ok=True)
    bucket, key = response["s3_uri"].removeprefix("s3://").split("/", 1)
    csv_bytes = aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    stem = key.rsplit("/", 1)[-1].removesuffix(".csv")
    paths = {"csv": out / f"{stem}.csv", "eml": out / f"{stem}.eml", "html": out / f"{stem}.html"}
    paths["csv"].write_bytes(csv_bytes)
    sent = aws.sent_emails()
    if sent:
        raw = sent[-1].raw_data.encode("utf-8")
        paths["eml"].write_bytes(raw)
        message = email.message_from_bytes(raw, policy=email.policy.default)
        html = message.get_body(preferencelist=("html",))
        paths["html"].write_text(html.get_content() if html else "", encoding="utf-8")
        attachment = next(message.iter_attachments(), None)
        same = attachment is not None and attachment.get_payload(decode=True) == csv_bytes
        print(f"attachment byte-identical to the S3 object: {same}", file=sys.stderr)
        if not same:
            raise SystemExit("the emailed CSV differs from the S3 object")
    (out / "response.json").write_text(json.dumps(response, indent=2) + "\n", encoding="utf-8")
    paths["response"] = out / "response.json"
    return {name: str(path) for name, path in paths.items()}


def run_demo(out: Path, *, records: int, timezone: str, now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    with embedded_aws() as aws:
        # The scheduled run reports the previous full day; generate exactly that day's logs.
        today = now.astimezone(ZoneInfo(timezone)).date()
        start = datetime.combine(today - timedelta(days=1), datetime.min.time(), tzinfo=ZoneInfo(timezone))
        end = datetime.combine(today, datetime.min.time(), tzinfo=ZoneInfo(timezone))
        # 1% long agent conversations (1,000+ JSON fields) exercise Logs Insights' 200-field limit.
        day_records = generate_records(start, end, count=records, seed=2026, large_record_rate=0.01)
        print(f"generated {len(day_records):,} invocation-log records for {start.date()}", file=sys.stderr)
        seed_account(aws, day_records)

        os.environ.update(report_environment(timezone))
        event = {"scheduled_time": now.isoformat(timespec="seconds")}
        response = lambda_handler(event, FakeLambdaContext())
        if response.get("status") != "ok":
            print(json.dumps(response, indent=2))
            raise SystemExit(1)
        response["local_files"] = read_back(aws, response, out)
        return response


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_aws.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out"))
    parser.add_argument("--records", type=int, default=24_000)
    parser.add_argument("--timezone", default="UTC")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("werkzeug", "botocore"):  # moto server access log, credential lookups
        logging.getLogger(noisy).setLevel(logging.WARNING)
    response = run_demo(args.out, records=args.records, timezone=args.timezone)
    print(json.dumps(response, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
