"""Price the usage frame from the price table (data in pricing/), exactly, in Decimal.

A row is priced only when every kind of token it has a price for; otherwise its charge is empty and its
pricing status says why. Nothing unpriced ever becomes $0.
"""

from __future__ import annotations

import csv
import hashlib
from bisect import bisect_right
from collections import namedtuple
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, ROUND_HALF_UP, Context, Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lambda_function.columns import CHARGE_MICROS, object_column
from lambda_function.pricing.model_ids import APPLICATION_PROFILE, PROVISIONED, ModelRef
from lambda_function.pricing.service_options import ServiceOptions, chosen, why_unpriced
from lambda_function.pricing.tables import LEGACY_TABLE_HEADER as LEGACY_TABLE_HEADER
from lambda_function.pricing.tables import SCOPES as SCOPES
from lambda_function.pricing.tables import TABLE_HEADER as TABLE_HEADER
from lambda_function.pricing.tables import TokenPrice, csv_rows, load_versioned, parse_day, parse_price, parse_table

PRICED = "priced"
INVALID = "invalid"  # a pricing status: the logged counts themselves are unusable
MILLION = Decimal(1_000_000)
# Arithmetic that never rounds (the default context keeps 28 digits): moving a charge's decimal point stays exact.
EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)


def micro_dollars(charge: Decimal) -> int:
    """The charge in whole micro-dollars, half up: the CSV keeps micro-dollars (a Nova Micro call costs far less
    than a cent)."""
    return int(charge.scaleb(6, EXACT).to_integral_value(ROUND_HALF_UP))


# (usage column, TokenPrice attribute, how a missing price is named). `cache_write_tokens` here are the 5-minute
# writes: the logged count covers both TTLs, and token_charge takes the 1-hour ones out of it first.
TOKEN_KINDS = (
    ("input_tokens", "input", "input"),
    ("output_tokens", "output", "output"),
    ("cache_read_tokens", "cache_read", "cache-read"),
    ("cache_write_tokens", "cache_write", "cache-write"),
    ("cache_write_1h_tokens", "cache_write_1h", "1-hour cache-write"),
)
TTL_NOT_LOGGED = "priced; cache TTL not logged"  # writes priced as 5-minute ones: the body with the TTL split is absent


class PriceTable:
    def __init__(self, prices: list[TokenPrice], version: str = ""):
        self.version = version
        self._by_key: dict[tuple[str, str, str], list[TokenPrice]] = {}
        for price in sorted(prices, key=lambda p: p.effective):
            self._by_key.setdefault(price.key, []).append(price)
        self._dates = {key: [p.effective for p in rows] for key, rows in self._by_key.items()}
        self._models = {model for model, _, _ in self._by_key}

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
        return model_id in self._models

    def price_keys(self) -> list[tuple[str, str, str]]:
        return list(self._by_key)


def scaled(price: TokenPrice, factors: tuple[Decimal, Decimal, Decimal, Decimal], note: str) -> TokenPrice:
    """`price` with its input, output, cache-read and cache-write units multiplied by `factors` (the cache-write
    factor applies to writes of either TTL)."""
    units = [None if unit is None else unit * factor for unit, factor in zip(price.prices, factors, strict=True)]
    return replace(
        price,
        input=units[0],
        output=units[1],
        cache_read=units[2],
        cache_write=units[3],
        cache_write_1h=None if price.cache_write_1h is None else price.cache_write_1h * factors[3],
        source=f"{price.source}; {note}",
    )


def discounted(price: TokenPrice, percent: Decimal) -> TokenPrice:
    factor = (Decimal(100) - percent) / Decimal(100)
    return scaled(price, (factor,) * 4, f"-{percent}%")


TIER_HEADER = (
    "model_id",
    "above_input_tokens",
    "effective_date",
    "input_factor",
    "output_factor",
    "cache_read_factor",
    "cache_write_factor",
    "source",
)


@dataclass(frozen=True)
class ContextTier:
    """A model's long-context tier: a request whose input (uncached + cache read + cache write) is above `above`
    tokens is billed, whole, at its scope's and region's prices times these factors (input, output, cache read,
    cache write)."""

    model_id: str
    above: int
    effective: date
    factors: tuple[Decimal, Decimal, Decimal, Decimal]
    source: str


class ContextTiers:
    def __init__(self, tiers: list[ContextTier], version: str = ""):
        self.version = version
        self._by_model: dict[str, list[ContextTier]] = {}
        for tier in sorted(tiers, key=lambda t: t.effective):
            self._by_model.setdefault(tier.model_id, []).append(tier)
        # The usage query bands each request by how many of these it is above (query.usage_query).
        self.thresholds: tuple[int, ...] = tuple(sorted({tier.above for tier in tiers}))

    def latest(self) -> dict[str, tuple[Decimal, Decimal, Decimal, Decimal]]:
        """model -> the factors of its newest tier (for the refresh tool's comparison)."""
        return {model: tiers[-1].factors for model, tiers in self._by_model.items()}

    def applies(self, model_id: str, day: date, band: int) -> ContextTier | None:
        """The tier of `model_id` in force on `day` if requests of `band` are above its threshold, else None
        (standard prices: below the threshold, or the model has no tier)."""
        in_force = [tier for tier in self._by_model.get(model_id, []) if tier.effective <= day]
        if not in_force:
            return None
        tier = in_force[-1]
        return tier if band > self.thresholds.index(tier.above) else None


def parse_tiers(text: str, where: str = "context_tiers.csv") -> ContextTiers:
    tiers = []
    for at, cells in csv_rows(text, where, TIER_HEADER):
        model_id, above, effective, *factors, source = cells
        if not above.isdigit() or int(above) <= 0:
            raise ValueError(f"{at}: above_input_tokens {above!r} is not a positive whole number of tokens")
        day = parse_day(effective, at)
        values = [parse_price(factor, at) for factor in factors]
        if any(value is None for value in values):
            raise ValueError(f"{at}: every factor is required (1 where the tier does not change a price)")
        i, o, cache_read, cache_write = (value or Decimal(0) for value in values)
        tiers.append(ContextTier(model_id, int(above), day, (i, o, cache_read, cache_write), source))
    return ContextTiers(tiers)


def load_context_tiers(pricing_dir: Path) -> ContextTiers:
    tiers: ContextTiers = load_versioned(pricing_dir / "context_tiers.csv", parse_tiers, ContextTiers([]))
    return tiers


def load_price_table(
    path: Path,
    *,
    content: bytes | None = None,
    name: str = "",
    overrides: bytes | None = None,
    overrides_name: str = "overrides",
    discount_percent: Decimal = Decimal(0),
) -> PriceTable:
    """The list-price table, less the discount, with negotiated override rows taking precedence.

    An override row replaces the list price for its (model, region, scope) from its effective date and is
    taken as the net price: the discount does not apply to it.
    """
    content = path.read_bytes() if content is None else content
    name = name or path.name
    prices = parse_table(content.decode("utf-8"), name)
    if discount_percent:
        prices = [discounted(p, discount_percent) for p in prices]
    version = f"{name}@{hashlib.sha256(content).hexdigest()[:12]}"
    if discount_percent:
        version += f" less {discount_percent}%"
    if overrides is not None:
        override_rows = parse_table(overrides.decode("utf-8"), overrides_name)
        first: dict[tuple[str, str, str], date] = {}
        for row in override_rows:
            first[row.key] = min(first.get(row.key, row.effective), row.effective)
        # list prices before an override's first date still apply to the days before it; later list changes
        # do not undo a negotiated price
        prices = [p for p in prices if p.key not in first or p.effective < first[p.key]] + override_rows
        version += f" + {len(override_rows)} override rows ({hashlib.sha256(overrides).hexdigest()[:12]})"
    return PriceTable(prices, version=version)


@dataclass(frozen=True)
class ImagePrice:
    """One image up to max_width x max_height, of `quality`, with at most max_steps steps (None = any)."""

    model_id: str
    region: str
    effective: date
    max_width: int | None
    max_height: int | None
    quality: str | None
    max_steps: int | None
    price_per_image: Decimal

    def fits(self, width: int, height: int, quality: str, steps: int) -> bool:
        return (
            (self.max_width is None or width <= self.max_width)
            and (self.max_height is None or height <= self.max_height)
            and (self.quality is None or quality == self.quality)
            and (self.max_steps is None or steps <= self.max_steps)
        )

    def tier(self) -> tuple[float, float]:
        """Smallest limits win when several rows fit (an empty limit counts as the largest)."""
        area = float("inf") if self.max_width is None or self.max_height is None else self.max_width * self.max_height
        return area, float("inf") if self.max_steps is None else self.max_steps


@dataclass(frozen=True)
class ImageDefaults:
    """What the model assumes when the request does not say (so the price tier is still known)."""

    width: int
    height: int
    quality: str
    steps: int


def _int_or_none(text: str | None) -> int | None:
    text = (text or "").strip()
    return int(text) if text else None


class ImagePriceTable:
    def __init__(self, prices: list[ImagePrice], defaults: dict[str, ImageDefaults]):
        self._by_model: dict[tuple[str, str], list[ImagePrice]] = {}
        for price in prices:
            self._by_model.setdefault((price.model_id, price.region), []).append(price)
        self._models = {model for model, _ in self._by_model}
        self._defaults = defaults

    def knows(self, model_id: str) -> bool:
        return model_id in self._models

    def lookup(
        self, model_id: str, region: str, day: date, width: int, height: int, quality: str, steps: int
    ) -> tuple[ImagePrice | None, str]:
        """The price of one image with these settings (-1 / "-" = not stated: the model's default applies)."""
        default = self._defaults.get(model_id, ImageDefaults(-1, -1, "-", -1))
        width = width if width > 0 else default.width
        height = height if height > 0 else default.height
        quality = quality if quality != "-" else default.quality
        steps = steps if steps > 0 else default.steps
        settings = (
            f"{width}x{height}" + (f" {quality}" if quality != "-" else "") + (f" {steps} steps" if steps > 0 else "")
        )
        in_force: dict[tuple, ImagePrice] = {}
        for price in self._by_model.get((model_id, region), []):
            tier = (price.max_width, price.max_height, price.quality, price.max_steps)
            if price.effective <= day and (tier not in in_force or in_force[tier].effective < price.effective):
                in_force[tier] = price
        fitting = [p for p in in_force.values() if p.fits(width, height, quality, steps)]
        if not fitting:
            return None, f"unpriced: no per-image price for {model_id} at {settings} in {region} on {day.isoformat()}"
        return min(fitting, key=ImagePrice.tier), PRICED


def load_image_prices(pricing_dir: Path) -> ImagePriceTable:
    prices = []
    with (pricing_dir / "image_prices.csv").open(newline="", encoding="utf-8") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            try:
                prices.append(
                    ImagePrice(
                        model_id=row["model_id"].strip(),
                        region=row["region"].strip(),
                        effective=date.fromisoformat(row["effective_date"].strip()),
                        max_width=_int_or_none(row["max_width"]),
                        max_height=_int_or_none(row["max_height"]),
                        quality=(row["quality"] or "").strip().lower() or None,
                        max_steps=_int_or_none(row["max_steps"]),
                        price_per_image=Decimal(row["price_per_image"].strip()),
                    )
                )
            except (KeyError, ValueError, ArithmeticError, AttributeError) as err:
                raise ValueError(f"image_prices.csv:{line}: malformed row ({err})") from None
    defaults = {}
    defaults_path = pricing_dir / "image_defaults.csv"
    if defaults_path.is_file():
        with defaults_path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                defaults[row["model_id"].strip()] = ImageDefaults(
                    _int_or_none(row["width"]) or -1,
                    _int_or_none(row["height"]) or -1,
                    (row["quality"] or "").strip().lower() or "-",
                    _int_or_none(row["steps"]) or -1,
                )
    return ImagePriceTable(prices, defaults)


def images_generated(row: Any) -> int:
    """Successful calls x images per call (1 when the request did not say). Failed calls make no images."""
    per_call = row.images_per_call if row.images_per_call > 0 else 1
    return int(per_call * (row.invocations - row.failed_invocations))


def invalid_reason(row: Any) -> str:
    """Why a usage row cannot be priced as logged ('' when it can): bad sums, or records without counts."""
    reasons = [row.invalid] if row.invalid else []
    if row.unreadable_records:
        reasons.append(f"{row.unreadable_records:,} record(s) of successful calls without readable token counts")
    if row.cache_write_1h_tokens > row.cache_write_tokens:
        reasons.append(
            f"{row.cache_write_1h_tokens:,} 1-hour cache-write tokens in the bodies, but {row.cache_write_tokens:,} "
            "cache-write tokens logged in all"
        )
    return "; ".join(reasons)


def token_charge(price: TokenPrice, tokens: dict[str, int]) -> tuple[Decimal | None, str]:
    """The exact charge for these token counts at this price, or None and why not. `cache_write_tokens` is the
    logged count of both TTLs; `cache_write_1h_tokens` the 1-hour part of it (from the response body). One row at
    a time, in Decimal: the reference `token_charges` (the report's, many rows at once) is tested against."""
    total = Decimal(0)
    one_hour = tokens.get("cache_write_1h_tokens", 0)
    counts = {**tokens, "cache_write_tokens": tokens.get("cache_write_tokens", 0) - one_hour}
    for column, attribute, label in TOKEN_KINDS:
        count = counts.get(column, 0)
        if not count:
            continue
        unit = getattr(price, attribute)
        if unit is None:
            return None, f"unpriced: no {label} price for {price.model_id} ({price.scope}) in {price.region}"
        total += count * unit / MILLION
    return total, PRICED


@dataclass(frozen=True)
class _Quote:
    """How the rows of one (model, region, day, input band, options) are priced."""

    ref: ModelRef
    price: TokenPrice | None  # None: not priced per token (`why`, or per image)
    why: str
    long_context: bool
    per_image: bool


def _with_options(
    price: TokenPrice, latency: str, tier: str, day: date, model_id: str, options: ServiceOptions | None
) -> tuple[TokenPrice | None, str]:
    """`price` for a latency mode and service tier, or None and why it cannot be had."""
    why = why_unpriced(latency, tier)
    if why:
        return None, why
    for option in chosen(latency, tier):
        found = options.lookup(model_id, option, day) if options is not None else None
        if found is None:
            return None, ServiceOptions.missing(model_id, option)
        price = scaled(price, found.factors, option)
    return price, ""


def price_changes(previous: PriceTable, current: PriceTable, day: date) -> tuple[list[str], list[str]]:
    """Models priced on `day` by `current` and not by `previous` (newly priced), and models with any price in
    force on `day` that differs between them (repriced)."""
    newly, repriced = set(), set()
    for key in current.price_keys():
        now = current.lookup(*key, day)
        if now is None:
            continue
        before = previous.lookup(*key, day)
        if before is None:
            if not previous.knows(key[0]):
                newly.add(key[0])
        elif (before.prices, before.cache_write_1h) != (now.prices, now.cache_write_1h):
            repriced.add(key[0])
    return sorted(newly), sorted(repriced - newly)


def _why_not(ref: ModelRef, region: str, day: date, table: PriceTable) -> str:
    if ref.kind == PROVISIONED:
        return "unpriced: provisioned throughput is billed per hour, not per token"
    if ref.kind == APPLICATION_PROFILE and not ref.model_id:
        reason = f" ({ref.problem})" if ref.problem else ""
        return f"unpriced: application inference profile not resolved to a model{reason}"
    if not table.knows(ref.model_id):
        return f"unpriced: model {ref.model_id} is not in the price table"
    return f"unpriced: no {ref.scope} price for {ref.model_id} in {region} on {day.isoformat()}"


def _records(frame: pd.DataFrame, rows: list[int]) -> Iterator[Any]:
    """The rows at these positions as named tuples, like `itertuples`, built from plain lists (iterating pandas'
    string columns element by element costs more than pricing the row)."""
    # rename: the attribution columns (`meta:team`, `cost-center`) are not identifiers; pricing never reads them
    row = namedtuple("row", frame.columns, rename=True)  # type: ignore[misc]
    columns = [frame[column].to_numpy() for column in frame.columns]
    return (row._make(column[i] for column in columns) for i in rows)


def _units(price: TokenPrice) -> list[tuple[str, Decimal | None, str]]:
    """(usage column, unit price per 1M tokens, label) in TOKEN_KINDS' order."""
    return [(column, getattr(price, attribute), label) for column, attribute, label in TOKEN_KINDS]


def token_charges(
    price: TokenPrice, counts: dict[str, np.ndarray]
) -> tuple[list[Decimal | None], list[str], np.ndarray]:
    """`token_charge` for many rows at one price, exactly, in integer arithmetic: each unit price is a whole number
    of 10^-D dollars per 1M tokens, so a row's charge is (sum of count x unit x 10^D) x 10^-(D + 6). `counts`: the
    usage columns of TOKEN_KINDS, `cache_write_tokens` the logged count of both TTLs. Also each charge in whole
    micro-dollars, half up (`micro_dollars`, worked out on the same integers; 0 where unpriced)."""
    size = len(counts["input_tokens"])
    kinds = dict(counts)
    kinds["cache_write_tokens"] = counts["cache_write_tokens"] - counts["cache_write_1h_tokens"]
    statuses = np.full(size, PRICED, dtype=object)
    unpriced = np.zeros(size, dtype=bool)
    priced_units = []
    for column, unit, label in _units(price):
        used = kinds[column] != 0
        if unit is None:
            # the first kind (in TOKEN_KINDS' order) a row uses and the model has no price for names the reason
            missing = used & ~unpriced
            statuses[missing] = f"unpriced: no {label} price for {price.model_id} ({price.scope}) in {price.region}"
            unpriced |= missing
        else:
            priced_units.append((column, unit))
    places = max([max(0, -int(unit.as_tuple().exponent)) for _, unit in priced_units] or [0])
    total = np.zeros(size, dtype=object)
    for column, unit in priced_units:
        whole = int(unit.scaleb(places))  # exact: `places` covers every digit of the unit
        total = total + kinds[column].astype(object) * whole
    exponent = -(places + 6)
    charges: list[Decimal | None] = [
        None if skip else Decimal(numerator).scaleb(exponent, EXACT)
        for numerator, skip in zip(total.tolist(), unpriced.tolist(), strict=True)
    ]
    # the charge is numerator x 10^-(places + 6) dollars: numerator x 10^-places micro-dollars, rounded half up
    scale = 10**places
    micros = np.where(unpriced, 0, (total + scale // 2) // scale).astype(np.int64)
    return charges, statuses.tolist(), micros


def _distinct_keys(columns: Sequence[Any], size: int) -> tuple[np.ndarray, list[tuple[Any, ...]]]:
    """Each row's index into the distinct keys (a key: one value per column), and those keys: rows are keyed by
    integer codes (categoricals give theirs), never hashed a row at a time."""
    codes, uniques = [], []
    for column in columns:
        column_codes, found = pd.factorize(np.asarray(column, dtype=object) if isinstance(column, list) else column)
        values = found.tolist()  # plain Python values (str, int, date)
        if (column_codes < 0).any():  # None (pandas' missing value): a key of its own, given back as None
            column_codes = np.where(column_codes < 0, len(values), column_codes)
            values.append(None)
        codes.append(column_codes)
        uniques.append(values)
    radix = 1
    for values in uniques:
        radix *= max(1, len(values))
    if radix < 2**62:  # one int64 per row: the codes in mixed radix
        combined = np.zeros(size, dtype=np.int64)
        for column_codes, values in zip(codes, uniques, strict=True):
            combined = combined * max(1, len(values)) + column_codes
        distinct, quote_of_row = np.unique(combined, return_inverse=True)
        digits = []
        for values in reversed(uniques):
            digits.append(distinct % max(1, len(values)))
            distinct = distinct // max(1, len(values))
        key_codes = np.stack(digits[::-1], axis=1) if digits else np.zeros((0, 0), dtype=np.int64)
    else:  # (more distinct values than an int64 can combine: rows of codes)
        key_codes, quote_of_row = np.unique(np.stack(codes, axis=1), axis=0, return_inverse=True)
    keys = [tuple(values[c] for values, c in zip(uniques, row, strict=True)) for row in key_codes.tolist()]
    return quote_of_row.reshape(-1), keys


def price_usage(
    usage: pd.DataFrame,
    table: PriceTable,
    normalise: Callable[[str], ModelRef],
    images: ImagePriceTable | None = None,
    tiers: ContextTiers | None = None,
    options: ServiceOptions | None = None,
) -> pd.DataFrame:
    """Add `priced_model_id`, `images`, `charge` (Decimal or None), `charge_micros` (`micro_dollars`, 0 where
    unpriced), `pricing_status` and `long_context` to each usage row.

    A row of requests above the input threshold of its model's long-context tier (`input_band`) is priced at
    that tier (`long_context` True); every other row at the model's standard prices. Rows share a handful of
    (model, region, day, band, options): each is quoted once, and the token rows of a quote are priced together
    (`token_charges`); only the rare rows that cannot be priced as logged, or are billed per image, go one by one."""
    size = len(usage)
    charges = np.full(size, None, dtype=object)  # Decimal, or None: unpriced
    micros = np.zeros(size, dtype=np.int64)
    statuses = np.full(size, "", dtype=object)
    image_counts = np.zeros(size, dtype=np.int64)
    has_invalid = "invalid" in usage.columns
    has_options = "service_tier" in usage.columns and "latency" in usage.columns

    def quote(raw: str, region: str, day: date, band: int, latency: str | None, tier: str | None) -> _Quote:
        ref = normalise(raw)
        if images is not None and images.knows(ref.model_id):
            return _Quote(ref, None, "", False, True)
        price = table.lookup(ref.model_id, region, ref.scope, day) if ref.model_id else None
        if price is None:
            return _Quote(ref, None, _why_not(ref, region, day, table), False, False)
        context_tier = tiers.applies(ref.model_id, day, band) if tiers is not None else None
        if context_tier is not None:
            price = scaled(price, context_tier.factors, f"above {context_tier.above:,} input tokens")
        if latency is not None and tier is not None:
            option_price, why = _with_options(price, latency, tier, day, ref.model_id, options)
            if option_price is None:
                return _Quote(ref, None, why, context_tier is not None, False)
            price = option_price
        return _Quote(ref, price, "", context_tier is not None, False)

    nones: list[None] = [None] * size
    key_columns: list[Any] = [
        usage["model_id"],
        usage["region"],
        usage["usage_date"],
        usage["input_band"] if "input_band" in usage.columns else [0] * size,
        usage["latency"] if has_options else nones,
        usage["service_tier"] if has_options else nones,
    ]
    quote_of_row, keys = _distinct_keys(key_columns, size)
    quoted = [quote(*key) for key in keys]
    per_image = np.array([q.per_image for q in quoted], dtype=bool)[quote_of_row]
    long_context = np.array([q.long_context for q in quoted], dtype=bool)[quote_of_row]
    priced_ids = object_column([q.ref.model_id for q in quoted])[quote_of_row]

    # Counts that cannot be exact, or calls whose counts could not be read: no charge rather than a wrong one.
    counts = {column: usage[column].to_numpy(dtype=np.int64) for column, _, _ in TOKEN_KINDS}
    bad = np.zeros(size, dtype=bool)
    if has_invalid:  # the conditions of `invalid_reason`
        bad |= usage["invalid"].astype(bool).to_numpy()
        bad |= usage["unreadable_records"].to_numpy() > 0
        bad |= counts["cache_write_1h_tokens"] > counts["cache_write_tokens"]
    one_by_one = np.flatnonzero(bad | per_image).tolist()
    for i, row in zip(one_by_one, _records(usage, one_by_one), strict=True):
        problem = invalid_reason(row) if bad[i] else ""
        if problem:
            statuses[i] = f"{INVALID}: {problem}"
            long_context[i] = False
            continue
        assert images is not None  # a row goes one by one when invalid or billed per image
        # Image models are billed per image, by size, quality and steps; their token counts are not billed.
        q = quoted[quote_of_row[i]]
        image_counts[i] = count = images_generated(row)
        image_price, statuses[i] = images.lookup(
            q.ref.model_id,
            row.region,
            row.usage_date,
            row.image_width,
            row.image_height,
            row.image_quality,
            row.image_steps,
        )
        charges[i] = None if image_price is None else count * image_price.price_per_image
        micros[i] = 0 if image_price is None else micro_dollars(charges[i])

    # The token rows of each quote, priced together (rows in order: a quote's rows are one slice of a stable sort).
    ttl_unknown = usage["cache_write_ttl_unknown_tokens"].to_numpy(dtype=np.int64) > 0
    order = np.argsort(quote_of_row, kind="stable")
    bounds = np.searchsorted(quote_of_row[order], np.arange(len(quoted) + 1))
    for n, q in enumerate(quoted):
        at = order[bounds[n] : bounds[n + 1]]
        at = at[~bad[at]]
        if q.per_image or not len(at):
            continue
        if q.price is None:
            statuses[at] = q.why
            continue
        group_charges, group_statuses, group_micros = token_charges(q.price, {c: vs[at] for c, vs in counts.items()})
        charges[at] = object_column(group_charges)
        micros[at] = group_micros
        priced_status = object_column(group_statuses)
        if q.price.cache_write_1h is not None:  # some writes' TTL is not in the log: priced as 5-minute writes
            priced_status[(priced_status == PRICED) & ttl_unknown[at]] = TTL_NOT_LOGGED
        statuses[at] = priced_status

    priced = usage.copy()
    priced["priced_model_id"] = pd.Series(priced_ids, index=usage.index, dtype=object)
    priced["images"] = pd.Series(image_counts, index=usage.index, dtype="int64")
    priced["long_context"] = pd.Series(long_context, index=usage.index, dtype=bool)
    priced["charge"] = pd.Series(charges, index=usage.index, dtype=object)
    priced[CHARGE_MICROS] = pd.Series(micros, index=usage.index, dtype="int64")
    priced["pricing_status"] = pd.Series(statuses, index=usage.index, dtype=object)
    return priced
