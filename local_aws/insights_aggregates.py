"""Logs Insights aggregation functions (stats): one accumulator per group, fed one value per event."""

from __future__ import annotations

import math
from typing import Any

from .insights_values import to_number, to_text


class Sum:
    __slots__ = ("total", "seen")

    def __init__(self) -> None:
        self.total: int | float = 0
        self.seen = False

    def add(self, value: Any) -> None:
        number = to_number(value)
        if number is not None:
            self.total += number
            self.seen = True

    def result(self) -> Any:
        # A group where the field never had a number has no sum: the field is left out of the row.
        return self.total if self.seen else None


class Count:
    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0

    def add(self, value: Any) -> None:
        # count(field) "counts all records that include the specified field name"
        if value is not None:
            self.n += 1

    def result(self) -> Any:
        return self.n


class CountAll(Count):
    __slots__ = ()

    def add(self, value: Any) -> None:
        self.n += 1


class CountDistinct:
    __slots__ = ("values",)

    def __init__(self) -> None:
        self.values: set[str] = set()

    def add(self, value: Any) -> None:
        if value is not None:
            self.values.add(to_text(value))

    def result(self) -> Any:
        return len(self.values)  # exact; the service's is an approximation at high cardinality


class Extreme:
    """min()/max(): numbers (and digit strings) compare as numbers and win over text; the value keeps its type,
    so min(@timestamp) is still a timestamp."""

    __slots__ = ("sign", "number", "number_value", "text")

    def __init__(self, sign: int):
        self.sign = sign
        self.number: int | float | None = None
        self.number_value: Any = None
        self.text: str | None = None

    def add(self, value: Any) -> None:
        if value is None:
            return
        number = to_number(value)
        if number is not None:
            if self.number is None or (number < self.number if self.sign < 0 else number > self.number):
                self.number, self.number_value = number, value
        else:
            text = to_text(value)
            if self.text is None or (text < self.text if self.sign < 0 else text > self.text):
                self.text = text

    def result(self) -> Any:
        return self.number_value if self.number is not None else self.text


class Mean:
    """avg() from the exact sum (integers stay exact until the one division); stddev() by Welford's method."""

    __slots__ = ("n", "total", "mean", "m2", "deviation")

    def __init__(self, deviation: bool = False):
        self.n = 0
        self.total: int | float = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.deviation = deviation

    def add(self, value: Any) -> None:
        number = to_number(value)
        if number is None:
            return
        self.n += 1
        self.total += number
        if self.deviation:
            delta = number - self.mean
            self.mean += delta / self.n
            self.m2 += delta * (number - self.mean)

    def result(self) -> Any:
        if not self.n:
            return None
        if not self.deviation:
            return self.total / self.n
        return math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else 0.0


class Percentile:
    __slots__ = ("p", "values")

    def __init__(self, p: float):
        self.p = p
        self.values: list[Any] = []

    def add(self, value: Any) -> None:
        if to_number(value) is not None:
            self.values.append(value)

    def result(self) -> Any:
        if not self.values:
            return None
        ordered = sorted(self.values, key=to_number)  # type: ignore[arg-type]
        index = min(len(ordered) - 1, max(0, math.ceil(self.p / 100 * len(ordered)) - 1))
        return ordered[index]


class ByTime:
    """earliest()/latest(): the value from the event with the lowest/highest @timestamp."""

    __slots__ = ("sign", "best", "value")

    def __init__(self, sign: int):
        self.sign = sign
        self.best: int | None = None
        self.value: Any = None

    def add(self, pair: Any) -> None:
        ts, value = pair
        if value is not None and (self.best is None or (ts < self.best if self.sign < 0 else ts > self.best)):
            self.best, self.value = ts, value

    def result(self) -> Any:
        return self.value
