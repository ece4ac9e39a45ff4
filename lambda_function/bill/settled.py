"""The settled day against the bill: the day RECONCILE_LAG_DAYS before a daily report's, its stored summary
compared with Cost Explorer, and the verdict written back into that day's summary. Never stops the report."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambda_function.aws import AwsClients, error_code
from lambda_function.bill import reconcile
from lambda_function.config import Config
from lambda_function.errors import DeadlineExceeded
from lambda_function.pricing.model_ids import ModelCatalog
from lambda_function.pricing.price_list import price_list_names
from lambda_function.report.history import month_to_date
from lambda_function.store import ReportStore
from lambda_function.window import ReportWindow, day_window

log = logging.getLogger(__name__)

COST_EXPLORER_REGION = "us-east-1"  # Cost Explorer's one endpoint


@dataclass(frozen=True)
class Reconciliation:
    result: dict[str, Any] | None = None  # what the email, the response and the settled day's summary say
    metric: dict[str, Any] | None = None  # the drift as an EMF record, when there is a verdict


def reconcile_settled_day(
    config: Config, aws: AwsClients, store: ReportStore, window: ReportWindow, catalog: ModelCatalog
) -> Reconciliation:
    """For a daily report: the settled day against Cost Explorer; nothing for other windows or with the lag 0.
    Whatever fails is `unavailable` with the reason."""
    if not config.reconcile_lag_days or not window.is_single_day:
        return Reconciliation()
    day = window.local_start.date() - timedelta(days=config.reconcile_lag_days)
    settled = day_window(day, window.tz)
    estimate = store.summary(settled)
    if estimate is None:
        if store.skipped_summary(settled):
            why = f"the summary of {day.isoformat()} cannot be read: nothing to compare with"
        else:
            why = f"no report for {day.isoformat()} to compare with"
        return Reconciliation(reconcile.unavailable(why, day))
    try:
        ce = aws.client("ce", COST_EXPLORER_REGION)
        lines, accounts = reconcile.billed_day(ce, day, config.reconcile_metric)
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
    except (ClientError, BotoCoreError, DeadlineExceeded, reconcile.BillUnavailable) as err:
        why = f"{error_code(err)}: {err}" if isinstance(err, ClientError) else str(err)
        log.warning("reconciliation of %s unavailable: %s", day, why)
        result = reconcile.unavailable(why, day)
    store.put_summary(settled, replace(estimate, reconciliation=result))
    return Reconciliation(result, reconcile.emf_metric(result) if result["status"] == "ok" else None)
