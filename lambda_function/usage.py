"""Query rows (every value a string) -> the usage frame: one row per UTC day, account, identity, model, region.

Counts are read as exact integers. A group whose sums cannot be exact token counts (negative, not whole, or at
least 2^53, above which Logs Insights' double-precision sums skip integers) is kept, its bad counts set to 0 and
the reason in `invalid`: pricing shows it as invalid, never as a number that wrapped or a partial charge."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

import pandas as pd

from .query import READABLE_FIELD, RESULT_FIELDS
from .service_options import DEFAULT_TIER, STANDARD_LATENCY

KEYS = ["usage_date", "account_id", "identity_arn", "model_id", "region"]
COUNTS = [
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",  # the 1-hour part of cache_write_tokens, from the logged response body
    "cache_write_ttl_unknown_tokens",  # the part of cache_write_tokens whose record's body says no TTL
    "invocations",
    "failed_invocations",
    "unreadable_records",  # matched the invocation-log filter, succeeded, but no token count could be read
]
# Image settings as logged (-1 / "-" when the request did not say); text models have the sentinels only.
IMAGE_KEYS = ["image_width", "image_height", "image_quality", "image_steps", "images_per_call"]
# How many of the tier table's input thresholds the requests were above (0: none; see query.usage_query).
TIER_KEYS = ["input_band"]
# Per-request options with prices of their own (service_options.py): the service tier and the latency mode.
OPTION_KEYS = ["service_tier", "latency"]
COLUMNS = KEYS + IMAGE_KEYS + TIER_KEYS + OPTION_KEYS + COUNTS
INVALID = "invalid"  # why a group's counts are not usable ("" when they are)
MAX_EXACT = 2**53  # Logs Insights sums in double precision: every integer below this is exact, not all above
MISSING = "unknown"  # a record without the field (never seen in real logs, but never dropped either)


def _day(value: str) -> date:
    # bin(1d) values look like "2026-11-20 00:00:00.000"
    return datetime.fromisoformat(value.strip().replace(" ", "T")).date() if value else date.min


def _count(value: str | None) -> int | str:
    """The exact count, or why it is not one (a string). Sums arrive as text: "123", "1.5e+30", "-5"."""
    if value is None or value == "":
        return 0  # sum() over a group where the field never appeared
    text = value.strip()
    try:
        number = Decimal(text)
    except InvalidOperation:
        return f"{text!r} is not a number"
    if not number.is_finite():
        return f"{text!r} is not a number"
    if number < 0:
        return f"{text} is negative"
    if number != number.to_integral_value():
        return f"{text} is not a whole number"
    if number >= MAX_EXACT:
        return f"{text} is not exact (2^53 or more; Logs Insights sums in double precision)"
    return int(number)


def _setting(value: str | None) -> int:
    if not value:
        return -1
    try:
        return int(float(value))
    except ValueError:
        return -1  # a setting we cannot read prices as "not stated"


def usage_frame(rows: Iterable[dict[str, str]]) -> pd.DataFrame:
    """Typed, summed usage; the same key from several queries (log-group batches, split windows) is added up."""
    records = []
    any_invalid = False
    for row in rows:
        record: dict[str, object] = {}
        problems = []
        for service_name, name in RESULT_FIELDS.items():
            value = row.get(service_name)
            if name == "usage_date":
                record[name] = _day(value or "")
            elif name in COUNTS:
                count = _count(value)
                if isinstance(count, str):
                    problems.append(f"{name.replace('_', ' ')} {count}")
                    count = 0
                record[name] = count
            elif name == "image_quality":
                record[name] = value.lower() if value else "-"
            elif name in IMAGE_KEYS:
                record[name] = _setting(value)
            elif name == "input_band":
                record[name] = max(0, _setting(value))  # no thresholds: no band field, 0
            elif name == "service_tier":
                record[name] = value.lower() if value else DEFAULT_TIER
            elif name == "latency":
                record[name] = value.lower() if value else STANDARD_LATENCY
            else:
                record[name] = value if value else MISSING
        # Records the query counted as readable (an input token count or an error code); the others succeeded
        # but say nothing we could price (a record cut short, a count that is not a number).
        invocations = record["invocations"]
        assert isinstance(invocations, int)
        readable = _count(row.get(READABLE_FIELD)) if READABLE_FIELD in row else invocations
        record["unreadable_records"] = max(0, invocations - readable) if isinstance(readable, int) else 0
        record[INVALID] = "; ".join(problems)
        any_invalid = any_invalid or bool(problems)
        records.append(record)
    if not records:
        ints = set(COUNTS) | (set(IMAGE_KEYS) - {"image_quality"}) | set(TIER_KEYS)
        columns = {name: pd.Series(dtype="int64" if name in ints else "object") for name in COLUMNS}
        return pd.DataFrame({**columns, INVALID: pd.Series(dtype="object")})
    frame = pd.DataFrame.from_records(records, columns=[*COLUMNS, INVALID])
    grouped = frame.groupby(KEYS + IMAGE_KEYS + TIER_KEYS + OPTION_KEYS, as_index=False, sort=True)
    summed = grouped[COUNTS].sum()
    # Reasons joined per group, only when there are any (the common case skips a Python-level aggregation).
    summed[INVALID] = grouped[INVALID].agg(_reasons)[INVALID] if any_invalid else ""
    return summed.astype({name: "int64" for name in COUNTS})


def _reasons(values: pd.Series) -> str:
    return "; ".join(sorted({v for v in values if v}))
