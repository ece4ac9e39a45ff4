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
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import NamedTuple

from lambda_function.config import PACKAGE_ROOT
from lambda_function.pricing.model_ids import read_pairs
from lambda_function.pricing.tables import TABLE_HEADER, TokenPrice

# The bundled tables (data, not code: pricing/ ships in the package without its tools).
PRICING_DIR = PACKAGE_ROOT / "pricing"
DEFAULT_NAMES = PRICING_DIR / "price_list_names.csv"
DEFAULT_ALIASES = PRICING_DIR / "model_aliases.csv"
DEFAULT_USAGETYPE_REGIONS = PRICING_DIR / "usagetype_regions.csv"

BEDROCK, FOUNDATION_MODELS = "AmazonBedrock", "AmazonBedrockFoundationModels"
OFFERS = (BEDROCK, FOUNDATION_MODELS)
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
    ("batch", "batch tier"),
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
)
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
            break
    usagetype = attributes.get("usagetype", "")
    if offer == FOUNDATION_MODELS:
        name = attributes.get("servicename", "")
        excluded = _excluded(usagetype)
        kind = excluded or _foundation_model_charge(usagetype)
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
    source: str,
) -> Assembly:
    """Group per-charge records into table rows: one row per (model, region, scope), four charges each."""
    result = Assembly()
    grouped: dict[tuple[str, str, str], dict[str, set[tuple[Decimal, date, str]]]] = defaultdict(
        lambda: defaultdict(set)
    )
    offers: dict[tuple[str, str, str], set[str]] = defaultdict(set)
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
        for charge, seen in sorted(charges.items()):
            if len({price for price, _, _ in seen}) > 1:
                skus = ", ".join(f"{sku}={price.normalize()}" for price, _, sku in sorted(seen, key=lambda s: s[2]))
                result.conflicts.append(f"{model_id} {region} {routing} {charge}: {skus} (left out)")
                continue
            price, day, _ = max(seen, key=lambda s: s[1])
            prices[charge] = price
            days.append(day)
        if not prices:
            continue
        offer_names = "+".join(sorted(offers[(model_id, region, routing)]))
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
                    f"aws-price-list {offer_names} {source}",
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
        if len(base) == 1 and (only := next(iter(base))) > 0:
            factor = (record.per_mtok / only).quantize(Decimal("0.0001")).normalize()
            result.factors.append(
                OptionFactor(model_id, record.option, record.charge, record.region, record.routing, factor, record.sku)
            )
    return result


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


def merge(curated: Sequence[TokenPrice], fetched: Sequence[TokenPrice], today: date) -> Merge:
    """Fold API rows into the curated table without losing history.

    A new key is added from the API's effective date. Where the API price differs from the row in force, a new
    row is appended from the API's effective date, or from `today` when that date is not after the row in force
    (the Price List republishes whole offers, so its dates can be older than a curated change). A same-date
    difference replaces the curated row (a correction). Charges the API does not list keep their curated price.
    Rows are never deleted otherwise: a report for a past window needs the prices in force then.
    """
    by_key: dict[tuple[str, str, str], list[TokenPrice]] = defaultdict(list)
    for row in curated:
        by_key[row.key].append(row)
    for rows in by_key.values():
        rows.sort(key=lambda row: row.effective)
    result = Merge(rows=[])
    fetched_keys = set()
    for new in fetched:
        fetched_keys.add(new.key)
        history = by_key[new.key]
        if not history:
            history.append(new)
            result.added.append(new)
            continue
        current = history[-1]
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
            history[-1] = merged
            result.removed.append((current, merged))
        else:
            if merged.effective < current.effective:
                merged = replace(merged, effective=max(today, current.effective + timedelta(days=1)))
            history.append(merged)
            result.changed.append((current, merged))
    result.kept = sum(1 for key in by_key if key not in fetched_keys)
    result.rows = sort_rows(row for rows in by_key.values() for row in rows)
    return result


def _either(value: Decimal | None, fallback: Decimal | None) -> Decimal | None:
    return value if value is not None else fallback


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
        if ours is None:
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
) -> str:
    lines = []
    for offer in OFFERS:
        if offer in read:
            lines.append(f"{offer}: {read[offer]} products read")
    for (offer, reason), count in sorted(skipped.items()):
        lines.append(f"  skipped {count} {offer} products: {reason}")
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
        lines.append("option prices as factors on the standard price (the factor tables are curated: update them)")
        lines.extend(_factor_lines(assembly.factors, curated_factors or {}))
    return "\n".join(lines)


def refresh(
    products: Mapping[str, Iterable[str]],
    curated: Sequence[TokenPrice],
    names: Mapping[tuple[str, str], str],
    aliases: Mapping[str, str],
    regions_by_prefix: Mapping[str, str],
    today: date,
    regions: set[str] | None = None,
    curated_factors: Mapping[tuple[str, str], Sequence[Decimal]] | None = None,
) -> tuple[Merge, str]:
    """The whole refresh as a pure function: products per offer + curated rows -> merged table and report.

    With `regions`, prices of other source regions are skipped (the API filter is by `regionCode`, which some
    products lack).
    """
    records: list[PriceRecord] = []
    skipped: Counter[tuple[str, str]] = Counter()
    read: Counter[str] = Counter()
    for offer, items in products.items():
        for text in items:
            read[offer] += 1
            parsed = parse_product(text, offer, regions_by_prefix)
            if isinstance(parsed, Skipped):
                skipped[(offer, parsed.reason)] += 1
            elif regions and parsed.region not in regions:
                skipped[(offer, "outside the asked regions")] += 1
            else:
                records.append(parsed)
    known = {row.model_id for row in curated} | set(names.values()) | set(aliases.values())
    assembly = assemble(records, names, aliases, known, source=today.isoformat())
    merged = merge(curated, assembly.rows, today)
    merged.unmapped = sorted({name for _, name in assembly.unmapped})
    return merged, report(merged, skipped, assembly, read, curated_factors)


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
