"""What changed: the previous period's total and month-to-date spend, read from the JSON summaries earlier
runs left beside their CSVs (no extra Logs Insights queries, so no extra scan cost)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from botocore.exceptions import ClientError

from lambda_function.aws import error_code
from lambda_function.store.bucket import report_key, summary_key
from lambda_function.window import ReportWindow, day_window

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreviousPeriod:
    label: str
    total_cost: Decimal
    change: Decimal  # this period minus the previous one
    change_percent: Decimal | None  # None when the previous period cost nothing


@dataclass(frozen=True)
class MonthToDate:
    total_cost: Decimal
    days_reported: int
    days_in_range: int


def previous_window(window: ReportWindow) -> ReportWindow:
    """The period of the same length just before: yesterday's yesterday, last week's week before."""
    if window.is_single_day:
        return day_window(window.local_start.date() - timedelta(days=1), window.tz)
    length = window.end - window.start
    return ReportWindow(window.start - length, window.start, window.tz)


def previous_footer(s3: Any, bucket: str, prefix: str, window: ReportWindow) -> dict[str, Any] | None:
    """The footer of the report of the period before (which price table priced it), or None."""
    key = summary_key(report_key(prefix, previous_window(window)))
    try:
        document = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        footer = document["footer"]
        return footer if isinstance(footer, dict) else None
    except (ClientError, ValueError, KeyError, TypeError) as err:
        log.info("no readable footer in s3://%s/%s: %s", bucket, key, err)
        return None


def _summary_total(s3: Any, bucket: str, prefix: str, window: ReportWindow, skipped: list[str]) -> Decimal | None:
    """An earlier report's total, or None when there is none. One that cannot be read (not JSON, a field missing
    or not a number, an S3 error) is skipped with a warning and its key added to `skipped`: today's report goes
    out with the comparison leaving it out, rather than not at all."""
    key = summary_key(report_key(prefix, window))
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as err:
        if error_code(err) in ("NoSuchKey", "404", "AccessDenied"):
            return None
        log.warning("skipping the earlier summary s3://%s/%s: %s", bucket, key, err)
        skipped.append(key)
        return None
    try:
        document = json.loads(body)
        if document["window"]["start"] != window.as_json()["start"]:
            return None
        total = Decimal(str(document["total_cost_usd"]))
        if not total.is_finite():
            raise InvalidOperation(f"total_cost_usd is {total}")
    except (ValueError, KeyError, TypeError, InvalidOperation) as err:
        log.warning("skipping the unreadable earlier summary s3://%s/%s: %r", bucket, key, err)
        skipped.append(key)
        return None
    return total


def compare_previous(
    s3: Any, bucket: str, prefix: str, window: ReportWindow, total: Decimal, skipped: list[str] | None = None
) -> PreviousPeriod | None:
    before = previous_window(window)
    previous = _summary_total(s3, bucket, prefix, before, [] if skipped is None else skipped)
    if previous is None:
        return None
    change = total - previous
    try:
        percent = (change / previous * 100).quantize(Decimal("0.1")) if previous else None
    except InvalidOperation:  # a ratio beyond Decimal's precision: no percentage rather than an error
        percent = None
    return PreviousPeriod(before.label, previous, change, percent)


def month_to_date(
    s3: Any, bucket: str, prefix: str, window: ReportWindow, total: Decimal, skipped: list[str] | None = None
) -> MonthToDate | None:
    """For a daily report: the month's daily reports up to and including this one."""
    if not window.is_single_day:
        return None
    day = window.local_start.date()
    earlier = [day.replace(day=n) for n in range(1, day.day)]
    sink = [] if skipped is None else skipped
    found = [_summary_total(s3, bucket, prefix, day_window(d, window.tz), sink) for d in earlier]
    costs = [c for c in found if c is not None]
    return MonthToDate(total + sum(costs, Decimal(0)), len(costs) + 1, day.day)
