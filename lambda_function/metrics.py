"""The run's CloudWatch metrics as Embedded Metric Format records: printed by the Lambda entry point as log lines,
CloudWatch turns them into metrics in the `BedrockUsageReport` namespace with no API call and no IAM. The CLI does
not print them (its stdout is the JSON answer)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lambda_function.outcome import RunOutcome

NAMESPACE = "BedrockUsageReport"


def emf(values: Mapping[str, tuple[float, str]], **properties: Any) -> dict[str, Any]:
    """One EMF record: metric name -> (value, unit), plus searchable properties (not dimensions)."""
    return {
        "_aws": {
            "Timestamp": 0,  # CloudWatch takes the log event's time when this is 0
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [[]],
                    "Metrics": [{"Name": name, "Unit": unit} for name, (_, unit) in values.items()],
                }
            ],
        },
        **{name: value for name, (value, _) in values.items()},
        **properties,
    }


def report_metrics(outcome: RunOutcome) -> dict[str, Any]:
    """A finished report: delivered when the CSV is written and nothing is left to send."""
    return emf(
        {
            "ReportDelivered": (1 if outcome.email.delivered else 0, "Count"),
            "TotalCostUSD": (float(outcome.totals.total_cost), "None"),
            "Invocations": (outcome.totals.invocations, "Count"),
            "UnpricedInvocations": (outcome.totals.unpriced_invocations, "Count"),
            "BytesScanned": (outcome.queries.bytes_scanned, "Bytes"),
            "Queries": (outcome.queries.queries, "Count"),
        },
        window=outcome.window["label"],
    )
