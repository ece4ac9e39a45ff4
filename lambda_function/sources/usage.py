"""Query rows (every value a string) -> the usage frame: one row per UTC day, account, identity, model, region.

Counts are read as exact integers. A group whose sums cannot be exact token counts (negative, not whole, or at
least 2^53, above which Logs Insights' double-precision sums skip integers) is kept, its bad counts set to 0 and
the reason in `invalid`: pricing shows it as invalid, never as a number that wrapped or a partial charge."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import TypeVar

import numpy as np
import pandas as pd

from lambda_function.columns import COLUMNS, COUNTS, IMAGE_KEYS, INVALID, KEYS, METADATA_PREFIX, OPTION_KEYS, TIER_KEYS
from lambda_function.pricing.service_options import DEFAULT_TIER, STANDARD_LATENCY
from lambda_function.sources.insights import Page
from lambda_function.sources.query import FOLDED, OPTIONS_FIELD, READABLE_FIELD, RESULT_FIELDS, meta_field

T = TypeVar("T")
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
    except (ValueError, OverflowError):  # "abc", "nan"; "inf", "1e999"
        return -1  # a setting we cannot read prices as "not stated"


def _int64(values: list[str | None]) -> np.ndarray | None:
    """The values as int64, read by numpy as int() would read each; None if any is not such a number."""
    try:
        return np.array(values, dtype=np.int64)
    except (ValueError, TypeError, OverflowError):
        return None


def _counts(values: list[str | None]) -> tuple[np.ndarray, list[str] | None]:
    """A column of sums as exact int64 counts, and per row why a count is not usable (None: all are).

    The common column, whole numbers below 2^53 (or empty: 0), is read by numpy in one go; any other value sends
    the column through `_count`, which reads each exactly or says what is wrong with it."""
    numbers = _int64(values)
    if numbers is None:  # perhaps sums over groups where the field never appeared (None or ""): 0
        numbers = _int64([v or "0" for v in values])
    if numbers is not None and (not len(numbers) or (numbers.min() >= 0 and numbers.max() < MAX_EXACT)):
        return numbers, None
    parsed = [_count(v) for v in values]
    reasons = [p if isinstance(p, str) else "" for p in parsed]
    return np.array([0 if isinstance(p, str) else p for p in parsed], dtype=np.int64), reasons


def _mapped(values: list[str | None], convert: Callable[[str | None], T]) -> list[T]:
    """`convert` once per distinct value: keys repeat across rows (a handful of days, models, settings)."""
    cache = {value: convert(value) for value in set(values)}
    return list(map(cache.__getitem__, values))


def _text(default: str, lower: bool = False) -> Callable[[str | None], str]:
    return lambda value: (value.lower() if lower else value) if value else default


_CONVERTERS: dict[str, Callable[[str | None], object]] = {
    "usage_date": lambda value: _day(value or ""),
    "image_quality": _text("-", lower=True),
    "input_band": lambda value: max(0, _setting(value)),  # no thresholds: no band field, 0
    "service_tier": _text(DEFAULT_TIER, lower=True),
    "latency": _text(STANDARD_LATENCY, lower=True),
    **{name: _setting for name in IMAGE_KEYS if name != "image_quality"},
}


def _unfold(value: str | None) -> tuple[tuple[object, ...], str]:
    """The folded options field (`query.OPTIONS_FIELD`) as its typed values, and why not ('' when it reads). A row
    without the field is refused too: the query always makes it, so its absence means the service did not (a
    `concat` it evaluated otherwise), and defaults would price a priority or latency-optimized call as standard."""
    parts = "" if value is None else value
    split = parts.split("|", len(FOLDED) - 1)
    if value is None or len(split) != len(FOLDED):
        why = "the options field is missing" if value is None else f"options {value!r} cannot be read"
        return tuple(_CONVERTERS[name]("") for name in FOLDED), why
    return tuple(_CONVERTERS[name](part) for name, part in zip(FOLDED, split, strict=True)), ""


def _page_frame(page: Page, attribution_keys: Sequence[str], day: date | None = None) -> pd.DataFrame:
    """One page of query rows as typed columns (the page's strings can go once this is built). `day`: the rows'
    day when the page has none (a query over one UTC day)."""
    data: dict[str, object] = {}
    for n, key in enumerate(attribution_keys):
        data[METADATA_PREFIX + key] = _mapped(page.column(meta_field(n)), _text(""))
    problems: list[list[str]] = []
    for service_name, name in RESULT_FIELDS.items():
        values = page.column(service_name)
        if name in COUNTS:
            data[name], reasons = _counts(values)
            if reasons is not None:
                problems.append([f"{name.replace('_', ' ')} {r}" if r else "" for r in reasons])
        elif name == "usage_date" and service_name not in page.columns and day is not None:
            data[name] = [day] * page.size
        else:
            data[name] = _mapped(values, _CONVERTERS.get(name, _text(MISSING)))
    typed, whys = zip(*_mapped(page.column(OPTIONS_FIELD), _unfold), strict=True)
    data.update(zip(FOLDED, map(list, zip(*typed, strict=True)), strict=True))
    if any(whys):
        problems.append(list(whys))
    # Records the query counted as readable (an input token count or an error code); the others succeeded but
    # say nothing we could price (a record cut short, a count that is not a number).
    invocations = data["invocations"]
    assert isinstance(invocations, np.ndarray)
    if READABLE_FIELD in page.columns:
        readable, unusable = _counts(page.column(READABLE_FIELD))
        unreadable = np.maximum(invocations - readable, 0)
        if unusable is not None:
            unreadable[[bool(r) for r in unusable]] = 0
        data["unreadable_records"] = unreadable
    else:
        data["unreadable_records"] = np.zeros(page.size, dtype=np.int64)
    data[INVALID] = ["; ".join(p for p in row if p) for row in zip(*problems, strict=True)] if problems else ""
    meta = [METADATA_PREFIX + key for key in attribution_keys]
    return pd.DataFrame(data, columns=[*COLUMNS, *meta, INVALID])


def usage_frame(pages: Iterable[Page], attribution_keys: Sequence[str] = (), day: date | None = None) -> pd.DataFrame:
    """Typed, summed usage; the same key from several queries (log-group batches, split windows) is added up.
    Pages are typed one at a time and let go (their shared strings are all a run holds until then). With
    `attribution_keys`, a `meta:<key>` column per key holds the calls' requestMetadata value ("" when none), a group key too."""
    meta = [METADATA_PREFIX + key for key in attribution_keys]
    frames = [_page_frame(page, attribution_keys, day) for page in pages if page.size]
    if not frames:
        ints = set(COUNTS) | (set(IMAGE_KEYS) - {"image_quality"}) | set(TIER_KEYS)
        columns = {name: pd.Series(dtype="int64" if name in ints else "object") for name in [*COLUMNS, *meta]}
        return pd.DataFrame({**columns, INVALID: pd.Series(dtype="object")})
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    del frames
    keys = KEYS + IMAGE_KEYS + TIER_KEYS + OPTION_KEYS + meta
    if not frame.duplicated(keys).any():  # one query's rows: each key once already (its `stats ... by`)
        return frame
    any_invalid = bool(frame[INVALID].astype(bool).any())
    grouped = frame.groupby(keys, as_index=False, sort=True)
    summed = grouped[COUNTS].sum()
    # Reasons joined per group, only when there are any (the common case skips a Python-level aggregation).
    summed[INVALID] = grouped[INVALID].agg(_reasons)[INVALID] if any_invalid else ""
    return summed.astype({name: "int64" for name in COUNTS})


def _reasons(values: pd.Series) -> str:
    return "; ".join(sorted({v for v in values if v}))
