"""`python -m pricing.audit [--today YYYY-MM-DD] [--pricing-dir DIR]`: where the prices come from.

Prints, per provider (the model id before its first dot) and region, how many rows of the price tables have a
Price List source, an AWS page source, a derived rule, or only the public price file (LiteLLM's); then the rows
whose dated source is older than 90 days, the rows marked unconfirmed, and the APAC rows priced from an `apac.`
key of the public file (a geography key, not evidence for the region). Rows of service_options.csv and
context_tiers.csv have no region: they are counted under `-`.
"""

from __future__ import annotations

import argparse
import csv
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

from lambda_function.pricing.provenance import KINDS, UNKNOWN, source_date, source_kind, unconfirmed

PRICING_DIR = Path(__file__).resolve().parent
TABLES = ("token_prices.csv", "image_prices.csv", "service_options.csv", "context_tiers.csv")
STALE_DAYS = 90
COLUMNS = (*KINDS, UNKNOWN)


def provider(model_id: str) -> str:
    return model_id.split(".", 1)[0]


def rows(pricing_dir: Path) -> Iterator[tuple[str, int, dict[str, str]]]:
    """(table, line, row) for every row of the price tables."""
    for table in TABLES:
        path = pricing_dir / table
        if not path.is_file():
            continue
        with path.open(newline="", encoding="utf-8") as handle:
            for line, row in enumerate(csv.DictReader(handle), start=2):
                yield table, line, row


def describe(table: str, row: dict[str, str]) -> str:
    where = row.get("region") or row.get("option") or row.get("above_input_tokens") or "-"
    scope = f" {row['scope']}" if row.get("scope") else ""
    return f"{table}: {row['model_id']} {where}{scope} from {row['effective_date']}"


def apac_key(row: dict[str, str]) -> bool:
    """A row priced from a public-file `apac.` key (one price for a whole geography) rather than region evidence."""
    source = row.get("source", "")
    words = source.split(";")[0].split()
    return source_kind(source) == "public-file" and len(words) > 2 and words[2].startswith("apac.")


def audit(pricing_dir: Path, today: date) -> str:
    by_region: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    by_provider: dict[str, Counter[str]] = defaultdict(Counter)
    stale: list[str] = []
    undated = Counter[str]()
    doubtful: Counter[str] = Counter()
    apac: dict[str, list[str]] = defaultdict(list)
    cutoff = today - timedelta(days=STALE_DAYS)
    for table, _, row in rows(pricing_dir):
        source = row.get("source", "")
        kind = source_kind(source)
        name = provider(row["model_id"])
        by_region[(name, row.get("region") or "-")][kind] += 1
        by_provider[name][kind] += 1
        day = source_date(source)
        if day is None:
            undated[kind] += 1
        elif day < cutoff:
            stale.append(f"  {describe(table, row)}: source dated {day.isoformat()}")
        if unconfirmed(source):
            doubtful[f"{table}: {row['model_id']}"] += 1
        if apac_key(row):
            apac[row["model_id"]].append(f"{row['region']} {row['scope']}")

    def table_lines(title: str, counts: dict, label: str) -> list[str]:
        lines = [
            title,
            f"| {label} | " + " | ".join(COLUMNS) + " | total |",
            "|---" * (len(COLUMNS) + 2 + label.count("|")) + "|",
        ]
        total: Counter[str] = Counter()
        for key in sorted(counts):
            found = counts[key]
            total.update(found)
            name = " | ".join(key) if isinstance(key, tuple) else key
            cells = " | ".join(str(found[kind]) for kind in COLUMNS)
            lines.append(f"| {name} | {cells} | {sum(found.values())} |")
        pad = " | " * (label.count("|"))
        cells = " | ".join(str(total[kind]) for kind in COLUMNS)
        lines.append(f"| all{pad} | {cells} | {sum(total.values())} |")
        return lines

    out = [f"Price table provenance, {today.isoformat()} ({', '.join(TABLES)})", ""]
    out += table_lines("Rows per provider:", by_provider, "provider")
    out += [""]
    out += table_lines("Rows per provider and region (`-`: tables without a region):", by_region, "provider | region")
    out += ["", f"Rows whose dated source is older than {STALE_DAYS} days (before {cutoff.isoformat()}): {len(stale)}"]
    out += stale
    out += [
        "Rows whose source states no date read or effective: "
        + ", ".join(f"{kind} {undated[kind]}" for kind in COLUMNS if undated[kind]),
        "",
        f"Rows marked unconfirmed: {sum(doubtful.values())}",
        *(f"  {name}: {count}" for name, count in sorted(doubtful.items())),
        "",
        f"APAC rows from an apac. key of the public file (apac. key, not region evidence): "
        f"{sum(len(v) for v in apac.values())}",
    ]
    out += [f"  {model}: {', '.join(sorted(where))}" for model, where in sorted(apac.items())]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--today", type=date.fromisoformat, default=date.today(), help="YYYY-MM-DD (default: today)")
    parser.add_argument("--pricing-dir", type=Path, default=PRICING_DIR)
    args = parser.parse_args(argv)
    print(audit(args.pricing_dir, args.today))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
