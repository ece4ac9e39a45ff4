"""How the report scales: queries, rows fetched and the handler's own time and memory, as events and
(identity, model) groups grow — including a day with more groups than one query may return (window splits).

Run: `make bench` (or `.venv/bin/python -m bench.bench_report`). Prints a Markdown table for the README.
The Logs Insights double's own time (our stand-in for the service) is measured apart and subtracted.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.config import Config as BotoConfig

from lambda_function.config import load_config
from lambda_function.handler import AwsClients, run_report
from local_aws.embedded import embedded_aws
from local_aws.generate import generate_records, put_records
from local_aws.insights import InsightsDouble

GROUP = "/aws/bedrock/bench"
BUCKET = "bench-reports"


@dataclass
class Scenario:
    events: int
    identities: int


SCENARIOS = [
    Scenario(10_000, 20),
    Scenario(50_000, 20),
    Scenario(100_000, 20),
    Scenario(50_000, 500),
    Scenario(20_000, 3_000),  # ~15,000 groups > 10,000 rows per query: the window is split
]


class TimedDouble(InsightsDouble):
    """The double, with the time it spends answering kept apart from the product's."""

    def __init__(self) -> None:
        super().__init__(polls_until_running=0, polls_until_complete=0)
        self.seconds = 0.0
        self.rows_returned = 0

    def start_query(self, *args: Any) -> dict[str, Any]:
        t = time.perf_counter()
        try:
            return super().start_query(*args)
        finally:
            self.seconds += time.perf_counter() - t

    def get_query_results(self, *args: Any) -> dict[str, Any]:
        t = time.perf_counter()
        try:
            result = super().get_query_results(*args)
            self.rows_returned += len(result.get("results", []))
            return result
        finally:
            self.seconds += time.perf_counter() - t


def _patient_clients() -> None:
    # The double answers a query in one go on the first poll; over 100,000 events that can outlast botocore's
    # read timeout, whose retries would then count the double's time twice.
    AwsClients._config = AwsClients._config.merge(BotoConfig(read_timeout=900))


def run(scenario: Scenario) -> dict[str, Any]:
    day = datetime.now(UTC).date() - timedelta(days=1)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    identities = [(f"arn:aws:iam::123456789012:user/u{n:05d}", 1.0) for n in range(scenario.identities)]
    records = generate_records(start, start + timedelta(days=1), count=scenario.events, seed=3, identities=identities)
    double = TimedDouble()
    with embedded_aws(insights=double) as aws:
        aws.client("s3").create_bucket(Bucket=BUCKET)
        put_records(aws.client("logs"), GROUP, records)
        del records
        # One query at a time, so that the double's time (answered in this process) can be subtracted.
        os.environ.update(
            {"LOG_GROUP_NAMES": GROUP, "REPORT_BUCKET": BUCKET, "REPORT_TIMEZONE": "UTC", "QUERY_CONCURRENCY": "1"}
        )
        config = load_config(os.environ)
        t = time.perf_counter()
        result = run_report(
            {"date": day.isoformat(), "send_email": False},
            config,
            AwsClients(config.default_region),
            now=datetime.now(UTC),
            sleep=lambda s: None,
        )
        wall = time.perf_counter() - t
        # ru_maxrss is KiB on Linux: the process's peak so far (moto, the double and the handler together)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    response = result.response
    return {
        "events": scenario.events,
        "identities": scenario.identities,
        "rows": response["rows"],
        "queries": result.totals.queries,
        "splits": result.totals.splits,
        "rows_fetched": double.rows_returned,
        "double_s": double.seconds,
        "handler_s": wall - double.seconds,
        "peak_mib": peak / 2**20,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the first two scenarios")
    parser.add_argument("--only", type=int, nargs="*", help="scenario numbers (1-based) to run")
    args = parser.parse_args(argv)
    _patient_clients()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto server's access log
    print(
        "| events | identities | CSV rows | queries | splits | rows fetched | handler's own time (s) "
        "| process peak RSS so far, MiB (incl. moto and the double) | double's time (s) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    chosen = [SCENARIOS[n - 1] for n in args.only] if args.only else SCENARIOS[:2] if args.quick else SCENARIOS
    for scenario in chosen:
        r = run(scenario)
        print(
            f"| {r['events']:,} | {r['identities']:,} | {r['rows']:,} | {r['queries']} | {r['splits']} "
            f"| {r['rows_fetched']:,} | {r['handler_s']:.2f} | {r['peak_mib']:.1f} | {r['double_s']:.1f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
