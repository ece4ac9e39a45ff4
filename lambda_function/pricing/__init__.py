"""Pricing: the price tables of pricing/ (data), the engine that prices usage with them, model ids and inference
profiles, and the AWS Price List refresh.

Modules, each importing only those before it (no cycles):

- `tables`: the strict CSV reader every price table is read with, the token price table, versioned side tables;
- `model_ids`: model ids and inference-profile prefixes normalised to a base model id and a scope;
- `service_options`: latency-optimized inference and service tiers (factors on the token prices);
- `engine`: the priced usage frame (token, long-context, image and option prices), in Decimal;
- `profiles`: application inference profiles resolved through Bedrock;
- `price_list`: the AWS Price List read into table rows, merged with the curated table; the Price List names;
- `refresh`: the function's weekly refresh into the report bucket;
- `prices`: the stage: the tables a report prices with (bundled or refreshed, overrides, discount), the usage priced.

What the rest of the function uses is below; the modules stay importable by their own paths too.
"""

from lambda_function.pricing.engine import (
    INVALID,
    PRICED,
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
from lambda_function.pricing.price_list import PriceListNames, price_list_names
from lambda_function.pricing.prices import PriceTables, bundled_sha, changes_since, load_prices, price_frame
from lambda_function.pricing.profiles import normaliser, resolve_profiles
from lambda_function.pricing.refresh import refresh_prices
from lambda_function.pricing.service_options import (
    DEFAULT_TIER,
    STANDARD_LATENCY,
    ServiceOptions,
    load_service_options,
)

__all__ = [
    "DEFAULT_TIER",
    "INVALID",
    "PRICED",
    "STANDARD_LATENCY",
    "ContextTiers",
    "ImagePriceTable",
    "ModelCatalog",
    "PriceListNames",
    "PriceTable",
    "PriceTables",
    "ServiceOptions",
    "bundled_sha",
    "changes_since",
    "load_context_tiers",
    "load_image_prices",
    "load_price_table",
    "load_prices",
    "load_service_options",
    "normaliser",
    "price_changes",
    "price_frame",
    "price_list_names",
    "price_usage",
    "refresh_prices",
    "resolve_profiles",
]
