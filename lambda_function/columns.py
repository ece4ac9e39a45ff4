"""The column names of the frames handed from stage to stage, in one place: the usage frame a source collects, the
columns pricing adds, and the CSV's. An attribution key may be none of them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

# ---- the usage frame (sources/): one row per day, caller, model, region and option, with its summed counts -------
KEYS = ["usage_date", "account_id", "identity_arn", "model_id", "region"]
COUNTS = [
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",  # the 1-hour part of cache_write_tokens, from the logged response body
    "cache_write_ttl_unknown_tokens",  # the part of cache_write_tokens whose record's body says no TTL
    "invocations",
    "failed_invocations",
    "unreadable_records",  # matched the invocation-log filter, succeeded, but no token count could be read
]
# Image settings as logged (-1 / "-" when the request did not say); text models have the sentinels only.
IMAGE_KEYS = ["image_width", "image_height", "image_quality", "image_steps", "images_per_call"]
# How many of the tier table's input thresholds the requests were above (0: none; see query.usage_query).
TIER_KEYS = ["input_band"]
# Per-request options with prices of their own (service_options.py): the service tier and the latency mode.
OPTION_KEYS = ["service_tier", "latency"]
COLUMNS = KEYS + IMAGE_KEYS + TIER_KEYS + OPTION_KEYS + COUNTS
INVALID = "invalid"  # why a group's counts are not usable ("" when they are)
METADATA_PREFIX = "meta:"  # a usage column per attribution key: its requestMetadata value (see attribution.py)

# ---- what pricing adds (pricing/engine.price_usage) -----------------------------------------------------------
PRICED_MODEL_ID = "priced_model_id"
IMAGES = "images"  # images generated, from the image settings and the invocations
LONG_CONTEXT = "long_context"  # billed at the model's long-context tier
CHARGE = "charge"  # Decimal, or None when unpriced
CHARGE_MICROS = "charge_micros"  # int64: the charge in whole micro-dollars, half up (the CSV's figure); 0 when unpriced
PRICING_STATUS = "pricing_status"
PRICED_COLUMNS = [PRICED_MODEL_ID, IMAGES, LONG_CONTEXT, CHARGE, CHARGE_MICROS, PRICING_STATUS]

# ---- the report's rows (report/rows.py) and its CSV ---------------------------------------------------------------
ROW_KEYS = ["account_id", "identity_arn", "model_id", "region"]
LONG_CONTEXT_INVOCATIONS = "long_context_invocations"
IS_PRICED = "is_priced"  # whether a row is priced at all (an unpriced row's micro-dollars are 0, its CSV cell empty)
CSV_NAMES = {  # row column -> CSV header, in the CSV's order
    "account_id": "Account Id",
    "identity_arn": "Identity ARN",
    "model_id": "Model Id",
    "region": "Region Name",
    "input_tokens": "Number of Input tokens",
    "output_tokens": "Number of output tokens",
    CHARGE: "Charges incurred",
    "invocations": "Invocations",
    "failed_invocations": "Failed invocations",
    "cache_read_tokens": "Cache read input tokens",
    "cache_write_tokens": "Cache write input tokens",
    PRICING_STATUS: "Pricing status",
    IMAGES: "Images generated",
    LONG_CONTEXT_INVOCATIONS: "Long-context invocations",
    "unreadable_records": "Unreadable records",
    "cache_write_1h_tokens": "Cache write 1h input tokens",
}
CSV_COLUMNS = list(CSV_NAMES.values())

# Names an attribution key cannot take: it becomes a column of the frames and of the CSV (case-insensitively, as
# spreadsheets and Athena read headers).
RESERVED = frozenset(
    name.lower() for name in [*COLUMNS, INVALID, *PRICED_COLUMNS, LONG_CONTEXT_INVOCATIONS, IS_PRICED, *CSV_COLUMNS]
)


def object_column(values: Sequence[Any]) -> np.ndarray:
    """Values as a 1-d object array, a frame column or a table to take rows from by code (never an array of
    arrays, whatever the items: tuples, lists)."""
    array = np.empty(len(values), dtype=object)
    array[:] = list(values)
    return array
