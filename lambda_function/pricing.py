"""Price the usage frame from the price table (data in pricing/), exactly, in Decimal.

A row is priced only when every kind of token it has a price for; otherwise its charge is empty and its
pricing status says why. Nothing unpriced ever becomes $0.
"""

from __future__ import annotations

import csv
import hashlib
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pandas as pd

from .model_ids import APPLICATION_PROFILE, PROVISIONED, ModelCatalog, ModelRef

PRICED = "priced"
MILLION = Decimal(1_000_000)
TOKEN_KINDS = (
    ("input_tokens", "input", "input"),
    ("output_tokens", "output", "output"),
    ("cache_read_tokens", "cache_read", "cache-read"),
    ("cache_write_tokens", "cache_write", "cache-write"),
)


@dataclass(frozen=True)
class TokenPrice:
    """USD per 1M tokens; None where the model has no such price."""

    model_id: str
    region: str
    scope: str
    effective: date
    input: Decimal | None
    output: Decimal | None
    cache_read: Decimal | None
    cache_write: Decimal | None
    source: str


def _decimal(text: str | None) -> Decimal | None:
    text = (text or "").strip()
    return Decimal(text) if text else None


class PriceTable:
    def __init__(self, prices: list[TokenPrice], version: str = ""):
        self.version = version
        self._by_key: dict[tuple[str, str, str], list[TokenPrice]] = {}
        for price in sorted(prices, key=lambda p: p.effective):
            self._by_key.setdefault((price.model_id, price.region, price.scope), []).append(price)
        self._dates = {key: [p.effective for p in rows] for key, rows in self._by_key.items()}

    def __len__(self) -> int:
        return sum(len(rows) for rows in self._by_key.values())

    def lookup(self, model_id: str, region: str, scope: str, day: date) -> TokenPrice | None:
        """The price in force on `day`: the latest row that took effect on or before it."""
        key = (model_id, region, scope)
        rows = self._by_key.get(key)
        if not rows:
            return None
        index = bisect_right(self._dates[key], day)
        return rows[index - 1] if index else None

    def knows(self, model_id: str) -> bool:
        return any(key[0] == model_id for key in self._by_key)


def parse_price_rows(content: bytes, name: str) -> list[TokenPrice]:
    """Rows of a price table (token_prices.csv columns); a malformed row is an error naming its line."""
    prices = []
    reader = csv.DictReader(content.decode("utf-8").splitlines())
    for line, row in enumerate(reader, start=2):
        try:
            prices.append(
                TokenPrice(
                    model_id=row["model_id"].strip(),
                    region=row["region"].strip(),
                    scope=row["scope"].strip(),
                    effective=date.fromisoformat(row["effective_date"].strip()),
                    input=_decimal(row["input_per_mtok"]),
                    output=_decimal(row["output_per_mtok"]),
                    cache_read=_decimal(row["cache_read_per_mtok"]),
                    cache_write=_decimal(row["cache_write_per_mtok"]),
                    source=(row.get("source") or "").strip(),
                )
            )
        except (KeyError, ValueError, ArithmeticError, AttributeError) as err:
            raise ValueError(f"{name}:{line}: malformed price row ({err})") from None
    return prices


def discounted(price: TokenPrice, percent: Decimal) -> TokenPrice:
    factor = (Decimal(100) - percent) / Decimal(100)
    scaled = {
        kind: None if getattr(price, kind) is None else getattr(price, kind) * factor
        for kind in ("input", "output", "cache_read", "cache_write")
    }
    return replace(price, **scaled, source=f"{price.source}; -{percent}%")


def load_price_table(
    path: Path,
    *,
    overrides: bytes | None = None,
    overrides_name: str = "overrides",
    discount_percent: Decimal = Decimal(0),
) -> PriceTable:
    """The list-price table, less the discount, with negotiated override rows taking precedence.

    An override row replaces the list price for its (model, region, scope) from its effective date and is
    taken as the net price: the discount does not apply to it.
    """
    content = path.read_bytes()
    prices = parse_price_rows(content, str(path))
    if discount_percent:
        prices = [discounted(p, discount_percent) for p in prices]
    version = f"{path.name}@{hashlib.sha256(content).hexdigest()[:12]}"
    if discount_percent:
        version += f" less {discount_percent}%"
    if overrides is not None:
        override_rows = parse_price_rows(overrides, overrides_name)
        keys = {(p.model_id, p.region, p.scope) for p in override_rows}
        first = {}
        for p in override_rows:
            key = (p.model_id, p.region, p.scope)
            first[key] = min(first.get(key, p.effective), p.effective)
        # list prices before an override's first date still apply to the days before it
        prices = [
            p
            for p in prices
            if (p.model_id, p.region, p.scope) not in keys or p.effective < first[(p.model_id, p.region, p.scope)]
        ] + override_rows
        version += f" + {len(override_rows)} override rows ({hashlib.sha256(overrides).hexdigest()[:12]})"
    return PriceTable(prices, version=version)


def token_charge(price: TokenPrice, tokens: dict[str, int]) -> tuple[Decimal | None, str]:
    """The exact charge for these token counts at this price, or None and why not."""
    total = Decimal(0)
    for column, attribute, label in TOKEN_KINDS:
        count = tokens.get(column, 0)
        if not count:
            continue
        unit = getattr(price, attribute)
        if unit is None:
            return None, f"unpriced: no {label} price for {price.model_id} ({price.scope}) in {price.region}"
        total += count * unit / MILLION
    return total, PRICED


def _why_not(ref: ModelRef, region: str, day: date, table: PriceTable) -> str:
    if ref.kind == PROVISIONED:
        return "unpriced: provisioned throughput is billed per hour, not per token"
    if ref.kind == APPLICATION_PROFILE and not ref.model_id:
        reason = f" ({ref.problem})" if ref.problem else ""
        return f"unpriced: application inference profile not resolved to a model{reason}"
    if not table.knows(ref.model_id):
        return f"unpriced: model {ref.model_id} is not in the price table"
    return f"unpriced: no {ref.scope} price for {ref.model_id} in {region} on {day.isoformat()}"


def price_usage(usage: pd.DataFrame, table: PriceTable, normalise: Callable[[str], ModelRef]) -> pd.DataFrame:
    """Add `priced_model_id`, `charge` (Decimal or None) and `pricing_status` to each usage row."""
    refs: dict[str, ModelRef] = {}
    charges: list[Decimal | None] = []
    statuses: list[str] = []
    priced_ids: list[str] = []
    token_columns = [column for column, _, _ in TOKEN_KINDS]
    for row in usage.itertuples(index=False):
        raw = row.model_id
        ref = refs.get(raw) or refs.setdefault(raw, normalise(raw))
        priced_ids.append(ref.model_id)
        price = table.lookup(ref.model_id, row.region, ref.scope, row.usage_date) if ref.model_id else None
        if price is None:
            charges.append(None)
            statuses.append(_why_not(ref, row.region, row.usage_date, table))
            continue
        charge, status = token_charge(price, {c: int(getattr(row, c)) for c in token_columns})
        charges.append(charge)
        statuses.append(status)
    priced = usage.copy()
    priced["priced_model_id"] = pd.Series(priced_ids, index=usage.index, dtype=object)
    priced["charge"] = pd.Series(charges, index=usage.index, dtype=object)
    priced["pricing_status"] = pd.Series(statuses, index=usage.index, dtype=object)
    return priced


def catalog_for(table_path: Path) -> ModelCatalog:
    return ModelCatalog.load(table_path.parent)
