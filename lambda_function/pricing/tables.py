"""Reading the price tables of pricing/: one strict CSV reader for every table, the token price table itself, and
side tables named by their content.

Every table is read the same way: exact header, exact column count, prices as non-negative Decimals, ISO dates,
and every error named with its `file:line`. This module imports nothing else of the package: the engine, the
service options and the Price List refresh all read their tables through it.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

TABLE_HEADER = (
    "model_id",
    "region",
    "scope",
    "effective_date",
    "input_per_mtok",
    "output_per_mtok",
    "cache_read_per_mtok",
    "cache_write_per_mtok",
    "cache_write_1h_per_mtok",
    "source",
)
# Override files written before the 1-hour column existed are still read (no 1-hour price in them).
LEGACY_TABLE_HEADER = tuple(name for name in TABLE_HEADER if name != "cache_write_1h_per_mtok")
SCOPES = ("in_region", "geo", "global")


@dataclass(frozen=True)
class TokenPrice:
    """One row of token_prices.csv: USD per 1M tokens; None where the model has no such price."""

    model_id: str
    region: str
    scope: str
    effective: date
    input: Decimal | None
    output: Decimal | None
    cache_read: Decimal | None
    cache_write: Decimal | None
    source: str
    cache_write_1h: Decimal | None = None  # 1-hour cache writes (FACTS §3: 2x input for Anthropic models)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.model_id, self.region, self.scope)

    @property
    def prices(self) -> tuple[Decimal | None, ...]:
        return (self.input, self.output, self.cache_read, self.cache_write)


def parse_price(text: str, where: str) -> Decimal | None:
    """A price or factor cell: a finite, non-negative Decimal, or None when the cell is empty."""
    text = text.strip()
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{where}: {text!r} is not a decimal") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"{where}: {text!r} is not a price")
    return value


def csv_rows(
    text: str, where: str, header: tuple[str, ...], *older: tuple[str, ...]
) -> Iterator[tuple[str, list[str]]]:
    """(`file:line`, stripped cells) for each row of a strict CSV table: exact header (or one of the `older`
    ones, whose rows come back with the missing columns empty), exact column count."""
    reader = csv.reader(io.StringIO(text))
    found = tuple(next(reader, []))
    if found != header and found not in older:
        raise ValueError(f"{where}: header must be {','.join(header)}")
    for line, cells in enumerate(reader, start=2):
        at = f"{where}:{line}"
        if len(cells) != len(found):
            raise ValueError(f"{at}: {len(cells)} columns, expected {len(found)}")
        if found == header:
            yield at, [cell.strip() for cell in cells]
        else:
            by_name = dict(zip(found, (cell.strip() for cell in cells), strict=True))
            yield at, [by_name.get(name, "") for name in header]


def parse_day(text: str, at: str) -> date:
    """An `effective_date` cell."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{at}: effective_date {text!r} is not an ISO date") from None


def parse_table(text: str, where: str = "token_prices.csv") -> list[TokenPrice]:
    """Read token_prices.csv text into rows, rejecting anything malformed with its line number. Each distinct price
    and date is read once (a few hundred among thousands of rows; equal prices share one Decimal)."""
    rows = []
    prices: dict[str, Decimal | None] = {}
    days: dict[str, date] = {}
    for at, cells in csv_rows(text, where, TABLE_HEADER, LEGACY_TABLE_HEADER):
        model_id, region, scope, effective, *texts, source = cells
        if not model_id or not region:
            raise ValueError(f"{at}: model_id and region are required")
        if scope not in SCOPES:
            raise ValueError(f"{at}: scope {scope!r} is not one of {', '.join(SCOPES)}")
        day = days[effective] if effective in days else days.setdefault(effective, parse_day(effective, at))
        i, o, cache_read, cache_write, cache_write_1h = (
            prices[p] if p in prices else prices.setdefault(p, parse_price(p, at)) for p in texts
        )
        rows.append(TokenPrice(model_id, region, scope, day, i, o, cache_read, cache_write, source, cache_write_1h))
    return rows


def content_version(path: Path, content: bytes) -> str:
    """How a footer names a table: its file name and the start of its content's hash."""
    return f"{path.name}@{hashlib.sha256(content).hexdigest()[:12]}"


def load_versioned(path: Path, parse: Callable[[str, str], Any], empty: Any) -> Any:
    """A side table (tiers, options) parsed and named by content, or `empty` when the package has none."""
    if not path.is_file():
        return empty
    content = path.read_bytes()
    table = parse(content.decode("utf-8"), str(path))
    table.version = content_version(path, content)
    return table
