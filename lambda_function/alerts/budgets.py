"""Budgets (BUDGETS): a daily or monthly amount per scope, each alert at 80 % and 100 % sent once per period, claimed
with a conditional write of a marker in the report store."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from email.message import EmailMessage
from typing import Any

from lambda_function.config import is_email
from lambda_function.errors import ConfigError
from lambda_function.report.identities import friendly_identity
from lambda_function.report.mail import RenderedEmail, build_message, template_environment
from lambda_function.store import ReportStore, S3Client, read_location
from lambda_function.summary import ATTRIBUTION, BY_IDENTITY, BY_MODEL, MAX_USD, Summary

log = logging.getLogger(__name__)

THRESHOLDS = (80, 100)  # percent of the amount; each alerted once per budget and period
DAY, MONTH = "day", "month"
TOTAL, IDENTITY, MODEL, ATTRIBUTED = "total", "identity", "model", "attribution"  # Scope.kind
FIELDS = ("name", "scope", "period", "amount", "recipients")
REQUIRED = ("scope", "period", "amount", "recipients")
MAX_RECIPIENTS = 50  # one SES message each: SES takes at most 50 recipients a message
MAX_NAME = 100  # the name goes into the alert's Subject
MIN_AMOUNT = Decimal("0.01")  # a cent: below it every percentage is noise (and 1e-1000000 breaks the arithmetic)
SCHEMA = "bedrock-usage-report/budget-alert/1"


@dataclass(frozen=True)
class Scope:
    """What a budget covers: all usage, one identity ARN, one model id (as logged), or one attribution value."""

    kind: str  # TOTAL, IDENTITY, MODEL or ATTRIBUTED
    key: str = ""  # the attribution key (kind ATTRIBUTED)
    value: str = ""

    def __str__(self) -> str:
        if self.kind == TOTAL:
            return TOTAL
        return f"{self.key if self.kind == ATTRIBUTED else self.kind}={self.value}"

    def describe(self) -> str:
        """In the alert's words."""
        if self.kind == TOTAL:
            return "all Amazon Bedrock usage"
        if self.kind == IDENTITY:
            return f"{friendly_identity(self.value)} ({self.value})"
        if self.kind == MODEL:
            return f"model {self.value}"
        return f"{self.key} = {self.value}"

    @property
    def breakdown(self) -> str:
        """The summary breakdown whose names this scope's value is one of ("" for the total)."""
        return {IDENTITY: BY_IDENTITY, MODEL: BY_MODEL, ATTRIBUTED: ATTRIBUTION + self.key}.get(self.kind, "")


@dataclass(frozen=True)
class Budget:
    scope: Scope
    period: str  # day | month
    amount: Decimal  # USD
    recipients: tuple[str, ...]
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or f"{self.scope} ({self.period})"

    @property
    def budget_id(self) -> str:
        """Stable across runs, names the budget's alert markers. With a name, the name alone: the budget can change
        its amount or recipients and keep its alerts of this period (no second 80 % alert for a raised amount).
        Without one, everything that defines it: change any of it and it is a new budget."""
        identity = self.name or "|".join(
            [str(self.scope), self.period, f"{self.amount.normalize():f}", ";".join(sorted(self.recipients))]
        )
        return hashlib.sha256(identity.encode("utf-8")).hexdigest()[:12]


# ---- loading ----------------------------------------------------------------------------------------------------


def _parse_scope(text: str, attribution_keys: Sequence[str]) -> Scope:
    if text == TOTAL:
        return Scope(TOTAL)
    # Keys may contain '=' themselves: the longest key the text starts with wins; `identity` and `model` before an
    # attribution key of the same name.
    known = [k for k in (IDENTITY, MODEL, *attribution_keys) if text.startswith(k + "=")]
    if not known:
        keys = ", ".join(attribution_keys) or "none configured"
        raise ValueError(
            f"scope {text!r} is not total, identity=<arn>, model=<model id> or <key>=<value> with a key of "
            f"ATTRIBUTION_KEYS ({keys})"
        )
    key = max(known, key=len)
    value = text[len(key) + 1 :].strip()
    if not value:
        raise ValueError(f"scope {text!r} names no value after '='")
    if key == IDENTITY and not value.startswith("arn:"):
        raise ValueError(f"scope {text!r}: an identity is an ARN (arn:aws:iam::... or arn:aws:sts::...)")
    if key in (IDENTITY, MODEL):
        return Scope(key, "", value)
    return Scope(ATTRIBUTED, key, value)


def _parse_amount(raw: Any) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str | Decimal):
        raise ValueError(f"amount {raw!r} is not a number of dollars")
    try:
        amount = Decimal(str(raw).strip())
    except InvalidOperation:
        raise ValueError(f"amount {raw!r} is not a number of dollars") from None
    if not amount.is_finite() or amount <= 0:
        raise ValueError(f"amount {raw!r} is not a positive number of dollars")
    if not MIN_AMOUNT <= amount <= MAX_USD:
        raise ValueError(f"amount {raw!r} is not a budget: from {MIN_AMOUNT} to {MAX_USD:,} dollars")
    return amount


def _parse_recipients(raw: Any, allowed: Callable[[str], bool] | None) -> tuple[str, ...]:
    if isinstance(raw, str):
        addresses = [part for part in re.split(r"[;,\s]+", raw) if part]
    elif isinstance(raw, list) and all(isinstance(part, str) for part in raw):
        addresses = [part.strip() for part in raw if part.strip()]
    else:
        raise ValueError(f"recipients {raw!r} is neither a list of addresses nor a text of them")
    if not addresses:
        raise ValueError("recipients names no address")
    for address in addresses:
        if not is_email(address):
            raise ValueError(f"recipient {address!r} is not an e-mail address")
        if allowed is not None and not allowed(address):
            # whoever may write the budgets file must not be able to mail cost data outside
            raise ValueError(f"recipient {address!r} is not in ALLOWED_RECIPIENTS")
    if len(addresses) > MAX_RECIPIENTS:
        raise ValueError(f"recipients names {len(addresses)} addresses; at most {MAX_RECIPIENTS} are allowed")
    return tuple(dict.fromkeys(addresses))


def _text(raw: Any, field: str) -> str:
    if not isinstance(raw, str):
        raise ValueError(f"{field} {raw!r} is not text")
    if not raw.isprintable():  # it goes into a mail header and an S3 object
        raise ValueError(f"{field} {raw!r} has a control character")
    return raw.strip()


def _budget(entry: dict[str, Any], attribution_keys: Sequence[str], allowed: Callable[[str], bool] | None) -> Budget:
    unknown = sorted(set(entry) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r} (the fields are {', '.join(FIELDS)})")
    for field in REQUIRED:
        if entry.get(field) in (None, ""):
            raise ValueError(f"{field} is missing")
    period = _text(entry["period"], "period").lower()
    if period not in (DAY, MONTH):
        raise ValueError(f"period {entry['period']!r} is not day or month")
    name = _text(entry.get("name") or "", "name")
    if len(name) > MAX_NAME:
        raise ValueError(f"name is {len(name)} characters long; at most {MAX_NAME}")
    return Budget(
        scope=_parse_scope(_text(entry["scope"], "scope"), attribution_keys),
        period=period,
        amount=_parse_amount(entry["amount"]),
        recipients=_parse_recipients(entry["recipients"], allowed),
        name=name,
    )


def _csv_entries(text: str) -> list[tuple[str, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text))
    header = [(column or "").strip().lower() for column in reader.fieldnames or []]
    if not header:
        raise ValueError("has no header row")
    unknown = [column for column in header if column not in FIELDS]
    if unknown:
        raise ValueError(f"has an unknown column {unknown[0]!r} (the columns are {', '.join(FIELDS)})")
    if len(set(header)) != len(header):
        raise ValueError("names a column twice")
    missing = [column for column in REQUIRED if column not in header]
    if missing:
        raise ValueError(f"has no {missing[0]!r} column")
    reader.fieldnames = header
    entries = []
    for number, row in enumerate(reader, start=2):  # as a spreadsheet numbers them: the header is row 1
        where = f"row {number}"
        if None in row:
            raise ValueError(f"{where}: more cells than the header has columns")
        if all(not (value or "").strip() for value in row.values()):
            continue  # the blank rows spreadsheets leave at the end
        entries.append((where, {field: value for field, value in row.items() if value is not None}))
    return entries


def _json_entries(text: str) -> list[tuple[str, dict[str, Any]]]:
    try:
        document = json.loads(text, parse_float=Decimal)  # Decimal, not float: an amount of 0.1 stays 0.1
    except json.JSONDecodeError as err:
        raise ValueError(f"is not JSON ({err})") from None
    if not isinstance(document, list):
        raise ValueError("is not a JSON list of budgets")
    entries = []
    for number, entry in enumerate(document, start=1):
        if not isinstance(entry, dict):
            raise ValueError(f"entry {number}: is not a JSON object")
        entries.append((f"entry {number}", entry))
    return entries


def parse_budgets(
    content: bytes, location: str, attribution_keys: Sequence[str], allowed: Callable[[str], bool] | None = None
) -> list[Budget]:
    """The budgets in a CSV or JSON file: by the name's ending (.csv, .json), else JSON when the text starts with
    '[' or '{'. Every problem raises ConfigError("BUDGETS", ...) naming the row or entry and the field."""
    try:
        text = content.decode("utf-8-sig")  # spreadsheets save CSV with a byte-order mark
    except UnicodeDecodeError:
        raise ConfigError("BUDGETS", f"{location} is not UTF-8 text") from None
    name = location.lower()
    is_json = name.endswith(".json") or (not name.endswith(".csv") and text.lstrip().startswith(("[", "{")))
    budgets: list[Budget] = []
    seen: dict[str, str] = {}
    try:
        entries = _json_entries(text) if is_json else _csv_entries(text)
    except ValueError as err:
        raise ConfigError("BUDGETS", f"{location} {err}") from None
    for where, entry in entries:
        try:
            budget = _budget(entry, attribution_keys, allowed)
        except ValueError as err:
            raise ConfigError("BUDGETS", f"{location} {where}: {err}") from None
        if budget.budget_id in seen:
            raise ConfigError("BUDGETS", f"{location} {where}: the same budget as {seen[budget.budget_id]}")
        seen[budget.budget_id] = where
        budgets.append(budget)
    return budgets


def load_budgets(
    location: str, s3: S3Client, attribution_keys: Sequence[str], allowed: Callable[[str], bool] | None = None
) -> list[Budget]:
    """BUDGETS read from a local file or s3://bucket/key (on every run: they may change); [] when not set. With
    `allowed`, every recipient must be an address ALLOWED_RECIPIENTS lets reports go to."""
    if not location:
        return []
    return parse_budgets(read_location(location, "BUDGETS", s3), location, attribution_keys, allowed)


@dataclass(frozen=True)
class Budgets:
    """The budgets a run checks, or why BUDGETS could not be used: the report goes out all the same, and says so."""

    budgets: list[Budget]
    problem: str = ""


def read_budgets(
    location: str, s3: S3Client, attribution_keys: Sequence[str], allowed: Callable[[str], bool]
) -> Budgets:
    """BUDGETS for a run. The file is data operators edit, not a setting: a row that is wrong (an amount no budget has,
    an address not allowed, a file gone) never stops the report; the email and the summary name it."""
    try:
        return Budgets(load_budgets(location, s3, attribution_keys, allowed))
    except ConfigError as err:
        log.error("no budget is checked: %s", err)
        return Budgets([], str(err))


# ---- evaluation (pure) ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetStatus:
    budget: Budget
    period_label: str  # 2026-11-20 for a day, 2026-11 for a month
    spend: Decimal | None  # None: this scope's spend is not known (its breakdown is not in the summary)
    percent: Decimal | None  # spend / amount x 100, unrounded
    threshold: int | None  # the highest of THRESHOLDS reached, if any

    @property
    def percent_label(self) -> str:
        """Rounded down, so that 99.96 % never reads as 100.0 % before the 100 % alert."""
        return "-" if self.percent is None else f"{self.percent.quantize(Decimal('0.1'), rounding=ROUND_DOWN)}"


def period_label(period: str, day: date) -> str:
    return day.isoformat() if period == DAY else f"{day:%Y-%m}"


def evaluate(
    budgets: Sequence[Budget], spend_for: Callable[[Scope, str], Decimal | None], day: date
) -> list[BudgetStatus]:
    """Each budget against its spend on `day` (period day) or from the 1st of its month up to and including `day`
    (period month). A threshold is reached when the spend is at least that share of the amount."""
    statuses = []
    for budget in budgets:
        label = period_label(budget.period, day)
        spend = spend_for(budget.scope, budget.period)
        if spend is None:
            statuses.append(BudgetStatus(budget, label, None, None, None))
            continue
        reached = [t for t in THRESHOLDS if spend * 100 >= t * budget.amount]  # no division: exact
        statuses.append(BudgetStatus(budget, label, spend, spend * 100 / budget.amount, max(reached, default=None)))
    return statuses


def _scope_spend(summary: Summary, scope: Scope) -> Decimal | None:
    if scope.kind == TOTAL:
        return summary.total_cost
    costs = summary.breakdown_costs(scope.breakdown)
    return None if costs is None else costs.get(scope.value, Decimal(0))


def spend_from_summaries(
    today: Summary, earlier_this_month: Sequence[Summary]
) -> Callable[[Scope, str], Decimal | None]:
    """`evaluate`'s spend_for from summaries: today's and those of the month's earlier days that exist. A missing
    day, or one written before a breakdown existed, adds nothing: the month's spend is then a lower bound, and an
    alert may come late, never falsely."""

    def spend_for(scope: Scope, period: str) -> Decimal | None:
        spend = _scope_spend(today, scope)
        if spend is None or period == DAY:
            return spend
        earlier = (_scope_spend(summary, scope) for summary in earlier_this_month)
        return spend + sum((amount for amount in earlier if amount is not None), Decimal(0))

    return spend_for


# ---- alerting once (S3 adapter) ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetAlert:
    """An alert to send: the thresholds this run claimed for the budget's period (ascending)."""

    status: BudgetStatus
    thresholds: tuple[int, ...]

    @property
    def threshold(self) -> int:
        """The one the email is about: when 80 % and 100 % are both new, 100 % says all there is to say."""
        return self.thresholds[-1]


def _claim(store: ReportStore, status: BudgetStatus, threshold: int, run_id: str, now: datetime) -> bool:
    budget = status.budget
    body = {
        "schema": SCHEMA,
        "budget_id": budget.budget_id,
        "name": budget.name,
        "scope": str(budget.scope),
        "period": budget.period,
        "period_label": status.period_label,
        "threshold_percent": threshold,
        "amount_usd": f"{budget.amount:f}",
        "spend_usd": f"{status.spend:f}",
        "recipients": list(budget.recipients),
    }
    key = store.budget_alert_key(budget.budget_id, status.period_label, threshold)
    return store.claim(key, body, run_id=run_id, now=now)


def claim_alerts(
    store: ReportStore, statuses: Sequence[BudgetStatus], *, run_id: str, now: datetime
) -> list[BudgetAlert]:
    """For each threshold reached, create its marker unless it exists; the alerts to send are those with at least
    one marker created by this run.

    The claim comes before the email, so two runs (a retry, a re-run) never both send it. The price: a run that
    dies between the claim and SES accepting the email, or whose email SES refuses, leaves that alert unsent for
    the period (at most once, never twice); the caller logs such an alert, naming the budget and period.
    """
    alerts = []
    for status in statuses:
        if status.threshold is None:
            continue
        claimed = []
        for threshold in THRESHOLDS:
            if threshold > status.threshold:
                break
            if _claim(store, status, threshold, run_id, now):
                claimed.append(threshold)
        if claimed:
            alerts.append(BudgetAlert(status, tuple(claimed)))
    return alerts


# ---- the alert email --------------------------------------------------------------------------------------------


def render_alert(alert: BudgetAlert, report_label: str) -> RenderedEmail:
    status = alert.status
    context = {
        "budget": status.budget,
        "status": status,
        "threshold": alert.threshold,
        "thresholds": THRESHOLDS,
        "scope": status.budget.scope.describe(),
        "report_label": report_label,
    }
    env = template_environment()
    return RenderedEmail(
        subject=env.get_template("budget_alert_subject.txt.j2").render(**context).strip(),
        text=env.get_template("budget_alert.txt.j2").render(**context),
        html=env.get_template("budget_alert.html.j2").render(**context),
    )


def alert_message(alert: BudgetAlert, *, sender: str, report_label: str) -> EmailMessage:
    """The alert as a MIME message (text and HTML) to the budget's recipients, ready for SES's SendEmail."""
    rendered = render_alert(alert, report_label)
    return build_message(
        rendered, sender=sender, recipients=alert.status.budget.recipients, attachment=None, attachment_name=""
    )
