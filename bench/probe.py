"""Runs the CLI and writes what it cost to the file named by BENCH_PROBE_OUT: CPU seconds after the imports
(every thread of the process, less the probe's own writing of the bodies it records) and the process's peak RSS.
`python -m bench.probe <CLI arguments>`."""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

from botocore.config import Config

import lambda_function.__main__ as cli  # the imports the measurement leaves out: pandas, boto3, the package
from lambda_function.aws import AwsClients

# The double answers a query in one go, in the server process; over 100,000 events that can outlast botocore's
# read timeout, whose retry would then ask again. The service answers polls at once.
AwsClients._config = AwsClients._config.merge(Config(read_timeout=900))


class _Recording:
    """The Logs Insights reader's raw-body hook, writing each GetQueryResults body it reads to a file (not kept in
    memory: the peak RSS stays the report's): the floor, `json.loads` of exactly those bodies, is measured after
    the run, in the same process, on the same machine."""

    def __init__(self, path: str, hook: Callable[..., None]) -> None:
        self.file = open(path, "wb")  # noqa: SIM115 - open for the run
        self.sizes: list[int] = []
        self.hook = hook
        self.seconds = 0.0  # the CPU this recording costs (not the report's: subtracted from its CPU)

    def __call__(self, response_dict: dict[str, Any], **kwargs: Any) -> None:
        body = response_dict.get("body")
        if response_dict.get("status_code", 500) < 300 and isinstance(body, bytes | str) and body:
            started = time.thread_time()
            data = body.encode() if isinstance(body, str) else bytes(body)
            self.file.write(data)
            self.file.flush()
            self.sizes.append(len(data))
            self.seconds += time.thread_time() - started
        self.hook(response_dict=response_dict, **kwargs)


def decode_floor(path: str, sizes: list[int]) -> float:
    """CPU seconds to json.loads every body (the least any reader of these answers must spend): the best of 3."""
    with open(path, "rb") as bodies_file:
        bodies = [bodies_file.read(size) for size in sizes]
    best = float("inf")
    for _ in range(3):
        before = time.process_time()
        for body in bodies:
            json.loads(body)
        best = min(best, time.process_time() - before)
    return best


if __name__ == "__main__":
    import lambda_function.sources.insights as insights_reader

    bodies_path = os.environ["BENCH_PROBE_OUT"] + ".bodies"
    recording = _Recording(bodies_path, insights_reader._read_rows_raw)
    insights_reader._read_rows_raw = recording  # type: ignore[assignment]  # registered on the logs client later
    before = time.process_time()
    if os.environ.get("BENCH_PROFILE"):  # a cProfile of the run, for finding where the time goes
        import cProfile

        with cProfile.Profile() as profile:
            code = cli.main(sys.argv[1:])
        profile.dump_stats(os.environ["BENCH_PROFILE"])
    else:
        code = cli.main(sys.argv[1:])
    cpu = time.process_time() - before - recording.seconds
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    recording.file.close()
    floor = decode_floor(bodies_path, recording.sizes)
    size = sum(recording.sizes)
    with open(os.environ["BENCH_PROBE_OUT"], "w", encoding="utf-8") as out:
        probe = {"exit": code, "cpu_s": cpu, "peak_rss_kib": peak, "floor_s": floor, "body_bytes": size}
        json.dump({**probe, "recording_s": recording.seconds}, out)
    sys.exit(code)
