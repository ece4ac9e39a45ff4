"""`make demo`: a realistic day of Bedrock invocation logs on an embedded AWS, the real handler, and what a
user would receive — the CSV downloaded back from S3 and the email read back from SES — written to out/.
"""

from __future__ import annotations

import argparse
import email
import json
import logging
import os
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from lambda_function import lambda_handler
from lambda_function.pricing import price_list_names
from lambda_function.pricing.model_ids import ModelCatalog
from lambda_function.pricing.price_list import PRICING_DIR

from .cost_explorer import LineItem
from .cur import EXPORT, DemoExport
from .embedded import EmbeddedAws, embedded_aws
from .generate import DEFAULT_MODELS, default_identities, generate_records, permission_check_line, put_records
from .insights import InsightsDouble
from .s3_delivery import put_delivered

LOG_GROUP = "/aws/bedrock/modelinvocations"
BUCKET = "demo-bedrock-usage-reports"
SENDER = "Bedrock reports <reports@example.com>"
RECIPIENTS = "finops@example.com,platform-team@example.com"
# LOG_SOURCE=s3: where the demo's logging configuration delivers the invocation logs (every day it generates is
# written there too, as Bedrock writes it: gzip JSON lines in hour folders, some records in the next hour's folder)
LOGS_BUCKET = "bedrock-invocation-logs"
LOG_LOCATION = f"s3://{LOGS_BUCKET}/bedrock"
ACCOUNT = "123456789012"
REGION = "us-east-1"
LATE_SECONDS = 30
LOG_SOURCES = ("cloudwatch", "s3")


@dataclass
class FakeLambdaContext:
    """Enough of Lambda's context object for the handler's deadline: a 15-minute function."""

    timeout_ms: int = 15 * 60 * 1000

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_ms


def seed_account(aws: EmbeddedAws, records: list[dict[str, Any]]) -> None:
    aws.client("s3").create_bucket(Bucket=BUCKET)
    aws.client("ses").verify_email_identity(EmailAddress="reports@example.com")
    logs = aws.client("logs")
    put_records(logs, LOG_GROUP, records)
    # the one-off non-JSON line Bedrock writes when logging is set up: the report must skip it
    first = min(r["timestamp"] for r in records)
    stamp = int(datetime.strptime(first, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp() * 1000)
    logs.put_log_events(
        logGroupName=LOG_GROUP,
        logStreamName="bedrock-invocations",
        logEvents=[{"timestamp": stamp, "message": permission_check_line()}],
    )


def report_environment(timezone: str) -> dict[str, str]:
    return {
        "LOG_GROUP_NAMES": LOG_GROUP,
        "REPORT_BUCKET": BUCKET,
        "REPORT_PREFIX": "bedrock-usage",
        "SENDER": SENDER,
        "RECIPIENTS": RECIPIENTS,
        "REPORT_TIMEZONE": timezone,
        "ATTRIBUTION_KEYS": "team",
        "BUDGETS": f"s3://{BUCKET}/config/budgets.csv",
        # the bill per identity: the generated CUR 2.0 export, queried in process (RECONCILE_LAG_DAYS is then 3)
        "CUR_EXPORT": EXPORT,
        "BILL_ENGINE": "embedded",
    }


def log_environment(log_source: str) -> dict[str, str]:
    """Where the report reads the invocation logs: Logs Insights (the log group) or the S3-delivered objects,
    aggregated in process by the embedded engine."""
    if log_source == "cloudwatch":
        return {"LOG_SOURCE": "cloudwatch"}
    if log_source == "s3":
        return {"LOG_SOURCE": "s3", "LOG_S3_LOCATION": LOG_LOCATION, "LOG_ENGINE": "embedded"}
    raise ValueError(f"log_source must be one of {', '.join(LOG_SOURCES)}, not {log_source!r}")


# Cost by team: IAM tags on some of the calling principals (others set requestMetadata, the rest are unattributed),
# and budgets that the demo's day crosses.
PRINCIPAL_TAGS = {
    ("role", "support-chatbot-lambda-role"): "support",
    ("role", "rag-indexer-ecs-task-role"): "search",
    ("user", "alice"): "data",
    ("user", "bob"): "data",
}
BUDGETS = """name,scope,period,amount,recipients
Bedrock total,total,month,1200,finops@example.com
Support team daily,team=support,day,60,platform-team@example.com
"""
RUNAWAY = "arn:aws:sts::123456789012:assumed-role/BedrockAgentRole/runaway-agent"


def seed_attribution(aws: EmbeddedAws) -> None:
    """The IAM users and roles behind the generated calls, some tagged; and the budgets file."""
    iam = aws.client("iam")
    principals = {("user", arn.rsplit("/", 1)[1]) for arn, _ in default_identities() if ":user/" in arn}
    principals |= {("role", arn.split("/")[1]) for arn, _ in default_identities() if ":assumed-role/" in arn}
    for kind, name in sorted(principals | set(PRINCIPAL_TAGS)):
        team = PRINCIPAL_TAGS.get((kind, name))
        tags = [{"Key": "team", "Value": team}] if team else []
        if kind == "role":
            iam.create_role(RoleName=name, AssumeRolePolicyDocument="{}", Tags=tags)
        else:
            iam.create_user(UserName=name, Tags=tags)
    aws.client("s3").put_object(Bucket=BUCKET, Key="config/budgets.csv", Body=BUDGETS.encode())


def read_back(aws: EmbeddedAws, response: dict[str, Any], out: Path) -> dict[str, str]:
    """Download the CSV from S3 and take the raw email from SES, as a user would see them."""
    out.mkdir(parents=True, exist_ok=True)
    bucket, key = response["s3_uri"].removeprefix("s3://").split("/", 1)
    csv_bytes = aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    stem = key.rsplit("/", 1)[-1].removesuffix(".csv")
    paths = {"csv": out / f"{stem}.csv", "eml": out / f"{stem}.eml", "html": out / f"{stem}.html"}
    paths["csv"].write_bytes(csv_bytes)
    sent = aws.sent_emails()
    if sent:
        raw = sent[-1].raw_data.encode("utf-8")
        paths["eml"].write_bytes(raw)
        message = email.message_from_bytes(raw, policy=email.policy.default)
        html = message.get_body(preferencelist=("html",))
        paths["html"].write_text(html.get_content() if html else "", encoding="utf-8")
        attachment = next(message.iter_attachments(), None)
        same = attachment is not None and attachment.get_payload(decode=True) == csv_bytes
        print(f"attachment byte-identical to the S3 object: {same}", file=sys.stderr)
        if not same:
            raise SystemExit("the emailed CSV differs from the S3 object")
    (out / "response.json").write_text(json.dumps(response, indent=2) + "\n", encoding="utf-8")
    paths["response"] = out / "response.json"
    return {name: str(path) for name, path in paths.items()}


# Cohere Embed's marketplace name is not in the bundled names: the operator's row in the bucket maps it
EXTRA_NAMES = (
    "offer,name,model_id,evidence\n"
    "AmazonBedrockFoundationModels,Cohere Embed English (Amazon Bedrock Edition),cohere.embed-english-v3,demo\n"
)


def seed_bill(aws: EmbeddedAws, day: str, summary: dict[str, Any], *, settled: bool) -> None:
    """Cost Explorer's view of a reported day: what its report estimated, per model, billed under the services and
    usage types AWS uses (the Price List names), with one model billed above our price; and on the settled day the
    gaps a reconciliation must find: a region billed with no invocation logs, a batch job."""
    names = price_list_names(EXTRA_NAMES.encode()).names
    catalog = ModelCatalog.load(PRICING_DIR)
    marketplace = {model: name for (offer, name), model in names.items() if offer == "AmazonBedrockFoundationModels"}
    native = {model: name for (offer, name), model in names.items() if offer == "AmazonBedrock"}
    account = "123456789012"
    for spend in summary["by_model"]:
        model = catalog.normalise(spend["name"]).model_id
        cost = Decimal(spend["cost_usd"])
        if model == "amazon.nova-pro-v1:0":
            cost *= Decimal("1.5")  # billed above our price: the reconciliation names the model
        if model in marketplace:
            service, usage = marketplace[model], "USE1-MP:USE1_{}TokenCount-Units"
        elif model in native:
            service, usage = "Amazon Bedrock", "USE1-" + native[model].replace(" ", "") + "-{}-tokens"
        else:
            continue  # unpriced models: nothing estimated to compare
        input_part = (cost * Decimal("0.7")).quantize(Decimal("0.000001"))
        for kind, usd in (("Input", input_part), ("Output", cost - input_part)):
            label = kind if "{}TokenCount" in usage else kind.lower()
            aws.cost_explorer.add(LineItem(day, service, usage.format(label), "us-east-1", account, f"{usd:f}"))
    if not settled:
        return
    aws.cost_explorer.add(
        # a region whose invocation logging is off
        LineItem(
            day,
            "Claude Haiku 4.5 (Amazon Bedrock Edition)",
            "EUW2-MP:EUW2_InputTokenCount-Units",
            "eu-west-2",
            account,
            "3.20",
        ),
        # a batch job: billed, never in the invocation logs
        LineItem(day, "Amazon Bedrock", "USE1-NovaLite-batch-input-tokens", "us-east-1", account, "4.10"),
    )


def run_demo(
    out: Path,
    *,
    records: int,
    timezone: str,
    now: datetime | None = None,
    insights: InsightsDouble | None = None,
    log_source: str = "cloudwatch",
) -> dict[str, Any]:
    """`insights`: the Logs Insights double to answer with (tests pass one whose queries complete at the first poll:
    the Lambda entry point sleeps for real between polls). `log_source`: where the report reads the invocation logs,
    "cloudwatch" (Logs Insights) or "s3" (the objects Bedrock delivers to S3, read by the embedded engine). The
    records always go to CloudWatch Logs; with "s3" every day is also delivered to the logs bucket."""
    now = now or datetime.now(UTC)
    logs_environment = log_environment(log_source)
    with embedded_aws(insights=insights) as aws:
        # The scheduled run reports the previous full day; generate exactly that day's logs.
        today = now.astimezone(ZoneInfo(timezone)).date()
        start = datetime.combine(today - timedelta(days=1), datetime.min.time(), tzinfo=ZoneInfo(timezone))
        end = datetime.combine(today, datetime.min.time(), tzinfo=ZoneInfo(timezone))
        # 1% long agent conversations (1,000+ JSON fields) exercise Logs Insights' 200-field limit.
        day_records = generate_records(start, end, count=records, seed=2026, large_record_rate=0.01)
        print(f"generated {len(day_records):,} invocation-log records for {start.date()}", file=sys.stderr)
        # a runaway agent, busy only on the report's day: the spike the email flags
        runaway = generate_records(
            start, end, count=400, seed=7, identities=[(RUNAWAY, 1.0)], models=DEFAULT_MODELS[:1]
        )
        seed_account(aws, day_records + runaway)
        seed_attribution(aws)

        os.environ.update(report_environment(timezone))
        os.environ.update(logs_environment)
        s3 = aws.client("s3")

        # The earlier days the demo reports first (see below): the settled day and two more.
        settled_start = start - timedelta(days=3)
        earlier_records = {
            settled_start: generate_records(
                settled_start, settled_start + timedelta(days=1), count=records // 2, seed=2024
            )
        }
        for back, seed in ((3, 4), (2, 2)):
            earlier_start = start - timedelta(days=back - 1)
            earlier_records[earlier_start] = generate_records(
                earlier_start, earlier_start + timedelta(days=1), count=records, seed=seed
            )
        if log_source == "s3":
            # Every day at once: a day's last records are delivered in the next day's first hour folder, beside that
            # hour's own objects (put_delivered names a folder's objects by their order, so one call per day would
            # write the folder's first objects twice, the second write replacing the first).
            s3.create_bucket(Bucket=LOGS_BUCKET)
            every_day = [record for day_logs in earlier_records.values() for record in day_logs]
            put_delivered(
                s3, LOG_LOCATION, ACCOUNT, REGION, every_day + day_records + runaway, late_seconds=LATE_SECONDS
            )
            print(f"invocation logs read from S3: {LOG_LOCATION} (the embedded engine)", file=sys.stderr)
        else:
            print(f"invocation logs read from CloudWatch Logs Insights: {LOG_GROUP}", file=sys.stderr)
        s3.put_object(Bucket=BUCKET, Key="bedrock-usage/prices/price_list_names.csv", Body=EXTRA_NAMES.encode())
        catalog = ModelCatalog.load(PRICING_DIR)
        export = DemoExport(price_list_names(EXTRA_NAMES.encode()).names, lambda m: catalog.normalise(m).model_id)

        def bill(day: date, response: dict[str, Any], *, settled: bool = False) -> None:
            """What AWS billed for a day the demo reported: Cost Explorer's totals and the CUR export's lines."""
            summary_key = response["summary_uri"].removeprefix(f"s3://{BUCKET}/")
            summary = json.loads(s3.get_object(Bucket=BUCKET, Key=summary_key)["Body"].read())
            seed_bill(aws, day.isoformat(), summary, settled=settled)
            csv_key = response["s3_uri"].removeprefix(f"s3://{BUCKET}/")
            export.bill_day(day, ZoneInfo(timezone), s3.get_object(Bucket=BUCKET, Key=csv_key)["Body"].read())

        # The settled day (RECONCILE_LAG_DAYS = 3 with a CUR export: 3 days before the report's), reported then (no
        # email): the demo's report reconciles it, identity by identity.
        settled = today - timedelta(days=4)
        put_records(aws.client("logs"), LOG_GROUP, earlier_records[settled_start])
        bill(
            settled,
            lambda_handler({"date": settled.isoformat(), "send_email": False}, FakeLambdaContext()),
            settled=True,
        )
        # Two more earlier days, reported then (no email): with the settled day, the spike baseline (and the month's
        # budget spend); billed too, so that the month to date compares like with like.
        for back in (3, 2):
            earlier_start = start - timedelta(days=back - 1)
            put_records(aws.client("logs"), LOG_GROUP, earlier_records[earlier_start])
            earlier_day = earlier_start.date()
            bill(
                earlier_day, lambda_handler({"date": earlier_day.isoformat(), "send_email": False}, FakeLambdaContext())
            )
        keys = export.write(s3)
        print(f"wrote the CUR 2.0 export {EXPORT}: {', '.join(keys)}", file=sys.stderr)
        event = {"scheduled_time": now.isoformat(timespec="seconds")}
        response = lambda_handler(event, FakeLambdaContext())
        if response.get("status") != "ok":
            print(json.dumps(response, indent=2))
            raise SystemExit(1)
        response["local_files"] = read_back(aws, response, out)
        return response


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_aws.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out"))
    parser.add_argument("--records", type=int, default=24_000)
    parser.add_argument("--timezone", default="UTC")
    parser.add_argument(
        "--log-source",
        choices=LOG_SOURCES,
        default="cloudwatch",
        help="where the report reads the invocation logs: CloudWatch Logs Insights, or the objects delivered to S3",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("werkzeug", "botocore"):  # moto server access log, credential lookups
        logging.getLogger(noisy).setLevel(logging.WARNING)
    response = run_demo(args.out, records=args.records, timezone=args.timezone, log_source=args.log_source)
    print(json.dumps(response, indent=2))
    print(f"invocation logs read from: {args.log_source}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
