"""Logs Insights adapter: start -> wait -> rows, with proof that nothing was cut off.

The service ends a query `Complete` with exactly `limit` rows and no warning when there were more, so each
result is checked: fewer rows than the limit, and the summed invocation counts equal `recordsMatched`. A
result that may be truncated is split in two halves of its time range and those are queried again.

Queries run in parallel; when one fails, the others are stopped rather than left scanning (and billing) until
they finish on their own.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from botocore.exceptions import ClientError

from .config import LogGroup
from .errors import ConfigError, IncompleteResults, QueryFailed

log = logging.getLogger(__name__)

MAX_GROUPS_PER_QUERY = 50  # logGroupNames / logGroupIdentifiers accept at most 50 entries
FINAL_FAILURES = {"Failed", "Cancelled", "Timeout", "Unknown"}
RETRYABLE_START_ERRORS = {"LimitExceededException", "ThrottlingException", "ServiceUnavailableException"}


@dataclass(frozen=True)
class QuerySpec:
    """One StartQuery: a batch of log groups in one region over [start, end] epoch seconds (both inclusive)."""

    region: str
    log_groups: tuple[LogGroup, ...]
    start: int
    end: int
    query: str
    limit: int = 10_000

    def describe(self) -> str:
        names = ", ".join(g.name for g in self.log_groups[:3]) + (" ..." if len(self.log_groups) > 3 else "")
        return f"[{self.start}..{self.end}] in {self.region} over {names}"

    def halves(self) -> tuple[QuerySpec, QuerySpec]:
        middle = self.start + (self.end - self.start) // 2
        return replace(self, end=middle), replace(self, start=middle + 1)


@dataclass
class QueryResult:
    spec: QuerySpec
    rows: list[dict[str, str]]
    records_matched: int
    records_scanned: int
    bytes_scanned: int
    query_id: str = ""


@dataclass
class QueryTotals:
    """What the report's footer says about the queries behind it."""

    queries: int = 0
    splits: int = 0
    records_matched: int = 0
    records_scanned: int = 0
    bytes_scanned: int = 0
    log_groups: list[str] = field(default_factory=list)


def plan_queries(
    log_groups: Sequence[LogGroup], default_region: str, start: int, end: int, query: str, limit: int
) -> list[QuerySpec]:
    """One spec per region and batch of at most 50 log groups."""
    by_region: dict[str, list[LogGroup]] = {}
    for group in log_groups:
        by_region.setdefault(group.region or default_region, []).append(group)
    specs = []
    for region, groups in sorted(by_region.items()):
        for i in range(0, len(groups), MAX_GROUPS_PER_QUERY):
            batch = tuple(groups[i : i + MAX_GROUPS_PER_QUERY])
            specs.append(QuerySpec(region, batch, start, end, query, limit))
    return specs


def _as_int(value: Any) -> int:
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return 0
    return int(number)


def is_complete(result: QueryResult, count_field: str) -> bool:
    counted = sum(_as_int(row.get(count_field, "0")) for row in result.rows)
    return len(result.rows) < result.spec.limit and counted == result.records_matched


class InsightsRunner:
    """Runs QuerySpecs to completion. Clients, sleep and clock are injected so tests never wait."""

    def __init__(
        self,
        client_for_region: Callable[[str], Any],
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        deadline: float | None = None,
        concurrency: int = 4,
        first_poll: float = 0.5,
        max_poll: float = 5.0,
        start_attempts: int = 8,
    ):
        self._client_for_region = client_for_region
        self._sleep = sleep
        self._clock = clock
        self._deadline = deadline
        self._concurrency = concurrency
        self._first_poll = first_poll
        self._max_poll = max_poll
        self._start_attempts = start_attempts

    # -- one query -------------------------------------------------------------------------------------------
    def _time_left(self) -> float:
        return float("inf") if self._deadline is None else self._deadline - self._clock()

    def _start(self, client: Any, spec: QuerySpec, cancel: threading.Event) -> str:
        params: dict[str, Any] = {
            "startTime": spec.start,
            "endTime": spec.end,
            "queryString": spec.query,
            "limit": spec.limit,
        }
        if any(group.is_arn for group in spec.log_groups):
            params["logGroupIdentifiers"] = [group.identifier for group in spec.log_groups]
        else:
            params["logGroupNames"] = [group.name for group in spec.log_groups]
        for attempt in range(1, self._start_attempts + 1):
            if cancel.is_set():
                raise _Cancelled(spec.describe())
            try:
                return str(client.start_query(**params)["queryId"])
            except ClientError as err:
                code = err.response.get("Error", {}).get("Code", "")
                if code == "ResourceNotFoundException":  # e.g. a log-group ARN of another account, mistyped
                    raise ConfigError(
                        "LOG_GROUP_NAMES", err.response.get("Error", {}).get("Message", str(err))
                    ) from err
                if code not in RETRYABLE_START_ERRORS or attempt == self._start_attempts:
                    raise
                # Concurrent queries are capped per account (dashboards count too): back off with jitter.
                delay = min(30.0, 1.0 * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
                if delay >= self._time_left():
                    raise QueryFailed(f"query {spec.describe()} could not start before the deadline: {code}") from err
                log.warning("StartQuery %s (%s), retrying in %.1fs", code, spec.describe(), delay)
                self._sleep(delay)
        raise AssertionError("unreachable")

    def run_one(self, spec: QuerySpec, cancel: threading.Event | None = None) -> QueryResult:
        """Start `spec` and wait for it; if `cancel` is set meanwhile, stop the query and raise _Cancelled."""
        cancel = cancel or threading.Event()
        client = self._client_for_region(spec.region)
        query_id = self._start(client, spec, cancel)
        try:
            return self._wait(client, spec, query_id, cancel)
        except BaseException:
            # Whatever ended the wait (a failed poll, a deadline, a cancel), the query must not go on scanning.
            _stop_quietly(client, query_id)
            raise

    def _wait(self, client: Any, spec: QuerySpec, query_id: str, cancel: threading.Event) -> QueryResult:
        interval = self._first_poll
        while True:
            if cancel.is_set():
                raise _Cancelled(f"{query_id} {spec.describe()}")
            response = client.get_query_results(queryId=query_id)
            status = response.get("status", "Unknown")
            if status == "Complete":
                rows = [_row(r) for r in response.get("results", [])]
                token = response.get("nextToken")
                while token:  # newer APIs page large results
                    page = client.get_query_results(queryId=query_id, nextToken=token)
                    rows.extend(_row(r) for r in page.get("results", []))
                    token = page.get("nextToken")
                stats = response.get("statistics", {})
                return QueryResult(
                    spec,
                    rows,
                    records_matched=int(stats.get("recordsMatched", 0)),
                    records_scanned=int(stats.get("recordsScanned", 0)),
                    bytes_scanned=int(stats.get("bytesScanned", 0)),
                    query_id=query_id,
                )
            if status in FINAL_FAILURES:
                raise QueryFailed(f"Logs Insights query {query_id} {spec.describe()} ended {status}")
            if interval >= self._time_left():
                raise QueryFailed(
                    f"Logs Insights query {query_id} {spec.describe()} was still {status} at the deadline; "
                    "it was stopped. Report a shorter window or raise the function timeout."
                )
            self._sleep(interval)
            interval = min(self._max_poll, interval * 1.5)

    # -- many queries, proven complete ----------------------------------------------------------------------
    def run_all(self, specs: Iterable[QuerySpec], count_field: str) -> tuple[list[QueryResult], QueryTotals]:
        """Run every spec (and the halves of any that may be truncated) to a complete result, or raise.

        On the first error the queries still running are stopped and the error is raised once they have gone.
        """
        done: list[QueryResult] = []
        totals = QueryTotals()
        cancel = threading.Event()
        with ThreadPoolExecutor(max_workers=self._concurrency) as pool:
            running: set[Future[QueryResult]] = {pool.submit(self.run_one, spec, cancel) for spec in specs}
            try:
                while running:
                    finished, running = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        result = future.result()
                        totals.queries += 1
                        totals.records_scanned += result.records_scanned
                        totals.bytes_scanned += result.bytes_scanned
                        if is_complete(result, count_field):
                            done.append(result)
                            totals.records_matched += result.records_matched
                        else:
                            totals.splits += 1
                            running |= {
                                pool.submit(self.run_one, half, cancel) for half in _halves_of(result, count_field)
                            }
            except BaseException:
                cancel.set()
                for future in running:
                    future.cancel()
                raise
        done.sort(key=lambda r: (r.spec.region, r.spec.start, tuple(g.identifier for g in r.spec.log_groups)))
        return done, totals


class _Cancelled(Exception):
    """A query given up because another one failed; never escapes run_all."""


def _halves_of(result: QueryResult, count_field: str) -> tuple[QuerySpec, QuerySpec]:
    """The two halves to query again when `result` hit the row limit; an error when it cannot be made complete."""
    spec = result.spec
    if len(result.rows) < spec.limit:
        counted = sum(_as_int(row.get(count_field, "0")) for row in result.rows)
        raise IncompleteResults(
            f"query {result.query_id} {spec.describe()} matched {result.records_matched} records "
            f"but its rows account for {counted}; refusing to report an undercount"
        )
    if spec.end <= spec.start:
        raise IncompleteResults(
            f"query {spec.describe()} returned {spec.limit} rows for a single second; too many groups to report completely"
        )
    log.info("result of %s hit the %d-row limit; splitting the window", spec.describe(), spec.limit)
    return spec.halves()


def _row(fields: list[dict[str, str]]) -> dict[str, str]:
    return {item["field"]: item.get("value", "") for item in fields}


def _stop_quietly(client: Any, query_id: str) -> None:
    try:
        client.stop_query(queryId=query_id)
    except Exception as err:  # already finished, gone, or no time left: the error being raised matters more
        log.info("StopQuery %s: %s", query_id, err)
