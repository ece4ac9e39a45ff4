"""Scale benchmark: the report at 1k, 10k, 50k and 100k (identity, model) groups in a day, and the naive approach
(one raw row per invocation, the console sample's way) side by side at 10k and 50k invocations.

The embedded AWS (moto and the Logs Insights double) runs in a process of its own (`bench.scale_server`); the CLI
runs in another (`bench.probe`), so its CPU time after the imports and its peak RSS are the report's alone.
`make bench` prints Markdown tables for the README; `--groups 50010` runs one size.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3

from local_aws.embedded import FAKE_CREDENTIALS
from local_aws.generate import records_for_groups

from .bench_s3_logs import cpu_model
from .scale_server import BUCKET, GROUP

SIZES = (1_000, 10_000, 50_010, 100_000)
NAIVE_INVOCATIONS = (10_000, 50_000)
NAIVE_CALLS_PER_GROUP = 10
TOTALS = ("invocations", "input", "output", "cache_read", "cache_write")
_CSV = {
    "invocations": "Invocations",
    "input": "Number of Input tokens",
    "output": "Number of output tokens",
    "cache_read": "Cache read input tokens",
    "cache_write": "Cache write input tokens",
}


@dataclass
class Server:
    process: subprocess.Popen[str]
    endpoint: str
    events: int

    def stats(self) -> dict[str, Any]:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write("stats\n")
        self.process.stdin.flush()
        return dict(json.loads(self.process.stdout.readline()))

    def close(self) -> None:
        assert self.process.stdin
        self.process.stdin.close()
        self.process.wait(timeout=120)


def start_server(day: date, groups: int, calls_per_group: int, max_limit: int = 100_000, tenants: int = 0) -> Server:
    command = [sys.executable, "-m", "bench.scale_server", "--groups", str(groups), "--date", day.isoformat()]
    command += ["--calls-per-group", str(calls_per_group), "--max-limit", str(max_limit), "--tenants", str(tenants)]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout
    hello = json.loads(process.stdout.readline())
    return Server(process, hello["endpoint"], hello["events"])


def expected(day: date, groups: int, calls_per_group: int, tenants: int = 0) -> dict[tuple[str, ...], dict[str, int]]:
    """Ground truth from the same generator: totals per (identity, model), and tenant with `tenants`."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    truth: dict[tuple[str, ...], dict[str, int]] = defaultdict(lambda: dict.fromkeys(TOTALS, 0))
    days = records_for_groups(
        start, start + timedelta(days=1), groups=groups, calls_per_group=calls_per_group, tenants=tenants
    )
    for r in days:
        tenant = (r.get("requestMetadata", {}).get("tenant", ""),) if tenants else ()
        t = truth[(r["identity"]["arn"], r["modelId"], *tenant)]
        inp = r.get("input", {})
        t["invocations"] += 1
        t["input"] += inp.get("inputTokenCount", 0)
        t["output"] += r.get("output", {}).get("outputTokenCount", 0)
        t["cache_read"] += inp.get("cacheReadInputTokenCount", 0)
        t["cache_write"] += inp.get("cacheWriteInputTokenCount", 0)
    return truth


def report_totals(csv_path: Path, tenants: int = 0) -> dict[tuple[str, ...], dict[str, int]]:
    found: dict[tuple[str, ...], dict[str, int]] = defaultdict(lambda: dict.fromkeys(TOTALS, 0))
    with csv_path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            tenant = (row["tenant"],) if tenants else ()
            t = found[(row["Identity ARN"], row["Model Id"], *tenant)]
            for name, column in _CSV.items():
                t[name] += int(row[column])
    return found


def environment(endpoint: str) -> dict[str, str]:
    return {
        **os.environ,
        **FAKE_CREDENTIALS,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "LOG_GROUP_NAMES": GROUP,
        "REPORT_BUCKET": BUCKET,
        "REPORT_TIMEZONE": "UTC",
    }


def run_cli(server: Server, day: date, out: Path, tenants: int = 0) -> dict[str, Any]:
    """The report through the CLI in its own process: its answer, CPU after imports, peak RSS, and the floor."""
    probe_out = out / "probe.json"
    env = {**environment(server.endpoint), "BENCH_PROBE_OUT": str(probe_out)}
    if tenants:
        env["ATTRIBUTION_KEYS"] = "tenant"
    command = [sys.executable, "-m", "bench.probe", "--date", day.isoformat(), "--no-email", "--out", str(out)]
    command += ["--log-level", "WARNING"]
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    assert process.stdout
    answer = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"the CLI failed ({status}): {answer}")
    probe = json.loads(probe_out.read_text())
    return {
        "answer": json.loads(answer),
        "cpu_s": probe["cpu_s"],
        "peak_mib": probe["peak_rss_kib"] / 1024,  # before the floor is measured (wait4's would include it)
        "floor_s": probe["floor_s"],
        "body_bytes": probe["body_bytes"],
        "wall_s": wall,
    }


def scale(groups: int, day: date, max_limit: int = 100_000, tenants: int = 0, repeat: int = 1) -> dict[str, Any]:
    """One size: the CLI run `repeat` times against one server (each run exact), the run of the median ratio
    reported with the range of the ratios (on a shared 2-CPU machine one run's ratio moves by a few tenths)."""
    server = start_server(day, groups, 2, max_limit, tenants)
    truth = expected(day, groups, 2, tenants)
    runs, stats, exact = [], None, True
    try:
        for _ in range(repeat):
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp)
                runs.append(run_cli(server, day, out, tenants))
                stats = stats or server.stats()  # the first run's queries (the counters add up over runs)
                (csv_path,) = out.glob("*.csv")
                exact = exact and report_totals(csv_path, tenants) == truth
    finally:
        server.close()
    assert stats is not None
    ratios = sorted(r["cpu_s"] / r["floor_s"] if r["floor_s"] else float("nan") for r in runs)
    run = sorted(runs, key=lambda r: r["cpu_s"] / r["floor_s"] if r["floor_s"] else float("nan"))[len(runs) // 2]
    rows = int(run["answer"]["rows"])
    return {
        "groups": groups,
        "events": server.events,
        "rows": rows,
        "exact": exact,
        "queries": stats["queries"],
        "limits": stats["limits"],
        "rows_fetched": stats["complete_rows"],
        "per_group": stats["complete_rows"] / groups,
        "cpu_s": run["cpu_s"],
        "cpu_per_10k": run["cpu_s"] / max(1, stats["complete_rows"]) * 10_000,
        "peak_mib": run["peak_mib"],
        "floor_s": run["floor_s"],
        "ratio": run["cpu_s"] / run["floor_s"] if run["floor_s"] else float("nan"),
        "ratios": ratios,
        "peak_mib_max": max(r["peak_mib"] for r in runs),
        "bytes_per_group": run["body_bytes"] / groups,
        "tenants": tenants,
        "response_mib": stats["response_bytes"] / 2**20,
        "running_rows": stats["running_rows"],
    }


NAIVE_QUERY = """fields identity.arn as identity, modelId as model, input.inputTokenCount as input_tokens,
  output.outputTokenCount as output_tokens, input.cacheReadInputTokenCount as cache_read,
  input.cacheWriteInputTokenCount as cache_write
| filter schemaType = "ModelInvocationLog\""""


def naive(server: Server, day: date) -> dict[tuple[str, str], dict[str, int]]:
    """The console sample's way: one raw row per invocation (limit 10,000, its default), summed on the client."""
    logs = boto3.client("logs", region_name="us-east-1", endpoint_url=server.endpoint)
    start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
    query_id = logs.start_query(
        logGroupName=GROUP, startTime=start, endTime=start + 86_399, queryString=NAIVE_QUERY, limit=10_000
    )["queryId"]
    while (answer := logs.get_query_results(queryId=query_id))["status"] != "Complete":
        time.sleep(0.1)
    found: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys(TOTALS, 0))
    for row in answer["results"]:
        values = {f["field"]: f["value"] for f in row}
        t = found[(values.get("identity", ""), values.get("model", ""))]
        t["invocations"] += 1
        for name in ("input", "output", "cache_read", "cache_write"):
            t[name] += int(float(values.get(f"{name}_tokens" if name in ("input", "output") else name, 0) or 0))
    return found


def side_by_side(invocations: int, day: date) -> list[dict[str, Any]]:
    groups = invocations // NAIVE_CALLS_PER_GROUP
    truth = expected(day, groups, NAIVE_CALLS_PER_GROUP)
    lines = []
    for approach in ("naive", "this report"):
        server = start_server(day, groups, NAIVE_CALLS_PER_GROUP)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                if approach == "naive":
                    os.environ.update({k: v for k, v in environment(server.endpoint).items() if k.startswith("AWS")})
                    before, t = time.process_time(), time.perf_counter()
                    found = naive(server, day)
                    cpu, wall = time.process_time() - before, time.perf_counter() - t
                else:
                    run = run_cli(server, day, Path(tmp))
                    (csv_path,) = Path(tmp).glob("*.csv")
                    found, cpu, wall = report_totals(csv_path), run["cpu_s"], run["wall_s"]
                stats = server.stats()
        finally:
            server.close()
        counted = sum(t["invocations"] for t in found.values())
        lines.append(
            {
                "invocations": invocations,
                "approach": approach,
                "rows_fetched": stats["complete_rows"] + stats["running_rows"],
                "mib": stats["response_bytes"] / 2**20,
                "cpu_s": cpu,
                "wall_s": wall,
                "exact": found == truth,
                "counted": counted,
            }
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, nargs="*", help=f"sizes to run (default: {', '.join(map(str, SIZES))})")
    parser.add_argument("--no-naive", action="store_true", help="skip the side-by-side with the naive approach")
    parser.add_argument(
        "--service-limit", type=int, default=100_000, help="the largest limit the service accepts (10000: fallback)"
    )
    parser.add_argument(
        "--tenants", type=int, default=0, help="groups are (identity, model, tenant): one attribution key, N tenants"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="CLI runs per size; the median ratio is shown (default 3)"
    )
    args = parser.parse_args(argv)
    day = datetime.now(UTC).date() - timedelta(days=1)
    print(f"CPU: {cpu_model()}, {os.cpu_count()} CPUs")
    print(
        "| groups | events | CSV rows | exact | queries | rows fetched (per group) | CLI CPU after import (s) "
        "| decode floor (s) | ratio (range) | GetQueryResults bytes / group | CLI peak RSS (MiB, largest) "
        "| Running rows sent |"
    )
    print("|---:|---:|---:|:-:|---:|---:|---:|---:|---:|---:|---:|---:|")
    sizes = args.groups or SIZES
    runs = [(groups, args.tenants) for groups in sizes]
    if not args.groups:
        runs.append((200_000, 4))  # the multi-tenant day: one attribution key, 4 tenants per (identity, model)
    for groups, tenants in runs:
        r = scale(groups, day, args.service_limit, tenants, max(1, args.repeat))
        label = f"{r['groups']:,}" + (f" ({tenants} tenants)" if tenants else "")
        limit = " (limit " + format(r["limits"][-1], ",") + ")" if r["limits"] != [100_000] else ""
        print(
            f"| {label} | {r['events']:,} | {r['rows']:,} | {'yes' if r['exact'] else '**no**'} "
            f"| {r['queries']}{limit} | {r['rows_fetched']:,} ({r['per_group']:.3f}) | {r['cpu_s']:.2f} "
            f"| {r['floor_s']:.2f} | {r['ratio']:.2f} ({r['ratios'][0]:.2f}–{r['ratios'][-1]:.2f}) "
            f"| {r['bytes_per_group']:,.0f} | {r['peak_mib_max']:.0f} "
            f"| {r['running_rows']:,} |",
            flush=True,
        )
    if args.no_naive or args.groups or args.service_limit != 100_000:
        return 0
    print()
    print("| invocations | approach | rows transferred | MiB transferred | client CPU (s) | wall (s) | exact |")
    print("|---:|---|---:|---:|---:|---:|---|")
    for invocations in NAIVE_INVOCATIONS:
        for line in side_by_side(invocations, day):
            exact = "yes" if line["exact"] else f"**no**: {line['counted']:,} of {invocations:,} invocations"
            print(
                f"| {line['invocations']:,} | {line['approach']} | {line['rows_fetched']:,} | {line['mib']:.1f} "
                f"| {line['cpu_s']:.2f} | {line['wall_s']:.1f} | {exact} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
