"""Maintainer's cross-check against LiteLLM's public price file, through the product's own CLI.

Every Bedrock text and embedding entry of the file becomes 20 calls of 50,000 input (and, for chat models,
50,000 output) tokens made by an identity of its own, from the source region the entry names; the day's logs go
to the embedded AWS, `python -m lambda_function` reports them, and each CSV row is compared with what LiteLLM
says 1M input + 1M output tokens cost. It prints the share priced, the entries we leave unpriced and why, and
every price more than 1 % apart, with the reason from `litellm_differences.csv` or UNEXPLAINED.

    pip download --no-deps litellm
    unzip -p litellm-*.whl litellm/model_prices_and_context_window_backup.json > /tmp/litellm.json
    python -m pricing.crosscheck /tmp/litellm.json            (make pricing-crosscheck LITELLM=/tmp/litellm.json)

LiteLLM's file is read as data; nothing of it is shipped. 50,000 tokens a call keep every call below the lowest
long-context threshold (100K), so a standard price is compared with a standard price.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import fnmatch
import io
import json
import re
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

PRICING = Path(__file__).resolve().parent
PROVIDERS = ("bedrock", "bedrock_converse")  # bedrock_mantle is the OpenAI-compatible endpoint: not in these logs
MODES = ("chat", "completion", "embedding")
CALLS = 20
TOKENS_PER_CALL = 50_000
ACCOUNT = "123456789012"
# A geography key names no source region; each is tried from one region of its geography.
GEO_REGION = {
    "us": "us-east-1",
    "eu": "eu-central-1",
    "apac": "ap-southeast-1",
    "jp": "ap-northeast-1",
    "au": "ap-southeast-2",
    "in": "ap-south-1",
    "global": "us-east-1",
    "us-gov": "us-gov-west-1",
}
_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
_MODEL_ID = re.compile(r"^[a-z0-9-]+\.[a-z0-9][a-z0-9.:-]*$")
TOLERANCE = Decimal("0.01")


@dataclass(frozen=True)
class Entry:
    key: str  # LiteLLM's key
    model_id: str  # as a caller would log it
    region: str
    expected: Decimal  # LiteLLM's price of 1M input (+ 1M output) tokens
    chat: bool


def _per_million(value: Any) -> Decimal:
    return Decimal(str(value or 0)) * Decimal(1_000_000)


def entries(prices: Mapping[str, Any]) -> tuple[list[Entry], list[tuple[str, str]]]:
    """The Bedrock text/embedding entries, and the keys set aside with why (not a model id a caller logs)."""
    found: list[Entry] = []
    skipped: list[tuple[str, str]] = []
    for key, spec in sorted(prices.items()):
        if not isinstance(spec, dict) or spec.get("litellm_provider") not in PROVIDERS:
            continue
        if spec.get("mode") not in MODES:
            continue
        if "input_cost_per_second" in spec:
            skipped.append((key, "provisioned-throughput commitment, billed by the hour"))
            continue
        if spec.get("input_cost_per_token") is None and any("per_video" in name for name in spec):
            skipped.append((key, "video model billed per second of video, not per token"))
            continue
        rest, region = key, ""
        if rest.startswith("bedrock/"):
            first, _, remainder = rest.removeprefix("bedrock/").partition("/")
            if not _REGION.match(first) or not remainder:
                skipped.append((key, f"route or alias '{first}', not a region"))
                continue
            region, rest = first, remainder
        prefix, _, base = rest.partition(".")
        if prefix in GEO_REGION and _MODEL_ID.match(base):
            region = region or GEO_REGION[prefix]
        elif not _MODEL_ID.match(rest):
            skipped.append((key, "not a Bedrock model id"))
            continue
        chat = spec["mode"] != "embedding"
        expected = _per_million(spec.get("input_cost_per_token"))
        if chat:
            expected += _per_million(spec.get("output_cost_per_token"))
        found.append(Entry(key, rest, region or "us-east-1", expected, chat))
    return found, skipped


def records(found: Iterable[Entry], start: datetime) -> list[dict[str, Any]]:
    """CALLS invocation-log records per entry, each entry its own identity."""
    out = []
    for n, entry in enumerate(found):
        for call in range(CALLS):
            record: dict[str, Any] = {
                "schemaType": "ModelInvocationLog",
                "schemaVersion": "1.0",
                "timestamp": (start + timedelta(seconds=n * CALLS + call)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "accountId": ACCOUNT,
                "identity": {"arn": identity(n)},
                "region": entry.region,
                "requestId": f"crosscheck-{n}-{call}",
                "operation": "Converse" if entry.chat else "InvokeModel",
                "modelId": entry.model_id,
                "input": {"inputContentType": "application/json", "inputTokenCount": TOKENS_PER_CALL},
                "output": {"outputContentType": "application/json"},
            }
            if entry.chat:
                record["output"]["outputTokenCount"] = TOKENS_PER_CALL
            out.append(record)
    return out


def identity(n: int) -> str:
    return f"arn:aws:iam::{ACCOUNT}:user/crosscheck-{n:04d}"


def explanations(path: Path = PRICING / "litellm_differences.csv") -> list[tuple[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return [(row["key_pattern"].strip(), row["reason"].strip()) for row in csv.DictReader(handle)]


def explain(key: str, reasons: list[tuple[str, str]]) -> str:
    return next((reason for pattern, reason in reasons if fnmatch.fnmatchcase(key, pattern)), "UNEXPLAINED")


@dataclass
class Outcome:
    entries: int
    priced: int
    unpriced: list[tuple[Entry, str]]
    differences: list[tuple[Entry, Decimal, str]]  # (entry, our price, why)
    skipped: list[tuple[str, str]]

    @property
    def share(self) -> Decimal:
        return (Decimal(100) * self.priced / self.entries).quantize(Decimal("0.1")) if self.entries else Decimal(0)


def compare(found: list[Entry], csv_rows: list[dict[str, str]], skipped: list[tuple[str, str]]) -> Outcome:
    by_identity = {row["Identity ARN"]: row for row in csv_rows}
    reasons = explanations()
    outcome = Outcome(len(found), 0, [], [], skipped)
    for n, entry in enumerate(found):
        row = by_identity[identity(n)]
        if not row["Charges incurred"]:
            outcome.unpriced.append((entry, row["Pricing status"]))
            continue
        outcome.priced += 1
        ours = Decimal(row["Charges incurred"])
        if entry.expected == 0 and ours == 0:
            continue
        if entry.expected == 0 or abs(ours - entry.expected) / entry.expected > TOLERANCE:
            outcome.differences.append((entry, ours, explain(entry.key, reasons)))
    return outcome


def run_cli(found: list[Entry], day: datetime) -> list[dict[str, str]]:
    """The day's records through `python -m lambda_function` on the embedded AWS; the CSV it wrote."""
    from lambda_function.__main__ import main as cli  # imported late: the embedded AWS sets the environment first
    from local_aws.embedded import embedded_aws, environment
    from local_aws.generate import put_records

    bucket = "crosscheck-reports"
    with embedded_aws() as aws, tempfile.TemporaryDirectory() as out:
        aws.client("s3").create_bucket(Bucket=bucket)
        put_records(aws.client("logs"), "/crosscheck", records(found, day))
        settings = {"LOG_GROUP_NAMES": "/crosscheck", "REPORT_BUCKET": bucket, "REPORT_TIMEZONE": "UTC"}
        answer = io.StringIO()
        with environment(settings), contextlib.redirect_stdout(answer):
            code = cli(["--date", day.date().isoformat(), "--no-email", "--out", out, "--log-level", "WARNING"])
        response = json.loads(answer.getvalue())
        if code != 0:
            raise SystemExit(f"the CLI failed: {json.dumps(response)}")
        text = Path(response["local_files"]["csv"]).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def report(outcome: Outcome) -> str:
    lines = [f"{outcome.priced} of {outcome.entries} LiteLLM Bedrock text/embedding entries priced ({outcome.share} %)"]
    reasons = Counter(why for _, why in outcome.skipped)
    lines += [f"  set aside: {count} keys, {why}" for why, count in sorted(reasons.items())]
    if outcome.unpriced:
        lines.append("\nUnpriced:")
        lines += [f"  {entry.key} ({entry.model_id} from {entry.region}): {why}" for entry, why in outcome.unpriced]
    if outcome.differences:
        lines.append("\nMore than 1 % apart (ours vs LiteLLM, 1M input + 1M output tokens):")
        for entry, ours, why in outcome.differences:
            lines.append(f"  {entry.key} from {entry.region}: ${ours:f} vs ${entry.expected.normalize():f} — {why}")
    unexplained = sum(1 for *_, why in outcome.differences if why == "UNEXPLAINED")
    lines.append(f"\n{len(outcome.differences)} differences, {unexplained} unexplained")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pricing.crosscheck", description=__doc__.splitlines()[0])
    parser.add_argument("litellm_json", type=Path, help="LiteLLM's model_prices_and_context_window JSON")
    args = parser.parse_args(argv)
    found, skipped = entries(json.loads(args.litellm_json.read_text(encoding="utf-8")))
    # moto keeps 14 days of logs: the calls are yesterday's
    day = datetime.combine(datetime.now(UTC).date() - timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    outcome = compare(found, run_cli(found, day), skipped)
    print(report(outcome))
    unexplained = any(why == "UNEXPLAINED" for *_, why in outcome.differences)
    return 1 if unexplained or outcome.share < 98 else 0


if __name__ == "__main__":
    sys.exit(main())
