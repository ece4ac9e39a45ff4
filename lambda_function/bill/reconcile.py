"""Estimated vs billed: a settled day's report compared with what Cost Explorer says AWS charged.

The estimate is the day's JSON summary in the report bucket (no new Logs Insights scan). The bill comes from Cost
Explorer in four requests ($0.01 each): the Bedrock services of the day (`GetDimensionValues`: Amazon Bedrock and
the per-model services third-party models are billed under, never a fixed list), the day by service and usage
type (which model, which kind of charge), the day by linked account and region, and the month to date. Usage
types are read with the names the price refresh knows: a marketplace model by its service name, an Amazon model
by the name inside its usage type; batch, provisioned throughput, knowledge bases and guardrails are billed usage
the invocation logs cannot explain, and are listed as such. Nothing here ever stops the report: a failure is
`unavailable` with the reason.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from lambda_function.metrics import emf
from lambda_function.summary import BY_IDENTITY, BY_MODEL, BY_REGION, Summary

TOKEN_KINDS_OF_CHARGE = "tokens"
# usage-type marker (lower case) -> kind of billed usage the invocation logs do not record (FACTS §3)
UNLOGGED_KINDS = (
    ("batch", "batch inference"),
    ("provisioned", "provisioned throughput"),
    ("modelunit", "provisioned throughput"),
    ("knowledge", "knowledge bases"),
    ("retriev", "knowledge bases"),
    ("guardrail", "guardrails"),
)
# a team's spend the bill has without the `iamPrincipal/<key>` tag: named as the estimate names spend without a value
UNTAGGED = "unattributed"
PRINCIPAL_TAG_PREFIX = "iamPrincipal/"  # principal tags activated as cost allocation tags (FACTS §4)
_PREFIX = re.compile(r"^([A-Z]{2,4}\d)[-_:]")


class CostExplorerClient(Protocol):
    """The Cost Explorer operations the reconciliation reads (a boto3 `ce` client)."""

    def get_cost_and_usage(self, **params: Any) -> Any: ...
    def get_dimension_values(self, **params: Any) -> Any: ...


@dataclass(frozen=True)
class BilledLine:
    service: str
    usage_type: str
    usd: Decimal


def _usd(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.000001')):f}"


def _squash(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def kind_of(usage_type: str) -> str:
    """`tokens` for on-demand token charges, else the kind of usage the logs cannot explain."""
    squashed = _squash(usage_type)
    for marker, kind in UNLOGGED_KINDS:
        if marker in squashed:
            return kind
    return TOKEN_KINDS_OF_CHARGE if "token" in squashed else "other"


class UsageTypeNames:
    """Which model and region a billed line is: the Price List names (price_list_names.csv) and usagetype prefixes
    the price refresh uses, so that the bill and the price table speak of models the same way."""

    def __init__(self, names: Mapping[tuple[str, str], str], regions_by_prefix: Mapping[str, str]):
        self._marketplace = {name: model for (offer, name), model in names.items() if offer != "AmazonBedrock"}
        # Amazon's own offer: the usage type carries the display name without spaces ("USE1-NovaLite-input-tokens")
        self._native = {_squash(name): model for (offer, name), model in names.items() if offer == "AmazonBedrock"}
        self._regions = regions_by_prefix

    def region(self, usage_type: str) -> str:
        match = _PREFIX.match(usage_type)
        return self._regions.get(match.group(1), "unknown") if match else "unknown"

    def model(self, service: str, usage_type: str) -> str:
        if service in self._marketplace:
            return self._marketplace[service]
        middle = _PREFIX.sub("", usage_type)
        middle = re.split(r"-(input|output|cache)", middle, maxsplit=1, flags=re.IGNORECASE)[0]
        return self._native.get(_squash(middle), f"unknown ({service}: {usage_type})")


def _difference(billed: Decimal, estimated: Decimal) -> dict[str, Any]:
    coverage = (estimated / billed * 100).quantize(Decimal("0.1")) if billed else None
    return {
        "billed_usd": _usd(billed),
        "estimated_usd": _usd(estimated),
        "difference_usd": _usd(billed - estimated),
        "coverage_percent": None if coverage is None else f"{coverage:f}",
    }


def _likely_cause(billed: Decimal, estimated: Decimal, unpriced: bool) -> str:
    if unpriced:
        return "unpriced in our table: the bill has its price" if billed else ""
    if estimated == 0:
        return "billed, but no call of it is in the invocation logs" if billed else ""
    if billed == 0:
        return "in the logs, but not billed (yet): Cost Explorer may still be settling"
    ratio = billed / estimated
    if abs(ratio - 1) <= Decimal("0.05"):
        return ""
    return f"billed at about {ratio.quantize(Decimal('0.01')):f}x our estimate: check this model's price row"


def compare(
    day: date,
    estimate: Summary,
    lines: Iterable[BilledLine],
    by_account_region: Iterable[tuple[str, str, Decimal]],
    names: UsageTypeNames,
    base_model: Callable[[str], str],
    alert_percent: Decimal,
) -> dict[str, Any]:
    """The day's comparison (pure): `estimate` is its stored summary, `lines` its bill by service and usage type,
    `by_account_region` its bill by linked account and region."""
    estimated_total = estimate.total_cost
    estimated_region = estimate.breakdown_costs(BY_REGION) or {}
    unpriced = {base_model(model_id) for model_id in estimate.totals.unpriced_models}
    billed_total = Decimal(0)
    billed_model: dict[str, Decimal] = defaultdict(Decimal)
    billed_region_tokens: dict[str, Decimal] = defaultdict(Decimal)
    unexplained: dict[str, dict[str, Any]] = {}
    for line in lines:
        billed_total += line.usd
        kind = kind_of(line.usage_type)
        if kind == TOKEN_KINDS_OF_CHARGE:
            region = names.region(line.usage_type)
            billed_region_tokens[region] += line.usd
            if region in estimated_region:  # a region without logs is reported as such, not as a model's drift
                billed_model[names.model(line.service, line.usage_type)] += line.usd
        else:
            entry = unexplained.setdefault(kind, {"kind": kind, "billed": Decimal(0), "usage_types": set()})
            entry["billed"] += line.usd
            entry["usage_types"].add(line.usage_type)

    estimated_model: dict[str, Decimal] = defaultdict(Decimal)
    for model, cost in (estimate.breakdown_costs(BY_MODEL) or {}).items():
        estimated_model[base_model(model)] += cost
    estimated_account: dict[str, Decimal] = defaultdict(Decimal)
    for identity, cost in (estimate.breakdown_costs(BY_IDENTITY) or {}).items():
        account = identity.split(":")[4] if identity.count(":") >= 5 else "unknown"
        estimated_account[account] += cost

    by_model = []
    for model in sorted(set(billed_model) | set(estimated_model)):
        billed, estimated = billed_model.get(model, Decimal(0)), estimated_model.get(model, Decimal(0))
        cause = _likely_cause(billed, estimated, model in unpriced)
        by_model.append({"name": model, **_difference(billed, estimated), "likely_cause": cause})
    by_model.sort(key=lambda m: -abs(Decimal(m["difference_usd"])))

    billed_account: dict[str, Decimal] = defaultdict(Decimal)
    billed_region: dict[str, Decimal] = defaultdict(Decimal)
    for account, region, usd in by_account_region:
        billed_account[account] += usd
        billed_region[region] += usd
    by_region = [
        {
            "name": region,
            **_difference(billed_region_tokens.get(region, Decimal(0)), estimated_region.get(region, Decimal(0))),
        }
        for region in sorted(set(billed_region_tokens) | set(estimated_region))
    ]
    compared = sorted(a for a in estimated_account if a in billed_account)
    by_account = [{"name": a, **_difference(billed_account[a], estimated_account[a])} for a in compared]
    unlogged = [
        {"region": region, "billed_usd": _usd(usd), "why": "billed here, but no invocation logs: logging is off here"}
        for region, usd in sorted(billed_region.items())
        if usd > 0 and region not in estimated_region and region not in ("global", "NoRegion")
    ] + [
        {"account": account, "billed_usd": _usd(usd), "why": "billed, but no invocation logs from this account"}
        for account, usd in sorted(billed_account.items())
        if usd > 0 and account not in estimated_account
    ]
    difference = billed_total - estimated_total
    percent = (difference / billed_total * 100) if billed_total else Decimal(0)
    return {
        "status": "ok",
        "day": day.isoformat(),
        **_difference(billed_total, estimated_total),
        "drift_percent": f"{percent.quantize(Decimal('0.1')):f}",
        "alert": abs(percent) > alert_percent and abs(difference) > 1,
        "by_region": by_region,
        "by_model": by_model,
        "by_account": by_account,
        "accounts_compared": compared,
        "unexplained": [
            {"kind": e["kind"], "billed_usd": _usd(e["billed"]), "usage_types": sorted(e["usage_types"])}
            for e in sorted(unexplained.values(), key=lambda e: -e["billed"])
        ],
        "unlogged": unlogged,
    }


# -- Cost Explorer (the adapter; the client is passed in) ------------------------------------------------------------


def _period(first: date, last_exclusive: date) -> dict[str, str]:
    return {"Start": first.isoformat(), "End": last_exclusive.isoformat()}


class BillUnavailable(Exception):
    """Cost Explorer answered with something the comparison cannot use: the reconciliation is `unavailable`."""


def _amount(metric: Any) -> Decimal:
    """An amount in USD, or BillUnavailable naming what came instead (another currency, a value that is no number)."""
    if not isinstance(metric, dict):
        raise BillUnavailable(f"Cost Explorer gave {metric!r} where an amount was due")
    unit = metric.get("Unit", "USD")
    if unit != "USD":
        raise BillUnavailable(f"Cost Explorer gives this account's bill in {unit}, not USD: not compared")
    raw = metric.get("Amount")
    try:
        amount = Decimal(str(raw))
    except InvalidOperation:
        raise BillUnavailable(f"Cost Explorer gave the amount {raw!r}, not a number") from None
    if not amount.is_finite():
        raise BillUnavailable(f"Cost Explorer gave the amount {raw!r}, not a number")
    return amount


def bedrock_services(ce: CostExplorerClient, first: date, end: date) -> list[str]:
    """Amazon Bedrock and every service a Bedrock model is billed under in [first, end) (its name says Bedrock),
    read to the last page."""
    params: dict[str, Any] = {"TimePeriod": _period(first, end), "Dimension": "SERVICE", "SearchString": "Bedrock"}
    services: set[str] = set()
    while True:
        response = ce.get_dimension_values(**params)
        services.update(v["Value"] for v in response.get("DimensionValues", []) if "bedrock" in v["Value"].lower())
        if not response.get("NextPageToken"):
            return sorted(services)
        params["NextPageToken"] = response["NextPageToken"]


def _grouped(
    ce: CostExplorerClient,
    first: date,
    end: date,
    metric: str,
    services: list[str],
    groups: list[str],
    group_type: str = "DIMENSION",
) -> list[tuple[list[str], Decimal]]:
    params: dict[str, Any] = {
        "TimePeriod": _period(first, end),
        "Granularity": "DAILY" if end - first == timedelta(days=1) else "MONTHLY",
        "Metrics": [metric],
        "Filter": {"Dimensions": {"Key": "SERVICE", "Values": services}},
    }
    if groups:
        params["GroupBy"] = [{"Type": group_type, "Key": key} for key in groups]
    out: list[tuple[list[str], Decimal]] = []
    while True:
        response = ce.get_cost_and_usage(**params)
        for result in response.get("ResultsByTime", []):
            if groups:
                out += [(g["Keys"], _amount(g["Metrics"][metric])) for g in result.get("Groups", [])]
            else:
                total = result.get("Total", {}).get(metric)
                out.append(([], Decimal(0) if total is None else _amount(total)))
        if not response.get("NextPageToken"):
            return out
        params["NextPageToken"] = response["NextPageToken"]


def billed_day(
    ce: CostExplorerClient, day: date, metric: str, services: list[str] | None = None
) -> tuple[list[BilledLine], list[tuple[str, str, Decimal]]]:
    end = day + timedelta(days=1)
    services = bedrock_services(ce, day, end) if services is None else services
    if not services:
        return [], []
    lines = [
        BilledLine(k[0], k[1], usd) for k, usd in _grouped(ce, day, end, metric, services, ["SERVICE", "USAGE_TYPE"])
    ]
    accounts = [(k[0], k[1], usd) for k, usd in _grouped(ce, day, end, metric, services, ["LINKED_ACCOUNT", "REGION"])]
    return lines, accounts


def billed_month_to_date(ce: CostExplorerClient, day: date, metric: str) -> Decimal:
    """The Bedrock bill from the 1st of `day`'s month through `day`."""
    first, end = day.replace(day=1), day + timedelta(days=1)
    services = bedrock_services(ce, first, end)  # the month's: a model billed on earlier days only counts too
    if not services:
        return Decimal(0)
    return sum((usd for _, usd in _grouped(ce, first, end, metric, services, [])), Decimal(0))


def billed_by_tag(
    ce: CostExplorerClient, day: date, metric: str, services: list[str], tag_key: str
) -> dict[str, Decimal]:
    """The day's Bedrock bill per value of the cost allocation tag `tag_key` (every page): one more GetCostAndUsage
    request, $0.01. Cost Explorer names each group "<tag key>$<value>", "<tag key>$" for spend without the tag;
    that spend is returned under UNTAGGED."""
    if not services:
        return {}
    billed: dict[str, Decimal] = defaultdict(Decimal)
    for keys, usd in _grouped(ce, day, day + timedelta(days=1), metric, services, [tag_key], group_type="TAG"):
        if not keys:
            raise BillUnavailable(f"Cost Explorer gave a group without keys for the tag {tag_key}")
        name, dollar, value = keys[0].partition("$")
        if not dollar or name != tag_key:
            raise BillUnavailable(f"Cost Explorer gave the group {keys[0]!r} where {tag_key}$<value> was due")
        billed[value or UNTAGGED] += usd
    return dict(billed)


def compare_teams(
    estimated_by_key: Mapping[str, Mapping[str, Decimal]], billed_by_key: Mapping[str, Mapping[str, Decimal]]
) -> dict[str, list[dict[str, Any]]]:
    """Per attribution key, per value: billed (the `iamPrincipal/<key>` tag) against estimated (the summary's
    `by_attribution[<key>]`), the largest difference first. Spend the bill has without the tag (UNTAGGED) is
    compared with the estimate's `unattributed` rows: both are spend no value of the key was found for."""
    out: dict[str, list[dict[str, Any]]] = {}
    for key, billed in billed_by_key.items():
        estimated = estimated_by_key.get(key, {})
        entries = [
            {"name": name, **_difference(billed.get(name, Decimal(0)), estimated.get(name, Decimal(0)))}
            for name in sorted(set(billed) | set(estimated))
        ]
        out[key] = sorted(entries, key=lambda e: (-abs(Decimal(e["difference_usd"])), e["name"]))
    return out


def month_to_date(billed: Decimal, estimated: Decimal, days_estimated: int, days: int) -> dict[str, Any]:
    return {**_difference(billed, estimated), "days_estimated": days_estimated, "days": days}


def unavailable(why: str, day: date | None = None) -> dict[str, Any]:
    return {"status": "unavailable", "day": day.isoformat() if day else None, "why": why}


def emf_metric(result: Mapping[str, Any]) -> dict[str, Any]:
    """The drift as metrics: `ReconciliationDriftPercent`, and `ReconciliationDriftAlert` (the stack alarms on it);
    with the bill from CUR, what its query read (`BillQueryBytesScanned`) and, in Athena, cost (`BillQueryCostUSD`)."""
    values: dict[str, tuple[float, str]] = {
        "ReconciliationDriftPercent": (float(Decimal(result["drift_percent"])), "Percent"),
        "ReconciliationDriftAlert": (1 if result["alert"] else 0, "Count"),
    }
    if result.get("bytes_scanned") is not None:
        values["BillQueryBytesScanned"] = (result["bytes_scanned"], "Bytes")
    if result.get("scan_cost_usd") is not None:
        values["BillQueryCostUSD"] = (float(Decimal(result["scan_cost_usd"])), "None")
    return emf(values, day=result["day"])
