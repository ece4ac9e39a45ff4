"""Latency-optimized inference and service tiers: options a caller picks per request, each billed at its own price.

The usage query groups calls by both (`performanceConfig.latency` optimized/standard; `serviceTier.type` default,
priority, flex or reserved). A call with an option is priced at its model's token prices times the option's
factors from `pricing/service_options.csv`; an option the table has no row for leaves the call unpriced, named —
never priced as a standard call. Reserved-tier calls are paid for as reserved capacity, not per token.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from lambda_function.pricing.tables import csv_rows, load_versioned, parse_day, parse_price

STANDARD_LATENCY = "standard"
DEFAULT_TIER = "default"
LATENCIES = (STANDARD_LATENCY, "optimized")
TIERS = (DEFAULT_TIER, "priority", "flex", "reserved")
HEADER = (
    "model_id",
    "option",
    "effective_date",
    "input_factor",
    "output_factor",
    "cache_read_factor",
    "cache_write_factor",
    "source",
)
OPTIONS = ("latency-optimized", "priority", "flex")
_LABEL = {"latency-optimized": "latency-optimized inference", "priority": "the priority tier", "flex": "the flex tier"}


def chosen(latency: str, tier: str) -> list[str]:
    """The priced options of a call: [], ["latency-optimized"], ["priority"], ... (reserved is not per token)."""
    options = []
    if latency == "optimized":
        options.append("latency-optimized")
    if tier in ("priority", "flex"):
        options.append(tier)
    return options


def why_unpriced(latency: str, tier: str) -> str:
    """A reason when the call's options make it unpriceable whatever the table says ('' when they do not)."""
    if tier == "reserved":
        return "unpriced: reserved-tier calls are paid for as reserved capacity, not per token"
    if latency not in LATENCIES:
        return f"unpriced: latency mode {latency!r} is not one this report knows"
    if tier not in TIERS:
        return f"unpriced: service tier {tier!r} is not one this report knows"
    return ""


@dataclass(frozen=True)
class OptionPrice:
    model_id: str
    option: str
    effective: date
    factors: tuple[Decimal, Decimal, Decimal, Decimal]  # on input, output, cache read, cache write (either TTL)
    source: str


class ServiceOptions:
    def __init__(self, rows: list[OptionPrice], version: str = ""):
        self.version = version
        self._rows: dict[tuple[str, str], list[OptionPrice]] = {}
        for row in sorted(rows, key=lambda r: r.effective):
            self._rows.setdefault((row.model_id, row.option), []).append(row)

    def latest(self) -> dict[tuple[str, str], tuple[Decimal, Decimal, Decimal, Decimal]]:
        """(model, option) -> the factors of its newest row (for the refresh tool's comparison)."""
        return {key: rows[-1].factors for key, rows in self._rows.items()}

    def lookup(self, model_id: str, option: str, day: date) -> OptionPrice | None:
        in_force = [row for row in self._rows.get((model_id, option), []) if row.effective <= day]
        return in_force[-1] if in_force else None

    @staticmethod
    def missing(model_id: str, option: str) -> str:
        return f"unpriced: no price for {_LABEL[option]} of {model_id} in service_options.csv"


def parse_options(text: str, where: str = "service_options.csv") -> ServiceOptions:
    rows = []
    for at, cells in csv_rows(text, where, HEADER):
        model_id, option, effective, *factors, source = cells
        if option not in OPTIONS:
            raise ValueError(f"{at}: option {option!r} is not one of {', '.join(OPTIONS)}")
        values = [parse_price(factor, at) for factor in factors]
        if any(value is None for value in values):
            raise ValueError(f"{at}: every factor is required (1 where the option does not change a price)")
        i, o, cache_read, cache_write = (value or Decimal(0) for value in values)
        rows.append(OptionPrice(model_id, option, parse_day(effective, at), (i, o, cache_read, cache_write), source))
    return ServiceOptions(rows)


def load_service_options(pricing_dir: Path) -> ServiceOptions:
    options: ServiceOptions = load_versioned(pricing_dir / "service_options.csv", parse_options, ServiceOptions([]))
    return options
