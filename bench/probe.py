"""Runs the CLI and writes what it cost to the file named by BENCH_PROBE_OUT: CPU seconds after the imports
(every thread of the process) and the process's peak RSS. `python -m bench.probe <CLI arguments>`."""

from __future__ import annotations

import json
import os
import resource
import sys
import time

from botocore.config import Config

import lambda_function.__main__ as cli  # the imports the measurement leaves out: pandas, boto3, the package
from lambda_function.aws import AwsClients

# The double answers a query in one go, in the server process; over 100,000 events that can outlast botocore's
# read timeout, whose retry would then ask again. The service answers polls at once.
AwsClients._config = AwsClients._config.merge(Config(read_timeout=900))

if __name__ == "__main__":
    before = time.process_time()
    if os.environ.get("BENCH_PROFILE"):  # a cProfile of the run, for finding where the time goes
        import cProfile

        with cProfile.Profile() as profile:
            code = cli.main(sys.argv[1:])
        profile.dump_stats(os.environ["BENCH_PROFILE"])
    else:
        code = cli.main(sys.argv[1:])
    cpu = time.process_time() - before
    with open(os.environ["BENCH_PROBE_OUT"], "w", encoding="utf-8") as out:
        json.dump({"exit": code, "cpu_s": cpu, "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}, out)
    sys.exit(code)
