"""The run's CloudWatch metrics as Embedded Metric Format records: printed by the Lambda entry point as log lines,
CloudWatch turns them into metrics in the `BedrockUsageReport` namespace with no API call and no IAM. The CLI does
not print them (its stdout is the JSON answer)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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


def report_metrics(response: Mapping[str, Any], bytes_scanned: int, queries: int, unpriced: int) -> dict[str, Any]:
    """A finished report: delivered (the CSV written and the email sent, already sent, or not asked for)."""
    email = response.get("email") or {}
    delivered = bool(email.get("sent")) or email == {"sent": False} or "already sent" in str(email.get("reason", ""))
    return emf(
        {
            "ReportDelivered": (1 if delivered else 0, "Count"),
            "TotalCostUSD": (float(response["total_cost_usd"]), "None"),
            "Invocations": (response["invocations"], "Count"),
            "UnpricedInvocations": (unpriced, "Count"),
            "BytesScanned": (bytes_scanned, "Bytes"),
            "Queries": (queries, "Count"),
        },
        window=response["window"]["label"],
    )
