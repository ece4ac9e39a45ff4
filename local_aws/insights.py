"""Logs Insights test double: StartQuery / GetQueryResults / StopQuery / DescribeQueries answered inside moto.

moto's own Logs Insights ignores stats/filter/parse and nested fields (FACTS §5); this double runs the query
language (`insights_engine`, pure: `insights_parser` -> `insights_compiler` -> execution) over the events moto
stores, with the service's limits, statuses and errors (FACTS §2). It patches `moto.logs.responses.LogsResponse`,
so it answers `moto.mock_aws()` in process and `moto.server.ThreadedMotoServer` (boto3 with AWS_ENDPOINT_URL) alike.

    double = InsightsDouble(polls_until_running=1, polls_until_complete=2)
    with double.installed(), mock_aws():
        ...                       # boto3 code
    double.started                # what was asked, for asserting
    double.fail_next("Timeout")   # the next query ends Timeout instead of Complete
    double.throttle_next(2)       # the next two StartQuery calls fail with ThrottlingException
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.logs.models import logs_backends
from moto.logs.responses import LogsResponse

from .insights_engine import (
    DEFAULT_FIELD_LIMIT,
    CompiledQuery,
    Event,
    MalformedQueryError,
    QueryOutput,
    UnsupportedQueryError,
    compile_query,
    execute_query,
    format_value,
    run_compiled,
)

__all__ = [
    "Event",
    "InsightsDouble",
    "MalformedQueryError",
    "QueryOutput",
    "StartedQuery",
    "UnsupportedQueryError",
    "compile_query",
    "execute_query",
    "format_value",
]

# Service limits (StartQuery / GetQueryResults API reference, botocore's logs-2014-03-28 model).
MAX_LOG_GROUPS = 50  # logGroupNames / logGroupIdentifiers
MAX_QUERY_LENGTH = 10_000  # queryString
DEFAULT_ROW_LIMIT = 10_000  # `limit` when StartQuery omits it
# "The maximum limit is 100,000. The maximum events returned in a single GetQueryResults API call is 10,000 log
# events per request" (current API reference). FACTS §2 still says 10,000: older documentation.
MAX_ROW_LIMIT = 100_000
PAGE_SIZE = 10_000
FINAL_STATUSES = frozenset({"Complete", "Failed", "Cancelled", "Timeout", "Unknown"})
_FORCED_OUTCOMES = frozenset({"Failed", "Timeout", "Cancelled", "Unknown"})
_PATCHED = ("start_query", "get_query_results", "stop_query", "describe_queries")
_LOG_GROUP_ARN = re.compile(
    r"arn:aws[a-z-]*:logs:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):log-group:(?P<name>[^:*]+)"
)


class _ServiceError(JsonRESTError):
    """An AWS JSON-protocol error: botocore raises ClientError with `code` as Error.Code."""

    def __init__(self, code: str, message: str, **extra: Any):
        super().__init__(code, message)
        if extra:
            self.description = json.dumps({"__type": code, "message": message, **extra})


def _malformed(err: MalformedQueryError) -> _ServiceError:
    location = {"startCharOffset": err.start, "endCharOffset": err.end}
    return _ServiceError(
        "MalformedQueryException", err.message, queryCompileError={"location": location, "message": err.message}
    )


@dataclass
class StartedQuery:
    """One StartQuery the double accepted: what was asked (for assertions) and where it stands."""

    query_id: str
    query_string: str
    log_groups: tuple[str, ...]  # as the request named them (names or ARNs)
    start_time: int  # epoch seconds, inclusive
    end_time: int  # epoch seconds, inclusive
    limit: int
    account_id: str
    region: str
    create_time: int  # epoch ms
    resolved_groups: tuple[tuple[str, str, str], ...] = ()  # (account, region, name) actually scanned
    polls: int = 0
    stopped: bool = False
    outcome: str = "Complete"  # what the query ends as (fail_next changes it)
    _compiled: CompiledQuery | None = field(default=None, repr=False)
    _events: list[Event] = field(default_factory=list, repr=False)
    _results: dict[float, QueryOutput] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _schedule: tuple[int, int] = (0, 0)

    @property
    def status(self) -> str:
        return self._status_after(self.polls)

    def _status_after(self, polls: int) -> str:
        if self.stopped:
            return "Cancelled"
        until_running, until_complete = self._schedule
        if polls < until_running:
            return "Scheduled"
        if polls < until_complete:
            return "Running"
        return self.outcome

    def _progress(self, polls: int) -> float:
        """How much of the scan is done when a GetQueryResults call sees Running: 1/k, 2/k, ... of the events."""
        until_running, until_complete = self._schedule
        return (polls - until_running + 1) / (until_complete - until_running + 1)


@dataclass
class _Directive:
    status: str
    when: Callable[[StartedQuery], bool] | None
    polls: int | None = None


class InsightsDouble:
    """Logs Insights semantics and service behaviour for moto. Thread-safe: the product polls from threads.

    row_limit: rows a query returns when StartQuery gives no `limit`. max_limit: the largest `limit` accepted.
    field_limit: leaves extracted from a JSON event (FACTS §2: 200). polls_until_running / polls_until_complete:
    how many GetQueryResults calls see Scheduled, then Running, before the final status (0, 0 = final at once).
    concurrency_cap: queries not yet finished per account and region before StartQuery fails with
    LimitExceededException (FACTS §2: 30 in older docs, 100 in newer). keep_null_groups: see `stats` in
    insights_compiler.
    """

    def __init__(
        self,
        *,
        row_limit: int = DEFAULT_ROW_LIMIT,
        max_limit: int = MAX_ROW_LIMIT,
        field_limit: int = DEFAULT_FIELD_LIMIT,
        polls_until_running: int = 1,
        polls_until_complete: int = 2,
        concurrency_cap: int = 30,
        keep_null_groups: bool = True,
        clock: Callable[[], float] = time.time,
    ):
        if not 0 <= polls_until_running <= polls_until_complete:
            raise ValueError("need 0 <= polls_until_running <= polls_until_complete")
        self.row_limit = row_limit
        self.max_limit = max_limit
        self.field_limit = field_limit
        self.polls_until_running = polls_until_running
        self.polls_until_complete = polls_until_complete
        self.concurrency_cap = concurrency_cap
        self.keep_null_groups = keep_null_groups
        self._clock = clock
        self._lock = threading.RLock()
        self._queries: dict[str, StartedQuery] = {}
        self._directives: list[_Directive] = []
        self._throttles: list[str] = []
        self._saved: list[dict[str, Any]] = []
        self.started: list[StartedQuery] = []

    # -- control ---------------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget every query and pending directive (the moto backends are reset separately)."""
        with self._lock:
            self._queries.clear()
            self._directives.clear()
            self._throttles.clear()
            self.started.clear()

    def fail_next(
        self,
        status: str = "Failed",
        when: Callable[[StartedQuery], bool] | None = None,
        polls: int | None = None,
    ) -> None:
        """The next query started (that `when` accepts) ends with `status` where it would have been Complete;
        with `polls`, it ends so after that many GetQueryResults calls, whatever the others' schedule."""
        if status not in _FORCED_OUTCOMES:
            raise ValueError(f"status must be one of {sorted(_FORCED_OUTCOMES)}")
        if polls is not None and polls < 0:
            raise ValueError("polls must be >= 0")
        with self._lock:
            self._directives.append(_Directive(status, when, polls))

    def throttle_next(self, n: int = 1, code: str = "ThrottlingException") -> None:
        """The next `n` StartQuery requests fail with `code`. botocore retries both ThrottlingException and
        LimitExceededException on its own, so each of its attempts uses one of the `n`."""
        with self._lock:
            self._throttles.extend([code] * n)

    def query(self, query_id: str) -> StartedQuery:
        with self._lock:
            return self._queries[query_id]

    # -- installation ------------------------------------------------------------------------------------------------
    @contextmanager
    def installed(self) -> Iterator[InsightsDouble]:
        self.install()
        try:
            yield self
        finally:
            self.uninstall()

    def install(self) -> None:
        with _INSTALL_LOCK:
            self._saved.append({name: LogsResponse.__dict__.get(name) for name in _PATCHED})
            for name in _PATCHED:
                setattr(LogsResponse, name, _handler(self, name))

    def uninstall(self) -> None:
        with _INSTALL_LOCK:
            saved = self._saved.pop()
            for name, original in saved.items():
                if original is None:
                    delattr(LogsResponse, name)
                else:
                    setattr(LogsResponse, name, original)

    # -- the API -----------------------------------------------------------------------------------------------------
    def start_query(self, params: dict[str, Any], account: str, region: str) -> dict[str, Any]:
        with self._lock:
            if self._throttles:
                code = self._throttles.pop(0)
                raise _ServiceError(
                    code, "Rate exceeded" if code == "ThrottlingException" else "Resource limit exceeded."
                )
        language = params.get("queryLanguage", "CWLI")
        if language != "CWLI":
            raise _ServiceError(
                "InvalidParameterException", f"the test double runs only Logs Insights QL, not {language}"
            )
        identifiers, resolved = self._log_groups(params, account, region)
        start, end = params.get("startTime"), params.get("endTime")
        if not isinstance(start, int) or not isinstance(end, int):
            raise _ServiceError("InvalidParameterException", "startTime and endTime are required epoch seconds")
        if end < start:
            raise _ServiceError("InvalidParameterException", "endTime must be greater than or equal to startTime")
        query_string = params.get("queryString")
        if not isinstance(query_string, str):
            raise _ServiceError("InvalidParameterException", "queryString is required")
        if len(query_string) > MAX_QUERY_LENGTH:
            raise _ServiceError(
                "InvalidParameterException",
                f"1 validation error detected: Value at 'queryString' failed to satisfy constraint: "
                f"Member must have length less than or equal to {MAX_QUERY_LENGTH}",
            )
        limit = params.get("limit", self.row_limit)
        if not isinstance(limit, int) or not 1 <= limit <= self.max_limit:
            raise _ServiceError("InvalidParameterException", f"limit must be between 1 and {self.max_limit}")
        try:
            compiled = compile_query(query_string, keep_null_groups=self.keep_null_groups)
        except MalformedQueryError as err:
            raise _malformed(err) from err
        events = _events_in_range(resolved, start, end)

        with self._lock:
            running = sum(
                1
                for q in self._queries.values()
                if (q.account_id, q.region) == (account, region) and q.status not in FINAL_STATUSES
            )
            if running >= self.concurrency_cap:
                raise _ServiceError(
                    "LimitExceededException",
                    f"Account maximum query concurrency limit of [{self.concurrency_cap}] reached.",
                )
            query = StartedQuery(
                query_id=str(uuid.uuid4()),
                query_string=query_string,
                log_groups=tuple(identifiers),
                start_time=start,
                end_time=end,
                limit=limit,
                account_id=account,
                region=region,
                create_time=int(self._clock() * 1000),
                resolved_groups=tuple((acct, reg, name) for acct, reg, name, _ in resolved),
                _compiled=compiled,
                _events=events,
                _schedule=(self.polls_until_running, self.polls_until_complete),
            )
            for directive in self._directives:
                if directive.when is None or directive.when(query):
                    query.outcome = directive.status
                    if directive.polls is not None:
                        query._schedule = (min(query._schedule[0], directive.polls), directive.polls)
                    self._directives.remove(directive)
                    break
            self._queries[query.query_id] = query
            self.started.append(query)
        return {"queryId": query.query_id}

    def get_query_results(self, params: dict[str, Any], account: str, region: str) -> dict[str, Any]:
        query = self._find(params.get("queryId"), account, region)
        with self._lock:
            status = query.status  # each call is one poll: this one sees the state after the earlier ones
            progress = 1.0 if status == "Complete" else query._progress(query.polls) if status == "Running" else 0.0
            query.polls += 1
        output = self._output(query, progress) if progress else QueryOutput([], 0, 0, 0)
        rows = output.rows[: query.limit]  # over the limit: exactly `limit` rows, still Complete, no warning
        offset = _offset_from_token(params.get("nextToken"), query.query_id)
        page_size = params.get("maxItems") or PAGE_SIZE
        page = rows[offset : offset + page_size]
        response: dict[str, Any] = {
            "queryLanguage": "CWLI",
            "results": page,
            "statistics": {
                # The API returns these as doubles.
                "recordsMatched": float(output.records_matched),
                "recordsScanned": float(output.records_scanned),
                "estimatedRecordsSkipped": 0.0,
                "bytesScanned": float(output.bytes_scanned),
                "estimatedBytesSkipped": 0.0,
                "logGroupsScanned": float(len(query.resolved_groups)),
                # Rows after the limit, not before: AWS does not say, and the safe assumption for the product is
                # that nothing in the response reveals truncation (FACTS §2).
                "resultCount": float(len(rows)),
            },
            "status": status,
        }
        if offset + page_size < len(rows):
            response["nextToken"] = _token(query.query_id, offset + page_size)
        return response

    def stop_query(self, params: dict[str, Any], account: str, region: str) -> dict[str, Any]:
        query = self._find(params.get("queryId"), account, region)
        with self._lock:
            if query.status in FINAL_STATUSES:
                # "If the query has already ended, the operation returns an error indicating that the specified
                # query is not running." (StopQuery API reference)
                raise _ServiceError("InvalidParameterException", f"Query {query.query_id} is not running")
            query.stopped = True
        return {"success": True}

    def describe_queries(self, params: dict[str, Any], account: str, region: str) -> dict[str, Any]:
        group, status = params.get("logGroupName"), params.get("status")
        with self._lock:
            queries = [
                q
                for q in reversed(self.started)
                if (q.account_id, q.region) == (account, region)
                and (group is None or any(name == group for _, _, name in q.resolved_groups))
                and (status is None or q.status == status)
            ]
        return {
            "queries": [
                {
                    "queryLanguage": "CWLI",
                    "queryId": q.query_id,
                    "queryString": q.query_string,
                    "status": q.status,
                    "createTime": q.create_time,
                    "logGroupName": q.resolved_groups[0][2] if q.resolved_groups else "",
                }
                for q in queries[: params.get("maxResults") or 1000]
            ]
        }

    # -- helpers -----------------------------------------------------------------------------------------------------
    def _find(self, query_id: Any, account: str, region: str) -> StartedQuery:
        with self._lock:
            query = self._queries.get(query_id) if isinstance(query_id, str) else None
        if query is None or (query.account_id, query.region) != (account, region):
            raise _ServiceError("ResourceNotFoundException", f"Query does not exist: {query_id}")
        return query

    def _output(self, query: StartedQuery, progress: float) -> QueryOutput:
        """Results over the first `progress` of the events (a Running query reports partial rows and statistics),
        computed once per step and outside the double's lock."""
        with query._lock:
            cached = query._results.get(progress)
            if cached is None:
                events = query._events
                if progress < 1.0:
                    events = events[: int(len(events) * progress)]
                assert query._compiled is not None
                cached = run_compiled(query._compiled, events, field_limit=self.field_limit)
                query._results[progress] = cached
            return cached

    def _log_groups(self, params: dict[str, Any], account: str, region: str) -> tuple[list[str], list[Any]]:
        given = [key for key in ("logGroupName", "logGroupNames", "logGroupIdentifiers") if params.get(key)]
        if len(given) != 1:
            raise _ServiceError(
                "InvalidParameterException",
                "A StartQuery operation must include exactly one of logGroupName, logGroupNames, logGroupIdentifiers",
            )
        key = given[0]
        identifiers = [params[key]] if key == "logGroupName" else list(params[key])
        if len(identifiers) > MAX_LOG_GROUPS:
            raise _ServiceError(
                "InvalidParameterException",
                f"{key} has {len(identifiers)} entries; at most {MAX_LOG_GROUPS} are allowed",
            )
        resolved: dict[tuple[str, str, str], Any] = {}
        for identifier in identifiers:
            acct, reg, name = account, region, identifier
            if identifier.startswith("arn:"):
                match = _LOG_GROUP_ARN.fullmatch(identifier)
                if key != "logGroupIdentifiers" or match is None:
                    # "If you specify an ARN, use the format arn:aws:logs:region:account-id:log-group:log_group_name
                    # Don't include an * at the end." (StartQuery API reference)
                    raise _ServiceError("InvalidParameterException", f"Invalid log group identifier: {identifier}")
                acct, reg, name = match["account"], match["region"], match["name"]
            group = _find_group(acct, reg, name)
            if group is None:
                raise _ServiceError(
                    "ResourceNotFoundException", f"Log group '{name}' does not exist for account ID '{acct}'"
                )
            resolved.setdefault((acct, reg, name), group)
        return identifiers, [(*k, g) for k, g in resolved.items()]


def _find_group(account: str, region: str, name: str) -> Any:
    # dict.get, not [], so that naming an unknown account or region does not create a backend for it.
    backends = dict.get(logs_backends, account)
    backend = dict.get(backends, region) if backends is not None else None
    return None if backend is None else backend.groups.get(name)


def _events_in_range(resolved: list[Any], start: int, end: int) -> list[Event]:
    """The events of every group in [start, end] seconds, both inclusive (FACTS §2): an event at t ms is in
    range iff start*1000 <= t < (end+1)*1000. Snapshotted at StartQuery, oldest first."""
    low, high = start * 1000, (end + 1) * 1000
    events = []
    for account, _, name, group in resolved:
        for stream in list(group.streams.values()):
            stream_name = stream.log_stream_name
            for event in list(stream.events):
                if low <= event.timestamp < high:
                    events.append(
                        Event(event.timestamp, event.message, name, stream_name, event.ingestion_time, account)
                    )
    events.sort(key=lambda e: e.timestamp)
    return events


def _token(query_id: str, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{query_id}:{offset}".encode()).decode()


def _offset_from_token(token: Any, query_id: str) -> int:
    if not token:
        return 0
    try:
        owner, offset = base64.urlsafe_b64decode(str(token).encode()).decode().rsplit(":", 1)
        if owner == query_id:
            return int(offset)
    except ValueError:
        pass
    raise _ServiceError("InvalidParameterException", "The nextToken is not valid for this query")


_INSTALL_LOCK = threading.Lock()


def _handler(double: InsightsDouble, operation: str) -> Callable[[LogsResponse], str]:
    """A LogsResponse method (moto looks actions up as plain functions on the class) that defers to `double`."""
    method = getattr(double, operation)

    def handle(response: LogsResponse) -> str:
        body = response.body
        params = json.loads(body) if body else {}
        return json.dumps(method(params, response.current_account, response.region))

    handle.__name__ = operation
    return handle
