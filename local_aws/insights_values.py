"""Logs Insights values: numbers, text and timestamps, and how each appears in a result row (always a string)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Timestamp(int):
    """Epoch milliseconds; Logs Insights shows timestamps as `2026-11-20 00:00:00.000` (UTC)."""

    __slots__ = ()

    def __str__(self) -> str:
        seconds, millis = divmod(int(self), 1000)
        moment = EPOCH + timedelta(seconds=seconds)
        return f"{moment:%Y-%m-%d %H:%M:%S}.{millis:03d}"

    __repr__ = __str__


def format_value(value: Any) -> str:
    """How a value appears in a result row (GetQueryResults sends every value as a string).

    Sums of integers and counts have no decimal point (public code parses them with parseInt); an integral float
    (avg of 2 and 4) prints as "3" too. min()/max() of @timestamp stay timestamps (public queries apply toMillis()
    to them). JSON true/false print as "true"/"false". The last three are not documented by AWS."""
    kind = type(value)
    if kind is str:
        return value
    if kind is bool:
        return "true" if value else "false"
    if kind is float:
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    return str(value)  # int, Timestamp


def to_number(value: Any) -> int | float | None:
    """A value as a number, or None. Strings from `parse` are text, but sum()/min()/comparisons treat digit
    strings as numbers, as the service does."""
    kind = type(value)
    if kind is int or kind is float:
        return value
    if kind is str:
        try:
            return int(value)
        except ValueError:
            try:
                number = float(value)
            except ValueError:
                return None
            return number if math.isfinite(number) else None
    if kind is bool or value is None:
        return None
    if isinstance(value, int):  # Timestamp
        return int(value)
    return None


def to_text(value: Any) -> str:
    return value if type(value) is str else format_value(value)
