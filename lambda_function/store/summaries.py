"""Earlier daily summaries read back from the report store, and the cost per name in one of their breakdowns: the
history that spikes and month-to-date budgets look at (no extra Logs Insights queries)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from botocore.exceptions import ClientError

from lambda_function.aws import error_code
from lambda_function.store.bucket import day_summary_key
from lambda_function.window import day_window

log = logging.getLogger(__name__)

ATTRIBUTION = "by_attribution."  # `by_attribution.<key>`: the summary's {"by_attribution": {key: [...]}}
BREAKDOWNS = ("by_identity", "by_model", "by_region")


@dataclass(frozen=True)
class StoredSummary:
    day: date
    key: str
    document: dict[str, Any]


def _money(value: Any) -> Decimal:
    amount = Decimal(str(value))
    if not amount.is_finite():
        raise InvalidOperation(f"{value!r} is not an amount")
    return amount


def breakdown_costs(document: dict[str, Any], breakdown: str) -> dict[str, Decimal] | None:
    """Cost per name in a summary's `by_identity`, `by_model`, `by_region` or `by_attribution.<key>` list, or None
    when the summary has no such breakdown (written before it existed). Raises ValueError, KeyError, TypeError or
    InvalidOperation when the breakdown is there but malformed."""
    if breakdown.startswith(ATTRIBUTION):
        groups = document.get("by_attribution", {})
        if not isinstance(groups, dict):
            raise TypeError("by_attribution is not an object")
        items = groups.get(breakdown.removeprefix(ATTRIBUTION))
    elif breakdown in BREAKDOWNS:
        items = document.get(breakdown)
    else:
        raise ValueError(f"{breakdown!r} is not a breakdown of the summary")
    if items is None:
        return None
    if not isinstance(items, list):
        raise TypeError(f"{breakdown} is not a list")
    costs: dict[str, Decimal] = {}
    for item in items:
        name = item["name"]
        if not isinstance(name, str):
            raise TypeError(f"{breakdown} has a name that is not text: {name!r}")
        costs[name] = costs.get(name, Decimal(0)) + _money(item["cost_usd"])
    return costs


def _check(document: Any, day: date, tz: ZoneInfo) -> bool:
    """True when `document` is the summary of that day; raises when it is a summary but cannot be used."""
    if not isinstance(document, dict):
        raise TypeError("not a JSON object")
    if document["window"]["start"] != day_window(day, tz).as_json()["start"]:
        return False  # another window's summary (the time zone changed since): not this day's
    _money(document["total_cost_usd"])
    for breakdown in BREAKDOWNS:
        breakdown_costs(document, breakdown)
    for key in document.get("by_attribution", {}):
        breakdown_costs(document, ATTRIBUTION + key)
    return True


def read_daily_summaries(
    s3: Any, bucket: str, prefix: str, days: Iterable[date], tz: ZoneInfo, skipped: list[str]
) -> list[StoredSummary]:
    """The daily summaries of `days` that exist, in the order asked. One that cannot be read (not JSON, a total or a
    breakdown malformed, an S3 error) is left out with a warning and its key added to `skipped`, as history.py
    does: a corrupt summary never stops today's report."""
    found = []
    for day in days:
        key = day_summary_key(prefix, day, tz)
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as err:
            # AccessDenied: without s3:ListBucket a missing key reads as denied
            if error_code(err) not in ("NoSuchKey", "404", "AccessDenied"):
                log.warning("skipping the earlier summary s3://%s/%s: %s", bucket, key, err)
                skipped.append(key)
            continue
        try:
            document = json.loads(body)
            if not _check(document, day, tz):
                continue
        except (ValueError, KeyError, TypeError, InvalidOperation) as err:
            log.warning("skipping the unreadable earlier summary s3://%s/%s: %r", bucket, key, err)
            skipped.append(key)
            continue
        found.append(StoredSummary(day, key, document))
    return found
