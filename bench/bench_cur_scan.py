"""What the bill's query reads of a CUR 2.0 export: one month's partition, and of it only the columns the query names
(Parquet column pruning, as Athena does it). A generated month (`--lines` a day, Bedrock and other services, the
export's column types) is written as Parquet by DuckDB; its metadata gives the compressed bytes per column.

    python -m bench.bench_cur_scan [--lines 10000] [--days 30]

Athena bills $5 per TB scanned (10 MB at least a query); the embedded engine downloads the partition's objects whole.
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
from datetime import UTC, datetime
from decimal import Decimal

from lambda_function.bill.cur import settled_query
from local_aws.cur_parquet import CUR_COLUMNS

ATHENA_USD_PER_TB = Decimal(5)


def generate(path: str, days: int, lines: int) -> None:
    import duckdb

    connection = duckdb.connect(":memory:")
    columns = ", ".join(f"{name} {kind}" for name, kind in CUR_COLUMNS.items())
    connection.execute(f"CREATE TABLE cur ({columns})")
    # a day's lines: 40 % Bedrock (a few hundred principals, a dozen usage types), the rest other services
    connection.execute(
        f"""
        INSERT INTO cur
        SELECT
          TIMESTAMP '2026-11-01', 'AWS',
          TIMESTAMP '2026-11-01' + INTERVAL (n // {lines}) DAY + INTERVAL (n % 24) HOUR,
          TIMESTAMP '2026-11-01' + INTERVAL (n // {lines}) DAY + INTERVAL (n % 24 + 1) HOUR,
          lpad(CAST(100000000000 + n % 7 AS VARCHAR), 12, '0'),
          CASE WHEN n % 50 = 0 THEN 'Tax' ELSE 'Usage' END,
          CASE WHEN n % 5 < 2 THEN 'AmazonBedrock' ELSE 'AmazonEC2' END,
          'USE1-' || CASE WHEN n % 5 < 2 THEN 'Model' || (n % 12) || '-input-tokens' ELSE 'BoxUsage:m5.large' END,
          'InvokeModel',
          (n % 997) / 1000.0, (n % 997) / 1000.0, n % 10000,
          'arn:aws:sts::123456789012:assumed-role/Role' || (n % 300) || '/session-' || (n % 9000),
          CASE WHEN n % 5 < 2 THEN 'AmazonBedrock' ELSE 'AmazonEC2' END,
          'us-east-1',
          MAP(['product_name', 'region'], [CASE WHEN n % 5 < 2 THEN 'Amazon Bedrock' ELSE 'Amazon EC2' END,
              'us-east-1']),
          MAP(['iamPrincipal/team'], ['team-' || (n % 40)])
        FROM range({days * lines}) t(n)
        """
    )
    connection.execute(f"COPY cur TO '{path}' (FORMAT parquet)")
    connection.close()


def column_bytes(path: str) -> dict[str, int]:
    import duckdb

    rows = duckdb.sql(
        f"SELECT path_in_schema, SUM(total_compressed_size) FROM parquet_metadata('{path}') GROUP BY 1"
    ).fetchall()
    sizes: dict[str, int] = {}
    for column, size in rows:
        top = str(column).split(",")[0].strip()  # a map's key and value chunks belong to the map column
        sizes[top] = sizes.get(top, 0) + int(size)
    return sizes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=10_000, help="CUR lines a day")
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args(argv)
    sql = settled_query(datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 11, 21, tzinfo=UTC))
    needed = {name for name in CUR_COLUMNS if re.search(rf"\b{name}\b", sql)}
    with tempfile.TemporaryDirectory(prefix="cur-scan-") as scratch:
        path = os.path.join(scratch, "part-0.parquet")
        generate(path, args.days, args.lines)
        total = os.path.getsize(path)
        sizes = column_bytes(path)
    read = sum(size for column, size in sizes.items() if column in needed)
    cost = max(read, 10 * 1000**2) * ATHENA_USD_PER_TB / Decimal(1000**4)
    print(
        f"month partition: {args.days} days x {args.lines:,} lines = {args.days * args.lines:,} lines, {total:,} bytes"
    )
    print(f"columns the query reads: {len(needed)} of {len(CUR_COLUMNS)} ({', '.join(sorted(needed))})")
    print(f"bytes those columns take (what Athena scans): {read:,} ({read / total:.0%} of the partition)")
    print(f"Athena cost per run: ${cost:.6f} (10 MB minimum); the embedded engine downloads {total:,} bytes")


if __name__ == "__main__":
    main()
