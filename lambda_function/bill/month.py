"""The month, billed: a report whose window is a whole calendar month (period `previous_month`, or an explicit window
from the 1st to the 1st in the report's time zone), compared with the CUR 2.0 export for that month: billed per
identity and per team, the chargeback statement finance uses. Only with CUR_EXPORT; never stops the report.

- Complete: the month ended at least SETTLE_DAYS (3 days: the bill settles 24-72 h after a call) before now, and
  every billing-period partition it touches has objects in the export (the month's, and the one before when the
  local month starts in the previous UTC month). Otherwise `unavailable`, saying which rule failed.
- Per identity: the settled day's query (`cur.settled_query`) over the month's window, compared by
  `cur.compare_identities` with the month's own summary (`by_identity`); tax, credits and refunds apart.
- Per team: CUR has no team column, and the identities' estimated team is ours, not the bill's. The bill knows a
  team only through the principal tag activated as a cost allocation tag, which CUR 2.0 writes in its
  `resource_tags` map under `iamPrincipal/<key>`. So one more, small query per ATTRIBUTION_KEYS key (`team_query`:
  the month's Bedrock Usage lines summed per value of that tag; the per-identity query is left as it is, one SQL
  text per purpose), compared with the summary's `by_attribution[<key>]`; usage without the tag is `unattributed`.
  A failure there leaves `by_team` out and says why in `by_team_unavailable`.

The result goes under `reconciliation.month_billed` of the month's own summary (written back), response and email.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambda_function.aws import error_code
from lambda_function.bill import cur, reconcile
from lambda_function.config import Config
from lambda_function.engine import EngineError, QueryAnswer, Relation, SqlEngine
from lambda_function.errors import DeadlineExceeded
from lambda_function.metrics import emf
from lambda_function.pricing.price_list import price_list_names
from lambda_function.store import ReportStore
from lambda_function.summary import ATTRIBUTION, BY_IDENTITY, Summary
from lambda_function.window import ReportWindow

log = logging.getLogger(__name__)

SETTLE_DAYS = 3  # the bill settles 24-72 h after a call: a month is read once it ended this long ago
TEAM_COLUMNS = ("team", "usd")

_TEAM_QUERY = """\
SELECT
  element_at(resource_tags, '{tag}') AS team,
  SUM(CAST({cost} AS DECIMAL(38, 10))) AS usd
FROM cur
WHERE billing_period IN ({periods})
  AND line_item_usage_start_date >= TIMESTAMP '{start}'
  AND line_item_usage_start_date < TIMESTAMP '{end}'
  AND line_item_line_item_type = '{usage}'
  AND (
    product_servicecode IN ({codes})
    OR line_item_product_code IN ({codes})
    OR element_at(product, 'product_name') LIKE '%{suffix}'
  )
GROUP BY 1
ORDER BY 1"""


def whole_month(window: ReportWindow) -> date | None:
    """The month's 1st when `window` is exactly one calendar month in its time zone (local midnight on the 1st to
    local midnight on the next 1st), else None."""
    start, end = window.local_start, window.local_end
    if start.time() != time(0) or end.time() != time(0) or start.day != 1 or end.day != 1:
        return None
    following = (start.date().replace(day=28) + timedelta(days=4)).replace(day=1)
    return start.date() if end.date() == following else None


def team_query(start: datetime, end: datetime, metric: str, key: str) -> str:
    """The window's Bedrock Usage lines summed per value of the `iamPrincipal/<key>` cost allocation tag (NULL:
    usage without it). The key is an ATTRIBUTION_KEYS key (config refuses quotes; escaped all the same)."""
    if not isinstance(start, datetime) or not isinstance(end, datetime) or start.tzinfo is None:
        raise TypeError("the window's bounds must be aware datetimes")
    stamp = "%Y-%m-%d %H:%M:%S"
    return _TEAM_QUERY.format(
        tag=(reconcile.PRINCIPAL_TAG_PREFIX + key).replace("'", "''"),
        cost=cur.COST_COLUMNS[metric],
        periods=", ".join(f"'{period}'" for period in cur.billing_periods(start, end)),
        start=start.astimezone(UTC).strftime(stamp),
        end=end.astimezone(UTC).strftime(stamp),
        usage=cur.USAGE,
        codes=", ".join(f"'{code}'" for code in cur.BEDROCK_SERVICE_CODES),
        suffix=cur.MARKETPLACE_SUFFIX,
    )


def teams_of(answer: QueryAnswer) -> dict[str, Decimal]:
    """The team query's rows: billed per tag value (usage without the tag under `unattributed`)."""
    missing = [column for column in TEAM_COLUMNS if column not in answer.columns]
    if missing:
        raise cur.CurUnreadable(f"the bill's team query answered without the column(s) {', '.join(missing)}")
    at_team, at_usd = answer.columns.index("team"), answer.columns.index("usd")
    billed: dict[str, Decimal] = {}
    for row in answer.rows:
        raw = row[at_usd]
        try:
            usd = Decimal(raw) if raw is not None else Decimal(0)
        except ArithmeticError:
            raise cur.CurUnreadable(f"the bill gave the cost {raw!r}, not a number") from None
        if not usd.is_finite():
            raise cur.CurUnreadable(f"the bill gave the cost {raw!r}, not a number")
        name = (row[at_team] or "").strip() or reconcile.UNTAGGED
        billed[name] = billed.get(name, Decimal(0)) + usd
    return billed


@dataclass(frozen=True)
class BillAccess:
    """How the month reads the bill: the settled-day stage's own (bill/settled.py hands them in), so both read the
    same export through the same engine, on the same clock."""

    bucket: str
    data: str  # the prefix that holds BILLING_PERIOD=YYYY-MM/
    engine: Callable[[], SqlEngine]
    missing: Callable[[list[str]], list[str]]  # the billing periods among these with no object yet
    deadline: Callable[[], float]
    scan_cost: Callable[[str, int], str | None]  # what an engine's scan of so many bytes cost (Athena), else None


def _unavailable(first: date, why: str) -> dict[str, Any]:
    return {"status": "unavailable", "source": "cur", "month": f"{first:%Y-%m}", "why": why}


def _why(err: Exception) -> str:
    return f"{error_code(err)}: {err}" if isinstance(err, ClientError) else str(err)


def month_billed(
    config: Config,
    store: ReportStore,
    window: ReportWindow,
    estimate: Summary,
    bill: BillAccess,
    *,
    now: datetime,
) -> dict[str, Any] | None:
    """The month's bill per identity and per team against `estimate` (the month's own summary); None when the
    window is not a whole month or there is no CUR_EXPORT; `unavailable` with the reason when it cannot be read."""
    first = whole_month(window)
    if first is None or not config.cur_export:
        return None
    settles = window.end + timedelta(days=SETTLE_DAYS)
    if now < settles:
        return _unavailable(
            first,
            f"the month is not complete in the bill yet: it settles {SETTLE_DAYS} days after its end, "
            f"from {settles.isoformat().replace('+00:00', 'Z')}",
        )
    if estimate.breakdown_costs(BY_IDENTITY) is None:
        return _unavailable(first, "the month's summary has no cost per identity to compare")
    if config.bill_engine == "athena" and not config.cur_table:
        return _unavailable(first, "BILL_ENGINE=athena needs CUR_TABLE, the export's Glue table")
    periods = cur.billing_periods(window.start, window.end)
    try:
        missing = bill.missing(periods)
        if missing:
            return _unavailable(
                first,
                f"the month is not complete in the bill: no objects for the billing period(s) {', '.join(missing)}",
            )
        partitions = tuple(("billing_period", period) for period in periods)
        relation = Relation(bill.bucket, bill.data, "parquet", glue_table=config.cur_table, partitions=partitions)
        engine = bill.engine()
        sql = cur.settled_query(window.start, window.end, config.reconcile_metric)
        answer = engine.run(sql, {"cur": relation}, deadline=bill.deadline())
        lines = cur.lines_of(answer)
        names = price_list_names(store.prices.extra_names())
        usage_names = reconcile.UsageTypeNames(names.names, names.regions_by_prefix)
        result = cur.compare_identities(first, estimate, lines, config.reconcile_alert_percent, usage_names.model)
    except (ClientError, BotoCoreError, DeadlineExceeded, EngineError, cur.CurUnreadable) as err:
        log.warning("the month %s billed with the CUR export unavailable: %s", f"{first:%Y-%m}", _why(err))
        return _unavailable(first, _why(err))
    del result["day"]
    scanned = [answer.bytes_scanned]
    result.update(
        month=f"{first:%Y-%m}",
        start=window.as_json()["start"],
        end=window.as_json()["end"],
        metric=config.reconcile_metric,
        export=config.cur_export,
        engine=answer.engine,
    )
    if config.attribution_keys:
        estimated: dict[str, dict[str, Decimal]] = {}
        billed: dict[str, dict[str, Decimal]] = {}
        try:
            for key in config.attribution_keys:
                estimated[key] = estimate.breakdown_costs(ATTRIBUTION + key) or {}
                sql = team_query(window.start, window.end, config.reconcile_metric, key)
                teams = engine.run(sql, {"cur": relation}, deadline=bill.deadline())
                scanned.append(teams.bytes_scanned)
                billed[key] = teams_of(teams)
            result["by_team"] = reconcile.compare_teams(estimated, billed)
        except (ClientError, BotoCoreError, DeadlineExceeded, EngineError, cur.CurUnreadable) as err:
            log.warning("the month %s billed per team unavailable: %s", f"{first:%Y-%m}", _why(err))
            result["by_team_unavailable"] = _why(err)
    costs = [bill.scan_cost(answer.engine, bytes_) for bytes_ in scanned]
    result["bytes_scanned"] = sum(scanned)
    result["scan_cost_usd"] = (
        None if any(c is None for c in costs) else reconcile._usd(sum((Decimal(c or 0) for c in costs), Decimal(0)))
    )
    return cur.trimmed(result)


def emf_metric(billed: dict[str, Any]) -> dict[str, Any]:
    """The month billed as metrics of its own (`MonthBilledDriftPercent`; what its queries read and, in Athena,
    cost), apart from the settled day's `ReconciliationDrift*`, which the daily drift alarm watches."""
    values: dict[str, tuple[float, str]] = {
        "MonthBilledDriftPercent": (float(Decimal(billed["drift_percent"])), "Percent"),
        "BillQueryBytesScanned": (billed["bytes_scanned"], "Bytes"),
    }
    if billed.get("scan_cost_usd") is not None:
        values["BillQueryCostUSD"] = (float(Decimal(billed["scan_cost_usd"])), "None")
    return emf(values, month=billed["month"])
