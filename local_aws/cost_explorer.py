"""Cost Explorer test double: GetCostAndUsage and GetDimensionValues answered from seeded billing line items.

moto answers GetCostAndUsage only from a queue of canned results, taken in the order distinct requests arrive,
and has no GetDimensionValues (FACTS §5). A reconciliation makes several requests whose order is the product's
business, so this double patches `moto.ce.responses.CostExplorerResponse` and computes each answer from line items
the way the service does: the half-open TimePeriod, DAILY or MONTHLY buckets, a Dimensions filter (And of
Dimensions allowed), up to two GroupBy dimensions or tag keys (a TAG group's key is "<tag key>$<value>", and
"<tag key>$" for spend without the tag, as the service names them), the cost metric asked for, paging by
NextPageToken.

    double = CostExplorerDouble()
    double.add(LineItem("2026-11-28", "Amazon Bedrock", "USE1-NovaLite-input-tokens", "us-east-1", "123", "1.25"))
    double.add(LineItem(..., tags=(("iamPrincipal/team", "platform"),)))  # cost allocation tags of the line
    double.fail_next("AccessDeniedException")
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from moto.ce.responses import CostExplorerResponse
from moto.core.exceptions import JsonRESTError

_PATCHED = ("get_cost_and_usage", "get_dimension_values")
DIMENSIONS = {"SERVICE": "service", "USAGE_TYPE": "usage_type", "REGION": "region", "LINKED_ACCOUNT": "account"}
METRICS = ("UnblendedCost", "BlendedCost", "AmortizedCost", "NetUnblendedCost", "NetAmortizedCost")
PAGE_SIZE = 50  # groups per page, small enough for tests to see paging


@dataclass(frozen=True)
class LineItem:
    day: str  # YYYY-MM-DD
    service: str
    usage_type: str
    region: str
    account: str
    cost: str  # USD; the double answers every cost metric with it
    tags: tuple[tuple[str, str], ...] = ()  # active cost allocation tags: (key, value) pairs

    def group_key(self, group_type: str, key: str) -> str:
        """The line's key in a GroupBy of `group_type` (DIMENSION or TAG) on `key`."""
        if group_type == "TAG":
            return f"{key}${dict(self.tags).get(key, '')}"
        if group_type != "DIMENSION" or key not in DIMENSIONS:
            raise _Error("ValidationException", f"the double groups by {', '.join(DIMENSIONS)} or a TAG only")
        return str(getattr(self, DIMENSIONS[key]))

    def amount(self, metric: str) -> Decimal:
        return Decimal(self.cost)


class _Error(JsonRESTError):
    def __init__(self, code: str, message: str):
        super().__init__(code, message)


class CostExplorerDouble:
    def __init__(self) -> None:
        self.items: list[LineItem] = []
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self._failures: list[str | None] = []  # None: a request answered before the failures to come
        self._lock = threading.Lock()
        self._saved: list[dict[str, Any]] = []
        self.unit = "USD"  # the currency amounts come in (an account billed in EUR gets "EUR")
        self.dimension_page_size = 1000  # values per GetDimensionValues page

    def reset(self) -> None:
        with self._lock:
            self.items.clear()
            self.requests.clear()
            self._failures.clear()
            self.unit = "USD"
            self.dimension_page_size = 1000

    def add(self, *items: LineItem) -> None:
        self.items.extend(items)

    def fail_next(self, code: str, n: int = 1, after: int = 0) -> None:
        """The next `n` requests fail with `code`, once `after` more have been answered."""
        self._failures.extend([None] * after + [code] * n)

    # -- the API ---------------------------------------------------------------------------------------------------
    def _check(self, operation: str, params: dict[str, Any]) -> tuple[date, date]:
        with self._lock:
            self.requests.append((operation, params))
            if self._failures:
                code = self._failures.pop(0)
                if code is not None:
                    raise _Error(code, "injected Cost Explorer fault")
        period = params.get("TimePeriod") or {}
        try:
            start, end = date.fromisoformat(period["Start"]), date.fromisoformat(period["End"])
        except (KeyError, ValueError):
            raise _Error("ValidationException", "TimePeriod Start and End are required dates") from None
        if end <= start:
            raise _Error("ValidationException", "End must be after Start")
        return start, end

    def _matches(self, item: LineItem, expression: dict[str, Any] | None) -> bool:
        if not expression:
            return True
        if "And" in expression:
            return all(self._matches(item, e) for e in expression["And"])
        dimension = expression.get("Dimensions")
        if dimension is None:
            raise _Error("ValidationException", "the double understands Dimensions and And filters only")
        return getattr(item, DIMENSIONS[dimension["Key"]]) in dimension.get("Values", [])

    def get_dimension_values(self, params: dict[str, Any]) -> dict[str, Any]:
        start, end = self._check("GetDimensionValues", params)
        attribute = DIMENSIONS[params["Dimension"]]
        search = (params.get("SearchString") or "").lower()
        values = sorted(
            {
                getattr(i, attribute)
                for i in self.items
                if start <= date.fromisoformat(i.day) < end and search in getattr(i, attribute).lower()
            }
        )
        offset = int(params.get("NextPageToken") or 0)
        page = values[offset : offset + self.dimension_page_size]
        answer: dict[str, Any] = {
            "DimensionValues": [{"Value": v, "Attributes": {}} for v in page],
            "ReturnSize": len(page),
            "TotalSize": len(values),
        }
        if offset + self.dimension_page_size < len(values):
            answer["NextPageToken"] = str(offset + self.dimension_page_size)
        return answer

    def get_cost_and_usage(self, params: dict[str, Any]) -> dict[str, Any]:
        start, end = self._check("GetCostAndUsage", params)
        metrics = params.get("Metrics") or []
        if not metrics or any(m not in METRICS for m in metrics):
            raise _Error("ValidationException", f"Metrics must be some of {', '.join(METRICS)}")
        groups = [(g.get("Type", "DIMENSION"), g["Key"]) for g in params.get("GroupBy") or []]
        if len(groups) > 2:
            raise _Error("ValidationException", "at most two GroupBy dimensions")
        monthly = params.get("Granularity") == "MONTHLY"
        buckets: dict[tuple[date, date], dict[tuple[str, ...], Decimal]] = defaultdict(lambda: defaultdict(Decimal))
        day = start
        while day < end:  # every bucket is reported, empty or not, as the service does
            bucket = _bucket(day, end, monthly, start)
            buckets[bucket]  # noqa: B018
            day = bucket[1]
        for item in self.items:
            when = date.fromisoformat(item.day)
            if not start <= when < end or not self._matches(item, params.get("Filter")):
                continue
            key = tuple(item.group_key(group_type, name) for group_type, name in groups)
            for metric in metrics:
                buckets[_bucket(when, end, monthly, start)][key + (metric,)] += item.amount(metric)
        results = []
        for (first, last), totals in sorted(buckets.items()):
            entry: dict[str, Any] = {"TimePeriod": {"Start": first.isoformat(), "End": last.isoformat()}}
            if groups:
                by_key: dict[tuple[str, ...], dict[str, Any]] = {}
                for key, amount in sorted(totals.items()):
                    metrics_of = by_key.setdefault(key[:-1], {})
                    metrics_of[key[-1]] = {"Amount": f"{amount:f}", "Unit": self.unit}
                entry["Groups"] = [{"Keys": list(k), "Metrics": m} for k, m in by_key.items()]
                entry["Total"] = {}
            else:
                entry["Total"] = {
                    m: {"Amount": f"{totals.get((m,), Decimal(0)):f}", "Unit": self.unit} for m in metrics
                }
                entry["Groups"] = []
            entry["Estimated"] = False
            results.append(entry)
        # Paging: by groups across the result list, NextPageToken the index to go on from.
        flat = [(i, g) for i, r in enumerate(results) for g in r["Groups"]] if groups else []
        offset = int(params.get("NextPageToken") or 0)
        if groups and len(flat) - offset > PAGE_SIZE:
            keep = flat[offset : offset + PAGE_SIZE]
            paged = [dict(r, Groups=[g for i, g in keep if i == n]) for n, r in enumerate(results)]
            return {"ResultsByTime": paged, "NextPageToken": str(offset + PAGE_SIZE), "DimensionValueAttributes": []}
        if groups and offset:
            rest = flat[offset:]
            results = [dict(r, Groups=[g for i, g in rest if i == n]) for n, r in enumerate(results)]
        return {"ResultsByTime": results, "DimensionValueAttributes": []}

    # -- installation ----------------------------------------------------------------------------------------------
    @contextmanager
    def installed(self) -> Iterator[CostExplorerDouble]:
        self._saved.append({name: CostExplorerResponse.__dict__.get(name) for name in _PATCHED})
        for name in _PATCHED:
            setattr(CostExplorerResponse, name, _handler(self, name))
        try:
            yield self
        finally:
            saved = self._saved.pop()
            for name, original in saved.items():
                if original is None:
                    delattr(CostExplorerResponse, name)
                else:
                    setattr(CostExplorerResponse, name, original)


def _bucket(day: date, end: date, monthly: bool, start: date) -> tuple[date, date]:
    if not monthly:
        return day, day + timedelta(days=1)
    first = max(start, day.replace(day=1))
    following = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return first, min(end, following)


def _handler(double: CostExplorerDouble, operation: str) -> Any:
    method = getattr(double, operation)

    def handle(response: CostExplorerResponse) -> str:
        params = json.loads(response.body) if response.body else {}
        return json.dumps(method(params))

    handle.__name__ = operation
    return handle
