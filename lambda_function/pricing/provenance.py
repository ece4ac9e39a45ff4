"""Where a price row comes from: the kind of its `source` text, and the day that source was read or took effect.

Every row of the price tables (token_prices.csv, service_options.csv, context_tiers.csv, image_prices.csv) starts
its `source` with one of four prefixes, the strongest evidence first:

- `aws-price-list <offer> sku <SKU> effective <YYYY-MM-DD>`: the AWS Price List API (written by the refresh);
- `aws-page <what> read <YYYY-MM-DD>`: an AWS pricing page or What's New post (FACTS.md §3's reference prices
  quote AWS's pricing page, so they are this kind);
- `derived: <rule>`: computed by a stated rule from another row (geo = 1.1 x global, GovCloud = 1.2 x ...);
- `litellm <version> <key>`: LiteLLM's public price file, a second opinion only.

Whatever follows the prefix is detail (other charges' sources, `unconfirmed` where a date or a price is assumed).
"""

from __future__ import annotations

import re
from datetime import date

PRICE_LIST = "price-list"
AWS_PAGE = "aws-page"
DERIVED = "derived"
PUBLIC_FILE = "public-file"
UNKNOWN = "unknown"
KINDS = (PRICE_LIST, AWS_PAGE, DERIVED, PUBLIC_FILE)
_PREFIXES = (
    ("aws-price-list ", PRICE_LIST),
    ("aws-page ", AWS_PAGE),
    ("derived: ", DERIVED),
    ("litellm ", PUBLIC_FILE),
)
_DATED = re.compile(r"\b(?:read|effective) (\d{4}-\d{2}-\d{2})\b")


def source_kind(source: str) -> str:
    """One of KINDS for a row's `source` text, or UNKNOWN when it starts with none of their prefixes."""
    text = source.strip()
    for prefix, kind in _PREFIXES:
        if text.startswith(prefix):
            return kind
    return UNKNOWN


def source_date(source: str) -> date | None:
    """The day the source was read (`read YYYY-MM-DD`) or took effect (`effective YYYY-MM-DD`): the first such
    date in the text, or None when it states none (a public file's version is not a date)."""
    match = _DATED.search(source)
    if match is None:
        return None
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        return None


def unconfirmed(source: str) -> bool:
    """Whether the source says part of the row (a price or its date) is an assumption."""
    return "unconfirmed" in source.lower()
