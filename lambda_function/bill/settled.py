"""The settled day against the bill: the day RECONCILE_LAG_DAYS before a daily report's, its stored summary
compared with the bill, and the verdict written back into that day's summary. Never stops the report.

The bill is Cost Explorer's (totals per service, region and model; `source: cost_explorer`) or, with CUR_EXPORT, the
CUR 2.0 export's lines per IAM principal (`source: cur`): the query of `cur.settled_query` run by the engine
BILL_ENGINE names (Athena in AWS, DuckDB in process), the comparison of `cur.compare_identities`, and the settled
CSV `bedrock-billed_<start>_<end>.csv` beside that day's report. A month the export has no objects for yet, a day
with no Bedrock line in it while the logs saw spend, an engine failing or reaching the deadline: `unavailable` with
the reason. A whole calendar month's report with CUR_EXPORT gets its month billed instead (bill/month.py)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambda_function.aws import AwsClients, error_code
from lambda_function.bill import cur, month, reconcile
from lambda_function.config import Config
from lambda_function.engine import EngineError, Relation, SqlEngine
from lambda_function.engine.choose import engine_named, scan_cost
from lambda_function.errors import DeadlineExceeded
from lambda_function.pricing.model_ids import ModelCatalog
from lambda_function.pricing.price_list import price_list_names
from lambda_function.report.history import month_to_date
from lambda_function.store import ReportStore
from lambda_function.summary import ATTRIBUTION, BY_IDENTITY, Summary
from lambda_function.window import ReportWindow, day_window

log = logging.getLogger(__name__)

COST_EXPLORER_REGION = "us-east-1"  # Cost Explorer's one endpoint
PER_IDENTITY_NOTE = "per identity: the summary has no identity x model breakdown"


@dataclass(frozen=True)
class Reconciliation:
    result: dict[str, Any] | None = None  # what the email, the response and the settled day's summary say
    metric: dict[str, Any] | None = None  # the drift as an EMF record, when there is a verdict


def reconcile_settled_day(
    config: Config, aws: AwsClients, store: ReportStore, window: ReportWindow, catalog: ModelCatalog, *, now: datetime
) -> Reconciliation:
    """For a daily report: the settled day against the bill; for a whole month's with CUR_EXPORT, the month billed
    (`month_billed`); nothing for other windows or with the lag 0. Whatever fails is `unavailable` with the reason."""
    if not config.reconcile_lag_days:
        return Reconciliation()
    if not window.is_single_day:
        return _month_billed(config, aws, store, window, now)
    day = window.local_start.date() - timedelta(days=config.reconcile_lag_days)
    settled = day_window(day, window.tz)
    estimate = store.summary(settled)
    if estimate is None:
        if store.skipped_summary(settled):
            why = f"the summary of {day.isoformat()} cannot be read: nothing to compare with"
        else:
            why = f"no report for {day.isoformat()} to compare with"
        return Reconciliation(_unavailable(config, why, day))
    if config.cur_export:
        result = _from_cur(config, aws, store, day, settled, estimate, catalog)
    else:
        result = _from_cost_explorer(config, aws, store, day, settled, estimate, catalog)
    store.put_summary(settled, replace(estimate, reconciliation=result))
    return Reconciliation(result, reconcile.emf_metric(result) if result["status"] == "ok" else None)


def _month_billed(
    config: Config, aws: AwsClients, store: ReportStore, window: ReportWindow, now: datetime
) -> Reconciliation:
    """A whole month's report with CUR_EXPORT: the month billed per identity and per team (bill/month.py), under
    `month_billed` of the month's own reconciliation, written back into its summary; nothing for other windows."""
    estimate = store.summary(window)  # the summary this run just wrote
    if estimate is None or not config.cur_export or month.whole_month(window) is None:
        return Reconciliation()
    bucket, data = _export(config)
    bill = month.BillAccess(
        bucket,
        data,
        engine=lambda: bill_engine(config, aws),
        missing=lambda periods: _settled_periods(aws, bucket, data, periods),
        deadline=lambda: _query_deadline(aws),
        scan_cost=_scan_cost,
    )
    billed = month.month_billed(config, store, window, estimate, bill, now=now)
    if billed is None:
        return Reconciliation()
    result = {"month_billed": billed}
    store.put_summary(window, replace(estimate, reconciliation=result))
    return Reconciliation(result, month.emf_metric(billed) if billed["status"] == "ok" else None)


def _source(config: Config) -> str:
    return "cur" if config.cur_export else "cost_explorer"


def _unavailable(config: Config, why: str, day: date) -> dict[str, Any]:
    return {**reconcile.unavailable(why, day), "source": _source(config)}


def _from_cost_explorer(
    config: Config,
    aws: AwsClients,
    store: ReportStore,
    day: date,
    settled: ReportWindow,
    estimate: Summary,
    catalog: ModelCatalog,
) -> dict[str, Any]:
    try:
        ce = aws.client("ce", COST_EXPLORER_REGION)
        services = reconcile.bedrock_services(ce, day, day + timedelta(days=1))
        lines, accounts = reconcile.billed_day(ce, day, config.reconcile_metric, services)
        names = price_list_names(store.prices.extra_names())
        result = reconcile.compare(
            day,
            estimate,
            lines,
            accounts,
            reconcile.UsageTypeNames(names.names, names.regions_by_prefix),
            lambda name: catalog.normalise(name).model_id or name,
            config.reconcile_alert_percent,
        )
        estimated = month_to_date(store, settled, estimate.total_cost)
        assert estimated is not None  # a day's window
        result["month_to_date"] = reconcile.month_to_date(
            reconcile.billed_month_to_date(ce, day, config.reconcile_metric),
            estimated.total_cost,
            estimated.days_reported,
            estimated.days_in_range,
        )
        result["metric"] = config.reconcile_metric
        result["source"] = "cost_explorer"
    except (ClientError, BotoCoreError, DeadlineExceeded, reconcile.BillUnavailable) as err:
        why = f"{error_code(err)}: {err}" if isinstance(err, ClientError) else str(err)
        log.warning("reconciliation of %s unavailable: %s", day, why)
        return _unavailable(config, why, day)
    if config.attribution_keys:
        result.update(_by_team(config, ce, day, services, estimate))
    return result


def _by_team(
    config: Config, ce: reconcile.CostExplorerClient, day: date, services: list[str], estimate: Summary
) -> dict[str, Any]:
    """Per ATTRIBUTION_KEYS key, the day billed per `iamPrincipal/<key>` tag against the summary's estimate per
    value: one more GetCostAndUsage request per key ($0.01 each). Never blocks: a failure leaves `by_team` out and
    says why in `by_team_unavailable`."""
    estimated: dict[str, dict[str, Decimal]] = {}
    billed: dict[str, dict[str, Decimal]] = {}
    try:
        for key in config.attribution_keys:
            estimated[key] = estimate.breakdown_costs(ATTRIBUTION + key) or {}
            tag = reconcile.PRINCIPAL_TAG_PREFIX + key
            billed[key] = reconcile.billed_by_tag(ce, day, config.reconcile_metric, services, tag)
    except (ClientError, BotoCoreError, DeadlineExceeded, reconcile.BillUnavailable) as err:
        why = f"{error_code(err)}: {err}" if isinstance(err, ClientError) else str(err)
        log.warning("billed per team on %s unavailable: %s", day, why)
        return {"by_team_unavailable": why}
    return {"by_team": reconcile.compare_teams(estimated, billed)}


def bill_engine(config: Config, aws: AwsClients) -> SqlEngine:
    """The engine BILL_ENGINE names, on the run's clock (its polls and downloads end by the run's deadline)."""
    return engine_named(config.bill_engine, aws, config.athena_workgroup)


def _query_deadline(aws: AwsClients) -> float:
    """The reads' end (time is kept after it for the email), or no deadline when the run has none."""
    ends = [end for end in (aws.policy.deadline, aws.policy.reads_until) if end is not None]
    return min(ends) if ends else float("inf")


def _export(config: Config) -> tuple[str, str]:
    bucket, _, prefix = config.cur_export.removeprefix("s3://").partition("/")
    return bucket, "/".join(part for part in (prefix.strip("/"), "data") if part)


def _settled_periods(aws: AwsClients, bucket: str, data: str, periods: list[str]) -> list[str]:
    """The billing periods among `periods` the export has no object for yet."""
    s3 = aws.client("s3")
    missing = []
    for period in periods:
        page = s3.list_objects_v2(Bucket=bucket, Prefix=f"{data}/BILLING_PERIOD={period}/", MaxKeys=1)
        if not page.get("Contents"):
            missing.append(period)
    return missing


def _scan_cost(engine: str, scanned: int) -> str | None:
    cost = scan_cost(engine, scanned)
    return None if cost is None else reconcile._usd(cost)


def _add_month_to_date(
    config: Config,
    aws: AwsClients,
    store: ReportStore,
    settled: ReportWindow,
    estimate: Summary,
    result: dict[str, Any],
) -> None:
    """The month to date billed with CUR, as with Cost Explorer: one more query of the same text from the 1st of the
    settled day's month through that day (the same billing-period partition, or also the one before when the local
    month starts in the previous UTC month), its Usage lines summed as the day's are, against the estimated month to
    date of the stored summaries. Its bytes add to the result's; a failure leaves `month_to_date` out, saying why in
    `month_to_date_unavailable`."""
    bucket, data = _export(config)
    day = settled.local_start.date()
    start = day_window(day.replace(day=1), settled.tz).start
    periods = cur.billing_periods(start, settled.end)
    try:
        missing = _settled_periods(aws, bucket, data, periods)
        if missing:
            result["month_to_date_unavailable"] = f"no objects for the billing period(s) {', '.join(missing)}"
            return
        partitions = tuple(("billing_period", period) for period in periods)
        relation = Relation(bucket, data, "parquet", glue_table=config.cur_table, partitions=partitions)
        sql = cur.settled_query(start, settled.end, config.reconcile_metric)
        answer = bill_engine(config, aws).run(sql, {"cur": relation}, deadline=_query_deadline(aws))
        billed = sum((line.usd for line in cur.lines_of(answer) if line.line_type == cur.USAGE), Decimal(0))
    except (ClientError, BotoCoreError, DeadlineExceeded, EngineError, cur.CurUnreadable) as err:
        why = f"{error_code(err)}: {err}" if isinstance(err, ClientError) else str(err)
        log.warning("the month to date of %s with the CUR export unavailable: %s", day, why)
        result["month_to_date_unavailable"] = why
        return
    estimated = month_to_date(store, settled, estimate.total_cost)
    assert estimated is not None  # a day's window
    result["month_to_date"] = reconcile.month_to_date(
        billed, estimated.total_cost, estimated.days_reported, estimated.days_in_range
    )
    costs = [_scan_cost(answer.engine, scanned) for scanned in (result["bytes_scanned"], answer.bytes_scanned)]
    result["bytes_scanned"] += answer.bytes_scanned
    if all(cost is not None for cost in costs):
        result["scan_cost_usd"] = reconcile._usd(sum((Decimal(cost or 0) for cost in costs), Decimal(0)))


def _from_cur(
    config: Config,
    aws: AwsClients,
    store: ReportStore,
    day: date,
    settled: ReportWindow,
    estimate: Summary,
    catalog: ModelCatalog,
) -> dict[str, Any]:
    """The settled day per identity from the CUR 2.0 export; the settled CSV per identity, model and region from
    that day's report CSV (per identity when it cannot be read, and the note says so)."""
    bucket, data = _export(config)
    periods = cur.billing_periods(settled.start, settled.end)
    if estimate.breakdown_costs(BY_IDENTITY) is None:
        return _unavailable(config, f"the summary of {day.isoformat()} has no cost per identity to compare", day)
    if config.bill_engine == "athena" and not config.cur_table:
        return _unavailable(config, "BILL_ENGINE=athena needs CUR_TABLE, the export's Glue table", day)
    try:
        missing = _settled_periods(aws, bucket, data, periods)
        if missing:
            where = ", ".join(f"s3://{bucket}/{data}/BILLING_PERIOD={period}/" for period in missing)
            return _unavailable(
                config, f"the bill for {day.isoformat()} is not settled yet: no objects under {where}", day
            )
        # only the day's billing periods are read (two for a local day straddling a month's end in UTC)
        partitions = tuple(("billing_period", period) for period in periods)
        relation = Relation(bucket, data, "parquet", glue_table=config.cur_table, partitions=partitions)
        sql = cur.settled_query(settled.start, settled.end, config.reconcile_metric)
        answer = bill_engine(config, aws).run(sql, {"cur": relation}, deadline=_query_deadline(aws))
        lines = cur.lines_of(answer)
        if not lines and estimate.total_cost > 0:
            return _unavailable(
                config,
                f"the bill for {day.isoformat()} is not settled yet: the export has no Bedrock line for that day",
                day,
            )
        names = price_list_names(store.prices.extra_names())
        usage_names = reconcile.UsageTypeNames(names.names, names.regions_by_prefix)
        result = cur.compare_identities(day, estimate, lines, config.reconcile_alert_percent, usage_names.model)
        result.update(
            metric=config.reconcile_metric,
            export=config.cur_export,
            engine=answer.engine,
            bytes_scanned=answer.bytes_scanned,
            scan_cost_usd=_scan_cost(answer.engine, answer.bytes_scanned),
            note=PER_IDENTITY_NOTE,
        )
        _add_month_to_date(config, aws, store, settled, estimate, result)
    except (ClientError, BotoCoreError, DeadlineExceeded, EngineError, cur.CurUnreadable) as err:
        why = f"{error_code(err)}: {err}" if isinstance(err, ClientError) else str(err)
        log.warning("reconciliation of %s with the CUR export unavailable: %s", day, why)
        return _unavailable(config, why, day)
    note = result["note"]
    try:
        rows = store.report_rows(settled)
        if rows is None:
            why = "cannot be read" if store.skipped_report(settled) else "is not there"
            note = f"per identity; the settled CSV per identity too: the report CSV of {day.isoformat()} {why}"
            body = cur.settled_csv(result, estimate)
        else:
            base = lambda name: catalog.normalise(name).model_id or name  # noqa: E731
            by_model = cur.compare_models(rows, lines, usage_names.model, usage_names.region, base)
            note, body = "per identity; the settled CSV per identity, model and region", cur.settled_model_csv(by_model)
        csv_uri: str | None = store.put_settled(settled, body).uri
    except (ClientError, BotoCoreError, DeadlineExceeded) as err:
        log.warning("the settled CSV of %s was not written: %s", day, err)
        csv_uri = None
    return {**cur.trimmed(result), "settled_csv": csv_uri, "note": note}
