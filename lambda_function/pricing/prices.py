"""The prices a report uses: the bundled tables (or the newest table the weekly refresh built from them), the
operator's overrides and discount, and the usage frame priced with them."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError

from lambda_function.config import Config
from lambda_function.errors import DeadlineExceeded
from lambda_function.pricing.engine import (
    ContextTiers,
    ImagePriceTable,
    PriceTable,
    load_context_tiers,
    load_image_prices,
    load_price_table,
    price_changes,
    price_usage,
)
from lambda_function.pricing.model_ids import ModelCatalog
from lambda_function.pricing.profiles import normaliser, resolve_profiles
from lambda_function.pricing.service_options import ServiceOptions, load_service_options
from lambda_function.pricing.tables import parse_table
from lambda_function.store import PriceStore, RefreshedTable

log = logging.getLogger(__name__)

BUNDLED = "bundled"  # the footer's price_table_key when the report was priced with the table in the package
# No Bedrock price comes near this (the dearest, output of the largest models, is about $140 per million tokens): a
# table in the bucket with more was not written by the refresh.
MAX_PRICE_PER_MTOK = Decimal(1000)


def bundled_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class RefusedTable:
    """A refreshed table in the bucket that was not used, and why (the footer names it)."""

    key: str
    why: str


@dataclass(frozen=True)
class PriceTables:
    tokens: PriceTable
    context_tiers: ContextTiers
    images: ImagePriceTable
    options: ServiceOptions
    catalog: ModelCatalog
    key: str = BUNDLED  # where the token table came from: BUNDLED, or the refreshed table's S3 key
    refused: tuple[RefusedTable, ...] = ()  # newer refreshed tables passed over

    @property
    def version(self) -> str:
        """What the footer names: each table that priced the report, with its content hash."""
        versions = (self.tokens.version, self.context_tiers.version, self.options.version)
        return ", ".join(v for v in versions if v)


@lru_cache(maxsize=4)
def _tables(
    path: Path, overrides: bytes | None, discount: Decimal, refreshed: bytes | None, name: str, key: str
) -> PriceTables:
    # Loaded once per Lambda container (per distinct overrides and refreshed table); the tables are read-only.
    return PriceTables(
        load_price_table(path, content=refreshed, name=name, overrides=overrides, discount_percent=discount),
        load_context_tiers(path.parent),
        load_image_prices(path.parent),
        load_service_options(path.parent),
        ModelCatalog.load(path.parent),
        key,
    )


def load_prices(config: Config, store: PriceStore, overrides: bytes | None, today: date) -> PriceTables:
    refreshed, refused = usable_refreshed_table(store, config.price_table, today)
    tables = _tables(
        config.price_table,
        overrides,
        config.price_discount_percent,
        refreshed.content if refreshed else None,
        refreshed.name if refreshed else "",
        refreshed.key if refreshed else BUNDLED,
    )
    return replace(tables, refused=tuple(refused)) if refused else tables


def usable_refreshed_table(
    store: PriceStore, bundled: Path, today: date
) -> tuple[RefreshedTable | None, list[RefusedTable]]:
    """The newest table the weekly refresh built from this package's table that can be trusted, and the newer ones
    passed over: dated after `today` (no refresh writes tomorrow's table: a key dated 2099 would win forever), or
    not a table a refresh writes (not UTF-8, malformed, no rows, a price no model has). None: the bundled table.
    The bucket is untrusted input, and a refresh problem never stops a report."""
    refused: list[RefusedTable] = []
    try:
        for day, key in store.refreshed(bundled_sha(bundled)):
            if day > today:
                refused.append(RefusedTable(key, f"dated {day.isoformat()}, after today ({today.isoformat()})"))
                continue
            content = store.read(key)
            if content is None:
                continue
            try:
                check_refreshed_table(content, key.rsplit("/", 1)[-1])
            except (ValueError, UnicodeDecodeError) as err:
                refused.append(RefusedTable(key, str(err)))
                continue
            return RefreshedTable(key, content), _logged(refused)
    except (ClientError, BotoCoreError, DeadlineExceeded) as err:
        log.warning("cannot read the refreshed price tables (%s); pricing with the bundled table", err)
    return None, _logged(refused)


def _logged(refused: list[RefusedTable]) -> list[RefusedTable]:
    for table in refused:
        log.warning("refreshed price table %s not used: %s", table.key, table.why)
    return refused


def check_refreshed_table(content: bytes, name: str) -> None:
    """Raise ValueError (UnicodeDecodeError) when `content` is not a table the weekly refresh would write."""
    rows = parse_table(content.decode("utf-8"), name)
    if not rows:
        raise ValueError(f"{name} has no price rows")
    for row in rows:
        dearest = max((price for price in (*row.prices, row.cache_write_1h) if price is not None), default=Decimal(0))
        if dearest > MAX_PRICE_PER_MTOK:
            raise ValueError(
                f"{name}: {row.model_id} in {row.region} at ${dearest} per million tokens, more than any model costs"
            )


def price_frame(usage: pd.DataFrame, prices: PriceTables, bedrock: Callable[[str], Any]) -> pd.DataFrame:
    """The usage frame with its charges: application inference profiles resolved (bedrock:GetInferenceProfile per
    region, failures unpriced with the reason), model ids normalised, every charge priced or marked unpriced."""
    profiles, failures = resolve_profiles(usage["model_id"], prices.catalog, bedrock)
    normalise = normaliser(prices.catalog, profiles, failures)
    return price_usage(usage, prices.tokens, normalise, prices.images, prices.context_tiers, prices.options)


def changes_since(
    previous_footer: dict[str, Any],
    prices: PriceTables,
    config: Config,
    store: PriceStore,
    overrides: bytes | None,
    first_day: date,
) -> dict[str, Any] | None:
    """Models newly priced or repriced since the table that priced the previous report (named in its footer), on
    this report's first day; None when it is the same table or cannot be read."""
    previous_key = previous_footer.get("price_table_key")
    if not previous_key or previous_key == prices.key:
        return None
    content = config.price_table.read_bytes() if previous_key == BUNDLED else store.read(str(previous_key))
    if content is None:
        return None
    try:
        previous = load_price_table(
            config.price_table, content=content, overrides=overrides, discount_percent=config.price_discount_percent
        )
    except ValueError as err:
        log.warning("cannot compare with the previous price table %s: %s", previous_key, err)
        return None
    newly, repriced = price_changes(previous, prices.tokens, first_day)
    if not newly and not repriced:
        return None
    since = previous_footer.get("price_table_version", previous_key)
    return {"since": str(since), "newly_priced": newly, "repriced": repriced}
