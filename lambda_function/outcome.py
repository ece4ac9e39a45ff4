"""What a finished report run hands back: the caller's JSON answer and the run's metrics are both read from it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lambda_function.alerts.watch import Watch
from lambda_function.delivery.once import EmailOutcome
from lambda_function.request import ReportRequest
from lambda_function.sources.collected import SourceTotals
from lambda_function.summary import ReportSummary


@dataclass(frozen=True)
class RunOutcome:
    request: ReportRequest  # what was asked: the window, and whether by the schedule
    report_uri: str
    summary_uri: str
    totals: ReportSummary
    queries: SourceTotals
    email: EmailOutcome
    watch: Watch | None = None
    reconciliation: dict[str, Any] | None = None

    @property
    def window(self) -> dict[str, str]:
        return self.request.window.as_json()

    @property
    def delivered_on_schedule(self) -> bool:
        """What the heartbeat alarm counts: a scheduled run whose report is written and whose email went out, now or
        in an earlier run. A run by hand, or one that sends no email, says nothing about the schedule."""
        return self.request.scheduled and self.email.asked and (self.email.sent or self.email.already_sent)

    def response(self) -> dict[str, Any]:
        """The answer to the invocation (and the CLI's stdout)."""
        totals = self.totals
        return {
            "status": "ok",
            "window": self.window,
            "s3_uri": self.report_uri,
            "rows": totals.rows,
            "invocations": totals.invocations,
            "failed_invocations": totals.failed_invocations,
            "records_matched": self.queries.records_matched,
            "total_cost_usd": f"{totals.total_cost:f}",
            "unpriced_models": totals.unpriced_models,
            "invalid_rows": totals.invalid_rows,
            "unreadable_records": totals.unreadable_records,
            "summary_uri": self.summary_uri,
            "reconciliation": self.reconciliation,
            "budget_alerts": self.watch.alerts_sent if self.watch else [],
            "spikes": sum(len(found) for found in self.watch.spikes.values()) if self.watch else 0,
            "email": self.email.as_json(),
        }
