"""Query rows (every value a string) -> the usage frame: one row per UTC day, account, identity, model, region."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

import pandas as pd

from .query import RESULT_FIELDS

KEYS = ["usage_date", "account_id", "identity_arn", "model_id", "region"]
COUNTS = [
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "invocations",
    "failed_invocations",
]
# Image settings as logged (-1 / "-" when the request did not say); text models have the sentinels only.
IMAGE_KEYS = ["image_width", "image_height", "image_quality", "image_steps", "images_per_call"]
# How many of the tier table's input thresholds the requests were above (0: none; see query.usage_query).
TIER_KEYS = ["input_band"]
COLUMNS = KEYS + IMAGE_KEYS + TIER_KEYS + COUNTS
MISSING = "unknown"  # a record without the field (never seen in real logs, but never dropped either)


def _day(value: str) -> date:
    # bin(1d) values look like "2026-11-20 00:00:00.000"
    return datetime.fromisoformat(value.strip().replace(" ", "T")).date() if value else date.min


def _count(value: str | None) -> int:
    if value is None or value == "":
        return 0  # sum() over a group where the field never appeared
    number = float(value) if any(c in value for c in ".eE") else int(value)
    if number != int(number) or number < 0:
        raise ValueError(f"token/invocation count {value!r} is not a whole number")
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
    for row in rows:
        record: dict[str, object] = {}
        for service_name, name in RESULT_FIELDS.items():
            value = row.get(service_name)
            if name == "usage_date":
                record[name] = _day(value or "")
            elif name in COUNTS:
                record[name] = _count(value)
            elif name == "image_quality":
                record[name] = value.lower() if value else "-"
            elif name in IMAGE_KEYS:
                record[name] = _setting(value)
            elif name == "input_band":
                record[name] = max(0, _setting(value))  # no thresholds: no band field, 0
            else:
                record[name] = value if value else MISSING
        records.append(record)
    if not records:
        ints = set(COUNTS) | (set(IMAGE_KEYS) - {"image_quality"}) | set(TIER_KEYS)
        return pd.DataFrame({name: pd.Series(dtype="int64" if name in ints else "object") for name in COLUMNS})
    frame = pd.DataFrame.from_records(records, columns=COLUMNS)
    frame = frame.groupby(KEYS + IMAGE_KEYS + TIER_KEYS, as_index=False, sort=True)[COUNTS].sum()
    return frame.astype({name: "int64" for name in COUNTS})
