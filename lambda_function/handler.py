"""The daily Bedrock usage report, read top to bottom: each numbered step of `run_report` is a stage that lives in
the package named for it.

event -> request -> preflight -> usage (sources/) -> prices (pricing/) -> report (report/) -> store (store/)
      -> budgets and spikes (alerts/) -> the bill (bill/) -> email (delivery/) -> answer and metrics
"""

from __future__ import annotations

import gc
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from lambda_function.alerts.budgets import Budgets, read_budgets
from lambda_function.alerts.watch import watch_report
from lambda_function.aws import ATTEMPT_SECONDS, AwsClients
from lambda_function.bill.settled import reconcile_settled_day
from lambda_function.config import Config, load_config
from lambda_function.delivery.email import Claim, Ses, report_email, send_report_once
from lambda_function.delivery.once import NOT_ASKED
from lambda_function.errors import InvalidRequest
from lambda_function.metrics import function_name, publish, report_metrics
from lambda_function.outcome import RunOutcome
from lambda_function.pricing.prices import PriceTables, changes_since, load_prices, price_frame
from lambda_function.pricing.refresh import refresh_prices
from lambda_function.report.history import History, look_back
from lambda_function.report.rows import Report, build_report, report_rows
from lambda_function.request import ReportRequest, is_price_refresh, parse_request
from lambda_function.sources.attribution import attribute_usage
from lambda_function.sources.collect import CollectedUsage, UsageSource, usage_source
from lambda_function.sources.collected import SourceTotals
from lambda_function.sources.insights import QueryTotals
from lambda_function.store import ReportStore, read_location
from lambda_function.summary import Summary
from lambda_function.window import ReportWindow

__all__ = ["AwsClients", "ReportRun", "lambda_handler", "run_report"]

log = logging.getLogger(__name__)

# Lambda's longest timeout; also the CLI's default --timeout, and the run's time when Lambda gives no context.
DEFAULT_TIMEOUT_SECONDS = 900.0
# Leave time after the queries for pricing, S3 and SES before the run's end (in short runs, a quarter of the time
# the queries' own reserve leaves: see RunTime).
DELIVERY_MARGIN_SECONDS = 45.0


@dataclass
class ReportRun:
    """What a run produced: the response returned to the caller, and the artifacts (for --out and tests)."""

    response: dict[str, Any]
    csv: bytes = b""
    message: bytes = b""
    html: str = ""
    totals: SourceTotals = field(default_factory=QueryTotals)
    metrics: list[dict[str, Any]] = field(default_factory=list)  # metrics.emf records; lambda_handler publishes them


# A run allocates millions of short-lived objects (query rows, frames, breakdown lines) beside hundreds of thousands
# of long-lived ones (boto's service models, pandas, the price tables), which CPython's collector traverses at each
# full collection: a quarter of the run's CPU at 50,000 groups. For the run, the long-lived are frozen (left out of
# collections) and collections made rarer; both are restored when it ends.
RUN_COLLECTION_THRESHOLD = 100_000


@contextmanager
def fewer_collections() -> Iterator[None]:
    thresholds, frozen_before = gc.get_threshold(), gc.get_freeze_count()
    gc.freeze()
    gc.set_threshold(RUN_COLLECTION_THRESHOLD, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        if not frozen_before:  # a process that froze objects of its own keeps them frozen
            gc.unfreeze()


@fewer_collections()
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
    run = RunTime(now, clock, timeout)
    aws.bound(clock=clock, sleep=sleep, deadline=run.calls_end, reads_until=run.reads_end)
    try:  # 1. What to report (or the weekly refresh of the price table: its own schedule, no report)
        if is_price_refresh(event):
            return ReportRun(refresh_prices(config, aws, now.date()))
        request = read_request(event, config, now)
    except InvalidRequest as err:
        log.warning("refused request: %s", err)
        return ReportRun(err.as_response())
    window = announce(request.window)
    # 2. Every place read or written, the prices and the budgets: a bad setting fails before a query is paid for
    store = ReportStore(aws.client("s3"), config.report_bucket, config.report_prefix, config.timezone)
    source = usage_source(config, aws, sleep=sleep, clock=clock, now=lambda: now)
    inputs = preflight(config, request, aws, store, source, now.date())
    # 3. Usage, proven complete; 4. priced; 5. the report (its CSV, in S3 under the same key on a re-run)
    usage = source.collect(window, inputs.prices.context_tiers.thresholds, deadline=run.queries_end)
    report, attribution = price_and_report(usage, config, aws, inputs.prices)
    stored = store.put_report(window, report.csv, partial=request.partial)
    # 6. Against the reports before it: the previous period, the month to date, the prices that changed
    history = look_back(store, window, report.totals.total_cost)
    summary = Summary(window.as_json(), report.totals, footer(config, usage, inputs, store, history, attribution))
    # 7. Budgets and spikes, from the summaries earlier runs left (a whole day's report only)
    ses = Ses(aws.client("sesv2", config.ses_region or None), config.sender) if request.send_email else None
    watch = watch_report(config, window, request.partial, inputs.budgets, summary, store, ses, run.wall_now())
    summary.watch = watch.as_json() if watch else None
    summary_uri = store.put_summary(window, summary, partial=request.partial)
    # 8. A settled day against the bill (never stops the report)
    bill = reconcile_settled_day(config, aws, store, window, inputs.prices.catalog, now=run.wall_now())
    # 9. The email, exactly once per window
    email = report_email(
        config, request.recipients, store, stored, report.csv, summary, history, watch, bill.result, aws.credentials()
    )
    sent = send_report_once(store, stored, ses, email, summary.window, run.claim(request)) if ses else NOT_ASKED
    # 10. The answer, and the run's metrics
    outcome = RunOutcome(request, stored.uri, summary_uri, report.totals, usage.totals, sent, watch, bill.result)
    metrics = [report_metrics(outcome)] + ([bill.metric] if bill.metric else [])
    return ReportRun(outcome.response(), report.csv, email.raw, email.rendered.html, usage.totals, metrics)


@dataclass(frozen=True)
class RunTime:
    """The run's clock: `now` when it began, and the monotonic instants by which the queries and the run must end.

    Any AWS call may take ATTEMPT_SECONDS (connect and read timeouts) once started, so none starts later than that
    before the end (`calls_end`). A query still running at its deadline costs a poll already under way and then a
    StopQuery, each ATTEMPT_SECONDS at worst, and delivery needs its margin after that: the queries' deadline lies
    that much before the end. Reads stop being retried where only the delivery margin is left, so that a throttled
    lookup cannot take the email's time."""

    began_at: datetime
    clock: Callable[[], float]
    timeout: float
    began: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "began", self.clock())

    @property
    def end(self) -> float:
        return self.began + self.timeout

    @property
    def delivery_margin(self) -> float:
        """Time kept for pricing, S3 and SES after the queries and their stop."""
        return min(DELIVERY_MARGIN_SECONDS, max(0.0, self.timeout - 2 * ATTEMPT_SECONDS) / 4)

    @property
    def queries_end(self) -> float:
        """No query starts or is polled after this: a poll under way, a StopQuery and delivery still fit."""
        return self.end - 2 * ATTEMPT_SECONDS - self.delivery_margin

    @property
    def calls_end(self) -> float:
        """No AWS call starts after this: one more attempt could outlast the run."""
        return self.end - ATTEMPT_SECONDS

    @property
    def reads_end(self) -> float:
        """Reads are retried until this, however many attempts it takes (at least as often as a write)."""
        return self.calls_end - self.delivery_margin

    def wall_now(self) -> datetime:
        return self.began_at + timedelta(seconds=self.clock() - self.began)

    def claim(self, request: ReportRequest) -> Claim:
        """The email's claim lasts as long as this run can: after that, a run that takes it over knows it is gone."""
        expires = self.began_at + timedelta(seconds=self.timeout)
        return Claim(request.recipients, force=request.force, now=self.wall_now, expires=expires)


def announce(window: ReportWindow) -> ReportWindow:
    LOG_CONTEXT["window"] = window.label
    log.info("reporting %s [%s, %s)", window.label, window.start.isoformat(), window.end.isoformat())
    return window


def read_request(event: Any, config: Config, now: datetime) -> ReportRequest:
    """The event as a request; the addresses it names must be in ALLOWED_RECIPIENTS."""
    tz, recipients, allowed = config.timezone, config.recipients, config.is_allowed_recipient
    return parse_request(event, tz=tz, now=now, default_recipients=recipients, allowed=allowed)


@dataclass(frozen=True)
class Inputs:
    """What the run reads before its queries: the price tables and the budgets."""

    prices: PriceTables
    overrides: bytes | None
    budgets: Budgets


def preflight(
    config: Config, request: ReportRequest, aws: AwsClients, store: ReportStore, source: UsageSource, today: date
) -> Inputs:
    if request.send_email:
        config.require_email_settings(request.recipients)
    store.check()
    source.check()
    s3 = store.bucket.s3
    overrides = read_location(config.price_overrides, "PRICE_OVERRIDES", s3) if config.price_overrides else None
    budgets = read_budgets(config.budgets, s3, config.attribution_keys, config.is_allowed_recipient)
    return Inputs(load_prices(config, store.prices, overrides, today), overrides, budgets)


def price_and_report(
    usage: CollectedUsage, config: Config, aws: AwsClients, prices: PriceTables
) -> tuple[Report, dict[str, Any]]:
    """The usage attributed (ATTRIBUTION_KEYS), priced, made into the report's rows and those into the report; each
    frame is let go as soon as the next is made (at 100,000 groups each is tens of MiB: the CSV is made in the
    memory the priced usage leaves, and the email still has to be encoded). A frame passed on as an argument
    would live on in this function's variables until the call returns."""
    frame, attribution = attribute_usage(usage.take_frame(), config.attribution_keys, aws)
    priced = price_frame(frame, prices, lambda region: aws.client("bedrock", region))
    del frame
    rows = report_rows(priced, config.attribution_keys)
    del priced
    return build_report(rows, config.attribution_keys, usage.totals.records_matched), attribution


def footer(
    config: Config,
    usage: CollectedUsage,
    inputs: Inputs,
    store: ReportStore,
    history: History,
    attribution: dict[str, Any],
) -> dict[str, Any]:
    """Where the numbers came from: the source, the price tables (and the models priced anew or repriced since the
    report before), the earlier summaries that could not be read, the attribution's sources."""
    first_day = history.window.local_start.date()
    changes = changes_since(history.previous_footer, inputs.prices, config, store.prices, inputs.overrides, first_day)
    return {
        **usage.totals.footer(),
        "price_table_version": inputs.prices.version,
        "unreadable_summaries": len(set(store.skipped)),
        "price_table_key": inputs.prices.key,
        "price_changes": changes,
        **({"price_tables_refused": [vars(table) for table in inputs.prices.refused]} if inputs.prices.refused else {}),
        **({"attribution": attribution} if attribution else {}),
    }


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
    LOG_CONTEXT.update(run_id=str(getattr(context, "aws_request_id", "") or uuid.uuid4()), window="")
    _log_every_line_with_the_run()
    config = load_config(os.environ)
    logging.getLogger().setLevel(config.log_level)
    timeout = DEFAULT_TIMEOUT_SECONDS
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        timeout = context.get_remaining_time_in_millis() / 1000
    run = run_report(event, config, AwsClients(config.default_region), now=datetime.now(UTC), timeout=timeout)
    publish(run.metrics, function_name(context))  # Embedded Metric Format: log lines CloudWatch turns into metrics
    return run.response
