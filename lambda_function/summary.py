"""The report's summary: its totals and breakdowns (what the email and the response show) and the JSON written beside
each CSV, which later runs read back (previous period, month to date, spikes, budgets, reconciliation). Written and
read only through `Summary`: one shape, one validation, whatever wrote it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

SCHEMA = "bedrock-usage-report/summary/1"
BY_IDENTITY, BY_MODEL, BY_REGION = BREAKDOWNS = ("by_identity", "by_model", "by_region")
ATTRIBUTION = "by_attribution."  # `by_attribution.<key>` names the breakdown of one ATTRIBUTION_KEYS key
# What a report's figures can be. A stored summary outside these was not written by a report (storage is untrusted
# input): a trillion dollars a day, a negative cost, a count past 2^53 (where float sums stop being exact).
MAX_USD = Decimal(10) ** 12
MAX_COUNT = 2**53


class SummaryError(ValueError):
    """A stored summary that cannot be used: not JSON, or a field missing or malformed."""


@dataclass(frozen=True)
class UnpricedModel:
    model_id: str
    reason: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    invocations: int


class Spend(msgspec.Struct, frozen=True, gc=False):
    """One line of a breakdown: a name, its priced cost, and its invocations. A msgspec struct: a report makes one
    per identity, tens of thousands, and the summary JSON is written from them directly (`cost` as `cost_usd`, a
    string: exact, never a float)."""

    name: str
    cost: Decimal = msgspec.field(name="cost_usd")
    invocations: int = 0
    unpriced_invocations: int = 0


@dataclass
class ReportSummary:
    """Totals and breakdowns of one report, computed from its CSV rows."""

    total_cost: Decimal
    invocations: int
    failed_invocations: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    rows: int
    cache_write_1h_tokens: int = 0  # the 1-hour part of cache_write_tokens
    long_context_invocations: int = 0  # billed at a model's long-context tier
    unreadable_records: int = 0  # successful calls whose token counts could not be read (not priced)
    invalid_rows: int = 0  # CSV rows whose logged counts are unusable (not priced)
    by_identity: list[Spend] = field(default_factory=list)
    by_model: list[Spend] = field(default_factory=list)
    by_region: list[Spend] = field(default_factory=list)
    by_attribution: dict[str, list[Spend]] = field(default_factory=dict)  # per ATTRIBUTION_KEYS key
    unpriced: list[UnpricedModel] = field(default_factory=list)

    @property
    def unpriced_models(self) -> list[str]:
        return [u.model_id for u in self.unpriced]

    @property
    def unpriced_invocations(self) -> int:
        return sum(u.invocations for u in self.unpriced)


@dataclass
class Summary:
    """A report's stored summary: its window (`ReportWindow.as_json()`), its totals, the footer (where the numbers
    came from), and what later stages add: budgets and spikes (`watch`), the bill's verdict (`reconciliation`)."""

    window: dict[str, str]
    totals: ReportSummary
    footer: dict[str, Any] = field(default_factory=dict)
    watch: dict[str, Any] | None = None
    reconciliation: dict[str, Any] | None = None
    # breakdowns absent from a summary written before they existed: unknown, which is not the same as empty
    absent: frozenset[str] = frozenset()

    @property
    def total_cost(self) -> Decimal:
        return self.totals.total_cost

    @property
    def window_start(self) -> str:
        return self.window["start"]

    def breakdown_costs(self, breakdown: str) -> dict[str, Decimal] | None:
        """Cost per name in `by_identity`, `by_model`, `by_region` or `by_attribution.<key>`; None when this summary
        does not have that breakdown (written before it existed, or before the key was configured)."""
        if breakdown in self.absent:
            return None
        if breakdown.startswith(ATTRIBUTION):
            spends = self.totals.by_attribution.get(breakdown.removeprefix(ATTRIBUTION))
        elif breakdown in BREAKDOWNS:
            spends = getattr(self.totals, breakdown)
        else:
            raise ValueError(f"{breakdown!r} is not a breakdown of the summary")
        if spends is None:
            return None
        costs = {spend.name: spend.cost for spend in spends}  # a breakdown names each once (a line per name)
        if len(costs) < len(spends):  # a summary from elsewhere that repeats a name: its lines added up
            costs = {}
            for spend in spends:
                costs[spend.name] = costs.get(spend.name, Decimal(0)) + spend.cost
        return costs

    # ---- JSON ------------------------------------------------------------------------------------------------------

    def to_json(self) -> bytes:
        """One line, keys sorted, UTF-8: Athena's JSON SerDe (the stack's `summaries` table) reads one object per line.
        Money as strings: exact, never floats. (msgspec: a summary has a line per identity, tens of thousands.)"""
        return msgspec.json.encode(self.document(), order="sorted") + b"\n"

    def document(self) -> dict[str, Any]:
        t = self.totals
        document: dict[str, Any] = {
            "schema": SCHEMA,
            "window": self.window,
            "total_cost_usd": f"{t.total_cost:f}",
            "invocations": t.invocations,
            "failed_invocations": t.failed_invocations,
            "long_context_invocations": t.long_context_invocations,
            "unreadable_records": t.unreadable_records,
            "invalid_rows": t.invalid_rows,
            "tokens": {
                "input": t.input_tokens,
                "output": t.output_tokens,
                "cache_read": t.cache_read_tokens,
                "cache_write": t.cache_write_tokens,
                "cache_write_1h": t.cache_write_1h_tokens,
            },
            "rows": t.rows,
            "by_identity": t.by_identity,
            "by_model": t.by_model,
            "by_region": t.by_region,
            "by_attribution": t.by_attribution,
            "unpriced": [
                {
                    "model_id": u.model_id,
                    "reason": u.reason,
                    "invocations": u.invocations,
                    "input_tokens": u.input_tokens,
                    "output_tokens": u.output_tokens,
                    "cache_read_tokens": u.cache_read_tokens,
                    "cache_write_tokens": u.cache_write_tokens,
                }
                for u in t.unpriced
            ],
            "footer": self.footer,
        }
        for breakdown in self.absent & set(BREAKDOWNS):
            del document[breakdown]
        if self.watch is not None:
            document["watch"] = self.watch
        if self.reconciliation is not None:
            document["reconciliation"] = self.reconciliation
        return document

    @classmethod
    def from_json(cls, body: bytes | str) -> Summary:
        """A stored summary, checked as a request would be: raises SummaryError naming the field that is wrong.
        Fields added since the first version may be absent (counts read as 0, breakdowns as unknown)."""
        try:
            document = json.loads(body)
        except ValueError as err:
            raise SummaryError(f"not JSON ({err})") from None
        try:
            return cls._parse(document)
        except (KeyError, TypeError, ValueError, InvalidOperation) as err:
            raise SummaryError(f"{type(err).__name__}: {err}") from None

    @classmethod
    def _parse(cls, document: Any) -> Summary:
        doc = _object(document, "the summary")
        window = _object(doc["window"], "window")
        if not isinstance(window.get("start"), str):
            raise TypeError("window.start is not text")
        tokens = _object(doc.get("tokens", {}), "tokens")
        absent = frozenset(name for name in BREAKDOWNS if name not in doc)
        by_attribution = _object(doc.get("by_attribution", {}), "by_attribution")
        totals = ReportSummary(
            total_cost=_money(doc["total_cost_usd"], "total_cost_usd"),
            invocations=_count(doc, "invocations"),
            failed_invocations=_count(doc, "failed_invocations"),
            input_tokens=_count(tokens, "input"),
            output_tokens=_count(tokens, "output"),
            cache_read_tokens=_count(tokens, "cache_read"),
            cache_write_tokens=_count(tokens, "cache_write"),
            cache_write_1h_tokens=_count(tokens, "cache_write_1h"),
            rows=_count(doc, "rows"),
            long_context_invocations=_count(doc, "long_context_invocations"),
            unreadable_records=_count(doc, "unreadable_records"),
            invalid_rows=_count(doc, "invalid_rows"),
            by_identity=_spends(doc.get("by_identity", []), "by_identity"),
            by_model=_spends(doc.get("by_model", []), "by_model"),
            by_region=_spends(doc.get("by_region", []), "by_region"),
            by_attribution={
                _text(key, "by_attribution"): _spends(items, ATTRIBUTION + key) for key, items in by_attribution.items()
            },
            unpriced=[_unpriced(item) for item in _list(doc.get("unpriced", []), "unpriced")],
        )
        footer = doc.get("footer", {})
        return cls(
            window={str(k): str(v) for k, v in window.items()},
            totals=totals,
            footer=footer if isinstance(footer, dict) else {},
            watch=_optional_object(doc.get("watch"), "watch"),
            reconciliation=_optional_object(doc.get("reconciliation"), "reconciliation"),
            absent=absent,
        )


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"{what} is not a JSON object")
    return value


def _optional_object(value: Any, what: str) -> dict[str, Any] | None:
    return None if value is None else _object(value, what)


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"{what} is not a list")
    return value


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} has a name that is not text: {value!r}")
    return value


def _money(value: Any, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise TypeError(f"{what} is not an amount: {value!r}")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise InvalidOperation(f"{what} is {value!r}, not an amount") from None
    if not amount.is_finite():
        raise InvalidOperation(f"{what} is {value!r}, not an amount")
    if not 0 <= amount <= MAX_USD:
        raise ValueError(f"{what} is {value!r}: not a report's amount (0 to {MAX_USD:,} USD)")
    return amount


def _count(document: Mapping[str, Any], name: str) -> int:
    value = document.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < MAX_COUNT:
        raise TypeError(f"{name} is not a count: {value!r}")
    return value


def _spends(items: Any, breakdown: str) -> list[Spend]:
    return [
        Spend(
            name=_text(_object(item, breakdown)["name"], breakdown),
            cost=_money(item["cost_usd"], f"{breakdown} cost_usd"),
            invocations=_count(item, "invocations"),
            unpriced_invocations=_count(item, "unpriced_invocations"),
        )
        for item in _list(items, breakdown)
    ]


def _unpriced(item: Any) -> UnpricedModel:
    entry = _object(item, "unpriced")
    return UnpricedModel(
        model_id=_text(entry["model_id"], "unpriced"),
        reason=str(entry.get("reason", "")),
        input_tokens=_count(entry, "input_tokens"),
        output_tokens=_count(entry, "output_tokens"),
        cache_read_tokens=_count(entry, "cache_read_tokens"),
        cache_write_tokens=_count(entry, "cache_write_tokens"),
        invocations=_count(entry, "invocations"),
    )
