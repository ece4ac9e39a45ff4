"""LOG_SOURCE=s3: what a day of invocation logs delivered to S3 costs to read. A generated day (`--records`, the
demo's mix: 1 % long agent conversations) is written as Bedrock delivers it (gzip JSON lines, two objects an hour)
to a local folder, served to the embedded engine by a minimal S3 stand-in (ListObjectsV2, GetObject), and:

- the embedded engine runs the report's own query (`logs_sql.logs_query`) over the relation `S3LogsSource` builds:
  records per second, download and gunzip included;
- DuckDB's own reader over the same files, `read_json(..., format='newline_delimited', compression='gzip')`,
  counting the records per identity and model: the reference for what reading gzip JSON lines costs at all;
- the day's objects' bytes, compressed: what Athena scans for gzip text (it cannot skip within a gzip object) and
  bills, $5 per TB, 10 MB at least a query.

    python -m bench.bench_s3_logs [--records 100000 ...] [--million]

`--million` adds 1,000,000 records a day (a few minutes on 2 CPUs: generating the records in Python is most of it).
"""

from __future__ import annotations

import argparse
import gzip
import os
import platform
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from lambda_function.engine.choose import ATHENA_MIN_BYTES, scan_cost
from lambda_function.engine.embedded import EmbeddedEngine
from lambda_function.sources.logs_sql import LINES, logs_query
from lambda_function.sources.s3logs import S3LogsSource, logs_prefix
from local_aws.generate import generate_records
from local_aws.s3_delivery import delivered_objects

ACCOUNT = "123456789012"
REGION = "us-east-1"
LOCATION = "s3://bedrock-invocation-logs/bedrock"
DAY = datetime(2026, 11, 20, tzinfo=UTC)
THRESHOLDS = (200_000,)  # a context band, as the report asks for priced long-context tiers
ATTRIBUTION_KEYS = ("team",)


class _Body:
    def __init__(self, path: Path):
        self._path = path

    def iter_chunks(self, size: int):
        with self._path.open("rb") as source:
            while chunk := source.read(size):
                yield chunk


class FolderS3:
    """The two S3 calls the embedded engine makes, answered from `root/<bucket>/<key>` on the local disk."""

    def __init__(self, root: Path):
        self.root = root

    def list_objects_v2(self, *, Bucket: str, Prefix: str = "", Delimiter: str = "", **_: Any) -> dict[str, Any]:
        base = self.root / Bucket
        folder = base / Prefix.rsplit("/", 1)[0] if "/" in Prefix else base
        if not folder.is_dir():
            return {"Contents": [], "IsTruncated": False}
        paths = folder.iterdir() if Delimiter == "/" else folder.rglob("*")
        keys = sorted(str(p.relative_to(base)) for p in paths if p.is_file())
        contents = [{"Key": k, "Size": (base / k).stat().st_size} for k in keys if k.startswith(Prefix)]
        return {"Contents": contents, "IsTruncated": False}

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        return {"Body": _Body(self.root / Bucket / Key)}


def write_day(root: Path, records: int) -> tuple[list[Path], int, int]:
    """A day's records delivered under root/<bucket>/...: the objects, their bytes gzip and their bytes of text.
    Generated an hour at a time (a day of dicts would not fit in memory at 1M), no record delivered late."""
    bucket, prefix = logs_prefix(LOCATION, ACCOUNT, REGION)
    files: list[Path] = []
    compressed = plain = 0
    for hour in range(24):
        start = DAY + timedelta(hours=hour)
        count = records // 24 + (1 if hour < records % 24 else 0)
        day_part = generate_records(start, start + timedelta(hours=1), count=count, seed=hour, large_record_rate=0.01)
        for name, lines in delivered_objects(day_part).items():
            text = ("\n".join(lines) + "\n").encode("utf-8")
            body = gzip.compress(text, compresslevel=6, mtime=0)
            path = root / bucket / prefix / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
            files.append(path)
            compressed += len(body)
            plain += len(text)
    return files, compressed, plain


def engine_run(root: Path) -> tuple[float, float, int]:
    """The report's query, through the relation the S3 source builds, on the embedded engine: seconds, of them the
    seconds spent downloading and gunzipping, and the records matched."""
    config = SimpleNamespace(log_s3_location=LOCATION, default_region=REGION, log_table="", log_engine="embedded")
    aws = SimpleNamespace(account_id=lambda: ACCOUNT)
    source = S3LogsSource(config, aws, now=lambda: DAY + timedelta(days=2))  # type: ignore[arg-type]
    source.check()
    end = DAY + timedelta(days=1)
    sql = logs_query(DAY, end, THRESHOLDS, ATTRIBUTION_KEYS)
    engine = EmbeddedEngine(FolderS3(root), max_bytes=4 * 1024**3)
    fetching = [0.0]
    download_lines = engine._download_lines

    def timed_download(*args: Any, **kwargs: Any) -> Any:
        """The objects' download and gunzip, apart from DuckDB's query (the engine's own method, timed)."""
        began = time.perf_counter()
        try:
            return download_lines(*args, **kwargs)
        finally:
            fetching[0] += time.perf_counter() - began

    engine._download_lines = timed_download  # type: ignore[method-assign]
    began = time.perf_counter()
    answer = engine.run(sql, {LINES: source.relation(DAY, end, ())}, deadline=float("inf"))
    seconds = time.perf_counter() - began
    at = {name: i for i, name in enumerate(answer.columns)}
    matched = sum(int(row[at["in_window"]] or 0) for row in answer.rows if row[at["usage_row"]] == "0")
    return seconds, fetching[0], matched


def duckdb_reference(files: list[Path]) -> tuple[float, int, int]:
    """DuckDB reading the same gzip JSON lines itself, records per identity and model: seconds, records, groups."""
    import duckdb

    connection = duckdb.connect(":memory:")
    paths = "[" + ", ".join(f"'{f}'" for f in files) + "]"
    began = time.perf_counter()
    rows = connection.execute(
        f"""
        SELECT identity.arn, modelId, count(*) AS records
        FROM read_json({paths}, format = 'newline_delimited', compression = 'gzip',
                       columns = {{'identity': 'STRUCT(arn VARCHAR)', 'modelId': 'VARCHAR'}})
        GROUP BY ALL
        """
    ).fetchall()
    seconds = time.perf_counter() - began
    connection.close()
    return seconds, sum(row[2] for row in rows), len(rows)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_s3_logs", description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, nargs="+", default=[100_000], help="records a day (default 100000)")
    parser.add_argument("--million", action="store_true", help="also 1,000,000 records a day (a few minutes)")
    args = parser.parse_args(argv)
    sizes = sorted(set(args.records) | ({1_000_000} if args.million else set()))
    import duckdb  # noqa: F401  imported before the clocks start (the engine imports it on its first query)

    print(f"CPU: {cpu_model()}, {os.cpu_count()} CPUs; Python {platform.python_version()}")
    rows = []
    for records in sizes:
        scratch = Path(tempfile.mkdtemp(prefix="bench-s3-logs-"))
        try:
            began = time.perf_counter()
            files, compressed, plain = write_day(scratch, records)
            written = time.perf_counter() - began
            engine_seconds, fetch_seconds, matched = engine_run(scratch)
            reference_seconds, counted, groups = duckdb_reference(files)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        if matched != records or counted != records:
            raise SystemExit(f"{records:,} records written, the engine matched {matched:,}, DuckDB counted {counted:,}")
        cost = scan_cost("athena", compressed) or Decimal(0)
        rows.append(
            (
                f"{records:,}",
                f"{len(files)}",
                f"{compressed / 1e6:,.1f}",
                f"{plain / 1e6:,.1f}",
                f"{engine_seconds:.2f}",
                f"{fetch_seconds:.2f}",
                f"{records / engine_seconds:,.0f}",
                f"{reference_seconds:.2f}",
                f"{records / reference_seconds:,.0f}",
                f"{groups}",
                f"{compressed / 1e6:,.1f}" if compressed > ATHENA_MIN_BYTES else f"10 (min; {compressed / 1e6:,.1f})",
                f"${cost:.6f}",
            )
        )
        print(f"{records:,} records: generated and written in {written:.1f} s", flush=True)
    header = (
        "records a day",
        "objects",
        "gzip MB",
        "text MB",
        "engine query (s)",
        "of it download + gunzip (s)",
        "engine records/s",
        "DuckDB read_json (s)",
        "read_json records/s",
        "identity×model groups",
        "Athena MB scanned",
        "Athena $ a day",
    )
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---:" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
