"""The run's CloudWatch metrics. `run_report` hands them back as records (`emf`); the Lambda entry point publishes
them with Powertools' Metrics (`publish`), which prints each as an Embedded Metric Format line: CloudWatch turns it
into metrics in the `BedrockUsageReport` namespace, with no API call and no IAM. The CLI prints none (its stdout is
the JSON answer)."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

if TYPE_CHECKING:
    from lambda_function.outcome import RunOutcome

log = logging.getLogger(__name__)

NAMESPACE = "BedrockUsageReport"
# The one dimension of every metric: the stack's alarms select by it, so that two stacks in one account (staging and
# production) never stand in for each other.
DIMENSION = "FunctionName"
# Outside Lambda, with no context and no AWS_LAMBDA_FUNCTION_NAME (nothing ships such a run's stdout to CloudWatch).
LOCAL_FUNCTION_NAME = "local"


def emf(values: Mapping[str, tuple[float, str]], **properties: Any) -> dict[str, Any]:
    """One set of a run's metrics: name -> (value, unit), plus searchable properties (not dimensions). Laid out as
    EMF lays it out (each value a top-level member, its unit declared under `_aws`); the time and the dimension are
    only known when `publish` prints it."""
    return {
        "_aws": {
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Metrics": [{"Name": name, "Unit": unit} for name, (_, unit) in values.items()],
                }
            ],
        },
        **{name: value for name, (value, _) in values.items()},
        **properties,
    }


def report_metrics(outcome: RunOutcome) -> dict[str, Any]:
    """A finished report. `ReportDelivered` is 1 only for a scheduled run that delivered (RunOutcome), 0 otherwise:
    the heartbeat alarm (Sum over 26 hours < 1, missing data breaching) is satisfied by the schedule alone."""
    return emf(
        {
            "ReportDelivered": (1 if outcome.delivered_on_schedule else 0, "Count"),
            "TotalCostUSD": (float(outcome.totals.total_cost), "None"),
            "Invocations": (outcome.totals.invocations, "Count"),
            "UnpricedInvocations": (outcome.totals.unpriced_invocations, "Count"),
            "BytesScanned": (outcome.queries.bytes_scanned, "Bytes"),
            "Queries": (outcome.queries.queries, "Count"),
            "QueryCostUSD": (float(outcome.queries.cost_usd), "None"),
            "LogGaps": (outcome.queries.gaps, "Count"),
        },
        window=outcome.window["label"],
        scheduled=outcome.request.scheduled,
    )


def function_name(context: Any) -> str:
    """The dimension's value: the function's name from Lambda's context, or from the runtime's environment."""
    name = getattr(context, "function_name", None) or os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
    return str(name) if name else LOCAL_FUNCTION_NAME


def publish(records: Iterable[Mapping[str, Any]], function: str) -> None:
    """Print each record as one EMF line through Powertools: stamped with the time it is printed (milliseconds since
    the epoch), in NAMESPACE, with FunctionName as the only dimension of each metric."""
    for record in records:
        # A provider of its own (Metrics' default one keeps its sets in class attributes, shared process-wide), and
        # service="" so that a POWERTOOLS_SERVICE_NAME setting adds no `service` dimension the alarms do not select.
        metrics = Metrics(provider=AmazonCloudWatchEMFProvider(namespace=NAMESPACE, service=""))
        names: set[str] = set()
        published = False
        for directive in record["_aws"]["CloudWatchMetrics"]:
            for definition in directive["Metrics"]:
                name, value = definition["Name"], float(record[definition["Name"]])
                names.add(name)
                if not math.isfinite(value):  # JSON has no NaN: the whole line would be lost
                    log.warning("metric %s is %s: not published", name, value)
                    continue
                metrics.add_metric(name=name, unit=definition["Unit"], value=value)
                published = True
        for key, value in record.items():
            if key != "_aws" and key not in names:
                metrics.add_metadata(key=key, value=value)
        metrics.add_dimension(name=DIMENSION, value=function)
        if published:
            metrics.flush_metrics()
