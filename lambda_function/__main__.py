"""Command line: `python -m lambda_function [--date D | --start S --end E] [--no-email] [--out DIR]`.

Same fields as the Lambda event, same JSON on stdout; logs go to stderr. Uses the normal AWS credential chain
and honours AWS_ENDPOINT_URL (e.g. a local moto server).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .config import load_config
from .errors import ReportError
from .handler import AwsClients, ReportRun, run_report


def build_event(args: argparse.Namespace) -> dict[str, Any]:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lambda_function", description=__doc__.splitlines()[0])
    parser.add_argument("--date", help="one day in REPORT_TIMEZONE, e.g. 2026-11-20")
    parser.add_argument("--start", help="window start (ISO 8601 with offset, or a date), inclusive")
    parser.add_argument("--end", help="window end (ISO 8601 with offset, or a date), exclusive")
    parser.add_argument("--recipients", help="comma-separated e-mail addresses (default: RECIPIENTS)")
    parser.add_argument("--no-email", action="store_true", help="write the CSV to S3 but send no email")
    parser.add_argument("--out", type=Path, help="also write the CSV, the .eml and the HTML body to this folder")
    parser.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "INFO"))
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=args.log_level, format="%(levelname)s %(name)s: %(message)s")

    try:
        config = load_config(os.environ)
        run = run_report(build_event(args), config, AwsClients(config.default_region), now=datetime.now(UTC))
    except ReportError as err:
        print(json.dumps({"status": "error", "error": {"type": type(err).__name__, "message": str(err)}}, indent=2))
        return 2
    if args.out and run.response["status"] == "ok":
        run.response["local_files"] = write_outputs(run, args.out)
    print(json.dumps(run.response, indent=2))
    return 0 if run.response["status"] == "ok" else 2


if __name__ == "__main__":
    sys.exit(main())
