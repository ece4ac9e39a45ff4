"""Refresh pricing/token_prices.csv from the AWS Price List API, keeping curated rows where the API says nothing.

    python -m pricing.refresh [--table pricing/token_prices.csv] [--dry-run] [--region us-east-1 ...]
                              [--offer AmazonBedrock ...] [--from-dir recorded/] [--today YYYY-MM-DD]
                              [--history-since YYYY-MM-DD]

Option prices (long context, latency-optimized, priority, flex) are written as dated rows of the
service_options.csv and context_tiers.csv beside the table, when they are there; batch is only reported.

The command only: reading the Price List, merging it with the curated table and the report of what changed are
the product's (`lambda_function.pricing.price_list`), the same code the function's weekly refresh runs. The tools
import the product; the product never imports them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path

from lambda_function.pricing.engine import load_context_tiers
from lambda_function.pricing.model_ids import read_pairs
from lambda_function.pricing.price_list import (
    DEFAULT_ALIASES,
    DEFAULT_NAMES,
    DEFAULT_USAGETYPE_REGIONS,
    FACTOR_HEADERS,
    OFFERS,
    PRICING_API_REGION,
    PRICING_DIR,
    fetch_history,
    fetch_products,
    format_table,
    offer_file_items,
    read_names,
    refresh,
)
from lambda_function.pricing.service_options import load_service_options
from lambda_function.pricing.tables import parse_table

DEFAULT_TABLE = PRICING_DIR / "token_prices.csv"


def recorded_products(directory: Path, offer: str) -> Iterator[str]:
    """PriceList items of `get_products` pages, or the products of bulk offer files (the Price List's published
    JSON, `products` and `terms`), saved as <offer>.json or <offer>.<anything>.json."""
    paths = sorted({*directory.glob(f"{offer}.json"), *directory.glob(f"{offer}.*.json")})
    for path in paths:
        document = json.loads(path.read_text(encoding="utf-8"), parse_float=str)
        if "products" in document:
            yield from offer_file_items(document)
        else:
            yield from document.get("PriceList", [])


def curated_factors(pricing_dir: Path) -> dict[tuple[str, str], tuple[Decimal, ...]]:
    """(model, option) -> factors of the curated option tables, long-context tiers as option "long-context"."""
    factors: dict[tuple[str, str], tuple[Decimal, ...]] = dict(load_service_options(pricing_dir).latest())
    for model_id, tier in load_context_tiers(pricing_dir).latest().items():
        factors[(model_id, "long-context")] = tier
    return factors


def main(
    argv: Sequence[str] | None = None,
    client=None,
    today: date | None = None,
    out=None,
    opener: Callable[[str], bytes] | None = None,
) -> int:
    parser = argparse.ArgumentParser(prog="python -m pricing.refresh", description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=Path, default=DEFAULT_TABLE, help="token price CSV to update")
    parser.add_argument("--names", type=Path, default=DEFAULT_NAMES, help="Price List display name -> model id")
    parser.add_argument("--dry-run", action="store_true", help="print what would change, write nothing")
    parser.add_argument("--offer", action="append", choices=OFFERS, help="offer(s) to read (default: both)")
    parser.add_argument("--region", action="append", default=[], help="only these source regions (repeatable)")
    parser.add_argument("--from-dir", type=Path, help="read saved get_products pages (<offer>*.json), not AWS")
    parser.add_argument("--today", type=date.fromisoformat, help="date of the refresh (default: today)")
    parser.add_argument(
        "--history-since",
        type=date.fromisoformat,
        help="also read the Price List in force on this day and at the start of each month since (Bulk API)",
    )
    args = parser.parse_args(argv)
    out = out or sys.stdout
    today = args.today or today or date.today()

    try:
        curated = parse_table(args.table.read_text(encoding="utf-8"), str(args.table))
    except (OSError, ValueError) as err:
        print(f"cannot read the price table: {err}", file=sys.stderr)
        return 2
    names = read_names(args.names)
    aliases = read_pairs(DEFAULT_ALIASES, "alias", "model_id") if DEFAULT_ALIASES.is_file() else {}
    regions_by_prefix = read_pairs(DEFAULT_USAGETYPE_REGIONS, "prefix", "region")
    offers = args.offer or list(OFFERS)
    history: list = []
    if args.history_since and not args.from_dir:
        if client is None:
            import boto3  # only the AWS path needs it

            client = boto3.client("pricing", region_name=PRICING_API_REGION)
        more = {"opener": opener} if opener else {}
        history = fetch_history(client, offers, args.history_since, today, args.region, **more)
    if args.from_dir:
        products = {offer: list(recorded_products(args.from_dir, offer)) for offer in offers}
    else:
        if client is None:
            import boto3  # only the AWS path needs it

            client = boto3.client("pricing", region_name=PRICING_API_REGION)
        products = {offer: list(fetch_products(client, offer, args.region)) for offer in offers}
    factor_paths = {name: args.table.parent / name for name in FACTOR_HEADERS}
    factor_tables = (
        {name: path.read_text(encoding="utf-8") for name, path in factor_paths.items()}
        if all(path.is_file() for path in factor_paths.values())
        else None
    )
    merged, text = refresh(
        products,
        curated,
        names,
        aliases,
        regions_by_prefix,
        today,
        set(args.region),
        curated_factors(args.table.parent if factor_tables is not None else PRICING_DIR),
        history=history,
        factor_tables=factor_tables,
    )
    print(text, file=out)
    if not any(products.values()):
        print("the Price List returned no products: table left as it was", file=out)
        return 1
    if args.dry_run:
        print("dry run: nothing written", file=out)
        return 0
    args.table.write_text(format_table(merged.rows), encoding="utf-8")
    print(f"wrote {args.table} ({len(merged.rows)} rows)", file=out)
    for name, new_text in merged.factor_tables.items():
        factor_paths[name].write_text(new_text, encoding="utf-8")
        print(f"wrote {factor_paths[name]}", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
