"""Logs Insights adapter: start -> wait -> rows, with proof that nothing was cut off.

The service ends a query `Complete` with exactly `limit` rows and no warning when there were more, so each
result is checked: the summed invocation counts equal `recordsMatched` (every group counts at least one record, so
a missing row always shows as a shortfall). The query sorts its rows by a split field (the identity ARN), so a
result cut off at the limit holds every group of the identities before its last row's: those rows are kept, and
only the rest of the range (that identity onwards) is asked again, which must then match exactly the records
the kept rows leave over. Rows fetched stay close to the number of groups, and no group straddles two parts.
Where one identity fills a whole result, its range is split by time instead, into as many slices as the
observed density needs.

Queries ask for up to 100,000 rows (StartQuery's maximum) and read them 10,000 a page. Where the SDK's model or
the service refuses that limit, the run falls back to 10,000 rows once. Rows are read from the raw response into
compact columns (botocore's model parser costs more than everything else together at 50,000 rows), and the
partial rows of `Running` polls are neither transferred nor parsed where the SDK knows `maxItems`.

Queries run in parallel; when one fails, the others are stopped rather than left scanning (and billing) until
they finish on their own.

No query is started or polled after the runner's deadline (nor a poll retried: the runner's clients are bounded
`within` it), so that a poll under way and the StopQuery of a query still running still end before the run does;
a poll throttled until then ends the query as one that did not finish in time. The pages of a complete result and
StopQuery use the run's own deadline for calls.
"""

from __future__ import annotations

import logging
import math
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from itertools import pairwise
from typing import Any, Protocol

import msgspec
from botocore.exceptions import BotoCoreError, ClientError

from lambda_function.aws import GuardedClient, error_code, is_transient
from lambda_function.config import LogGroup
from lambda_function.errors import ConfigError, DeadlineExceeded, IncompleteResults, QueryFailed

log = logging.getLogger(__name__)

QUERY_COST_PER_GB = Decimal("0.005")  # Logs Insights, per GB scanned (us-east-1)


class LogsClient(Protocol):
    """The CloudWatch Logs operations the runner uses (a boto3 `logs` client, or our retrying wrapper of one)."""

    meta: Any

    def start_query(self, **params: Any) -> Any: ...
    def get_query_results(self, **params: Any) -> Any: ...
    def stop_query(self, **params: Any) -> Any: ...
    def describe_log_groups(self, **params: Any) -> Any: ...


MAX_GROUPS_PER_QUERY = 50  # logGroupNames / logGroupIdentifiers accept at most 50 entries
MAX_LIMIT = 100_000  # StartQuery `limit` (botocore's model: 1-100,000; SDKs from before 2025 say 10,000)
FALLBACK_LIMIT = 10_000  # the limit the service and older SDKs accept
PAGE_ROWS = 10_000  # GetQueryResults returns at most 10,000 rows a call (`maxItems`), more through `nextToken`
# A split plans each part to fill at most this share of the limit: a density read from one part of the data is
# an estimate, and a part that still overflows costs its whole result again.
FILL = 0.8
FINAL_FAILURES = {"Failed", "Cancelled", "Timeout", "Unknown"}
RETRYABLE_START_ERRORS = {"LimitExceededException", "ThrottlingException", "ServiceUnavailableException"}
ROWS_KEY = "BedrockReportRows"  # where the raw-body reader leaves a response's rows (see `_read_rows_raw`)
# Split boundaries go into the query text as string literals: only characters that need no escaping, and a
# prefix of a value is as good a boundary as the value itself.
_PLAIN = re.compile(r"[A-Za-z0-9:/+=,.@_-]{0,256}")


@dataclass(frozen=True)
class Page:
    """Result rows as columns: field name -> one value per row (None where a row lacks the field)."""

    size: int
    columns: dict[str, list[str | None]]

    def column(self, name: str) -> list[str | None]:
        return self.columns.get(name) or [None] * self.size


class Field(msgspec.Struct, gc=False):
    """One `{"field": ..., "value": ...}` of a GetQueryResults row (no value: the row lacks the field)."""

    field: str
    value: str | None = None


_BODY = msgspec.json.Decoder(dict[str, msgspec.Raw])  # the body's members, each left as its raw JSON
_ROWS = msgspec.json.Decoder(list[list[Field]])  # `results`, decoded straight into Fields (no dict per field)
_LIST = msgspec.json.Decoder(list[msgspec.Raw])  # `results` as its rows' raw JSON: a list, its rows not decoded yet


class _PageColumns:
    """A page's columns, filled from its rows a batch at a time. Equal values share one string: most columns repeat
    a handful of values (the account, the model, the options, small counts), so the pages a run holds until its
    queries end take little more than their distinct values, and typing them hashes each distinct value once."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.columns: dict[str, list[str | None]] = {}
        self.shared: dict[str | None, str | None] = {}

    def add(self, start: int, results: Sequence[Sequence[Field]]) -> None:
        """Rows `start`, `start + 1`, ... of the page."""
        columns, shared, size = self.columns, self.shared, self.size
        for i, row in enumerate(results, start):
            for item in row:
                column = columns.get(item.field)
                if column is None:
                    column = columns[item.field] = [None] * size
                value = item.value
                column[i] = shared.setdefault(value, value)

    def page(self) -> Page:
        return Page(self.size, self.columns)


def page_of(results: Sequence[Sequence[Field]]) -> Page:
    """GetQueryResults' rows as columns (see `_PageColumns`)."""
    columns = _PageColumns(len(results))
    columns.add(0, results)
    return columns.page()


def page_from_rows(rows: Iterable[Mapping[str, str]]) -> Page:
    """Rows as dicts (field -> value) as one page: tests and small tools."""
    return page_of([[Field(k, v) for k, v in row.items()] for row in rows])


def rows_of(pages: Iterable[Page]) -> Iterator[dict[str, str]]:
    """Pages back as one dict per row (tests and small tools; the report reads columns)."""
    for page in pages:
        for i in range(page.size):
            yield {name: value for name, values in page.columns.items() if (value := values[i]) is not None}


@dataclass(frozen=True)
class KeyRange:
    """Records whose `field` is in [low, high); None leaves that side open."""

    field: str
    low: str | None = None
    high: str | None = None

    def condition(self) -> str:
        sides = [f'{self.field} >= "{self.low}"'] if self.low is not None else []
        sides += [f'{self.field} < "{self.high}"'] if self.high is not None else []
        return " and ".join(sides)


@dataclass(frozen=True)
class QuerySpec:
    """One StartQuery: a batch of log groups in one region over [start, end] epoch seconds (both inclusive),
    optionally only the records whose split field is in `key_range`."""

    region: str
    log_groups: tuple[LogGroup, ...]
    start: int
    end: int
    query: str
    limit: int = MAX_LIMIT
    key_range: KeyRange | None = None
    expect_matched: int | None = None  # a continuation: the records the part before it left over

    def describe(self) -> str:
        names = ", ".join(g.name for g in self.log_groups[:3]) + (" ..." if len(self.log_groups) > 3 else "")
        where = f" where {self.key_range.condition()}" if self.key_range else ""
        return f"[{self.start}..{self.end}] in {self.region} over {names}{where}"

    @property
    def query_string(self) -> str:
        """The query, with the key range as a filter just before its `stats` command."""
        condition = self.key_range.condition() if self.key_range else ""
        if not condition:
            return self.query
        head, stats, tail = self.query.partition("\n| stats ")
        if not stats:
            raise ValueError("a query split by key needs a line starting '| stats '")
        return f"{head}\n| filter {condition}{stats}{tail}"

    def time_slices(self, parts: int) -> list[QuerySpec]:
        """`parts` consecutive slices of the time range (fewer when it has fewer seconds)."""
        seconds = self.end - self.start + 1
        parts = max(1, min(parts, seconds))
        edges = [self.start + seconds * i // parts for i in range(parts + 1)]
        return [replace(self, start=a, end=b - 1) for a, b in pairwise(edges)]


@dataclass
class QueryResult:
    spec: QuerySpec  # as run: its `limit` is the one the service applied
    pages: list[Page]
    records_matched: int
    records_scanned: int
    bytes_scanned: int
    query_id: str = ""

    @property
    def rows(self) -> int:
        return sum(page.size for page in self.pages)

    def column(self, name: str) -> Iterator[str | None]:
        for page in self.pages:
            yield from page.column(name)

    def take_pages(self) -> Iterator[Page]:
        """The pages, each let go of once the caller has it (the rows of 100,000 groups are the run's largest
        object)."""
        while self.pages:
            yield self.pages.pop(0)


@dataclass
class QueryTotals:
    """What the report's footer says about the queries behind it."""

    queries: int = 0
    splits: int = 0
    records_matched: int = 0
    records_scanned: int = 0
    bytes_scanned: int = 0
    rows_fetched: int = 0
    row_limit: int = MAX_LIMIT
    log_groups: list[str] = field(default_factory=list)

    @property
    def gaps(self) -> int:
        return 0  # a result that cannot be proven whole is an error, never a gap

    @property
    def cost_usd(self) -> Decimal:
        return Decimal(self.bytes_scanned) / Decimal(1024**3) * QUERY_COST_PER_GB

    def footer(self) -> dict[str, Any]:
        """What the report's footer says about where its usage came from and what reading it cost."""
        gigabytes = Decimal(self.bytes_scanned) / Decimal(1024**3)
        return {
            "log_groups": self.log_groups,
            "records_matched": self.records_matched,
            "records_scanned": self.records_scanned,
            "bytes_scanned": self.bytes_scanned,
            "queries": self.queries,
            "window_splits": self.splits,
            "rows_fetched": self.rows_fetched,
            "row_limit": self.row_limit,  # 10,000 when the service or the SDK refused 100,000
            "query_cost": f"${(gigabytes * QUERY_COST_PER_GB):.4f}",
        }


def plan_queries(
    log_groups: Sequence[LogGroup], default_region: str, start: int, end: int, query: str, limit: int = MAX_LIMIT
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
    return int(number) if number.is_finite() else 0


def counted(result: QueryResult, count_field: str) -> int:
    values = [value for value in result.column(count_field) if value]
    try:
        return sum(map(int, values))  # counts are whole numbers as text: one int() each
    except ValueError:
        return sum(_as_int(value) for value in values)  # "12.0", "1e3", or not a number (counted as 0)


def is_complete(result: QueryResult, count_field: str) -> bool:
    """Every group has at least one record, so rows missing past the limit always leave the counts short of
    `recordsMatched`: equal counts prove the result whole, even when it has exactly `limit` rows."""
    return counted(result, count_field) == result.records_matched


DECODE_ROWS = 500  # rows decoded into Fields at a time: a whole page's, made and let go per page, took 20 MB more


def _decoded(rows: list[msgspec.Raw]) -> Page:
    """A page's rows, given as raw JSON, as columns: decoded DECODE_ROWS at a time."""
    columns = _PageColumns(len(rows))
    for start in range(0, len(rows), DECODE_ROWS):
        columns.add(start, _ROWS.decode(b"[%b]" % b",".join(rows[start : start + DECODE_ROWS])))
    return columns.page()


def _read_rows_raw(response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any) -> None:
    """botocore `before-parse` hook for GetQueryResults: the rows of a Complete answer are decoded straight into
    compact columns (msgspec, typed: about a third of `json.loads`' time, and no dict per field), a Running
    answer's partial rows are dropped, and botocore's model parser is left only the small rest of the body.
    Anything unexpected (a value that is not text, a body that is not an object) is left to botocore as it came."""
    body = response_dict.get("body")
    if response_dict.get("status_code", 500) >= 300 or not isinstance(body, bytes | str) or not body:
        return
    try:
        document = _BODY.decode(body)
        results = document.pop("results", None)
        if results is None:
            return
        complete = "status" in document and msgspec.json.decode(document["status"]) == "Complete"
        rows = _LIST.decode(results)  # each row still its raw JSON (a Running answer's partial rows are dropped)
        page = _decoded(rows) if complete else Page(0, {})
    except (msgspec.DecodeError, msgspec.ValidationError):
        return
    customized_response_dict[ROWS_KEY] = page
    response_dict["body"] = msgspec.json.encode(document)


def _page(response: Mapping[str, Any]) -> Page:
    page = response.get(ROWS_KEY)
    if isinstance(page, Page):
        return page
    # An SDK without the `before-parse` event (or a body the hook left alone): botocore parsed the rows.
    if response.get("status") != "Complete":
        return Page(0, {})
    return page_of([[Field(item["field"], item.get("value")) for item in row] for row in response.get("results", [])])


def _model_limit(client: Any, operation: str, member: str) -> int | None:
    """The `max` of a request member in the SDK's model (None when the model lacks the member)."""
    try:
        shape = client.meta.service_model.operation_model(operation).input_shape.members.get(member)
    except Exception:  # a stand-in client without a model: assume nothing
        return MAX_LIMIT
    return None if shape is None else int(shape.metadata.get("max", MAX_LIMIT))


class InsightsRunner:
    """Runs QuerySpecs to completion. Clients, sleep and clock are injected so tests never wait.

    split_field: a field of the query (made non-null by it) whose ranges separate its groups; without it, a
    result over the limit is split by time only."""

    def __init__(
        self,
        client_for_region: Callable[[str], LogsClient],
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        deadline: float | None = None,
        concurrency: int = 4,
        first_poll: float = 0.5,
        max_poll: float = 5.0,
        start_attempts: int = 8,
        split_field: str | None = None,
    ):
        self._client_for_region = client_for_region
        self._sleep = sleep
        self._clock = clock
        self._deadline = deadline
        self._concurrency = concurrency
        self._first_poll = first_poll
        self._max_poll = max_poll
        self._start_attempts = start_attempts
        self._split_field = split_field
        self._lock = threading.Lock()
        self._row_cap: int | None = None  # FALLBACK_LIMIT once the service refused more, for the rest of the run
        self._prepared: set[int] = set()

    # -- clients and limits ----------------------------------------------------------------------------------
    def _client(self, region: str) -> Any:
        client = self._client_for_region(region)
        with self._lock:
            if id(client) not in self._prepared:
                self._prepared.add(id(client))
                meta = getattr(client, "meta", None)
                if meta is not None and hasattr(meta, "events"):
                    service = meta.service_model.service_id.hyphenize()
                    meta.events.register(
                        f"before-parse.{service}.GetQueryResults", _read_rows_raw, unique_id="bedrock-report-rows"
                    )
        return client

    def _limit(self, client: LogsClient, spec: QuerySpec) -> int:
        allowed = _model_limit(client, "StartQuery", "limit") or FALLBACK_LIMIT
        with self._lock:
            cap = self._row_cap or spec.limit
        return min(spec.limit, allowed, cap)

    def _fall_back(self, err: ClientError) -> None:
        with self._lock:
            first = self._row_cap is None
            self._row_cap = FALLBACK_LIMIT
        if first:
            log.warning(
                "StartQuery refused a limit above %d (%s); this run asks for %d rows a query",
                FALLBACK_LIMIT,
                err,
                FALLBACK_LIMIT,
            )

    # -- one query -------------------------------------------------------------------------------------------
    def _time_left(self) -> float:
        return float("inf") if self._deadline is None else self._deadline - self._clock()

    def _within_deadline(self, client: Any) -> Any:
        """`client` for the calls that must not start, nor be retried, after the runner's deadline."""
        if isinstance(client, GuardedClient) and self._deadline is not None:
            return client.within(self._deadline)
        return client

    def _start(self, client: LogsClient, spec: QuerySpec, cancel: threading.Event) -> tuple[QuerySpec, str]:
        """Start `spec`; returns it with the limit actually asked for, and the query id."""
        spec = replace(spec, limit=self._limit(client, spec))
        params: dict[str, Any] = {"startTime": spec.start, "endTime": spec.end, "queryString": spec.query_string}
        if any(group.is_arn for group in spec.log_groups):
            params["logGroupIdentifiers"] = [group.identifier for group in spec.log_groups]
        else:
            params["logGroupNames"] = [group.name for group in spec.log_groups]
        starter = self._within_deadline(client)
        attempt = 0
        while True:
            attempt += 1
            if cancel.is_set():
                raise _Cancelled(spec.describe())
            if self._time_left() <= 0:
                raise QueryFailed(f"query {spec.describe()} could not start before the deadline")
            try:
                return spec, str(starter.start_query(**params, limit=spec.limit)["queryId"])
            except ClientError as err:
                error = err.response.get("Error", {})
                code, message = error.get("Code", ""), str(error.get("Message", ""))
                if code == "ResourceNotFoundException":  # e.g. a log-group ARN of another account, mistyped
                    raise ConfigError("LOG_GROUP_NAMES", message or str(err)) from err
                if (
                    code in {"InvalidParameterException", "ValidationException"}
                    and "limit" in message.lower()
                    and spec.limit > FALLBACK_LIMIT
                ):
                    self._fall_back(err)
                    spec = replace(spec, limit=FALLBACK_LIMIT)
                    continue
                if code not in RETRYABLE_START_ERRORS or attempt >= self._start_attempts:
                    raise
                # Concurrent queries are capped per account (dashboards count too): back off with jitter.
                delay = min(30.0, 1.0 * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
                if delay >= self._time_left():
                    raise QueryFailed(f"query {spec.describe()} could not start before the deadline: {code}") from err
                log.warning("StartQuery %s (%s), retrying in %.1fs", code, spec.describe(), delay)
                self._sleep(delay)

    def run_one(self, spec: QuerySpec, cancel: threading.Event | None = None) -> QueryResult:
        """Start `spec` and wait for it; if `cancel` is set meanwhile, stop the query and raise _Cancelled."""
        cancel = cancel or threading.Event()
        client = self._client(spec.region)
        spec, query_id = self._start(client, spec, cancel)
        try:
            return self._wait(client, spec, query_id, cancel)
        except BaseException:
            # Whatever ended the wait (a failed poll, a deadline, a cancel), the query must not go on scanning.
            _stop_quietly(client, query_id)
            raise

    def _wait(self, client: LogsClient, spec: QuerySpec, query_id: str, cancel: threading.Event) -> QueryResult:
        # Polls ask for one row: a Running query's partial rows are of no use, and at 100,000 groups each poll
        # would otherwise carry megabytes. The rest of a Complete result is then read a full page at a time.
        pages_known = _model_limit(client, "GetQueryResults", "maxItems") is not None
        poll = {"maxItems": 1} if pages_known else {}
        more = {"maxItems": PAGE_ROWS} if pages_known else {}
        poller = self._within_deadline(client)
        interval = self._first_poll
        status = "Scheduled"
        while True:
            if cancel.is_set():
                raise _Cancelled(f"{query_id} {spec.describe()}")
            if self._time_left() <= 0:
                raise self._late(query_id, spec, status)
            try:
                response = poller.get_query_results(queryId=query_id, **poll)
            except (ClientError, BotoCoreError, DeadlineExceeded) as err:
                # The poll was retried as long as the deadline let it: the query did not finish in time.
                if poller is client or not (isinstance(err, DeadlineExceeded) or is_transient(err)):
                    raise
                raise self._late(query_id, spec, f"{status} (polls failing: {err})") from err
            status = response.get("status", "Unknown")
            if status == "Complete":
                pages = [_page(response)]
                token, seen = response.get("nextToken"), set()
                while token:
                    if token in seen:
                        raise QueryFailed(f"Logs Insights query {query_id} returned the same nextToken twice")
                    seen.add(token)
                    answer = client.get_query_results(queryId=query_id, nextToken=token, **more)
                    pages.append(_page(answer))
                    token = answer.get("nextToken")
                stats = response.get("statistics", {})
                return QueryResult(
                    spec,
                    pages,
                    records_matched=int(stats.get("recordsMatched", 0)),
                    records_scanned=int(stats.get("recordsScanned", 0)),
                    bytes_scanned=int(stats.get("bytesScanned", 0)),
                    query_id=query_id,
                )
            if status in FINAL_FAILURES:
                raise QueryFailed(f"Logs Insights query {query_id} {spec.describe()} ended {status}")
            if interval >= self._time_left():
                raise self._late(query_id, spec, status)
            self._sleep(interval)
            interval = min(self._max_poll, interval * 1.5)

    @staticmethod
    def _late(query_id: str, spec: QuerySpec, status: str) -> QueryFailed:
        return QueryFailed(
            f"Logs Insights query {query_id} {spec.describe()} was still {status} at the deadline; "
            "it was stopped. Report a shorter window or raise the function timeout."
        )

    # -- many queries, proven complete ----------------------------------------------------------------------
    def run_all(self, specs: Iterable[QuerySpec], count_field: str) -> tuple[list[QueryResult], QueryTotals]:
        """Run every spec (and the parts of any that may be truncated) to a complete result, or raise.

        On the first error the queries still running are stopped and the error is raised once they have gone.
        """
        done: list[QueryResult] = []
        totals = QueryTotals()
        cancel = threading.Event()
        whole: dict[int, QueryResult] = {}  # per spec asked for: its own (first) result
        parts: dict[int, int] = {}  # per spec asked for: records matched by its complete parts
        with ThreadPoolExecutor(max_workers=self._concurrency) as pool:
            running: dict[Future[QueryResult], int] = {
                pool.submit(self.run_one, spec, cancel): n for n, spec in enumerate(specs)
            }
            try:
                while running:
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        root = running.pop(future)
                        result = future.result()
                        whole.setdefault(root, result)
                        totals.queries += 1
                        totals.records_scanned += result.records_scanned
                        totals.bytes_scanned += result.bytes_scanned
                        totals.rows_fetched += result.rows
                        totals.row_limit = min(totals.row_limit, result.spec.limit)
                        _check_expected(result)
                        if is_complete(result, count_field):
                            done.append(result)
                            parts[root] = parts.get(root, 0) + result.records_matched
                        else:
                            totals.splits += 1
                            kept, rest = self._parts_of(result, count_field)
                            if kept is not None:
                                done.append(kept)
                                parts[root] = parts.get(root, 0) + counted(kept, count_field)
                            for part in rest:
                                running[pool.submit(self.run_one, part, cancel)] = root
                        del result
            except BaseException:
                cancel.set()
                for future in running:
                    future.cancel()
                raise
        for root, first in whole.items():
            found = parts.get(root, 0)
            if found < first.records_matched:
                raise IncompleteResults(
                    f"the parts of query {first.query_id} {first.spec.describe()} matched {found} records "
                    f"but the whole matched {first.records_matched}; refusing to report an undercount"
                )
            if found > first.records_matched:
                log.warning(
                    "the parts of %s matched %d records, the whole %d: events arrived in between",
                    first.spec.describe(),
                    found,
                    first.records_matched,
                )
        totals.records_matched = sum(parts.values())
        done.sort(key=lambda r: (r.spec.region, r.spec.start, tuple(g.identifier for g in r.spec.log_groups)))
        return done, totals

    def _parts_of(self, result: QueryResult, count_field: str) -> tuple[QueryResult | None, list[QuerySpec]]:
        """For a result that hit the row limit: the rows it holds completely (those of the split field's values
        before its last row's) and what to query again; an error when it cannot be made complete."""
        spec = result.spec
        found = counted(result, count_field)
        if result.rows < spec.limit:
            raise IncompleteResults(
                f"query {result.query_id} {spec.describe()} matched {result.records_matched} records "
                f"but its rows account for {found}; refusing to report an undercount"
            )
        if self._split_field:
            kept = _before_last(result, self._split_field)
            if kept is not None:
                last = kept[1]
                left = result.records_matched - counted(kept[0], count_field)
                high = spec.key_range.high if spec.key_range else None
                rest = replace(spec, key_range=KeyRange(self._split_field, last, high), expect_matched=left)
                log.info(
                    "result of %s hit the %d-row limit; %d rows kept, the rest from %s=%r on",
                    spec.describe(),
                    spec.limit,
                    kept[0].rows,
                    self._split_field,
                    last,
                )
                return kept[0], [rest]
        # One value of the split field fills the whole result: slice the time instead, as finely as the density
        # says (rows per record in what came back, times the records matched: the rows the whole would have had).
        estimate = result.rows * result.records_matched / max(1, found)
        wanted = max(2, math.ceil(estimate / (spec.limit * FILL)))
        if spec.end <= spec.start:
            raise IncompleteResults(
                f"query {spec.describe()} returned {spec.limit} rows for a single second and one "
                f"{self._split_field or 'value'}; too many groups to report completely"
            )
        log.info("result of %s hit the %d-row limit; %d parts by time", spec.describe(), spec.limit, wanted)
        return None, [replace(part, expect_matched=None) for part in spec.time_slices(wanted)]


def _before_last(result: QueryResult, split_field: str) -> tuple[QueryResult, str] | None:
    """The rows of `result` whose split value sorts before its last row's, as a result of their own, and that
    last value (where it can go into a query); None when there are none."""
    values = list(result.column(split_field))
    last = values[-1] or ""
    plain = _PLAIN.fullmatch(last)
    if not last or plain is None:
        return None
    keep = [i for i, value in enumerate(values) if (value or "") < last]
    if not keep:
        return None
    subset: dict[str, list[str | None]] = {}
    for name in {name for page in result.pages for name in page.columns}:
        column = list(result.column(name))
        subset[name] = [column[i] for i in keep]
    return replace(result, pages=[Page(len(keep), subset)]), last


def _check_expected(result: QueryResult) -> None:
    """A continuation must match exactly what the part before it left over. Fewer would be records in neither part
    (the service orders the split field differently from us); more, records in both (it ties two values we tell
    apart) or events that arrived in between. Either way the parts cannot be proven to add up: the run fails, and
    a retry starts afresh."""
    expected = result.spec.expect_matched
    if expected is None or result.records_matched == expected:
        return
    raise IncompleteResults(
        f"query {result.query_id} {result.spec.describe()} matched {result.records_matched} records where "
        f"{expected} were left over by the part before it; refusing to report a total that may be wrong"
    )


class _Cancelled(Exception):
    """A query given up because another one failed; never escapes run_all."""


def _stop_quietly(client: LogsClient, query_id: str) -> None:
    try:
        client.stop_query(queryId=query_id)
    except Exception as err:  # already finished, gone, or no time left: the error being raised matters more
        log.info("StopQuery %s: %s", query_id, err)


def check_log_groups(groups: Sequence[LogGroup], logs_for: Callable[[str], LogsClient], default_region: str) -> None:
    """Each log group named by LOG_GROUP_NAMES exists (DescribeLogGroups), checked before the queries are paid for.
    Log-group ARNs of other accounts cannot be described from here; StartQuery checks those."""
    for group in groups:
        region = group.region or default_region
        try:
            found = logs_for(region).describe_log_groups(logGroupNamePrefix=group.name, limit=1).get("logGroups", [])
        except ClientError as err:
            if error_code(err) in ("AccessDeniedException", "AccessDenied"):
                log.warning("cannot check that the log groups exist (%s); StartQuery will", error_code(err))
                return
            raise
        # Names sort ASCII-wise, so the exact name, when it exists, is the first with it as a prefix.
        if found and found[0].get("logGroupName") == group.name:
            continue
        if group.is_arn:
            log.info("log group %s is not in this account's %s; StartQuery checks it", group.identifier, region)
            continue
        raise ConfigError("LOG_GROUP_NAMES", f"{group.identifier!r} does not exist in {region}")
