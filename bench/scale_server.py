"""The embedded AWS of the scale benchmark, in a process of its own so that the CLI's CPU and memory are its own.

Run by `bench.bench_scale`: generates one day of logs with exactly the asked number of (identity, model) groups
(or, `--naive`, plain invocations), prints `{"endpoint": ...}` on stdout, then answers `stats` lines with what the
Logs Insights double served (rows by status, response bytes) until stdin closes.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from local_aws.embedded import embedded_aws
from local_aws.generate import put_records, records_for_groups
from local_aws.insights import InsightsDouble

GROUP = "/aws/bedrock/bench"
BUCKET = "bench-reports"


class CountingDouble(InsightsDouble):
    """The double, counting what it hands out: rows of Complete and of Running answers, and response bytes."""

    def __init__(self, max_limit: int) -> None:
        super().__init__(polls_until_running=0, polls_until_complete=2, max_limit=max_limit)
        self.complete_rows = 0
        self.running_rows = 0
        self.response_bytes = 0
        self.seconds = 0.0

    def get_query_results(self, *args: Any) -> dict[str, Any]:
        t = time.perf_counter()
        answer = super().get_query_results(*args)
        self.seconds += time.perf_counter() - t
        rows = len(answer.get("results", []))
        if answer.get("status") == "Complete":
            self.complete_rows += rows
        else:
            self.running_rows += rows
        self.response_bytes += len(json.dumps(answer))
        return answer

    def stats(self) -> dict[str, Any]:
        return {
            "queries": len(self.started),
            "limits": sorted({q.limit for q in self.started}),
            "complete_rows": self.complete_rows,
            "running_rows": self.running_rows,
            "response_bytes": self.response_bytes,
            "double_s": round(self.seconds, 2),
        }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--groups", type=int, required=True)
    parser.add_argument("--calls-per-group", type=int, default=2)
    parser.add_argument("--date", type=date.fromisoformat, required=True)
    parser.add_argument("--max-limit", type=int, default=100_000, help="the largest StartQuery limit accepted")
    parser.add_argument("--tenants", type=int, default=0, help="groups are (identity, model, tenant)")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    start = datetime(args.date.year, args.date.month, args.date.day, tzinfo=UTC)
    double = CountingDouble(args.max_limit)
    with embedded_aws(insights=double) as aws:
        aws.client("s3").create_bucket(Bucket=BUCKET)
        records = records_for_groups(
            start,
            start + timedelta(days=1),
            groups=args.groups,
            calls_per_group=args.calls_per_group,
            tenants=args.tenants,
        )
        events = put_records(aws.client("logs"), GROUP, records)
        print(json.dumps({"endpoint": aws.endpoint, "events": events}), flush=True)
        for line in sys.stdin:
            if line.strip() == "stats":
                print(json.dumps(double.stats()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
