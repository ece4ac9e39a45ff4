"""The invocation logs delivered to S3 (LOG_SOURCE=s3): the window's hour folders aggregated by one SQL query
(`logs_sql.py`) on the engine seam the bill uses (Athena in AWS, the embedded engine locally and in tests), the
rows typed by the same `usage_frame` as Logs Insights' rows, and the proof that every line was accounted for.

Completeness, as with Logs Insights, is checked and never assumed:
- the records the usage groups count equal the records the hour folders hold in the window (one scan answers
  both, GROUPING SETS), and every line read is a record in the window, a record outside it (the hour after the
  window is read for late deliveries), a record whose timestamp cannot be read, another JSON line, or a line that
  is not JSON: the last three are gaps;
- every hour folder of the window that has passed holds at least one object: an hour without one is a gap, named
  (Bedrock writes no object for an hour without calls, so it may be a quiet hour; the report cannot tell);
- an object that cannot be read (a gzip cut short, bytes that are not gzip) is named and left out, and the query
  asked again without it (at most MAX_UNREADABLE such objects; past them the run fails).
Gaps go into the footer, so the email and the summary name them: the report is never a silent under-count.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from lambda_function.aws import AwsClients
from lambda_function.config import Config
from lambda_function.engine import QueryAnswer, Relation, UnreadableObjects
from lambda_function.engine.choose import engine_named, scan_cost
from lambda_function.errors import ConfigError, IncompleteResults
from lambda_function.sources.collected import CollectedUsage
from lambda_function.sources.insights import Page
from lambda_function.sources.logs_sql import HOUR_FORMAT, LINES, log_hours, logs_query
from lambda_function.sources.query import COUNT_FIELD
from lambda_function.sources.usage import usage_frame
from lambda_function.window import ReportWindow

log = logging.getLogger(__name__)

MAX_UNREADABLE = 20  # objects left out of one report before the run gives up (a broken delivery, not a gap)
MAX_LISTED = 50  # gaps listed in the footer (the counts are always whole)


def logs_prefix(location: str, account: str, region: str) -> tuple[str, str]:
    """The bucket and the key prefix of one account's and region's hour folders, under the logging
    configuration's `s3://bucket[/prefix]`."""
    bucket, _, prefix = location.removeprefix("s3://").partition("/")
    prefix = prefix.strip("/")
    folder = f"AWSLogs/{account}/BedrockModelInvocationLogs/{region}"
    return bucket, f"{prefix}/{folder}" if prefix else folder


@dataclass
class S3Totals:
    """What the footer says about the S3-delivered logs behind a report (the attributes the metrics and the
    response read are QueryTotals' names)."""

    location: str = ""
    engine: str = ""
    queries: int = 0
    records_matched: int = 0
    bytes_scanned: int = 0
    rows_fetched: int = 0
    objects: int = 0
    lines: int = 0
    hours_read: int = 0  # the window's own hours with at least one object
    hours_in_window: int = 0
    hours_without_objects: list[str] = field(default_factory=list)
    unreadable_objects: list[dict[str, str]] = field(default_factory=list)
    lines_not_json: int = 0
    records_without_time: int = 0
    records_outside_window: int = 0
    other_lines: int = 0

    @property
    def gaps(self) -> int:
        return (
            len(self.hours_without_objects)
            + len(self.unreadable_objects)
            + self.lines_not_json
            + self.records_without_time
            + self.other_lines
        )

    @property
    def cost_usd(self) -> Decimal:
        return scan_cost(self.engine, self.bytes_scanned) or Decimal(0)

    def footer(self) -> dict[str, Any]:
        cost = scan_cost(self.engine, self.bytes_scanned)
        return {
            "source": "s3",
            "log_location": self.location,
            "engine": self.engine,
            "records_matched": self.records_matched,
            "bytes_scanned": self.bytes_scanned,
            "queries": self.queries,
            "rows_fetched": self.rows_fetched,
            "objects_read": self.objects,
            "lines_read": self.lines,
            "hours_read": self.hours_read,
            "hours_in_window": self.hours_in_window,
            "query_cost": f"${cost or 0:.4f}",  # the embedded engine is not charged
            "log_gaps": {
                "hours_without_objects": self.hours_without_objects[:MAX_LISTED],
                "hours_without_objects_count": len(self.hours_without_objects),
                "unreadable_objects": self.unreadable_objects[:MAX_LISTED],
                "unreadable_objects_count": len(self.unreadable_objects),
                "lines_not_json": self.lines_not_json,
                "records_without_time": self.records_without_time,
                "other_lines": self.other_lines,
            },
        }


class S3LogsSource:
    """The invocation logs in S3, aggregated by the engine LOG_ENGINE names and proven complete."""

    def __init__(self, config: Config, aws: AwsClients, *, now: Callable[[], datetime]):
        self._config, self._aws, self._now = config, aws, now
        self._account = ""

    def check(self) -> None:
        config = self._config
        if not config.log_s3_location:
            raise ConfigError(
                "LOG_S3_LOCATION", "is not set; LOG_SOURCE=s3 reads the logs from that s3://bucket/prefix"
            )
        if config.log_engine == "athena" and not config.log_table:
            raise ConfigError("LOG_TABLE", "is not set; Athena reads the S3-delivered logs through that Glue table")
        self._account = self._aws.account_id()

    def relation(self, start: datetime, end: datetime, exclude: Sequence[str]) -> Relation:
        own, after = log_hours(start, end)
        bucket, prefix = logs_prefix(self._config.log_s3_location, self._account, self._config.default_region)
        return Relation(
            bucket,
            prefix,
            format="lines",
            glue_table=self._config.log_table,
            partitions=tuple(("log_hour", hour) for hour in own + after),
            layout="{log_hour}/",
            exclude=tuple(exclude),
        )

    def collect(self, window: ReportWindow, context_thresholds: Sequence[int], *, deadline: float) -> CollectedUsage:
        config = self._config
        if not self._account:
            self.check()
        engine = engine_named(config.log_engine, self._aws, config.athena_workgroup)
        totals = S3Totals(location=config.log_s3_location, engine=engine.name)
        excluded: list[str] = []
        while True:
            sql = logs_query(window.start, window.end, context_thresholds, config.attribution_keys, excluded)
            totals.queries += 1
            try:
                answer = engine.run(sql, {LINES: self.relation(window.start, window.end, excluded)}, deadline=deadline)
                break
            except UnreadableObjects as err:
                totals.bytes_scanned += err.bytes_scanned
                for uri, why in err.objects:
                    log.warning("left out of the report, unreadable: %s (%s)", uri, why)
                    totals.unreadable_objects.append({"object": uri, "why": why})
                    excluded.append(uri)
                if len(excluded) > MAX_UNREADABLE:
                    raise IncompleteResults(
                        f"{len(excluded)} objects of the S3-delivered logs cannot be read (the first: "
                        f"{excluded[0]}); more than {MAX_UNREADABLE} is a broken delivery, not a gap: no report"
                    ) from err
        totals.bytes_scanned += answer.bytes_scanned
        page = self._account_for(answer, window, totals)
        frame = usage_frame([page], config.attribution_keys)
        return CollectedUsage(frame, totals)

    def _account_for(self, answer: QueryAnswer, window: ReportWindow, totals: S3Totals) -> Page:
        """The usage rows as a page (the Insights result's field names), once the hour rows prove them whole."""
        at = {name: i for i, name in enumerate(answer.columns)}
        usage = [row for row in answer.rows if row[at["usage_row"]] == "1" and row[at["kind"]] == "record"]
        hours = [row for row in answer.rows if row[at["usage_row"]] == "0"]
        totals.rows_fetched = len(answer.rows)

        def total(column: str, rows: list[tuple[str | None, ...]]) -> int:
            return sum(int(row[at[column]] or 0) for row in rows)

        in_window = total("in_window", hours)
        aggregated = total(COUNT_FIELD, usage)
        if aggregated != in_window:
            raise IncompleteResults(
                f"the usage groups count {aggregated} records but the hour folders hold {in_window} in the window; "
                "refusing to report a total that may be wrong"
            )
        totals.records_matched = in_window
        totals.objects = total("objects", hours)
        totals.lines = total("lines", hours)
        totals.lines_not_json = total("not_json", hours)
        totals.records_without_time = total("bad_time", hours)
        totals.records_outside_window = total("outside", hours)
        totals.other_lines = total("other_json", hours)  # JSON, and not an invocation record
        read = {row[at["log_hour"]] for row in hours if int(row[at["objects"]] or 0)}
        own, after = log_hours(window.start, window.end)
        totals.hours_read = len(read & set(own))
        totals.hours_in_window = len(own)
        passed = self._now().astimezone(UTC).strftime(HOUR_FORMAT)
        totals.hours_without_objects = [hour for hour in own if hour not in read and hour < passed]
        fields = [name for name in answer.columns if name not in ("usage_row", "kind")]
        columns = {name: [row[at[name]] for row in usage] for name in fields}
        return Page(len(usage), columns)


__all__ = ["S3LogsSource", "S3Totals", "logs_prefix"]
