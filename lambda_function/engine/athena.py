"""The Athena engine: StartQueryExecution -> poll GetQueryExecution -> every page of GetQueryResults.

The SQL is sent as `dialect.to_athena` makes it (the relation names replaced by their Glue tables). Polls back off
(0.5 s doubling to 5 s) and never sleep past the deadline; a query still queued or running then is stopped
(StopQueryExecution, so that it does not go on scanning and billing) and the run gets DeadlineExceeded. A query
that ends FAILED or CANCELLED is an EngineError with Athena's StateChangeReason. StartQueryExecution carries a
ClientRequestToken, so that a retry after a lost answer cannot start the query twice.

With the run's GuardedClient, polls go through a client bounded `within` the deadline (no poll, nor a retry of
one, after it); StopQueryExecution and the result pages use the run's own deadline for calls, as the Logs Insights
runner does.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambda_function.engine import EngineError, QueryAnswer, Relation, UnreadableObjects, dialect
from lambda_function.errors import DeadlineExceeded

log = logging.getLogger(__name__)

RUNNING = frozenset({"QUEUED", "RUNNING"})
# A query that fails on one object says which, e.g. "HIVE_CANNOT_OPEN_SPLIT: Error opening Hive split
# s3://bucket/key.json.gz (offset=0, length=1234): Unexpected end of input stream" (the forms as AWS's
# troubleshooting pages quote them; not checked against a live Athena): that object is named, so that the caller
# can leave it out and ask again.
_OBJECT_ERRORS = ("HIVE_CANNOT_OPEN_SPLIT", "HIVE_CURSOR_ERROR", "HIVE_BAD_DATA")
_OBJECT = re.compile(r"s3a?://[^\s()\[\],;'\"]+")
PAGE_ROWS = 1000  # GetQueryResults' MaxResults at most


class AthenaEngine:
    name = "athena"

    def __init__(
        self,
        athena_client: Any,
        workgroup: str,
        output_location: str | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        first_poll: float = 0.5,
        max_poll: float = 5.0,
    ):
        self.client = athena_client
        self.workgroup = workgroup
        self.output_location = output_location
        self.sleep = sleep
        self.clock = clock
        self.first_poll = first_poll
        self.max_poll = max_poll

    def run(self, sql: str, relations: dict[str, Relation], *, deadline: float) -> QueryAnswer:
        try:
            text = dialect.to_athena(sql, relations)
        except ValueError as err:
            raise EngineError(str(err)) from err
        if self.clock() >= deadline:
            raise DeadlineExceeded("the Athena query was not started: the run reached its deadline")
        params: dict[str, Any] = {
            "QueryString": text,
            "WorkGroup": self.workgroup,
            "ClientRequestToken": str(uuid.uuid4()),
        }
        if self.output_location:
            params["ResultConfiguration"] = {"OutputLocation": self.output_location}
        try:
            query_id = self.client.start_query_execution(**params)["QueryExecutionId"]
        except (ClientError, BotoCoreError) as err:
            raise EngineError(f"Athena did not start the query: {err}") from err
        try:
            execution = self._wait(query_id, deadline)
        except EngineError:
            raise  # it ended FAILED or CANCELLED: nothing to stop
        except DeadlineExceeded:
            self._stop(query_id)
            raise
        except (ClientError, BotoCoreError) as err:
            self._stop(query_id)
            raise EngineError(f"Athena query {query_id} could not be followed: {err}") from err
        columns, rows = self._results(query_id)
        scanned = int(execution.get("Statistics", {}).get("DataScannedInBytes") or 0)
        return QueryAnswer(columns, rows, bytes_scanned=scanned, engine=self.name)

    def _wait(self, query_id: str, deadline: float) -> dict[str, Any]:
        polls = self.client.within(deadline) if hasattr(self.client, "within") else self.client
        delay = self.first_poll
        while True:
            execution = polls.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
            status = execution.get("Status", {})
            state = status.get("State", "")
            if state == "SUCCEEDED":
                return dict(execution)
            if state not in RUNNING:
                reason = status.get("StateChangeReason") or status.get("AthenaError", {}).get("ErrorMessage", "")
                found = _OBJECT.search(reason) if any(code in reason for code in _OBJECT_ERRORS) else None
                if found is not None and state == "FAILED":
                    uri = "s3://" + found.group().split("://", 1)[1].rstrip(".:")
                    scanned = int(execution.get("Statistics", {}).get("DataScannedInBytes") or 0)
                    raise UnreadableObjects(((uri, f"Athena: {reason}"),), scanned)
                raise EngineError(f"Athena query {query_id} ended {state}: {reason or 'no reason given'}")
            left = deadline - self.clock()
            if left <= 0:
                raise DeadlineExceeded(f"Athena query {query_id} was still {state} at the deadline: stopped")
            self.sleep(min(delay, left))
            delay = min(delay * 2, self.max_poll)
            if self.clock() >= deadline:
                raise DeadlineExceeded(f"Athena query {query_id} was still {state} at the deadline: stopped")

    def _stop(self, query_id: str) -> None:
        try:
            self.client.stop_query_execution(QueryExecutionId=query_id)
        except (ClientError, BotoCoreError, DeadlineExceeded) as err:
            log.warning("Athena query %s could not be stopped: %s", query_id, err)

    def _results(self, query_id: str) -> tuple[tuple[str, ...], tuple[tuple[str | None, ...], ...]]:
        """Every page; the header row Athena puts first on the first page is dropped."""
        columns: tuple[str, ...] | None = None
        rows: list[tuple[str | None, ...]] = []
        params: dict[str, Any] = {"QueryExecutionId": query_id, "MaxResults": PAGE_ROWS}
        first = True
        while True:
            try:
                page = self.client.get_query_results(**params)
            except (ClientError, BotoCoreError) as err:
                raise EngineError(f"the results of Athena query {query_id} could not be read: {err}") from err
            result = page.get("ResultSet", {})
            values = [tuple(d.get("VarCharValue") for d in row.get("Data", [])) for row in result.get("Rows", [])]
            if first:
                info = result.get("ResultSetMetadata", {}).get("ColumnInfo", [])
                columns = tuple(dialect.label(c.get("Label") or c["Name"]) for c in info)
                header = values[0] if values else None
                if header is not None and (not columns or tuple(dialect.label(v or "") for v in header) == columns):
                    columns = columns or tuple(dialect.label(v or "") for v in header)
                    values = values[1:]
                first = False
            rows += values
            token = page.get("NextToken")
            if not token:
                return columns or (), tuple(rows)
            params["NextToken"] = token
