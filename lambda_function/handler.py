"""The daily Bedrock usage report, read top to bottom:

event -> window -> Logs Insights -> usage frame -> prices -> CSV + summary -> S3 -> email.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.message import EmailMessage
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError

from lambda_function.alerts.budgets import Budget, load_budgets
from lambda_function.alerts.watch import Watch, watch_spend
from lambda_function.aws import ATTEMPT_SECONDS, AwsClients, error_code
from lambda_function.bill import reconcile
from lambda_function.config import Config, load_config
from lambda_function.delivery.once import EmailStore, Marker, send_once
from lambda_function.errors import DeadlineExceeded, IncompleteResults, InvalidRequest
from lambda_function.metrics import report_metrics
from lambda_function.pricing.engine import (
    ContextTiers,
    ImagePriceTable,
    PriceTable,
    load_context_tiers,
    load_image_prices,
    load_price_table,
    price_changes,
    price_usage,
)
from lambda_function.pricing.model_ids import ModelCatalog, read_pairs
from lambda_function.pricing.profiles import normaliser, resolve_profiles
from lambda_function.pricing.refresh import bundled_sha, refresh_prices
from lambda_function.pricing.service_options import ServiceOptions, load_service_options
from lambda_function.report.history import compare_previous, month_to_date, previous_footer
from lambda_function.report.mail import RenderedEmail, build_message, message_bytes, render_email
from lambda_function.report.rows import check_attribution_keys, render_csv, report_rows, summarise, summary_document
from lambda_function.request import ReportRequest, is_price_refresh, parse_request
from lambda_function.sources.attribution import TagLookup, attribute_frame
from lambda_function.sources.insights import InsightsRunner, QueryTotals, plan_queries
from lambda_function.sources.query import COUNT_FIELD, SPLIT_FIELD, usage_query
from lambda_function.sources.usage import usage_frame
from lambda_function.store.bucket import (
    SES_MAX_RAW_MESSAGE,
    PriceStore,
    RefreshedTable,
    check_bucket,
    check_log_groups,
    link_lifetime,
    presigned_link,
    put_report,
    put_summary,
    read_overrides,
    read_summary,
    report_key,
    sent_marker_key,
)
from lambda_function.window import ReportWindow, day_window
from pricing.refresh import DEFAULT_NAMES, DEFAULT_USAGETYPE_REGIONS, parse_names, read_names

__all__ = ["AwsClients", "ReportRun", "lambda_handler", "run_report"]

log = logging.getLogger(__name__)

# Lambda's longest timeout; also the CLI's default --timeout, and the run's time when Lambda gives no context.
DEFAULT_TIMEOUT_SECONDS = 900.0
COST_EXPLORER_REGION = "us-east-1"  # Cost Explorer's one endpoint
# Leave time after the queries for pricing, S3 and SES before the run's end (a quarter of short runs' time).
DELIVERY_MARGIN_SECONDS = 45.0
QUERY_COST_PER_GB = Decimal("0.005")  # Logs Insights, per GB scanned (us-east-1)


@dataclass
class ReportRun:
    """What a run produced: the response returned to the caller, and the artifacts (for --out and tests)."""

    response: dict[str, Any]
    csv: bytes = b""
    message: bytes = b""
    html: str = ""
    totals: QueryTotals = field(default_factory=QueryTotals)
    metrics: list[dict[str, Any]] = field(default_factory=list)  # EMF records; the Lambda entry point prints them


@dataclass(frozen=True)
class PriceTables:
    tokens: PriceTable
    context_tiers: ContextTiers
    images: ImagePriceTable
    options: ServiceOptions
    catalog: ModelCatalog

    @property
    def version(self) -> str:
        """What the footer names: each table that priced the report, with its content hash."""
        versions = (self.tokens.version, self.context_tiers.version, self.options.version)
        return ", ".join(v for v in versions if v)


@lru_cache(maxsize=4)
def _pricing(
    path: Path, overrides: bytes | None, discount: Decimal, refreshed: bytes | None = None, name: str = ""
) -> PriceTables:
    # Loaded once per Lambda container (per distinct overrides and refreshed table); the tables are read-only.
    return PriceTables(
        load_price_table(path, content=refreshed, name=name, overrides=overrides, discount_percent=discount),
        load_context_tiers(path.parent),
        load_image_prices(path.parent),
        load_service_options(path.parent),
        ModelCatalog.load(path.parent),
    )


def run_report(
    event: Any,
    config: Config,
    aws: AwsClients,
    *,
    now: datetime,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> ReportRun:
    """One report. `timeout` is the time the run has (Lambda's remaining time, the CLI's --timeout): the queries
    stop in time for delivery, and no AWS call starts so late that it could outlast it."""
    began = clock()
    end = began + timeout
    query_deadline = end - min(DELIVERY_MARGIN_SECONDS, timeout / 4)
    aws.bound(clock=clock, sleep=sleep, deadline=end - min(ATTEMPT_SECONDS, timeout / 10))

    def wall_now() -> datetime:
        return now + timedelta(seconds=clock() - began)

    # 1. What to report (or the weekly refresh of the price table: its own schedule, no report)
    try:
        if is_price_refresh(event):
            return ReportRun(refresh_prices(config, aws, now.date()))
        request = parse_request(event, tz=config.timezone, now=now, default_recipients=config.recipients)
    except InvalidRequest as err:
        log.warning("refused request: %s", err)
        return ReportRun(err.as_response())
    if request.send_email:
        config.require_email_settings(request.recipients)
    window = request.window
    LOG_CONTEXT["window"] = window.label
    log.info("reporting %s [%s, %s)", window.label, window.start.isoformat(), window.end.isoformat())
    # The places we read and write, and the price tables, first: a bad setting fails before any query is paid for.
    s3 = aws.client("s3")
    check_bucket(s3, config.report_bucket, config.report_prefix)
    check_log_groups(config.log_groups, aws.logs, config.default_region)
    price_store = PriceStore(s3, config.report_bucket, config.report_prefix)
    refreshed = _newest_refreshed(price_store, config)
    overrides = read_overrides(config.price_overrides, s3)
    check_attribution_keys(config.attribution_keys)
    budgets = load_budgets(config.budgets, s3, config.attribution_keys) if config.budgets else []
    prices = _pricing(
        config.price_table,
        overrides,
        config.price_discount_percent,
        refreshed.content if refreshed else None,
        refreshed.name if refreshed else "",
    )

    # 2. Usage, aggregated by Logs Insights and proven complete
    start, end_second = window.epoch_range()
    query = usage_query(prices.context_tiers.thresholds, config.attribution_keys)
    specs = plan_queries(config.log_groups, config.default_region, start, end_second, query, config.query_row_limit)
    runner = InsightsRunner(
        aws.logs,
        sleep=sleep,
        clock=clock,
        deadline=query_deadline,
        concurrency=config.query_concurrency,
        split_field=SPLIT_FIELD,
    )
    results, totals = runner.run_all(specs, COUNT_FIELD)
    totals.log_groups = [group.identifier for group in config.log_groups]
    usage = usage_frame((page for result in results for page in result.take_pages()), config.attribution_keys)
    del results
    usage, attribution = _attribute(usage, config, aws)

    # 3. Prices
    bedrock = lambda region: aws.client("bedrock", region)  # noqa: E731
    profiles, failures = resolve_profiles(usage["model_id"], prices.catalog, bedrock)
    normalise = normaliser(prices.catalog, profiles, failures)
    priced = price_usage(usage, prices.tokens, normalise, prices.images, prices.context_tiers, prices.options)

    # 4. The report
    rows = report_rows(priced, config.attribution_keys)
    del usage, priced  # at 100,000 groups each frame is tens of MiB; the email still has to be encoded
    csv_bytes = render_csv(rows, config.attribution_keys)
    summary = summarise(rows, config.attribution_keys)
    del rows
    if summary.invocations != totals.records_matched:
        # run_all proved each query complete; this guards the frame and the CSV against dropping rows.
        raise IncompleteResults(
            f"the report has {summary.invocations} invocations but Logs Insights matched {totals.records_matched}"
        )

    # 5. Deliver: the CSV and its JSON summary to S3 (same keys on a re-run), then the email, once per window
    key = report_key(config.report_prefix, window, partial=request.partial)
    bounds = window.as_json()
    s3_uri = put_report(
        s3, config.report_bucket, key, csv_bytes, {"window-start": bounds["start"], "window-end": bounds["end"]}
    )
    skipped: list[str] = []  # earlier summaries that could not be read
    previous = compare_previous(s3, config.report_bucket, config.report_prefix, window, summary.total_cost, skipped)
    to_date = month_to_date(s3, config.report_bucket, config.report_prefix, window, summary.total_cost, skipped)
    footer = _footer(totals, prices.version, len(set(skipped)))
    footer["price_table_key"] = refreshed.key if refreshed else BUNDLED
    changes = _price_changes(s3, config, price_store, window, footer["price_table_key"], prices, overrides)
    footer["price_changes"] = changes
    if attribution:
        footer["attribution"] = attribution
    document = summary_document(summary, bounds, footer)

    # 5b. Budgets and spikes, from the summaries earlier runs left (a day's report only)
    watch = _watch(s3, aws, config, request, window, budgets, document, wall_now())
    if watch is not None:
        document["watch"] = watch.as_json()
    summary_uri = put_summary(s3, config.report_bucket, key, document)
    lifetime = link_lifetime(aws.credentials(), config.link_expiry_seconds, datetime.now(UTC))
    context = {
        "window": bounds,
        "summary": summary,
        "footer": footer,
        "s3_uri": s3_uri,
        "link": presigned_link(s3, config.report_bucket, key, lifetime.seconds),
        "link_validity": lifetime.describe(),
        "csv_name": key.rsplit("/", 1)[-1],
        "previous": previous,
        "month_to_date": to_date,
        "price_changes": changes,
        "watch": watch,
        "attribution": attribution,
        "spike_factor": config.spike_factor,
        "spike_min_usd": config.spike_min_usd,
    }

    # 6. A settled day against the bill (never stops the report)
    reconciliation, drift = _reconcile(s3, aws, config, window, prices.catalog)
    context["reconciliation"] = reconciliation

    # 7. The email, exactly once per window
    rendered, message, raw_message = _compose_email(context, config.sender, request.recipients, csv_bytes)
    email: dict[str, Any] = {"sent": False}
    if request.send_email:
        # the claim lasts as long as this run can: after that, a run that takes it over knows this one is gone
        expires = now + timedelta(seconds=timeout)
        email = _send_once(aws, config, request, sent_marker_key(key), message, bounds, wall_now, expires)

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
        "reconciliation": reconciliation,
        "budget_alerts": watch.alerts_sent if watch else [],
        "spikes": sum(len(found) for found in watch.spikes.values()) if watch else 0,
        "email": email,
    }
    unpriced = sum(u.invocations for u in summary.unpriced)
    metrics = [report_metrics(response, totals.bytes_scanned, totals.queries, unpriced)] + ([drift] if drift else [])
    return ReportRun(response, csv_bytes, raw_message, rendered.html, totals, metrics)


def _send_once(
    aws: AwsClients,
    config: Config,
    request: ReportRequest,
    marker_key: str,
    message: EmailMessage,
    window: dict[str, str],
    wall_now: Callable[[], datetime],
    expires: datetime,
) -> dict[str, Any]:
    fresh = Marker(
        "claimed",
        run_id=str(uuid.uuid4()),
        claimed_at=wall_now().isoformat(),
        expires_at=expires.isoformat(),
        window=window,
        recipients=list(request.recipients),
    )
    store = EmailStore(aws.client("s3"), config.report_bucket, marker_key)
    ses = aws.client("sesv2", config.ses_region or None)
    return send_once(store, ses, message, sender=config.sender, fresh=fresh, now=wall_now, force=request.force)


def _attribute(usage: pd.DataFrame, config: Config, aws: AwsClients) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Each row's value per ATTRIBUTION_KEYS key (request metadata, else profile tag, else IAM tag), and what the
    footer says about it: how many rows each source gave and the tag lookups that failed (never fatal)."""
    if not config.attribution_keys:
        return usage, {}
    try:
        account = str(aws.client("sts").get_caller_identity()["Account"])
    except (ClientError, BotoCoreError, DeadlineExceeded) as err:
        log.warning("cannot tell this account's id (%s); IAM tags of every principal count as another account's", err)
        account = ""
    lookup = TagLookup(aws.client("iam"), lambda region: aws.client("bedrock", region), account)
    usage, sources = attribute_frame(usage, config.attribution_keys, lookup)
    return usage, {
        "sources": {key: vars(counts) for key, counts in sources.items()},
        "failures": sorted(set(lookup.failures)),
    }


def _watch(
    s3: Any,
    aws: AwsClients,
    config: Config,
    request: ReportRequest,
    window: ReportWindow,
    budgets: list[Budget],
    document: dict[str, Any],
    now: datetime,
) -> Watch | None:
    """Budgets (alert emails only when the run sends email) and spikes, for a whole day's report."""
    if not window.is_single_day or request.partial:
        return None
    ses = aws.client("sesv2", config.ses_region or None)

    def send(raw: bytes) -> str:
        return str(ses.send_email(FromEmailAddress=config.sender, Content={"Raw": {"Data": raw}})["MessageId"])

    try:
        return watch_spend(
            document,
            window.local_start.date(),
            window.tz,
            budgets,
            config.attribution_keys,
            s3=s3,
            bucket=config.report_bucket,
            prefix=config.report_prefix,
            factor=config.spike_factor,
            min_usd=config.spike_min_usd,
            send=send if request.send_email else None,
            sender=config.sender,
            report_label=window.label,
            now=now,
        )
    except (ClientError, BotoCoreError, DeadlineExceeded) as err:
        # a heads-up that cannot be given never stops the report; the email says so
        log.error("budgets and spikes could not be checked: %s", err)
        return Watch(alert_failures=[f"budgets and spikes could not be checked: {err}"])


BUNDLED = "bundled"  # the footer's price_table_key when the report was priced with the table in the package


def _newest_refreshed(store: PriceStore, config: Config) -> RefreshedTable | None:
    """The newest table the weekly refresh built from this package's table; None (the bundled one) when there is
    none or it cannot be read: a refresh problem never stops a report."""
    try:
        return store.newest(bundled_sha(config.price_table))
    except (ClientError, BotoCoreError, DeadlineExceeded) as err:
        log.warning("cannot read the refreshed price tables (%s); pricing with the bundled table", err)
        return None


def _price_changes(
    s3: Any,
    config: Config,
    store: PriceStore,
    window: Any,
    table_key: str,
    prices: PriceTables,
    overrides: bytes | None,
) -> dict[str, Any] | None:
    """Models newly priced or repriced since the previous report's table, on this report's first day."""
    before = previous_footer(s3, config.report_bucket, config.report_prefix, window) or {}
    previous_key = before.get("price_table_key")
    if not previous_key or previous_key == table_key:
        return None
    content = config.price_table.read_bytes() if previous_key == BUNDLED else store.read(previous_key)
    if content is None:
        return None
    try:
        previous = load_price_table(
            config.price_table, content=content, overrides=overrides, discount_percent=config.price_discount_percent
        )
    except ValueError as err:
        log.warning("cannot compare with the previous price table %s: %s", previous_key, err)
        return None
    newly, repriced = price_changes(previous, prices.tokens, window.local_start.date())
    if not newly and not repriced:
        return None
    return {"since": str(before.get("price_table_version", previous_key)), "newly_priced": newly, "repriced": repriced}


def _reconcile(
    s3: Any, aws: AwsClients, config: Config, window: ReportWindow, catalog: ModelCatalog
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The settled day RECONCILE_LAG_DAYS before a daily report's, against Cost Explorer; written into that day's
    JSON summary. Never fatal: whatever fails is `unavailable` with the reason."""
    if not config.reconcile_lag_days or not window.is_single_day:
        return None, None
    day = window.local_start.date() - timedelta(days=config.reconcile_lag_days)
    settled = day_window(day, window.tz)
    csv_key = report_key(config.report_prefix, settled)
    estimate = read_summary(s3, config.report_bucket, csv_key)
    if estimate is None or "total_cost_usd" not in estimate:
        return reconcile.unavailable(f"no report for {day.isoformat()} to compare with", day), None
    try:
        ce = aws.client("ce", COST_EXPLORER_REGION)
        lines, accounts = reconcile.billed_day(ce, day, config.reconcile_metric)
        price_list_names = read_names(DEFAULT_NAMES)
        extra = PriceStore(s3, config.report_bucket, config.report_prefix).extra_names()
        if extra:  # the operator's own rows, as the price refresh reads them
            price_list_names.update(parse_names(extra.decode("utf-8")))
        names = reconcile.UsageTypeNames(price_list_names, read_pairs(DEFAULT_USAGETYPE_REGIONS, "prefix", "region"))
        result = reconcile.compare(
            day,
            estimate,
            lines,
            accounts,
            names,
            lambda name: catalog.normalise(name).model_id or name,
            config.reconcile_alert_percent,
        )
        estimated_mtd = month_to_date(
            s3, config.report_bucket, config.report_prefix, settled, Decimal(estimate["total_cost_usd"])
        )
        assert estimated_mtd is not None
        result["month_to_date"] = reconcile.month_to_date(
            reconcile.billed_month_to_date(ce, day, config.reconcile_metric),
            estimated_mtd.total_cost,
            estimated_mtd.days_reported,
            estimated_mtd.days_in_range,
        )
        result["metric"] = config.reconcile_metric
    except (ClientError, BotoCoreError, DeadlineExceeded) as err:
        why = f"{error_code(err)}: {err}" if isinstance(err, ClientError) else str(err)
        log.warning("reconciliation of %s unavailable: %s", day, why)
        result = reconcile.unavailable(why, day)
    estimate["reconciliation"] = result
    put_summary(s3, config.report_bucket, csv_key, estimate)
    return result, reconcile.emf_metric(result) if result["status"] == "ok" else None


def _footer(totals: QueryTotals, price_version: str, unreadable_summaries: int) -> dict[str, Any]:
    gigabytes = Decimal(totals.bytes_scanned) / Decimal(1024**3)
    return {
        "log_groups": totals.log_groups,
        "records_matched": totals.records_matched,
        "records_scanned": totals.records_scanned,
        "bytes_scanned": totals.bytes_scanned,
        "queries": totals.queries,
        "window_splits": totals.splits,
        "rows_fetched": totals.rows_fetched,
        "row_limit": totals.row_limit,  # 10,000 when the service or the SDK refused 100,000
        "query_cost": f"${(gigabytes * QUERY_COST_PER_GB):.4f}",
        "price_table_version": price_version,
        "unreadable_summaries": unreadable_summaries,
    }


def _compose_email(
    context: dict[str, Any], sender: str, recipients: tuple[str, ...], csv_bytes: bytes
) -> tuple[RenderedEmail, EmailMessage, bytes]:
    """With the CSV attached while the message fits SES's size limit; otherwise the link only, and it says so.
    Also the message's bytes (as written to out/): a large attachment takes a while to encode."""
    for attached in (True, False):
        rendered = render_email({**context, "attached": attached})
        message = build_message(
            rendered,
            sender=sender,
            recipients=recipients,
            attachment=csv_bytes if attached else None,
            attachment_name=context["csv_name"],
        )
        raw = message_bytes(message)
        if len(raw) <= SES_MAX_RAW_MESSAGE:
            break
    return rendered, message, raw


# What every log line of a run carries (JSON logs: Lambda's formatter adds a record's extra attributes). Lambda
# runs one invocation at a time per process, so a module-level dict serves the query threads too.
LOG_CONTEXT: dict[str, str] = {"run_id": "", "window": ""}


class _RunContext(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.run_id = LOG_CONTEXT["run_id"]
        record.window = LOG_CONTEXT["window"]
        return True


def _log_every_line_with_the_run() -> None:
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _RunContext) for f in handler.filters):
            handler.addFilter(_RunContext())


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    """Entry point for Lambda (scheduled or manual invocation)."""
    logging.getLogger().setLevel(os.environ.get("LOG_LEVEL", "INFO"))
    LOG_CONTEXT.update(run_id=str(getattr(context, "aws_request_id", "") or uuid.uuid4()), window="")
    _log_every_line_with_the_run()
    config = load_config(os.environ)
    timeout = DEFAULT_TIMEOUT_SECONDS
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        timeout = context.get_remaining_time_in_millis() / 1000
    run = run_report(event, config, AwsClients(config.default_region), now=datetime.now(UTC), timeout=timeout)
    for record in run.metrics:
        print(json.dumps(record))  # Embedded Metric Format: a log line CloudWatch turns into metrics
    return run.response
