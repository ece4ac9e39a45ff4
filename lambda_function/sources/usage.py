"""Query rows (every value a string) -> the usage frame: one row per UTC day, account, identity, model, region.

Counts are read as exact integers. A group whose sums cannot be exact token counts (negative, not whole, or at
least 2^53, above which Logs Insights' double-precision sums skip integers) is kept, its bad counts set to 0 and
the reason in `invalid`: pricing shows it as invalid, never as a number that wrapped or a partial charge."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from lambda_function.columns import (
    COLUMNS,
    COUNTS,
    IMAGE_KEYS,
    INVALID,
    KEYS,
    METADATA_PREFIX,
    OPTION_KEYS,
    TIER_KEYS,
    object_column,
)
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
    """The values as int64, each read by int(); None if any is not such a number (or not within int64). Each
    distinct value is read once: a page's equal values are one string, and a count column has few of them."""
    distinct = dict.fromkeys(values)
    try:
        numbers = dict(zip(distinct, map(int, distinct), strict=True))  # type: ignore[arg-type]
        return np.fromiter(map(numbers.__getitem__, values), dtype=np.int64, count=len(values))
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


def _codes(values: list[str | None], convert: Callable[[str | None], T], index: dict[T, int]) -> np.ndarray:
    """Each value's position in `index` (distinct converted values in the order first seen; new ones are added),
    converting each distinct value once: the columns repeat a handful of values (days, models, settings)."""
    local: dict[str | None, int] = dict.fromkeys(values, 0)
    for raw in local:
        local[raw] = index.setdefault(convert(raw), len(index))
    return np.fromiter(map(local.__getitem__, values), dtype=np.int64, count=len(values))


def _categorical(codes: np.ndarray, distinct: Sequence[Any]) -> pd.Categorical:
    """Rows given as codes into `distinct` (a value may repeat in it) as a categorical over the sorted values: a
    group key's duplicates, sort order and breakdowns are then worked out on integers."""
    categories = sorted(set(distinct))
    rank = {value: n for n, value in enumerate(categories)}
    ranks = np.array([rank[value] for value in distinct], dtype=np.int64)
    return pd.Categorical.from_codes(ranks[codes], categories=categories)


def _values(codes: np.ndarray, distinct: Sequence[object]) -> np.ndarray:
    """Rows given as codes into `distinct` as values: int64 where they are whole numbers within its range (a setting
    of "1E100" is read as a number beyond it), else objects."""
    if distinct and all(type(value) is int and -(2**63) <= value < 2**63 for value in distinct):
        return np.array(distinct, dtype=np.int64)[codes]
    return object_column(distinct)[codes]


class _Column:
    """A column typed a page at a time, as codes into the distinct typed values of the whole run: a page's strings
    can go once it is read, and each distinct value is typed once."""

    def __init__(self, convert: Callable[[str | None], Any]) -> None:
        self.convert = convert
        self.index: dict[Any, int] = {}
        self.parts: list[np.ndarray] = []

    def add(self, values: list[str | None]) -> None:
        self.parts.append(_codes(values, self.convert, self.index))

    def add_value(self, value: object, size: int) -> None:
        """`size` rows of one typed value."""
        self.parts.append(np.full(size, self.index.setdefault(value, len(self.index)), dtype=np.int64))

    @property
    def distinct(self) -> list[Any]:
        return list(self.index)

    def codes(self) -> np.ndarray:
        return np.concatenate(self.parts) if self.parts else np.zeros(0, dtype=np.int64)


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
# Text group keys: categoricals in the usage frame (with the attribution keys' `meta:` columns)
_CATEGORICAL = {"account_id", "identity_arn", "model_id", "region", "image_quality", "service_tier", "latency"}


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


class _UsageColumns:
    """The usage frame's columns, typed a page at a time (`day`: the rows' day when a page has none, as a query
    over one UTC day makes them)."""

    def __init__(self, attribution_keys: Sequence[str], day: date | None) -> None:
        self.day = day
        self.meta = [METADATA_PREFIX + key for key in attribution_keys]
        self.text = {name: _Column(_CONVERTERS.get(name, _text(MISSING)))
                     for name in RESULT_FIELDS.values() if name not in COUNTS}  # fmt: skip
        self.text.update({name: _Column(_text("")) for name in self.meta})
        self.options = _Column(_unfold)
        self.counts: dict[str, list[np.ndarray]] = {name: [] for name in COUNTS}
        self.problems: list[np.ndarray] = []  # per page and row, why its counts are not usable ("": they are)

    def add(self, page: Page) -> None:
        for n, name in enumerate(self.meta):
            self.text[name].add(page.column(meta_field(n)))
        problems: list[list[str]] = []
        for service_name, name in RESULT_FIELDS.items():
            if name in COUNTS:
                numbers, reasons = _counts(page.column(service_name))
                self.counts[name].append(numbers)
                if reasons is not None:
                    problems.append([f"{name.replace('_', ' ')} {r}" if r else "" for r in reasons])
            elif name == "usage_date" and service_name not in page.columns and self.day is not None:
                self.text[name].add_value(self.day, page.size)
            else:
                self.text[name].add(page.column(service_name))
        self.options.add(page.column(OPTIONS_FIELD))
        # Records the query counted as readable (an input token count or an error code); the others succeeded but
        # say nothing we could price (a record cut short, a count that is not a number).
        if READABLE_FIELD in page.columns:
            readable, unusable = _counts(page.column(READABLE_FIELD))
            unreadable = np.maximum(self.counts["invocations"][-1] - readable, 0)
            if unusable is not None:
                unreadable[[bool(r) for r in unusable]] = 0
        else:
            unreadable = np.zeros(page.size, dtype=np.int64)
        self.counts["unreadable_records"].append(unreadable)
        joined = np.full(page.size, "", dtype=object)
        if problems:
            joined[:] = ["; ".join(p for p in row if p) for row in zip(*problems, strict=True)]
        self.problems.append(joined)

    def frame(self) -> pd.DataFrame:
        data: dict[str, object] = {}
        for name, column in self.text.items():
            codes, distinct = column.codes(), column.distinct
            data[name] = (_categorical if name in _CATEGORICAL or name in self.meta else _values)(codes, distinct)
        codes, options = self.options.codes(), self.options.distinct
        for n, name in enumerate(FOLDED):
            typed = [values[n] for values, _ in options]
            data[name] = (_categorical if name in _CATEGORICAL else _values)(codes, typed)
        data.update((name, np.concatenate(parts)) for name, parts in self.counts.items())
        # why a row cannot be priced: its counts, then its options
        invalid = np.concatenate(self.problems)
        if any(why for _, why in options):
            whys = _values(codes, [why for _, why in options])
            invalid = object_column([f"{a}; {b}" if a and b else a or b for a, b in zip(invalid, whys, strict=True)])
        data[INVALID] = invalid
        return pd.DataFrame(data, columns=[*COLUMNS, *self.meta, INVALID], copy=False)


def usage_frame(pages: Iterable[Page], attribution_keys: Sequence[str] = (), day: date | None = None) -> pd.DataFrame:
    """Typed, summed usage; the same key from several queries (log-group batches, split windows) is added up.
    Pages are typed one at a time and let go (their shared strings are all a run holds until then). `day`: the
    rows' day when a page has none (a query over one UTC day). With `attribution_keys`, a `meta:<key>` column per
    key holds the calls' requestMetadata value ("" when none), a group key too. The text group keys are
    categoricals."""
    meta = [METADATA_PREFIX + key for key in attribution_keys]
    columns = _UsageColumns(attribution_keys, day)
    pages_read = 0
    for page in pages:
        if page.size:
            columns.add(page)
            pages_read += 1
    if not pages_read:
        ints = set(COUNTS) | (set(IMAGE_KEYS) - {"image_quality"}) | set(TIER_KEYS)
        empty = {name: pd.Series(dtype="int64" if name in ints else "object") for name in [*COLUMNS, *meta]}
        return pd.DataFrame({**empty, INVALID: pd.Series(dtype="object")})
    frame = columns.frame()
    del columns
    keys = KEYS + IMAGE_KEYS + TIER_KEYS + OPTION_KEYS + meta
    if not frame.duplicated(keys).any():  # one query's rows: each key once already (its `stats ... by`)
        return frame
    any_invalid = bool(frame[INVALID].astype(bool).any())
    grouped = frame.groupby(keys, as_index=False, sort=True, observed=True)
    summed = grouped[COUNTS].sum()
    # Reasons joined per group, only when there are any (the common case skips a Python-level aggregation).
    summed[INVALID] = grouped[INVALID].agg(_reasons)[INVALID] if any_invalid else ""
    return summed.astype({name: "int64" for name in COUNTS})


def _reasons(values: pd.Series) -> str:
    return "; ".join(sorted({v for v in values if v}))
