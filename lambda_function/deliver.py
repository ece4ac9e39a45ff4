"""The AWS side of delivery: the CSV to S3, the message through SES. Clients are passed in."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

from .window import ReportWindow

log = logging.getLogger(__name__)

SES_MAX_RAW_MESSAGE = 10 * 1024 * 1024  # SES v1 SendRawEmail: 10 MB after encoding
SES_MAX_RECIPIENTS = 50  # per message


def _stamp(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def report_key(prefix: str, window: ReportWindow) -> str:
    """Deterministic per window, so a re-run overwrites the same object instead of piling up copies."""
    day = window.local_start.date()
    name = f"bedrock-usage_{_stamp(window.start)}_{_stamp(window.end)}.csv"
    return f"{prefix}/reports/{day:%Y}/{day:%m}/{day:%d}/{name}"


def put_report(s3: Any, bucket: str, key: str, body: bytes, metadata: dict[str, str]) -> str:
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=body,
        ContentType="text/csv; charset=utf-8",
        Metadata=metadata,
    )
    return f"s3://{bucket}/{key}"


def send_email(ses: Any, message: EmailMessage, sender: str, recipients: tuple[str, ...]) -> list[str]:
    """Send the raw MIME message, at most 50 recipients per SendRawEmail; returns the SES message ids."""
    raw = message.as_bytes()
    ids = []
    for i in range(0, len(recipients), SES_MAX_RECIPIENTS):
        batch = list(recipients[i : i + SES_MAX_RECIPIENTS])
        response = ses.send_raw_email(Source=sender, Destinations=batch, RawMessage={"Data": raw})
        ids.append(response["MessageId"])
        log.info("sent report email %s to %d recipient(s)", response["MessageId"], len(batch))
    return ids
