"""A heads-up before the bill: budgets crossed (with an alert email per threshold and period, once) and spend
spikes against the trailing week (alerted once a day to the budgets covering them), read from the summaries
earlier runs left in S3 — no extra scans."""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from email.message import EmailMessage
from functools import partial
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambda_function.alerts.budgets import (
    ATTRIBUTED,
    IDENTITY,
    TOTAL,
    Budget,
    Budgets,
    BudgetStatus,
    Scope,
    alert_message,
    claim_alerts,
    evaluate,
    spend_from_summaries,
)
from lambda_function.alerts.spikes import Spike, baseline, find_spikes, week_before
from lambda_function.aws import is_ambiguous
from lambda_function.config import Config
from lambda_function.delivery.email import Ses
from lambda_function.errors import DeadlineExceeded
from lambda_function.report.mail import RenderedEmail, build_message, message_bytes, template_environment
from lambda_function.store import ReportStore
from lambda_function.summary import ATTRIBUTION, BY_IDENTITY, Summary
from lambda_function.window import ReportWindow

log = logging.getLogger(__name__)


@dataclass
class Watch:
    """What the report email and the JSON summary say about budgets and spikes."""

    budgets: list[BudgetStatus] = field(default_factory=list)
    alerts_sent: list[str] = field(default_factory=list)  # "<budget> <period> <threshold> %", "spike <...>"
    alert_failures: list[str] = field(default_factory=list)
    spikes: dict[str, list[Spike]] = field(default_factory=dict)  # per breakdown label ("identity", a key)

    def as_json(self) -> dict[str, Any]:
        return {
            "budgets": [
                {
                    "budget": s.budget.label,
                    "scope": str(s.budget.scope),
                    "period": s.period_label,
                    "amount_usd": f"{s.budget.amount:f}",
                    "spend_usd": None if s.spend is None else f"{s.spend:f}",
                    "percent": s.percent_label,
                    "threshold_reached": s.threshold,
                }
                for s in self.budgets
            ],
            "alerts_sent": self.alerts_sent,
            "alert_failures": self.alert_failures,
            "spikes": {
                label: [
                    {
                        "name": s.name,
                        "cost_usd": f"{s.cost:f}",
                        "median_usd": f"{s.median:f}",
                        "ratio": None if s.ratio is None else f"{s.ratio:f}",
                    }
                    for s in spikes
                ]
                for label, spikes in self.spikes.items()
            },
        }


def watch_spend(
    today: Summary,
    day: date,
    budgets: Sequence[Budget],
    attribution_keys: Sequence[str],
    *,
    store: ReportStore,
    factor: Decimal,
    min_usd: Decimal,
    send: Callable[[bytes], str] | None,
    sender: str,
    report_label: str,
    now: datetime,
) -> Watch:
    """Budgets and spikes for the day `today` (its summary) reports. `send` sends a raw message (None:
    the run sends no email, so no alert is claimed either)."""
    watch = Watch()
    # One read of the earlier summaries serves both: the week before (spikes) and, with budgets, the month so far.
    wanted = set(week_before(day)) | (_month_before(day) if budgets else set())
    earlier = store.summaries(sorted(wanted))

    # Spikes: each identity and attribution value against its median over the week before (days with a summary)
    week = [earlier[d] for d in week_before(day) if d in earlier]
    for label, breakdown in [("identity", BY_IDENTITY)] + [(k, ATTRIBUTION + k) for k in attribution_keys]:
        watch.spikes[label] = find_spikes(
            today.breakdown_costs(breakdown) or {}, baseline(week, breakdown), factor, min_usd
        )

    if not budgets:
        return watch
    month = [earlier[d] for d in sorted(earlier) if d.year == day.year and d.month == day.month]
    watch.budgets = evaluate(budgets, spend_from_summaries(today, month), day)
    if send is None:
        return watch
    run_id = str(uuid.uuid4())
    claimed = Claimed(store, run_id, now)
    for alert in claim_alerts(store, watch.budgets, run_id=run_id, now=now):
        what = f"{alert.status.budget.label} {alert.status.period_label} {alert.threshold} %"
        keys = [
            store.budget_alert_key(alert.status.budget.budget_id, alert.status.period_label, t)
            for t in alert.thresholds
        ]
        message = partial(alert_message, alert, sender=sender, report_label=report_label)
        claimed.send(watch, what, keys, message, send)
    # A spike goes to the recipients of the budgets that cover it: the total's, and those of its identity or value.
    for label, spikes in watch.spikes.items():
        for spike in spikes:
            recipients = sorted({r for b in budgets if _covers(b.scope, label, spike.name) for r in b.recipients})
            spike_id = hashlib.sha256(f"{label}\0{spike.name}".encode()).hexdigest()[:16]
            key = store.spike_alert_key(day.isoformat(), spike_id)
            body = {
                "schema": "bedrock-usage-report/spike-alert/1",
                "breakdown": label,
                "name": spike.name,
                "cost_usd": f"{spike.cost:f}",
                "median_usd": f"{spike.median:f}",
                "recipients": recipients,
            }
            if recipients and store.claim(key, body, run_id=run_id, now=now):
                what = f"spike {label} {spike.name} {day.isoformat()}"
                message = partial(_spike_message, label, spike, recipients, factor, sender, report_label)
                claimed.send(watch, what, [key], message, send)
    return watch


def _covers(scope: Scope, label: str, name: str) -> bool:
    """Whether a budget's scope covers a spike of `name` in breakdown `label` ("identity" or an attribution key)."""
    if scope.kind == TOTAL:
        return True
    if label == "identity":
        return scope.kind == IDENTITY and scope.value == name
    return scope.kind == ATTRIBUTED and scope.key == label and scope.value == name


@dataclass(frozen=True)
class Claimed:
    """Alerts this run claimed: sent, or given back when SES proves it did not take one."""

    store: ReportStore
    run_id: str
    now: datetime

    def send(
        self,
        watch: Watch,
        what: str,
        keys: list[str],
        message: Callable[[], EmailMessage],
        send: Callable[[bytes], str],
    ) -> None:
        try:
            send(message_bytes(message()))
            watch.alerts_sent.append(what)
            return
        except (ClientError, BotoCoreError, DeadlineExceeded) as err:
            failure = err
        log.error("alert %s was not sent: %s", what, failure)
        if is_ambiguous(failure):
            # SES may have sent it: at most once, never twice, so the claim stays and the alert is lost for the period
            watch.alert_failures.append(f"{what}: {failure} (SES may have sent it: not sent again)")
            return
        # SES refused it, or it never reached SES (throttled past the retries, rejected, no time left): the next run
        # claims it again and sends it
        released = all(
            self.store.release(key, run_id=self.run_id, why=str(failure), now=self.now) for key in keys
        )  # fmt: skip
        again = "the next run sends it" if released else "its claim could not be given back: not sent again"
        watch.alert_failures.append(f"{what}: {failure} ({again})")


def _spike_message(
    label: str, spike: Spike, recipients: list[str], factor: Decimal, sender: str, report_label: str
) -> EmailMessage:
    env = template_environment()
    context = {"label": label, "spike": spike, "factor": factor, "report_label": report_label}
    rendered = RenderedEmail(
        subject=env.get_template("spike_alert_subject.txt.j2").render(**context).strip(),
        text=env.get_template("spike_alert.txt.j2").render(**context),
        html=env.get_template("spike_alert.html.j2").render(**context),
    )
    return build_message(rendered, sender=sender, recipients=tuple(recipients), attachment=None, attachment_name="")


def _month_before(day: date) -> set[date]:
    return {day.replace(day=n) for n in range(1, day.day)}


def watch_report(
    config: Config,
    window: ReportWindow,
    partial: bool,
    budgets: Budgets,
    summary: Summary,
    store: ReportStore,
    ses: Ses | None,
    now: datetime,
) -> Watch | None:
    """Budgets and spikes for a whole day's report (None for other windows); alert emails only through `ses` (None
    when the run sends no email). An S3 or SES fault here never stops the report: the email names it."""
    if not window.is_single_day or partial:
        return None
    try:
        watch = watch_spend(
            summary,
            window.local_start.date(),
            budgets.budgets,
            config.attribution_keys,
            store=store,
            factor=config.spike_factor,
            min_usd=config.spike_min_usd,
            send=ses.send if ses else None,
            sender=config.sender,
            report_label=window.label,
            now=now,
        )
    except (ClientError, BotoCoreError, DeadlineExceeded) as err:
        log.error("budgets and spikes could not be checked: %s", err)
        watch = Watch(alert_failures=[f"budgets and spikes could not be checked: {err}"])
    if budgets.problem:
        watch.alert_failures.insert(0, f"no budget was checked: {budgets.problem}")
    return watch
