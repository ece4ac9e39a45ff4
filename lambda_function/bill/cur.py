"""The bill per identity: a settled day's Bedrock lines read from a CUR 2.0 Data Export (with IAM principal data),
compared with that day's estimate per identity ARN. Pure, except for the query text handed to an engine.

- `settled_query(start, end)`: the ONE SQL text (Athena/Trino dialect; the embedded engine translates what differs
  in `engine/dialect.py`) over the relation `cur`: per `line_item_iam_principal`, `line_item_usage_account_id`,
  `line_item_line_item_type`, service and usage type, the sum of the cost column RECONCILE_COST_METRIC names, for
  Bedrock lines only (`product_servicecode` or `line_item_product_code` one of Bedrock's, or a marketplace product
  whose name ends in " (Amazon Bedrock Edition)": Claude and the other third-party models). Only the billing-period
  partitions the day touches are read (partition projection in Athena, hive keys in the embedded engine), and only
  the columns named here (Parquet column pruning). The day is the settled window in UTC: CUR lines are hourly, so
  a report time zone on whole hours is compared like with like.
- `compare_identities(day, estimate, lines)`: per identity ARN exactly as logged (a role's sessions are identities
  of their own, as in the invocation logs), each role's sessions rolled up in `by_role`; identities billed with no
  logged call (`billed_not_logged`: a bedrock-mantle caller, batch, provisioned throughput), identities logged and
  not billed (`logged_not_billed`). Only `Usage` lines are compared; tax, credits, refunds and the other line types
  are summed apart in `other_line_types`, never mixed in.
- `compare_models(rows, lines, ...)`: the settled CSV's rows, per account, identity, model and region: the estimate
  from the settled day's own report CSV (the model as logged, normalised to its base model so that a `us.` profile
  meets the bill's base model; an unpriced row keeps the estimate unpriced, never $0), the bill from the CUR lines
  with the usage type read as a model and a region (reconcile.UsageTypeNames). Without that CSV, `settled_csv` is
  per identity (Model Id and Region Name empty) and the result's note says so.
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from lambda_function.bill.reconcile import _difference, _usd, kind_of
from lambda_function.engine import QueryAnswer
from lambda_function.report.rows import neutralise
from lambda_function.summary import BY_IDENTITY, Summary

BEDROCK_SERVICE_CODES = ("AmazonBedrock", "AmazonBedrockService", "AmazonBedrockFoundationModels")
MARKETPLACE_SUFFIX = " (Amazon Bedrock Edition)"
USAGE = "Usage"  # the one line item type compared; every other (Tax, Credit, Refund, ...) is shown apart
NO_PRINCIPAL = "(no IAM principal on the bill)"  # usage lines the export did not attribute (or without that column)
# RECONCILE_COST_METRIC (Cost Explorer's names) -> the CUR 2.0 column. Bedrock's on-demand usage has no commitment to
# amortize: the amortized metrics read as their unblended counterparts. The net columns are empty where no discount
# applies: the unblended cost stands in.
COST_COLUMNS = {
    "UnblendedCost": "line_item_unblended_cost",
    "BlendedCost": "line_item_blended_cost",
    "AmortizedCost": "line_item_unblended_cost",
    "NetUnblendedCost": "COALESCE(line_item_net_unblended_cost, line_item_unblended_cost)",
    "NetAmortizedCost": "COALESCE(line_item_net_unblended_cost, line_item_unblended_cost)",
}
COLUMNS = ("identity", "account", "line_type", "service", "usage_type", "usd")
SETTLED_CSV_HEADER = (
    "Account Id",
    "Identity ARN",
    "Model Id",
    "Region Name",
    "Invocations",
    "Estimated charges",
    "Billed charges",
    "Difference",
    "Status",
)
# the result's lists keep this many entries (the largest first); the settled CSV has every identity. A role whose
# sessions are named per call makes thousands of identities a day: the response and the summary stay small.
MAX_LISTED = 100
_ROLE_SESSION = re.compile(r"^(arn:aws[a-z-]*:sts::\d{12}:assumed-role/[^/]+)/.+$")

_QUERY = """\
SELECT
  line_item_iam_principal AS identity,
  line_item_usage_account_id AS account,
  line_item_line_item_type AS line_type,
  CASE
    WHEN element_at(product, 'product_name') LIKE '%{suffix}' THEN element_at(product, 'product_name')
    ELSE COALESCE(product_servicecode, line_item_product_code)
  END AS service,
  line_item_usage_type AS usage_type,
  SUM(CAST({cost} AS DECIMAL(38, 10))) AS usd
FROM cur
WHERE billing_period IN ({periods})
  AND line_item_usage_start_date >= TIMESTAMP '{start}'
  AND line_item_usage_start_date < TIMESTAMP '{end}'
  AND (
    product_servicecode IN ({codes})
    OR line_item_product_code IN ({codes})
    OR element_at(product, 'product_name') LIKE '%{suffix}'
  )
GROUP BY 1, 2, 3, 4, 5
ORDER BY 1, 2, 3, 4, 5"""


def billing_periods(start: datetime, end: datetime) -> list[str]:
    """The `billing_period` partitions ('YYYY-MM', UTC) that [start, end) touches: one, or two for a local day
    that straddles a month's end in UTC."""
    first, last = start.astimezone(UTC), end.astimezone(UTC)
    periods = [f"{first:%Y-%m}"]
    if f"{last:%Y-%m}" != periods[0] and last > last.replace(day=1, hour=0, minute=0, second=0, microsecond=0):
        periods.append(f"{last:%Y-%m}")
    return periods


def settled_query(start: datetime, end: datetime, metric: str = "UnblendedCost") -> str:
    """The settled window's Bedrock lines, summed per identity, account, line type, service and usage type. The
    only values formatted in are datetimes (as ISO text), the periods derived from them and fixed constants."""
    if not isinstance(start, datetime) or not isinstance(end, datetime) or start.tzinfo is None:
        raise TypeError("the settled window's bounds must be aware datetimes")
    stamp = "%Y-%m-%d %H:%M:%S"
    return _QUERY.format(
        suffix=MARKETPLACE_SUFFIX,
        cost=COST_COLUMNS[metric],
        periods=", ".join(f"'{period}'" for period in billing_periods(start, end)),
        start=start.astimezone(UTC).strftime(stamp),
        end=end.astimezone(UTC).strftime(stamp),
        codes=", ".join(f"'{code}'" for code in BEDROCK_SERVICE_CODES),
    )


@dataclass(frozen=True)
class CurLine:
    """One row of the query: a sum of the settled day's Bedrock lines."""

    identity: str  # line_item_iam_principal ('' when the line has none)
    account: str
    line_type: str
    service: str
    usage_type: str
    usd: Decimal


class CurUnreadable(Exception):
    """The engine answered with something the comparison cannot use (a column missing, a cost that is no number)."""


def lines_of(answer: QueryAnswer) -> list[CurLine]:
    """The answer's rows as lines, typed (every value comes back as text)."""
    missing = [column for column in COLUMNS if column not in answer.columns]
    if missing:
        raise CurUnreadable(f"the bill's query answered without the column(s) {', '.join(missing)}")
    at = {column: answer.columns.index(column) for column in COLUMNS}
    lines = []
    for row in answer.rows:
        raw = row[at["usd"]]
        try:
            usd = Decimal(raw) if raw is not None else Decimal(0)
        except InvalidOperation:
            raise CurUnreadable(f"the bill gave the cost {raw!r}, not a number") from None
        if not usd.is_finite():
            raise CurUnreadable(f"the bill gave the cost {raw!r}, not a number")
        lines.append(
            CurLine(
                identity=(row[at["identity"]] or "").strip(),
                account=row[at["account"]] or "",
                line_type=row[at["line_type"]] or "",
                service=row[at["service"]] or "",
                usage_type=row[at["usage_type"]] or "",
                usd=usd,
            )
        )
    return lines


def role_of(identity: str) -> str | None:
    """The role an assumed-role session ARN belongs to (`arn:aws:sts::<acct>:assumed-role/<Role>`), else None."""
    match = _ROLE_SESSION.match(identity)
    return match.group(1) if match else None


def _account_of(identity: str) -> str:
    parts = identity.split(":")
    return parts[4] if len(parts) >= 6 and parts[4] else "unknown"


def _why_unlogged(usage_types: Iterable[str]) -> str:
    kinds = sorted({kind_of(usage_type) for usage_type in usage_types})
    unlogged = [kind for kind in kinds if kind not in ("tokens", "other")]
    if unlogged:
        return f"{', '.join(unlogged)}: billed, never in the invocation logs"
    return (
        "billed token usage with no logged call: the bedrock-mantle endpoint (OpenAI-compatible and Messages APIs, "
        "not captured by invocation logging), or logging off where it called"
    )


def _row(identity: str, account: str, billed: Decimal, estimated: Decimal, logged: bool) -> dict[str, Any]:
    difference = _difference(billed, estimated)
    return {"identity": identity, "account": account, **difference, "logged": logged}


def _largest_first(entries: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return sorted(entries, key=lambda e: (-abs(Decimal(e["difference_usd"])), e[name]))


def compare_identities(
    day: date,
    estimate: Summary,
    lines: Iterable[CurLine],
    alert_percent: Decimal = Decimal(5),
    model_of: Callable[[str, str], str] | None = None,
) -> dict[str, Any]:
    """The settled day per identity (pure): `estimate` is its stored summary, `lines` its Bedrock bill from CUR.
    `model_of(service, usage_type)` names a billed line's model as the price refresh does (reconcile.UsageTypeNames):
    the models each billed-not-logged identity was charged for."""
    estimated = estimate.breakdown_costs(BY_IDENTITY) or {}
    billed: dict[str, Decimal] = defaultdict(Decimal)
    accounts: dict[str, set[str]] = defaultdict(set)
    services: dict[str, set[str]] = defaultdict(set)
    usage_types: dict[str, set[str]] = defaultdict(set)
    charged: dict[str, set[tuple[str, str]]] = defaultdict(set)  # (service, usage type) pairs
    other: dict[str, Decimal] = defaultdict(Decimal)
    for line in lines:
        if line.line_type != USAGE:
            other[line.line_type or "(no line item type)"] += line.usd
            continue
        identity = line.identity or NO_PRINCIPAL
        billed[identity] += line.usd
        if line.account:
            accounts[identity].add(line.account)
        services[identity].add(line.service)
        usage_types[identity].add(line.usage_type)
        charged[identity].add((line.service, line.usage_type))

    def account(identity: str) -> str:
        return ", ".join(sorted(accounts[identity])) if accounts.get(identity) else _account_of(identity)

    by_identity = [
        _row(
            identity,
            account(identity),
            billed.get(identity, Decimal(0)),
            estimated.get(identity, Decimal(0)),
            identity in estimated,
        )
        for identity in set(billed) | set(estimated)
    ]

    roles: dict[str, dict[str, Any]] = {}
    for identity in set(billed) | set(estimated):
        role = role_of(identity)
        if role is None:
            continue
        entry = roles.setdefault(role, {"billed": Decimal(0), "estimated": Decimal(0), "sessions": set()})
        entry["billed"] += billed.get(identity, Decimal(0))
        entry["estimated"] += estimated.get(identity, Decimal(0))
        entry["sessions"].add(identity)
    by_role = [
        {
            "role": role,
            "account": _account_of(role),
            "sessions": len(entry["sessions"]),
            **_difference(entry["billed"], entry["estimated"]),
        }
        for role, entry in roles.items()
    ]

    unlogged = [identity for identity in billed if identity not in estimated]
    billed_not_logged = [
        {
            "identity": identity,
            "account": account(identity),
            "billed_usd": _usd(billed[identity]),
            "services": sorted(services[identity]),
            "usage_types": sorted(usage_types[identity]),
            **({"models": sorted({model_of(*pair) for pair in charged[identity]})} if model_of else {}),
            "why": _why_unlogged(usage_types[identity]),
        }
        for identity in sorted(unlogged, key=lambda i: (-billed[i], i))
    ]
    billed_total = sum(billed.values(), Decimal(0))
    estimated_total = estimate.total_cost
    difference = billed_total - estimated_total
    percent = (difference / billed_total * 100) if billed_total else Decimal(0)
    return {
        "status": "ok",
        "source": "cur",
        "day": day.isoformat(),
        **_difference(billed_total, estimated_total),
        "drift_percent": f"{percent.quantize(Decimal('0.1')):f}",
        "alert": abs(percent) > alert_percent and abs(difference) > 1,
        "by_identity": _largest_first(by_identity, "identity"),
        "by_role": _largest_first(by_role, "role"),
        "billed_not_logged_usd": _usd(sum((billed[i] for i in unlogged), Decimal(0))),
        "billed_not_logged": billed_not_logged,
        "logged_not_billed": sorted(identity for identity in estimated if identity not in billed),
        "other_line_types": {kind: _usd(usd) for kind, usd in sorted(other.items())},
    }


MATCHED, BILLED_ONLY, LOGGED_ONLY = "matched", "billed only", "logged only"


def settled_csv(result: dict[str, Any], estimate: Summary, logged_not_billed: Sequence[str] = ()) -> bytes:
    """The settled CSV per identity (when the day's report CSV cannot be read): one row per identity of
    `result["by_identity"]` (largest difference first), Model Id and Region Name empty."""
    invocations: dict[str, int] = defaultdict(int)
    for spend in estimate.totals.by_identity:
        invocations[spend.name] += spend.invocations
    not_billed = set(logged_not_billed or result.get("logged_not_billed", ()))
    rows = []
    for entry in result["by_identity"]:
        identity = entry["identity"]
        if not entry["logged"]:
            status = BILLED_ONLY
        elif identity in not_billed:
            status = LOGGED_ONLY
        else:
            status = MATCHED
        rows.append(
            [
                neutralise(entry["account"]),
                neutralise(identity),
                "",
                "",
                invocations.get(identity, 0),
                entry["estimated_usd"],
                entry["billed_usd"],
                entry["difference_usd"],
                status,
            ]
        )
    return _csv(rows)


def _csv(rows: Iterable[Sequence[object]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(SETTLED_CSV_HEADER)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


@dataclass(frozen=True)
class ModelRow:
    """One row of the settled CSV per identity, model and region. `estimated` is None when some of the logged
    calls could not be priced (the estimate is then unpriced, not a partial sum)."""

    account: str
    identity: str
    model: str  # the base model id both sides meet on
    region: str
    invocations: int
    estimated: Decimal | None
    billed: Decimal
    status: str

    @property
    def difference(self) -> Decimal | None:
        return None if self.estimated is None else self.billed - self.estimated


def compare_models(
    rows: Iterable[dict[str, Any]],
    lines: Iterable[CurLine],
    model_of: Callable[[str, str], str],
    region_of: Callable[[str], str],
    base_model: Callable[[str], str],
) -> list[ModelRow]:
    """The settled day per account, identity ARN, model and region (pure), largest difference first: `rows` are the
    day's report CSV rows (store.parse_report_csv), `lines` its CUR lines (Usage only; the other line types are
    the per-identity result's), `model_of(service, usage_type)` and `region_of(usage_type)` read a billed line as
    the price refresh does, `base_model` normalises a logged model id (a `us.` profile to its base model)."""
    Key = tuple[str, str, str, str]
    invocations: dict[Key, int] = defaultdict(int)
    estimated: dict[Key, Decimal | None] = {}
    for row in rows:
        key = (row["account_id"], row["identity_arn"], base_model(row["model_id"]), row["region"])
        invocations[key] += row["invocations"]
        before = estimated.get(key, Decimal(0))
        charge = row["charge"]
        estimated[key] = None if before is None or charge is None else before + charge
    billed: dict[Key, Decimal] = defaultdict(Decimal)
    for line in lines:
        if line.line_type != USAGE:
            continue
        key = (
            line.account,
            line.identity or NO_PRINCIPAL,
            model_of(line.service, line.usage_type),
            region_of(line.usage_type),
        )
        billed[key] += line.usd
    out = []
    for key in set(estimated) | set(billed):
        status = MATCHED if key in estimated and key in billed else LOGGED_ONLY if key in estimated else BILLED_ONLY
        out.append(
            ModelRow(*key, invocations.get(key, 0), estimated.get(key, Decimal(0)), billed.get(key, Decimal(0)), status)
        )

    def order(row: ModelRow) -> tuple[Any, ...]:
        # unpriced estimates rank by what was billed: the whole bill is unexplained by a number of ours
        size = abs(row.difference) if row.difference is not None else row.billed
        return (-size, row.account, row.identity, row.model, row.region)

    return sorted(out, key=order)


def settled_model_csv(rows: Iterable[ModelRow]) -> bytes:
    """The settled CSV per identity, model and region; an unpriced estimate (and its difference) is an empty
    cell, never 0."""
    return _csv(
        [
            neutralise(row.account),
            neutralise(row.identity),
            neutralise(row.model),
            neutralise(row.region),
            row.invocations,
            "" if row.estimated is None else _usd(row.estimated),
            _usd(row.billed),
            "" if row.difference is None else _usd(row.difference),
            row.status,
        ]
        for row in rows
    )


def trimmed(result: dict[str, Any], limit: int = MAX_LISTED) -> dict[str, Any]:
    """`result` with its lists cut to their first `limit` entries, and how many each had (`identities`,
    `roles`, `billed_not_logged_count`, `logged_not_billed_count`)."""
    lists = (
        ("by_identity", "identities"),
        ("by_role", "roles"),
        ("billed_not_logged", "billed_not_logged_count"),
        ("logged_not_billed", "logged_not_billed_count"),
    )
    out = dict(result)
    for name, count in lists:
        out[count] = len(result[name])
        out[name] = result[name][:limit]
    return out
