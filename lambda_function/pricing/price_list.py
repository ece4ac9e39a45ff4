"""The AWS Price List, read into rows of the token price table: the refresh both the function's weekly run
(`lambda_function.pricing.refresh`) and the maintainers' tool (`python -m pricing.refresh`) use.

Two Bedrock offers (FACTS §3): `AmazonBedrock` names the model in `model`/`titanModel` and the charge in
`inferenceType`, mostly per "1K tokens"; `AmazonBedrockFoundationModels` (marketplace models such as Claude) names
the model only in `servicename` and the charge only in `usagetype`, per 1M tokens. Parsing is pure (product JSON
text -> PriceRecord); boto3 appears only in `fetch_products`. Money is Decimal throughout.

The names that map Price List display names to model ids (the bundled `price_list_names.csv` plus an operator's
own rows) and the usagetype region prefixes are loaded in one place, `price_list_names`, for the refresh and for
the reconciliation with the bill alike.
"""

from __future__ import annotations

import csv
import io
import json
import re
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import NamedTuple

from lambda_function.config import PACKAGE_ROOT
from lambda_function.pricing.engine import TIER_HEADER
from lambda_function.pricing.model_ids import read_pairs
from lambda_function.pricing.service_options import HEADER as OPTIONS_HEADER
from lambda_function.pricing.tables import TABLE_HEADER, TokenPrice

# The bundled tables (data, not code: pricing/ ships in the package without its tools).
PRICING_DIR = PACKAGE_ROOT / "pricing"
DEFAULT_NAMES = PRICING_DIR / "price_list_names.csv"
DEFAULT_ALIASES = PRICING_DIR / "model_aliases.csv"
DEFAULT_USAGETYPE_REGIONS = PRICING_DIR / "usagetype_regions.csv"

BEDROCK, FOUNDATION_MODELS = "AmazonBedrock", "AmazonBedrockFoundationModels"
# The third Bedrock offer. What it holds is not documented and this project has seen none of its items: it is
# read with both parsers (the native offer's attributes, then the marketplace usagetypes) and every item neither
# maps is listed in the report.
SERVICE = "AmazonBedrockService"
OFFERS = (BEDROCK, FOUNDATION_MODELS, SERVICE)
# The Price List API is served from us-east-1 (also eu-central-1 and ap-south-1, with the same data).
PRICING_API_REGION = "us-east-1"

CHARGES = ("input", "output", "cache_read", "cache_write")  # TokenPrice.prices; plus "cache_write_1h", its own column
REGIONAL, GLOBAL = "regional", "global"
# A "regional" price (the non-Global SKU) is what a base id called in-region and a geo profile (us., eu., ...)
# both pay, priced from the source region; the Global SKU is what a global. profile pays (FACTS §3).
SCOPES_BY_ROUTING = {REGIONAL: ("in_region", "geo"), GLOBAL: ("global",)}
MILLION = Decimal(1_000_000)

_UNIT = re.compile(r"^\s*(?P<count>\d[\d,]*)?\s*(?P<scale>[km])?\s*tokens?\s*$", re.IGNORECASE)
_SCALE = {None: 1, "k": 1_000, "m": 1_000_000}
# Units that name no quantity. AmazonBedrockFoundationModels has been seen publishing its token SKUs with
# unit "Units" (the usagetype ends "-Units") while quoting USD per million tokens; only that offer's opaque
# unit is read, and as per 1M tokens. Any other unknown unit is skipped, never scaled by a guess.
OPAQUE_UNITS = {(FOUNDATION_MODELS, "units"): 1_000_000}

# Tiers and variants the price table has no column for: skipped, and counted in the report.
_EXCLUDED_MARKERS = (
    ("reserved", "reserved tier"),
    ("provisioned", "provisioned throughput"),
    ("mantle", "bedrock-mantle endpoint"),
    ("customization", "model customization"),
)
# Options priced on top of a model's standard token prices (the curated service_options.csv and
# context_tiers.csv hold them as factors): read, turned into factors on the standard price of the same model,
# region, scope and charge, and compared with the curated rows in the report. Marker in the usagetype (or the
# native offer's inferenceType and model name) -> option.
_OPTION_MARKERS = (
    (re.compile(r"[_ -]?(LCtx|Long[ -]?Context)", re.IGNORECASE), "long-context"),
    (re.compile(r"[_ -]?Latency[ -]?Optimized", re.IGNORECASE), "latency-optimized"),
    (re.compile(r"[_ -]?Priority", re.IGNORECASE), "priority"),
    (re.compile(r"[_ -]?Flex\b", re.IGNORECASE), "flex"),
    (re.compile(r"[_ -]?Batch(?=[_ -]|$)", re.IGNORECASE), "batch"),
)
# Options the factor tables hold (long-context: context_tiers.csv; the others: service_options.csv). Batch is read
# and reported only: batch jobs are billed without token logs, so no report can price them.
WRITTEN_OPTIONS = ("long-context", "latency-optimized", "priority", "flex")
# AmazonBedrockFoundationModels usagetype (after the region prefix, without "Global" and "-Units",
# lower case, separators removed) -> kind of charge. Both spellings are published: CamelCase
# (USE1_InputTokenCount-Units) and snake_case (USE1_input_tokens_standard-Units).
_FM_CHARGES = {
    "inputtokencount": "input",
    "inputtokensstandard": "input",
    "outputtokencount": "output",
    "outputtokensstandard": "output",
    "cachereadinputtokencount": "cache_read",
    "cachereadtokensstandard": "cache_read",
    "cachereadinputtokensstandard": "cache_read",
    "cachewriteinputtokencount": "cache_write",
    "cachewritetokensstandard": "cache_write",
    "cachewriteinputtokensstandard": "cache_write",
}
# AmazonBedrock `inferenceType` (lower case, single spaces) -> kind of charge.
_NATIVE_CHARGES = {
    "input tokens": "input",
    "text input tokens": "input",
    "output tokens": "output",
    "text output tokens": "output",
    "prompt cache read input tokens": "cache_read",
    "cache read input tokens": "cache_read",
    "prompt cache write input tokens": "cache_write",
    "cache write input tokens": "cache_write",
}
# AmazonBedrock `featuretype`, which marks prompt caching where `inferenceType` does not.
_NATIVE_FEATURE_CHARGES = {"prompt cache read": "cache_read", "prompt cache write": "cache_write"}
_MARKETPLACE_SUFFIX = " (Amazon Bedrock Edition)"


@dataclass(frozen=True)
class PriceRecord:
    """One on-demand token price read from one Price List product, in USD per 1M tokens."""

    offer: str
    name: str  # the model as the offer names it: `model`, `titanModel` or `servicename`
    region: str
    routing: str  # REGIONAL or GLOBAL
    charge: str  # one of CHARGES
    per_mtok: Decimal
    effective: date
    sku: str
    usagetype: str
    option: str = ""  # "" for the standard price, else one of _OPTION_MARKERS' options


@dataclass(frozen=True)
class Skipped:
    """A product that is not an on-demand token price the table can hold, and why."""

    offer: str
    sku: str
    usagetype: str
    reason: str


# ---------------------------------------------------------------------------------------------------------------
# Parsing: product JSON text -> PriceRecord | Skipped


def tokens_per_unit(unit: str, offer: str) -> int | None:
    """How many tokens one Price List `unit` is ("1K tokens" -> 1000), or None when the unit does not say."""
    match = _UNIT.match(unit or "")
    if match and (match["count"] or match["scale"]):
        count = int((match["count"] or "1").replace(",", ""))
        return count * _SCALE[(match["scale"] or "").lower() or None]
    return OPAQUE_UNITS.get((offer, (unit or "").strip().lower()))


def _squash(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _excluded(*texts: str) -> str | None:
    squashed = [_squash(text) for text in texts]
    return next((reason for marker, reason in _EXCLUDED_MARKERS if any(marker in s for s in squashed)), None)


def _region(attributes: Mapping[str, str], regions_by_prefix: Mapping[str, str]) -> str | None:
    if attributes.get("regionCode"):
        return attributes["regionCode"]
    prefix = re.split(r"[-_:]", attributes.get("usagetype", ""), maxsplit=1)[0]
    return regions_by_prefix.get(prefix)


def _foundation_model_charge(usagetype: str) -> tuple[str, str] | str:
    """(routing, charge) for an AmazonBedrockFoundationModels usagetype, or why it is not a token price."""
    tail = usagetype.rsplit(":", 1)[-1]  # "USE1-MP:USE1_InputTokenCount_Global-Units" -> "USE1_InputTokenCount_..."
    tail = re.sub(r"^[A-Z]{2,4}\d[_-]", "", tail)
    tail = re.sub(r"-units$", "", tail, flags=re.IGNORECASE)
    squashed = _squash(tail)
    routing = GLOBAL if "global" in squashed else REGIONAL
    one_hour = "1h" in squashed  # "..._CacheWriteInputTokenCount_1h-Units": the 1-hour cache-write price
    charge = _FM_CHARGES.get(squashed.replace("global", "").replace("1h", ""))
    if one_hour:
        return (
            (routing, "cache_write_1h")
            if charge == "cache_write"
            else "1-hour price of a charge other than a cache write"
        )
    return (routing, charge) if charge else "not a token charge"


def _native_charge(attributes: Mapping[str, str]) -> tuple[str, str] | str:
    """(routing, charge) for an AmazonBedrock product, or why it is not an on-demand token price."""
    feature = _squash(attributes.get("feature", ""))
    if feature and feature != "ondemandinference":
        return f"feature {attributes['feature']!r}"
    tier = (attributes.get("service_tier") or attributes.get("serviceTier") or "standard").lower()
    if tier != "standard":
        return f"{tier} tier"
    usagetype = _squash(attributes.get("usagetype", ""))
    if "crossregion" in usagetype and "crossregionglobal" not in usagetype:
        return "cross-region usagetype of unknown scope"
    routing = GLOBAL if "crossregionglobal" in usagetype else REGIONAL
    # The usagetype decides a cache charge: real cache-read items carry no featuretype, and an item whose
    # inferenceType says "Input tokens" but whose usagetype says cache read must not overwrite the input price.
    if "cacheread" in usagetype:
        return routing, "cache_read"
    if "cachewrite" in usagetype:
        return routing, "cache_write_1h" if "1h" in usagetype else "cache_write"
    charge = _NATIVE_FEATURE_CHARGES.get(" ".join(attributes.get("featuretype", "").lower().split()))
    charge = charge or _NATIVE_CHARGES.get(" ".join(attributes.get("inferenceType", "").lower().split()))
    return (routing, charge) if charge else "not a token charge"


def _on_demand_price(product: Mapping, offer: str) -> tuple[Decimal, date] | str:
    """The one USD price per 1M tokens of a product's OnDemand term and its effective date, or why not."""
    dimensions: list[tuple[Mapping, str]] = []
    for term in (product.get("terms", {}).get("OnDemand") or {}).values():
        for dimension in (term.get("priceDimensions") or {}).values():
            dimensions.append((dimension, term.get("effectiveDate", "")))
    if not dimensions:
        return "no OnDemand term"
    prices: set[Decimal] = set()
    days: list[date] = []
    for dimension, effective in dimensions:
        tokens = tokens_per_unit(dimension.get("unit", ""), offer)
        if tokens is None:
            return f"unknown unit {dimension.get('unit')!r}"
        try:
            usd = Decimal(str((dimension.get("pricePerUnit") or {})["USD"]))
        except (KeyError, InvalidOperation):
            return "no USD price"
        if not usd.is_finite() or usd < 0:
            return f"bad USD price {usd}"
        try:
            days.append(date.fromisoformat(str(effective)[:10]))
        except ValueError:
            return f"bad effectiveDate {effective!r}"
        prices.add(usd * MILLION / tokens)
    if len(prices) > 1:
        # Bedrock's on-demand token prices have no volume tiers; a product with several is not guessed at.
        return "several prices (tiered) for one product"
    return prices.pop(), max(days)


def parse_product(text: str, offer: str, regions_by_prefix: Mapping[str, str]) -> PriceRecord | Skipped:
    """Read one `get_products` PriceList item (a JSON string) into a token price, or say why it is not one."""
    try:
        product = json.loads(text, parse_float=Decimal)  # no float ever holds a price
    except json.JSONDecodeError:
        return Skipped(offer, "", "", "not JSON")
    attributes = {k: str(v) for k, v in (product.get("product", {}).get("attributes") or {}).items()}
    sku = str(product.get("product", {}).get("sku", ""))
    usagetype = attributes.get("usagetype", "")
    option = ""
    for pattern, name_of_option in _OPTION_MARKERS:
        texts = [attributes.get(k, "") for k in ("usagetype", "inferenceType", "model")]
        if any(pattern.search(text) for text in texts):
            option = name_of_option
            # read the rest as the standard item it is an option of
            for k in ("usagetype", "inferenceType", "model"):
                if k in attributes:
                    attributes[k] = pattern.sub("", attributes[k]).strip()
            for k in ("service_tier", "serviceTier"):
                if attributes.get(k, "").lower() == option:
                    del attributes[k]
            if option == "batch" and "batch" in attributes.get("feature", "").lower():
                del attributes["feature"]
            break
    usagetype = attributes.get("usagetype", "")
    if offer == FOUNDATION_MODELS:
        name = attributes.get("servicename", "")
        excluded = _excluded(usagetype)
        kind = excluded or _foundation_model_charge(usagetype)
    elif offer == SERVICE:
        # undocumented: the model in whichever attribute names one, the charge by either offer's rules
        name = attributes.get("model") or attributes.get("titanModel") or attributes.get("servicename") or ""
        excluded = _excluded(usagetype, attributes.get("inferenceType", ""), name)
        kind = excluded or _native_charge(attributes)
        if isinstance(kind, str) and not excluded:
            marketplace = _foundation_model_charge(usagetype)
            kind = marketplace if not isinstance(marketplace, str) else kind
        if isinstance(kind, str) and not excluded:
            family = attributes.get("productFamily") or product.get("product", {}).get("productFamily", "")
            kind = f"unmapped item ({family or 'no productFamily'}): {kind}"
    else:
        name = attributes.get("model") or attributes.get("titanModel") or ""
        excluded = _excluded(usagetype, attributes.get("inferenceType", ""), name)
        kind = excluded or _native_charge(attributes)
    if isinstance(kind, str):
        return Skipped(offer, sku, usagetype, kind)
    if not name:
        return Skipped(offer, sku, usagetype, "no model name")
    if re.search(r"\(\d+\s*k\)", name.removesuffix(_MARKETPLACE_SUFFIX), re.IGNORECASE):
        # Legacy "(100K)" context-window listings are separate, pricier SKUs of the same model.
        return Skipped(offer, sku, usagetype, "context-window listing")
    region = _region(attributes, regions_by_prefix)
    if not region:
        return Skipped(offer, sku, usagetype, "unknown region")
    priced = _on_demand_price(product, offer)
    if isinstance(priced, str):
        return Skipped(offer, sku, usagetype, priced)
    per_mtok, effective = priced
    routing, charge = kind
    return PriceRecord(offer, name, region, routing, charge, per_mtok, effective, sku, usagetype, option)


# ---------------------------------------------------------------------------------------------------------------
# From records to rows


@dataclass(frozen=True)
class OptionFactor:
    """An option's price as a factor on the standard price of the same model, region, routing and charge."""

    model_id: str
    option: str
    charge: str
    region: str
    routing: str
    factor: Decimal
    sku: str
    effective: date = date.min
    offer: str = ""


@dataclass
class Assembly:
    rows: list[TokenPrice] = field(default_factory=list)
    unmapped: Counter[tuple[str, str]] = field(default_factory=Counter)  # (offer, name) -> products
    conflicts: list[str] = field(default_factory=list)
    factors: list[OptionFactor] = field(default_factory=list)


def resolve_name(
    offer: str, name: str, names: Mapping[tuple[str, str], str], aliases: Mapping[str, str], known: set[str]
) -> str | None:
    """The base model id for an offer's display name: the names table, then the aliases, then an exact id."""
    if (offer, name) in names:
        return names[(offer, name)]
    bare = name.removesuffix(_MARKETPLACE_SUFFIX)
    for candidate in (name, bare):
        if candidate in aliases:
            return aliases[candidate]
        if candidate in known:
            return candidate  # newer SKUs name the model by its invocation id
    return None


def assemble(
    records: Iterable[PriceRecord],
    names: Mapping[tuple[str, str], str],
    aliases: Mapping[str, str],
    known: set[str],
    source: str = "",
) -> Assembly:
    """Group per-charge records into table rows: one row per (model, region, scope), four charges each."""
    result = Assembly()
    grouped: dict[tuple[str, str, str], dict[str, set[tuple[Decimal, date, str]]]] = defaultdict(
        lambda: defaultdict(set)
    )
    offers: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    del source  # rows cite their SKUs and effective dates (`price_list_source`), not the day of the refresh
    options: list[tuple[str, PriceRecord]] = []
    for record in records:
        model_id = resolve_name(record.offer, record.name, names, aliases, known)
        if model_id is None:
            result.unmapped[(record.offer, record.name)] += 1
            continue
        if record.option:
            options.append((model_id, record))
            continue
        group = (model_id, record.region, record.routing)
        grouped[group][record.charge].add((record.per_mtok, record.effective, record.sku))
        offers[group].add(record.offer)
    for (model_id, region, routing), charges in sorted(grouped.items()):
        prices: dict[str, Decimal] = {}
        days: list[date] = []
        skus: dict[str, str] = {}
        for charge, seen in sorted(charges.items()):
            if len({price for price, _, _ in seen}) > 1:
                both = ", ".join(f"{sku}={price.normalize()}" for price, _, sku in sorted(seen, key=lambda s: s[2]))
                result.conflicts.append(f"{model_id} {region} {routing} {charge}: {both} (left out)")
                continue
            price, day, sku = max(seen, key=lambda s: (s[1], s[2]))
            prices[charge] = price
            days.append(day)
            skus[charge] = sku
        if not prices:
            continue
        offer_names = "+".join(sorted(offers[(model_id, region, routing)]))
        ordered = [skus[c] for c in (*CHARGES, "cache_write_1h") if c in skus]
        for scope in SCOPES_BY_ROUTING[routing]:
            result.rows.append(
                TokenPrice(
                    model_id,
                    region,
                    scope,
                    max(days),
                    prices.get("input"),
                    prices.get("output"),
                    prices.get("cache_read"),
                    prices.get("cache_write"),
                    price_list_source(offer_names, ordered, max(days)),
                    prices.get("cache_write_1h"),
                )
            )
    # Each option price over the standard price of its model, region, routing and charge (when that is known).
    standard = {
        (model_id, region, routing, charge): {price for price, _, _ in seen}
        for (model_id, region, routing), charges in grouped.items()
        for charge, seen in charges.items()
    }
    for model_id, record in options:
        base = standard.get((model_id, record.region, record.routing, record.charge), set())
        if len(base) != 1:
            continue
        only = next(iter(base))
        if only > 0:
            factor = (record.per_mtok / only).quantize(Decimal("0.0001")).normalize()
        elif record.per_mtok == 0:
            factor = Decimal(1)  # free either way (Nova cache writes): the factor changes nothing
        else:
            continue
        result.factors.append(
            OptionFactor(
                model_id,
                record.option,
                record.charge,
                record.region,
                record.routing,
                factor,
                record.sku,
                record.effective,
                record.offer,
            )
        )
    return result


def price_list_source(offer: str, skus: Sequence[str], effective: date) -> str:
    """A written row's `source`: `aws-price-list <offer> sku <SKU>[,<SKU>...] effective <YYYY-MM-DD>` (the SKUs
    of its charges, in column order, and the effective date of their terms)."""
    return f"aws-price-list {offer} sku {','.join(skus)} effective {effective.isoformat()}"


# ---------------------------------------------------------------------------------------------------------------
# Merge with the curated table


@dataclass
class Merge:
    rows: list[TokenPrice]
    added: list[TokenPrice] = field(default_factory=list)
    changed: list[tuple[TokenPrice, TokenPrice]] = field(default_factory=list)  # (row in force, new later row)
    removed: list[tuple[TokenPrice, TokenPrice]] = field(default_factory=list)  # (replaced row, its replacement)
    unchanged: int = 0
    kept: int = 0  # curated keys the API said nothing about
    unmapped: list[str] = field(default_factory=list)  # Price List names no row of price_list_names.csv maps
    factor_tables: dict[str, str] = field(default_factory=dict)  # factor table -> its new text (only if changed)


def merge(curated: Sequence[TokenPrice], fetched: Sequence[TokenPrice], today: date, history: bool = False) -> Merge:
    """Fold API rows into the curated table without losing history.

    A new key is added from the API's effective date. Where the API price differs from the row in force, a new
    row is appended from the API's effective date, or from `today` when that date is not after the row in force
    (the Price List republishes whole offers, so its dates can be older than a curated change). A same-date
    difference replaces the curated row (a correction). Charges the API does not list keep their curated price.
    Rows are never deleted otherwise: a report for a past window needs the prices in force then.

    With `history` (an older version of the Price List, folded in oldest first) a row is compared with the row in
    force on its own effective date and, where it differs, inserted at that date: the past is filled in, and a
    later row still supersedes it from its own date.
    """
    history_mode = history
    by_key: dict[tuple[str, str, str], list[TokenPrice]] = defaultdict(list)
    for row in curated:
        by_key[row.key].append(row)
    for rows in by_key.values():
        rows.sort(key=lambda row: row.effective)
    result = Merge(rows=[])
    fetched_keys = set()
    for new in fetched:
        fetched_keys.add(new.key)
        key_rows = by_key[new.key]
        if not key_rows:
            key_rows.append(new)
            result.added.append(new)
            continue
        current = _in_force(key_rows, new.effective) if history_mode else key_rows[-1]
        kept_columns = [name for name, price in zip(CHARGES, new.prices, strict=True) if price is None]
        merged = replace(
            new,
            input=_either(new.input, current.input),
            output=_either(new.output, current.output),
            cache_read=_either(new.cache_read, current.cache_read),
            cache_write=_either(new.cache_write, current.cache_write),
            cache_write_1h=_either(new.cache_write_1h, current.cache_write_1h),
        )
        if (merged.prices, merged.cache_write_1h) == (current.prices, current.cache_write_1h):
            result.unchanged += 1
            continue
        if any(getattr(current, name) is not None for name in kept_columns):
            kept = "/".join(name for name in kept_columns if getattr(current, name) is not None)
            merged = replace(merged, source=f"{merged.source}; {kept} kept from {current.source}")
        if merged.effective == current.effective:
            key_rows[key_rows.index(current)] = merged
            result.removed.append((current, merged))
        else:
            if merged.effective < current.effective and not history_mode:
                merged = replace(merged, effective=max(today, current.effective + timedelta(days=1)))
            key_rows.append(merged)
            key_rows.sort(key=lambda row: row.effective)
            result.changed.append((current, merged))
    result.kept = sum(1 for key in by_key if key not in fetched_keys)
    result.rows = sort_rows(row for rows in by_key.values() for row in rows)
    return result


def _in_force(rows: Sequence[TokenPrice], day: date) -> TokenPrice:
    """The row in force on `day` (rows sorted by date), or the first row when `day` is before them all."""
    in_force = [row for row in rows if row.effective <= day]
    return in_force[-1] if in_force else rows[0]


def _either(value: Decimal | None, fallback: Decimal | None) -> Decimal | None:
    return value if value is not None else fallback


# ---------------------------------------------------------------------------------------------------------------
# The factor tables: option prices as dated rows of service_options.csv and context_tiers.csv

SERVICE_OPTIONS, CONTEXT_TIERS = "service_options.csv", "context_tiers.csv"
FACTOR_HEADERS = {SERVICE_OPTIONS: OPTIONS_HEADER, CONTEXT_TIERS: TIER_HEADER}
FACTOR_CHARGES = ("input", "output", "cache_read", "cache_write")


@dataclass(frozen=True)
class FactorRow:
    """A row of a factor table: (model, option or threshold) from a date, four factors on the standard prices.
    A factor None (only in rows read from the Price List) is a charge it does not price: kept from the row in
    force, and a new key with one is not written."""

    table: str
    model_id: str
    option: str  # service_options.csv: the option; context_tiers.csv: the threshold of input tokens
    effective: date
    factors: tuple[Decimal | None, Decimal | None, Decimal | None, Decimal | None]
    source: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.table, self.model_id, self.option)

    def cells(self) -> list[str]:
        return [self.model_id, self.option, self.effective.isoformat(), *map(plain, self.factors), self.source]


def parse_factor_table(table: str, text: str) -> list[FactorRow]:
    """The rows of a curated factor table as they are (the product's own readers check them)."""
    rows = []
    reader = csv.reader(io.StringIO(text))
    if tuple(next(reader, ())) != FACTOR_HEADERS[table]:
        raise ValueError(f"{table}: header must be {','.join(FACTOR_HEADERS[table])}")
    for cells in reader:
        if not cells:
            continue
        model_id, option, day, *factors, source = cells
        values = tuple(Decimal(f) if f.strip() else None for f in factors)
        rows.append(FactorRow(table, model_id, option, date.fromisoformat(day), values, source))  # type: ignore[arg-type]
    return rows


def format_factor_table(table: str, rows: Iterable[FactorRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FACTOR_HEADERS[table])
    for row in sorted(rows, key=lambda r: (r.model_id, r.option, r.effective)):
        writer.writerow(row.cells())
    return out.getvalue()


def factor_rows(
    factors: Sequence[OptionFactor], priced: Mapping[str, set[str]], thresholds: Mapping[str, str]
) -> tuple[list[FactorRow], list[str]]:
    """One factor-table row per (model, option) the Price List prices, and a note for each it cannot write.

    The tables hold one factor per model and charge (no region, no scope): a charge whose factor differs between
    the model's regions or scopes is not written. A charge the model has no standard price for is 1 (the table's
    rule); one it has a price for but no option price stays None. A long-context row takes the threshold of the
    model's curated tier (the Price List does not state one)."""
    seen: dict[tuple[str, str], dict[str, set[Decimal]]] = defaultdict(lambda: defaultdict(set))
    evidence: dict[tuple[str, str], list[OptionFactor]] = defaultdict(list)
    for f in factors:
        if f.option in WRITTEN_OPTIONS and f.charge in FACTOR_CHARGES:
            seen[(f.model_id, f.option)][f.charge].add(f.factor)
            evidence[(f.model_id, f.option)].append(f)
    rows, notes = [], []
    for (model_id, option), by_charge in sorted(seen.items()):
        differing = [f"{c} {'/'.join(str(v) for v in sorted(vs))}" for c, vs in by_charge.items() if len(vs) > 1]
        if differing:
            notes.append(
                f"{model_id} {option}: factors differ by region or scope ({'; '.join(differing)}): not written"
            )
            continue
        values = tuple(
            next(iter(by_charge[c])) if c in by_charge else (None if c in priced.get(model_id, set()) else Decimal(1))
            for c in FACTOR_CHARGES
        )
        table = CONTEXT_TIERS if option == "long-context" else SERVICE_OPTIONS
        key = option
        if table == CONTEXT_TIERS:
            if model_id not in thresholds:
                notes.append(f"{model_id} long-context: no threshold in {CONTEXT_TIERS} (the Price List has none)")
                continue
            key = thresholds[model_id]
        used = evidence[(model_id, option)]
        offers = "+".join(sorted({f.offer for f in used}))
        skus = sorted({f.sku for f in used})
        day = max(f.effective for f in used)
        rows.append(FactorRow(table, model_id, key, day, values, price_list_source(offers, skus, day)))  # type: ignore[arg-type]
    return rows, notes


@dataclass
class FactorMerge:
    rows: list[FactorRow]
    added: list[FactorRow] = field(default_factory=list)
    changed: list[tuple[FactorRow, FactorRow]] = field(default_factory=list)
    unchanged: int = 0
    notes: list[str] = field(default_factory=list)


def merge_factors(
    curated: Sequence[FactorRow], fetched: Sequence[FactorRow], today: date, history: bool = False
) -> FactorMerge:
    """`merge` for the factor tables: a new key is added (only with all four factors), a different factor is a
    new dated row (the row in force kept for history), a same-date difference replaces the row, a charge the
    Price List does not price keeps its curated factor, and curated rows it does not cover are kept."""
    by_key: dict[tuple[str, str, str], list[FactorRow]] = defaultdict(list)
    for row in curated:
        by_key[row.key].append(row)
    for rows in by_key.values():
        rows.sort(key=lambda row: row.effective)
    result = FactorMerge(rows=[])
    for new in fetched:
        rows = by_key[new.key]
        if not rows:
            if None in new.factors:
                missing = "/".join(c for c, f in zip(FACTOR_CHARGES, new.factors, strict=True) if f is None)
                result.notes.append(f"{new.model_id} {new.option}: no Price List factor for {missing}: not written")
                continue
            rows.append(new)
            result.added.append(new)
            continue
        in_force = [row for row in rows if row.effective <= new.effective]
        current = (in_force[-1] if in_force else rows[0]) if history else rows[-1]
        filled = tuple(_either(f, c) for f, c in zip(new.factors, current.factors, strict=True))
        merged = replace(new, factors=filled)  # type: ignore[arg-type]
        if filled == current.factors:
            result.unchanged += 1
            continue
        if merged.effective == current.effective:
            rows[rows.index(current)] = merged
            result.changed.append((current, merged))
            continue
        if merged.effective < current.effective and not history:
            merged = replace(merged, effective=max(today, current.effective + timedelta(days=1)))
        rows.append(merged)
        rows.sort(key=lambda row: row.effective)
        result.changed.append((current, merged))
    result.rows = [row for rows in by_key.values() for row in rows]
    return result


def sort_rows(rows: Iterable[TokenPrice]) -> list[TokenPrice]:
    return sorted(rows, key=lambda row: (row.model_id, row.region, row.scope, row.effective))


# ---------------------------------------------------------------------------------------------------------------
# CSV in and out


def plain(value: Decimal | None) -> str:
    """A price as a plain decimal: no exponent, no trailing zeros (Decimal('8.75E-3') -> '0.00875')."""
    if value is None:
        return ""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_table(rows: Iterable[TokenPrice]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(TABLE_HEADER)
    for row in sort_rows(rows):
        writer.writerow(
            [
                row.model_id,
                row.region,
                row.scope,
                row.effective.isoformat(),
                *map(plain, row.prices),
                plain(row.cache_write_1h),
                row.source,
            ]
        )
    return out.getvalue()


def read_names(path: Path) -> dict[tuple[str, str], str]:
    return parse_names(path.read_text(encoding="utf-8"))


def parse_names(text: str) -> dict[tuple[str, str], str]:
    """`price_list_names.csv` rows: (offer, display name) -> model id."""
    rows = csv.DictReader(io.StringIO(text))
    return {(row["offer"].strip(), row["name"].strip()): row["model_id"].strip() for row in rows}


# ---------------------------------------------------------------------------------------------------------------
# The AWS side: the only place that knows boto3


def fetch_products(client, offer: str, regions: Sequence[str] = ()) -> Iterator[str]:
    """Every PriceList item (a JSON string) of one offer, paginated, optionally one region at a time."""
    scopes: Sequence[str | None] = regions or [None]
    for region in scopes:
        filters = [{"Type": "TERM_MATCH", "Field": "regionCode", "Value": region}] if region else []
        params = {"ServiceCode": offer, "Filters": filters, "FormatVersion": "aws_v1"}
        while True:  # NextToken by hand: the function's clients retry each call, a paginator's would not
            page = client.get_products(**params)
            yield from page.get("PriceList", [])
            if not page.get("NextToken"):
                break
            params["NextToken"] = page["NextToken"]


def offer_file_items(document: Mapping) -> Iterator[str]:
    """The products of a bulk offer file (the Price List's published JSON: `products` by SKU, prices in
    `terms.OnDemand.<sku>.<sku>.<offerTermCode>`) as `get_products` items, so one parser reads both."""
    on_demand = (document.get("terms") or {}).get("OnDemand") or {}
    for sku, product in (document.get("products") or {}).items():
        item = {
            "product": product,
            "serviceCode": document.get("offerCode", ""),
            "terms": {"OnDemand": on_demand.get(sku) or {}},
        }
        yield json.dumps(item)


def _download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as answer:  # noqa: S310 - a presigned https URL from AWS
        data: bytes = answer.read()
    return data


def fetch_offer_files(
    client,
    offer: str,
    day: date,
    regions: Sequence[str] = (),
    opener: Callable[[str], bytes] = _download,
    seen: set[str] | None = None,
) -> Iterator[str]:
    """The products of the offer files in force on `day` (the Bulk API: ListPriceLists, GetPriceListFileUrl, then
    the file itself through `opener`), one file per region; files in `seen` (ARNs) are not read again."""
    seen = set() if seen is None else seen
    scopes: Sequence[str | None] = regions or [None]
    for region in scopes:
        params: dict = {
            "ServiceCode": offer,
            "EffectiveDate": datetime(day.year, day.month, day.day, tzinfo=UTC),
            "CurrencyCode": "USD",
        }
        if region:
            params["RegionCode"] = region
        while True:
            page = client.list_price_lists(**params)
            for price_list in page.get("PriceLists", []):
                arn = price_list["PriceListArn"]
                formats = [f.lower() for f in price_list.get("FileFormats") or ["json"]]
                if arn in seen or "json" not in formats:
                    continue
                seen.add(arn)
                url = client.get_price_list_file_url(PriceListArn=arn, FileFormat="json")["Url"]
                yield from offer_file_items(json.loads(opener(url), parse_float=str))
            if not page.get("NextToken"):
                break
            params["NextToken"] = page["NextToken"]


def month_starts(since: date, until: date) -> list[date]:
    """The first day of each month from `since`'s month (or `since` itself) up to `until`."""
    days, day = [since], date(since.year, since.month, 1)
    while True:
        day = date(day.year + day.month // 12, day.month % 12 + 1, 1)
        if day > until:
            return days
        days.append(day)


def fetch_history(
    client,
    offers: Sequence[str],
    since: date,
    until: date,
    regions: Sequence[str] = (),
    opener: Callable[[str], bytes] = _download,
) -> list[tuple[str, dict[str, list[str]]]]:
    """The Price List versions in force at `since` and at the start of each month after it, oldest first, as
    (day, products per offer); a month whose files are those of the month before is left out."""
    seen: set[str] = set()
    versions = []
    for day in month_starts(since, until):
        products = {offer: list(fetch_offer_files(client, offer, day, regions, opener, seen)) for offer in offers}
        if any(products.values()):
            versions.append((day.isoformat(), products))
    return versions


# ---------------------------------------------------------------------------------------------------------------
# The report of a refresh, and the refresh


def _describe(row: TokenPrice) -> str:
    prices = "/".join(plain(price) or "-" for price in row.prices)
    return f"{row.model_id} {row.region} {row.scope} from {row.effective.isoformat()}: {prices}"


_CHARGE_INDEX = {"input": 0, "output": 1, "cache_read": 2, "cache_write": 3, "cache_write_1h": 3}


def _factor_lines(factors: Sequence[OptionFactor], curated: Mapping[tuple[str, str], Sequence[Decimal]]) -> list[str]:
    """One line per (model, option, charge): the factor(s) the Price List implies, and the curated one."""
    seen: dict[tuple[str, str, str], set[Decimal]] = defaultdict(set)
    for f in factors:
        seen[(f.model_id, f.option, f.charge)].add(f.factor)
    lines = []
    for (model_id, option, charge), values in sorted(seen.items()):
        implied = "/".join(f"x{v}" for v in sorted(values))
        table = "context_tiers.csv" if option == "long-context" else "service_options.csv"
        ours = curated.get((model_id, option))
        if option == "batch":
            verdict = "batch: reported only, batch jobs leave no token logs"
        elif ours is None:
            verdict = f"no row in {table}"
        else:
            mine = Decimal(ours[_CHARGE_INDEX[charge]]).normalize()
            verdict = f"{table} has x{mine}: " + ("agrees" if values == {mine} else "DIFFERS")
        lines.append(f"  {model_id} {option} {charge} {implied} ({verdict})")
    return lines


def report(
    merged: Merge,
    skipped: Counter[tuple[str, str]],
    assembly: Assembly,
    read: Counter[str],
    curated_factors: Mapping[tuple[str, str], Sequence[Decimal]] | None = None,
    service_items: Counter[tuple[str, str]] | None = None,
) -> str:
    lines = []
    for offer in OFFERS:
        if offer in read:
            lines.append(f"{offer}: {read[offer]} products read")
    for (offer, reason), count in sorted(skipped.items()):
        lines.append(f"  skipped {count} {offer} products: {reason}")
    for (usagetype, why), count in sorted((service_items or Counter()).items()):
        lines.append(f"  {SERVICE} item not mapped: usagetype {usagetype!r} x{count}: {why}")
    for (offer, name), count in sorted(assembly.unmapped.items()):
        lines.append(f"  unmapped {offer} name {name!r} ({count} prices): add it to price_list_names.csv")
    for conflict in assembly.conflicts:
        lines.append(f"  conflicting prices: {conflict}")
    lines.append(f"added {len(merged.added)} rows")
    lines.extend(f"  + {_describe(row)}" for row in merged.added)
    lines.append(f"changed {len(merged.changed)} rows (a new row from its date; the old one stays for history)")
    lines.extend(f"  ~ {_describe(old)}  ->  {_describe(new)}" for old, new in merged.changed)
    lines.append(f"removed {len(merged.removed)} rows (replaced by an API price of the same date)")
    lines.extend(f"  - {_describe(old)}  ->  {_describe(new)}" for old, new in merged.removed)
    lines.append(f"unchanged {merged.unchanged} rows; kept {merged.kept} curated keys the API did not price")
    if assembly.factors:
        lines.append("option prices as factors on the standard price (written into the factor tables when given)")
        lines.extend(_factor_lines(assembly.factors, curated_factors or {}))
    return "\n".join(lines)


def _read_products(
    products: Mapping[str, Iterable[str]], regions_by_prefix: Mapping[str, str], regions: set[str] | None
) -> tuple[list[PriceRecord], Counter[tuple[str, str]], Counter[str], Counter[tuple[str, str]]]:
    records: list[PriceRecord] = []
    skipped: Counter[tuple[str, str]] = Counter()
    read: Counter[str] = Counter()
    service_items: Counter[tuple[str, str]] = Counter()  # AmazonBedrockService (usagetype, why) not mapped
    for offer, items in products.items():
        for text in items:
            read[offer] += 1
            parsed = parse_product(text, offer, regions_by_prefix)
            if isinstance(parsed, Skipped):
                skipped[(offer, parsed.reason)] += 1
                if offer == SERVICE:
                    service_items[(parsed.usagetype, parsed.reason)] += 1
            elif regions and parsed.region not in regions:
                skipped[(offer, "outside the asked regions")] += 1
            else:
                records.append(parsed)
    return records, skipped, read, service_items


def _priced_charges(rows: Iterable[TokenPrice]) -> dict[str, set[str]]:
    priced: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        # a charge priced at $0 (Nova cache writes) stays $0 whatever an option's factor: it counts as unpriced
        priced[row.model_id].update(c for c, price in zip(CHARGES, row.prices, strict=True) if price)
    return priced


def _describe_factor(row: FactorRow) -> str:
    factors = "/".join(plain(f) or "-" for f in row.factors)
    return f"{row.table} {row.model_id} {row.option} from {row.effective.isoformat()}: x{factors}"


def refresh(
    products: Mapping[str, Iterable[str]],
    curated: Sequence[TokenPrice],
    names: Mapping[tuple[str, str], str],
    aliases: Mapping[str, str],
    regions_by_prefix: Mapping[str, str],
    today: date,
    regions: set[str] | None = None,
    curated_factors: Mapping[tuple[str, str], Sequence[Decimal]] | None = None,
    *,
    history: Sequence[tuple[str, Mapping[str, Iterable[str]]]] = (),
    factor_tables: Mapping[str, str] | None = None,
) -> tuple[Merge, str]:
    """The whole refresh as a pure function: products per offer + curated rows -> merged table and report.

    With `regions`, prices of other source regions are skipped (the API filter is by `regionCode`, which some
    products lack). `history` holds older versions of the Price List, (label, products), oldest first: each is
    folded in at its own effective dates before the current one. With `factor_tables` (file name -> the text
    of the curated service_options.csv / context_tiers.csv), option prices are written into them as dated rows
    too (`Merge.factor_tables`); without, they are only reported.
    """
    known = {row.model_id for row in curated} | set(names.values()) | set(aliases.values())
    table: list[TokenPrice] = list(curated)
    factors_now = (
        [row for name, text in factor_tables.items() for row in parse_factor_table(name, text)]
        if factor_tables is not None
        else []
    )
    total = Merge(rows=[])
    factor_total = FactorMerge(rows=factors_now)
    lines: list[str] = []
    versions = [*((label, version, True) for label, version in history), ("current", products, False)]
    for label, version, older in versions:
        records, skipped, read, service_items = _read_products(version, regions_by_prefix, regions)
        assembly = assemble(records, names, aliases, known)
        merged = merge(table, assembly.rows, today, history=older)
        table = merged.rows
        total.added += merged.added
        total.changed += merged.changed
        total.removed += merged.removed
        total.unchanged += merged.unchanged if not older else 0
        total.kept = merged.kept
        notes: list[str] = []
        if factor_tables is not None:
            thresholds = {
                r.model_id: r.option
                for r in sorted(factor_total.rows, key=lambda r: r.effective)
                if r.table == CONTEXT_TIERS
            }
            fetched, notes = factor_rows(assembly.factors, _priced_charges(table), thresholds)
            step = merge_factors(factor_total.rows, fetched, today, history=older)
            factor_total.rows = step.rows
            factor_total.added += step.added
            factor_total.changed += step.changed
            factor_total.unchanged += step.unchanged if not older else 0
            notes += step.notes
        if older:
            lines.append(
                f"history {label}: {sum(read.values())} products read, {len(merged.added)} rows added, "
                f"{len(merged.changed)} changed, {len(merged.removed)} replaced"
            )
            continue
        lines.append(report(merged, skipped, assembly, read, curated_factors, service_items))
        lines.extend(f"  option not written: {note}" for note in notes)
        total.unmapped = sorted({name for _, name in assembly.unmapped})
    total.rows = table
    if history:
        lines.append(
            f"with history: {len(total.added)} rows added, {len(total.changed)} changed, {len(total.removed)} replaced"
        )
    if factor_tables is not None:
        lines.append(f"factor tables: {len(factor_total.added)} rows added, {len(factor_total.changed)} changed")
        lines.extend(f"  + {_describe_factor(row)}" for row in factor_total.added)
        lines.extend(f"  ~ {_describe_factor(old)}  ->  {_describe_factor(new)}" for old, new in factor_total.changed)
        if factor_total.added or factor_total.changed:
            for name in factor_tables:
                total.factor_tables[name] = format_factor_table(name, (r for r in factor_total.rows if r.table == name))
    return total, "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# The names: one loader for the refresh and the reconciliation


class PriceListNames(NamedTuple):
    """How the Price List and the bill name models and regions."""

    names: dict[tuple[str, str], str]  # (offer, display name) -> model id
    regions_by_prefix: dict[str, str]  # usagetype prefix ("USE1") -> region


def price_list_names(extra: bytes | None = None, pricing_dir: Path = PRICING_DIR) -> PriceListNames:
    """The bundled `price_list_names.csv` with an operator's extra rows (the bytes of
    `<prefix>/prices/price_list_names.csv`, which win over a bundled row of the same offer and name), and the
    usagetype region prefixes of `usagetype_regions.csv`."""
    names = read_names(pricing_dir / "price_list_names.csv")
    if extra:
        names.update(parse_names(extra.decode("utf-8")))
    return PriceListNames(names, read_pairs(pricing_dir / "usagetype_regions.csv", "prefix", "region"))
