"""Command line: `python -m lambda_function [--date D | --start S --end E] [--no-email] [--out DIR] [--timeout S]`.

Same fields as the Lambda event, same JSON on stdout, errors included (exit 2); logs go to stderr, and a traceback
only with --debug. Uses the normal AWS credential chain and honours AWS_ENDPOINT_URL (e.g. a local moto server).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambda_function.config import load_config
from lambda_function.errors import ReportError
from lambda_function.handler import DEFAULT_TIMEOUT_SECONDS, AwsClients, ReportRun, run_report


def build_event(args: argparse.Namespace) -> dict[str, Any]:
    if args.refresh_prices:
        return {"refresh_prices": True}
    event: dict[str, Any] = {}
    for name in ("start", "end", "date"):
        if getattr(args, name) is not None:
            event[name] = getattr(args, name)
    if args.recipients is not None:
        event["recipients"] = [r.strip() for r in args.recipients.split(",") if r.strip()]
    if args.no_email:
        event["send_email"] = False
    return event


def write_outputs(run: ReportRun, out: Path) -> dict[str, str]:
    """The CSV, the raw email (.eml) and its HTML body, named after the S3 object."""
    out.mkdir(parents=True, exist_ok=True)
    stem = run.response["s3_uri"].rsplit("/", 1)[-1].removesuffix(".csv")
    paths = {"csv": out / f"{stem}.csv", "eml": out / f"{stem}.eml", "html": out / f"{stem}.html"}
    paths["csv"].write_bytes(run.csv)
    paths["eml"].write_bytes(run.message)
    paths["html"].write_text(run.html, encoding="utf-8")
    return {name: str(path) for name, path in paths.items()}


def _error(err: BaseException) -> dict[str, Any]:
    error: dict[str, Any] = {"type": type(err).__name__, "message": str(err)}
    for name in ("field", "variable"):
        if hasattr(err, name):
            error[name] = getattr(err, name)
    if isinstance(err, ClientError):
        error["type"] = "ClientError"
        error["code"] = err.response.get("Error", {}).get("Code", "")
    return {"status": "error", "error": error}


def main(
    argv: list[str] | None = None,
    *,
    session: Any = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    parser = argparse.ArgumentParser(prog="python -m lambda_function", description=__doc__.splitlines()[0])
    parser.add_argument("--date", help="one day in REPORT_TIMEZONE, e.g. 2026-11-20")
    parser.add_argument("--start", help="window start (ISO 8601 with offset, or a date), inclusive")
    parser.add_argument("--end", help="window end (ISO 8601 with offset, or a date), exclusive")
    parser.add_argument("--recipients", help="comma-separated e-mail addresses (default: RECIPIENTS)")
    parser.add_argument("--no-email", action="store_true", help="write the CSV to S3 but send no email")
    parser.add_argument(
        "--refresh-prices", action="store_true", help="refresh the price table from the AWS Price List (no report)"
    )
    parser.add_argument("--out", type=Path, help="also write the CSV, the .eml and the HTML body to this folder")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_SECONDS,
        help="seconds the run may take, as Lambda's timeout does (default: %(default)s)",
    )
    parser.add_argument("--debug", action="store_true", help="print the traceback of an error to stderr")
    parser.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "INFO"))
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=args.log_level, format="%(levelname)s %(name)s: %(message)s")
    if args.timeout <= 0:
        parser.error("--timeout must be a positive number of seconds")
    if args.refresh_prices and any(getattr(args, n) for n in ("date", "start", "end", "recipients", "no_email")):
        parser.error("--refresh-prices runs the price refresh alone: give it no report options")

    try:
        config = load_config(os.environ)
        aws = AwsClients(config.default_region, session=session)
        run = run_report(
            build_event(args), config, aws, now=datetime.now(UTC), clock=clock, sleep=sleep, timeout=args.timeout
        )
    except (ReportError, ClientError, BotoCoreError) as err:
        if args.debug:
            traceback.print_exc(file=sys.stderr)
        print(json.dumps(_error(err), indent=2))
        return 2
    except Exception as err:  # a defect of ours: still an answer in JSON, and the traceback on request
        if args.debug:
            traceback.print_exc(file=sys.stderr)
        answer = _error(err)
        answer["error"]["message"] += " (an internal error; run with --debug for the traceback)"
        print(json.dumps(answer, indent=2))
        return 1
    if args.out and run.response["status"] == "ok":
        run.response["local_files"] = write_outputs(run, args.out)
    print(json.dumps(run.response, indent=2))
    return 0 if run.response["status"] == "ok" else 2


if __name__ == "__main__":
    sys.exit(main())
