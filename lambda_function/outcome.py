"""What a finished report run hands back: the caller's JSON answer and the run's metrics are both read from it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lambda_function.alerts.watch import Watch
from lambda_function.delivery.once import EmailOutcome
from lambda_function.sources.insights import QueryTotals
from lambda_function.summary import ReportSummary


@dataclass(frozen=True)
class RunOutcome:
    window: dict[str, str]  # ReportWindow.as_json()
    report_uri: str
    summary_uri: str
    totals: ReportSummary
    queries: QueryTotals
    email: EmailOutcome
    watch: Watch | None = None
    reconciliation: dict[str, Any] | None = None

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
