"""The daily Bedrock usage report, read top to bottom:

event -> window -> Logs Insights -> usage frame -> prices -> CSV + summary -> S3 -> email.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from email.message import EmailMessage
from functools import lru_cache
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

from .config import Config, load_config
from .deliver import (
    SES_MAX_RAW_MESSAGE,
    claim_email,
    presigned_link,
    put_report,
    put_summary,
    release_email_claim,
    report_key,
    send_email,
    sent_marker_key,
)
from .errors import IncompleteResults, InvalidRequest
from .history import compare_previous, month_to_date
from .insights import InsightsRunner, QueryTotals, plan_queries
from .mail import RenderedEmail, build_message, message_bytes, render_email
from .model_ids import ModelCatalog
from .pricing import (
    ContextTiers,
    ImagePriceTable,
    PriceTable,
    load_context_tiers,
    load_image_prices,
    load_price_table,
    price_usage,
)
from .profiles import normaliser, resolve_profiles
from .query import COUNT_FIELD, usage_query
from .report import render_csv, report_rows, summarise, summary_document
from .request import ReportRequest, parse_request
from .usage import usage_frame

log = logging.getLogger(__name__)

# Leave time after the queries for pricing, S3 and SES before Lambda's hard stop.
DELIVERY_MARGIN_SECONDS = 45.0
QUERY_COST_PER_GB = Decimal("0.005")  # Logs Insights, per GB scanned (us-east-1)


class AwsClients:
    """boto3 clients made once per service and region, with standard retries for transient faults."""

    _retry = BotoConfig(retries={"mode": "standard", "max_attempts": 8}, user_agent_extra="bedrock-usage-report")

    def __init__(self, default_region: str, session: boto3.session.Session | None = None):
        self._session = session or boto3.session.Session()
        self._default_region = default_region
        self._clients: dict[tuple[str, str], Any] = {}

    def client(self, service: str, region: str | None = None) -> Any:
        key = (service, region or self._default_region)
        if key not in self._clients:
            config = self._retry
            if service == "s3":
                # SigV4 presigned links (X-Amz-Expires up to 7 days); botocore may otherwise presign with SigV2.
                config = config.merge(BotoConfig(signature_version="s3v4"))
            self._clients[key] = self._session.client(service, region_name=key[1], config=config)
        return self._clients[key]

    def logs(self, region: str) -> Any:
        return self.client("logs", region)


@dataclass
class ReportRun:
    """What a run produced: the response returned to the caller, and the artifacts (for --out and tests)."""

    response: dict[str, Any]
    csv: bytes = b""
    message: bytes = b""
    html: str = ""
    totals: QueryTotals = field(default_factory=QueryTotals)


@lru_cache(maxsize=4)
def _pricing(
    path: Path, overrides: bytes | None, discount: Decimal
) -> tuple[PriceTable, ContextTiers, ImagePriceTable, ModelCatalog]:
    # Loaded once per Lambda container (per distinct overrides); the tables are read-only.
    table = load_price_table(path, overrides=overrides, discount_percent=discount)
    return table, load_context_tiers(path.parent), load_image_prices(path.parent), ModelCatalog.load(path.parent)


def _read_overrides(config: Config, aws: AwsClients) -> bytes | None:
    """The negotiated-price rows, from a local file or S3 (read on every run: they may change between runs)."""
    if not config.price_overrides:
        return None
    if config.price_overrides.startswith("s3://"):
        bucket, key = config.price_overrides.removeprefix("s3://").split("/", 1)
        return bytes(aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    return Path(config.price_overrides).read_bytes()


def run_report(
    event: Any,
    config: Config,
    aws: AwsClients,
    *,
    now: datetime,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    deadline: float | None = None,
) -> ReportRun:
    # 1. What to report
    try:
        request = parse_request(event, tz=config.timezone, now=now, default_recipients=config.recipients)
    except InvalidRequest as err:
        log.warning("refused request: %s", err)
        return ReportRun(err.as_response())
    if request.send_email:
        config.require_email_settings(request.recipients)
    window = request.window
    log.info("reporting %s [%s, %s)", window.label, window.start.isoformat(), window.end.isoformat())
    # Price tables first: a malformed table or override fails the run before any query is paid for.
    table, tiers, image_table, catalog = _pricing(
        config.price_table, _read_overrides(config, aws), config.price_discount_percent
    )

    # 2. Usage, aggregated by Logs Insights and proven complete
    start, end = window.epoch_range()
    query = usage_query(tiers.thresholds)
    specs = plan_queries(config.log_groups, config.default_region, start, end, query, config.query_row_limit)
    runner = InsightsRunner(aws.logs, sleep=sleep, clock=clock, deadline=deadline, concurrency=config.query_concurrency)
    results, totals = runner.run_all(specs, COUNT_FIELD)
    totals.log_groups = [group.identifier for group in config.log_groups]
    usage = usage_frame(row for result in results for row in result.rows)

    # 3. Prices
    profiles, failures = resolve_profiles(usage["model_id"], catalog, lambda region: aws.client("bedrock", region))
    priced = price_usage(usage, table, normaliser(catalog, profiles, failures), image_table, tiers)

    # 4. The report
    rows = report_rows(priced)
    csv_bytes = render_csv(rows)
    summary = summarise(rows)
    if summary.invocations != totals.records_matched:
        # run_all proved each query complete; this guards the frame and the CSV against dropping rows.
        raise IncompleteResults(
            f"the report has {summary.invocations} invocations but Logs Insights matched {totals.records_matched}"
        )

    # 5. Deliver: the CSV and its JSON summary to S3 (same keys on a re-run), then the email, once per window
    s3 = aws.client("s3")
    key = report_key(config.report_prefix, window)
    bounds = window.as_json()
    s3_uri = put_report(
        s3, config.report_bucket, key, csv_bytes, {"window-start": bounds["start"], "window-end": bounds["end"]}
    )
    footer = _footer(totals, ", ".join(v for v in (table.version, tiers.version) if v))
    summary_uri = put_summary(s3, config.report_bucket, key, summary_document(summary, bounds, footer))
    context = {
        "window": bounds,
        "summary": summary,
        "footer": footer,
        "s3_uri": s3_uri,
        "link": presigned_link(s3, config.report_bucket, key, config.link_expiry_seconds),
        "link_expiry_hours": config.link_expiry_seconds // 3600,
        "csv_name": key.rsplit("/", 1)[-1],
        "previous": compare_previous(s3, config.report_bucket, config.report_prefix, window, summary.total_cost),
        "month_to_date": month_to_date(s3, config.report_bucket, config.report_prefix, window, summary.total_cost),
    }
    rendered, message = _compose_email(context, config.sender, request.recipients, csv_bytes)
    email = _send_once(aws, config, request, key, message) if request.send_email else {"sent": False}

    response = {
        "status": "ok",
        "window": bounds,
        "s3_uri": s3_uri,
        "rows": summary.rows,
        "invocations": summary.invocations,
        "failed_invocations": summary.failed_invocations,
        "records_matched": totals.records_matched,
        "total_cost_usd": f"{summary.total_cost:f}",
        "unpriced_models": summary.unpriced_models,
        "invalid_rows": summary.invalid_rows,
        "unreadable_records": summary.unreadable_records,
        "summary_uri": summary_uri,
        "email": email,
    }
    return ReportRun(response, csv_bytes, message_bytes(message), rendered.html, totals)


def _footer(totals: QueryTotals, price_version: str) -> dict[str, Any]:
    gigabytes = Decimal(totals.bytes_scanned) / Decimal(1024**3)
    return {
        "log_groups": totals.log_groups,
        "records_matched": totals.records_matched,
        "records_scanned": totals.records_scanned,
        "bytes_scanned": totals.bytes_scanned,
        "queries": totals.queries,
        "window_splits": totals.splits,
        "query_cost": f"${(gigabytes * QUERY_COST_PER_GB):.4f}",
        "price_table_version": price_version,
    }


def _compose_email(
    context: dict[str, Any], sender: str, recipients: tuple[str, ...], csv_bytes: bytes
) -> tuple[RenderedEmail, EmailMessage]:
    """With the CSV attached while the message fits SES's size limit; otherwise the link only, and it says so."""
    for attached in (True, False):
        rendered = render_email({**context, "attached": attached})
        message = build_message(
            rendered,
            sender=sender,
            recipients=recipients,
            attachment=csv_bytes if attached else None,
            attachment_name=context["csv_name"],
        )
        if len(message_bytes(message)) <= SES_MAX_RAW_MESSAGE:
            break
    return rendered, message


def _send_once(
    aws: AwsClients, config: Config, request: ReportRequest, key: str, message: EmailMessage
) -> dict[str, Any]:
    """Scheduler and Lambda's async retries can run a window twice: only the first run's email goes out."""
    s3 = aws.client("s3")
    marker = sent_marker_key(key)
    claim = json.dumps({"window": request.window.as_json(), "recipients": list(request.recipients)}).encode()
    if not claim_email(s3, config.report_bucket, marker, claim, force=request.force):
        log.info(
            "email for %s already sent (s3://%s/%s); not sending again",
            request.window.label,
            config.report_bucket,
            marker,
        )
        return {"sent": False, "reason": 'already sent for this window; send with "force": true to send again'}
    try:
        ids = send_email(aws.client("ses"), message, config.sender, request.recipients)
    except Exception:
        release_email_claim(s3, config.report_bucket, marker)
        raise
    return {"sent": True, "message_id": ids[0], "message_ids": ids, "recipients": len(request.recipients)}


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    """Entry point for Lambda (scheduled or manual invocation)."""
    logging.getLogger().setLevel(os.environ.get("LOG_LEVEL", "INFO"))
    config = load_config(os.environ)
    deadline = None
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - DELIVERY_MARGIN_SECONDS
    run = run_report(event, config, AwsClients(config.default_region), now=datetime.now(UTC), deadline=deadline)
    return run.response
