"""The AWS side of delivery: the CSV to S3, the message through SES. Clients are passed in."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

from botocore.exceptions import ClientError

from .mail import message_bytes
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
    """Send the raw MIME message in batches of at most 50 recipients (an SES limit per message), each batch
    with its own To header so that no message names more than 50; returns the SES message ids."""
    ids = []
    for i in range(0, len(recipients), SES_MAX_RECIPIENTS):
        batch = list(recipients[i : i + SES_MAX_RECIPIENTS])
        del message["To"]
        message["To"] = ", ".join(batch)
        # No Destinations: SES then sends to the message's own To header, the batch. (Given both, moto counts
        # the header and the list together against the 50-recipient limit.)
        response = ses.send_raw_email(Source=sender, RawMessage={"Data": message_bytes(message)})
        ids.append(response["MessageId"])
        log.info("sent report email %s to %d recipient(s)", response["MessageId"], len(batch))
    return ids


def sent_marker_key(csv_key: str) -> str:
    """Where the 'this window's email went out' marker lives, beside the CSV."""
    return csv_key.removesuffix(".csv") + ".email-sent.json"


def claim_email(s3: Any, bucket: str, key: str, body: bytes, *, force: bool) -> bool:
    """Record that this window's email is being sent. Only the first run wins (S3 conditional write,
    `If-None-Match: *`), so a retried or duplicated invocation does not send it twice; `force` always wins."""
    params = {"Bucket": bucket, "Key": key, "Body": body, "ContentType": "application/json"}
    if force:
        s3.put_object(**params)
        return True
    try:
        s3.put_object(**params, IfNoneMatch="*")
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict"):
            return False
        raise
    return True


def release_email_claim(s3: Any, bucket: str, key: str) -> None:
    """Sending failed: drop the marker so that Lambda's retry sends the email after all."""
    try:
        s3.delete_object(Bucket=bucket, Key=key)
    except ClientError as err:
        log.error("could not remove %s after a failed send; delete it to let a re-run send: %s", key, err)


def put_summary(s3: Any, bucket: str, csv_key: str, summary: dict[str, Any]) -> str:
    """The machine-readable summary beside the CSV (same name, .json)."""
    key = csv_key.removesuffix(".csv") + ".json"
    body = (json.dumps(summary, indent=2, sort_keys=True) + "\n").encode("utf-8")
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
    return f"s3://{bucket}/{key}"


def presigned_link(s3: Any, bucket: str, key: str, expires_seconds: int) -> str:
    return str(
        s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_seconds)
    )
