"""The weekly price refresh the function runs itself (event `{"refresh_prices": true}`, its own schedule).

It reads the three Bedrock offers of the AWS Price List, folds them into the newest refreshed table (or the bundled
one) with `price_list.refresh`, and writes the result to the report bucket under a dated key. Every report then
prices with the newest refreshed table built from the bundled one it ships with, so a model AWS starts selling
is priced without a new package, once its Price List name maps to a model id (the bundled
`price_list_names.csv`, plus rows an operator puts in `<prefix>/prices/price_list_names.csv`).
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from lambda_function.aws import AwsClients
from lambda_function.config import Config
from lambda_function.errors import ReportError
from lambda_function.pricing.model_ids import read_pairs
from lambda_function.pricing.price_list import (
    DEFAULT_ALIASES,
    OFFERS,
    PRICING_API_REGION,
    fetch_products,
    format_table,
    price_list_names,
    refresh,
)
from lambda_function.pricing.prices import bundled_sha, usable_refreshed_table
from lambda_function.pricing.tables import parse_table
from lambda_function.store import PriceStore

log = logging.getLogger(__name__)


def refresh_prices(config: Config, aws: AwsClients, today: date) -> dict[str, Any]:
    bundled = config.price_table
    sha = bundled_sha(bundled)
    store = PriceStore(aws.client("s3"), config.report_bucket, config.report_prefix)
    # built on the newest table a refresh could have written (never one dated after today, or poisoned)
    base, _ = usable_refreshed_table(store, bundled, today)
    curated = parse_table(base.content.decode("utf-8"), base.key) if base else parse_table(bundled.read_text())
    names, regions_by_prefix = price_list_names(store.extra_names())
    aliases = read_pairs(DEFAULT_ALIASES, "alias", "model_id")
    client = aws.client("pricing", PRICING_API_REGION)
    products = {offer: list(fetch_products(client, offer)) for offer in OFFERS}
    if not any(products.values()):
        raise ReportError("the Price List returned no Bedrock products; the price table was left as it was")
    merged, text = refresh(products, curated, names, aliases, regions_by_prefix, today)
    log.info("price refresh:\n%s", text)
    uri = store.put(today.isoformat(), format_table(merged.rows).encode("utf-8"), sha)
    return {
        "status": "ok",
        "price_table": uri,
        "based_on": f"s3://{config.report_bucket}/{base.key}" if base else "bundled",
        "added_rows": len(merged.added),
        "changed_rows": len(merged.changed),
        "unmapped_names": merged.unmapped,
    }
