"""The Logs Insights query engine, in process: compile a query once, run it over log events (pure: no AWS, no clock).

This module holds events, JSON field discovery (with the 200-field limit) and execution; the language itself is in
`insights_parser` and `insights_compiler`, values in `insights_values`, the service around it in `insights.py`.
Semantics follow FACTS §2 and the AWS documentation quoted where it bites; where AWS is silent the choice is
stated in a comment so it can be changed in one place.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from .insights_compiler import CompiledQuery, Records, compile_query
from .insights_parser import MalformedQueryError, UnsupportedQueryError
from .insights_values import Timestamp, format_value

__all__ = [
    "DEFAULT_FIELD_LIMIT",
    "CompiledQuery",
    "Event",
    "MalformedQueryError",
    "QueryOutput",
    "Timestamp",
    "UnsupportedQueryError",
    "compile_query",
    "execute_query",
    "format_value",
    "run_compiled",
]

# "CloudWatch Logs Insights can extract a maximum of 200 log event fields from a JSON log" (discovered-fields
# docs; older versions of the page said 100). Leaves are counted in document order; nested keys join with dots and
# array elements by index (`requestParameters.instancesSet.items.0.instanceId`).
DEFAULT_FIELD_LIMIT = 200
DEFAULT_ACCOUNT_ID = "123456789012"  # moto's default account, for events that do not say theirs


class Event(NamedTuple):
    """One stored log event. `timestamp` and `ingestion_time` are epoch milliseconds."""

    timestamp: int
    message: str
    log_group: str
    log_stream: str = ""
    ingestion_time: int | None = None
    account_id: str = DEFAULT_ACCOUNT_ID


@dataclass
class QueryOutput:
    """Rows in GetQueryResults' shape (lists of {"field", "value"}, every value a string) and the statistics."""

    rows: list[list[dict[str, str]]]
    records_matched: int
    records_scanned: int
    bytes_scanned: int


_UNPARSED = object()
_MISSING = object()


class _Extraction(NamedTuple):
    """What a query reads from JSON events: the field limit, the names it uses and every dotted prefix of them."""

    limit: int
    wanted: frozenset[str]
    prefixes: frozenset[str]


def _extraction(compiled: CompiledQuery, field_limit: int) -> _Extraction:
    """The JSON fields a query reads ("@@x" is the discovered field "@x") and the dotted prefixes leading to them."""
    wanted = {name[1:] if name[:2] == "@@" else name for name in compiled.fields if name[:1] != "@" or name[:2] == "@@"}
    prefixes = {name[:i] for name in wanted for i, char in enumerate(name) if char == "."}
    return _Extraction(field_limit, frozenset(wanted), frozenset(prefixes))


class _EventRecord:
    """One event flowing through the per-event commands; JSON is parsed at most once, on first use."""

    __slots__ = ("event", "seq", "vars", "_doc", "_extracted", "_plan")
    is_event = True

    def __init__(self, event: Event, seq: int, plan: _Extraction):
        self.event = event
        self.seq = seq
        self.vars: dict[str, Any] = {}  # names set by parse/fields; they shadow discovered fields
        self._doc: Any = _UNPARSED
        self._extracted: dict[str, Any] | None = None
        self._plan = plan

    def set(self, name: str, value: Any) -> None:
        self.vars[name] = value

    def get(self, name: str) -> Any:
        vars_ = self.vars
        if name in vars_:
            return vars_[name]
        if name[:1] == "@":
            system = _SYSTEM_GETTERS.get(name)
            if system is not None:
                return system(self.event)
            # "If the name of a discovered log field starts with @, Logs Insights displays it with an additional @"
            return self._discovered(name[1:]) if name[:2] == "@@" else None
        return self._discovered(name)

    @property
    def ptr(self) -> str:
        raw = f"{self.event.account_id}:{self.event.log_group}:{self.event.log_stream}:{self.seq}"
        return base64.urlsafe_b64encode(raw.encode()).decode()

    def _discovered(self, name: str) -> Any:
        doc = self._doc
        if doc is _UNPARSED:
            message = self.event.message
            doc = self._doc = _parse_json_object(message)
            if doc is not None and _leaf_upper_bound(message) > self._plan.limit:
                self._extracted = _extract_within_limit(doc, self._plan)
        if doc is None:
            return None
        if self._extracted is not None:
            return self._extracted.get(name)
        # The usual case first: every dot separates keys. Keys that contain dots fall back to the full search.
        node: Any = doc
        for part in name.split("."):
            if type(node) is dict:
                node = node.get(part, _MISSING)
            elif type(node) is list and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                node = _MISSING
            if node is _MISSING:
                break
        if node is _MISSING or not _is_leaf(node):
            node = _resolve(doc, name)
        return None if node is _MISSING else node


_SYSTEM_GETTERS: dict[str, Callable[[Event], Any]] = {
    "@timestamp": lambda e: Timestamp(e.timestamp),
    "@message": lambda e: e.message,
    # "@log is a log group identifier in the form of account-id:log-group-name"
    "@log": lambda e: f"{e.account_id}:{e.log_group}",
    "@logStream": lambda e: e.log_stream,
    "@ingestionTime": lambda e: None if e.ingestion_time is None else Timestamp(e.ingestion_time),
}


def _parse_json_object(message: str) -> dict[str, Any] | None:
    if message[:1] != "{" and message.lstrip()[:1] != "{":
        return None  # non-JSON messages have only the @ fields
    try:
        doc = json.loads(message)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _leaf_upper_bound(message: str) -> int:
    # Every value inside a container other than its first is preceded by a comma, so the number of leaves is at
    # most commas + containers. When that bound is within the field limit no leaf can be cut off, and fields are
    # looked up directly instead of flattening the whole document (the common, cheap case).
    return message.count(",") + message.count("{") + message.count("[")


def _is_leaf(value: Any) -> bool:
    return value is not None and not isinstance(value, dict | list)


def _resolve(node: Any, name: str) -> Any:
    """The leaf at dotted `name` (keys may themselves contain dots), or _MISSING. JSON null is not a field."""
    if isinstance(node, dict):
        value = node.get(name, _MISSING)
        if value is not _MISSING and _is_leaf(value):
            return value
        dot = name.find(".")
        while dot != -1:
            child = node.get(name[:dot], _MISSING)
            if isinstance(child, dict | list):
                found = _resolve(child, name[dot + 1 :])
                if found is not _MISSING:
                    return found
            dot = name.find(".", dot + 1)
        return _MISSING
    if isinstance(node, list):
        head, _, rest = name.partition(".")
        if head.isdigit() and int(head) < len(node):
            child = node[int(head)]
            if not rest:
                return child if _is_leaf(child) else _MISSING
            return _resolve(child, rest)
    return _MISSING


def _count_leaves(node: dict[str, Any] | list[Any], budget: int) -> int:
    """Leaves under `node`, counting no further than `budget` (order does not matter for a capped count)."""
    count = 0
    stack = [node]
    while stack:
        current = stack.pop()
        for value in current.values() if type(current) is dict else current:
            kind = type(value)
            if kind is dict or kind is list:
                if value:
                    stack.append(value)
            elif value is not None:
                count += 1
                if count >= budget:
                    return count
    return count


def _extract_within_limit(doc: dict[str, Any], plan: _Extraction) -> dict[str, Any]:
    """The wanted fields among the first `plan.limit` leaves in document order (the 200-field trap, FACTS §2).

    Subtrees that hold no wanted field are skipped by their (capped) leaf count instead of being flattened."""
    out: dict[str, Any] = {}
    budget = plan.limit
    wanted, prefixes = plan.wanted, plan.prefixes
    stack: list[tuple[Iterator[tuple[str, Any]], str]] = [(iter(doc.items()), "")]
    while stack:
        items, prefix = stack[-1]
        for key, value in items:
            name = f"{prefix}.{key}" if prefix else key
            kind = type(value)
            if kind is dict or kind is list:
                if not value:
                    continue
                if name in prefixes:
                    children = value.items() if kind is dict else ((str(i), v) for i, v in enumerate(value))
                    stack.append((iter(children), name))
                    break
                budget -= _count_leaves(value, budget)
            elif value is not None:
                if name in wanted:
                    out.setdefault(name, value)
                budget -= 1
            if budget <= 0:
                return out
        else:
            stack.pop()
    return out


def run_compiled(
    compiled: CompiledQuery, events: Iterable[Event], *, field_limit: int = DEFAULT_FIELD_LIMIT
) -> QueryOutput:
    """Execute an already-compiled query. recordsMatched counts the events that pass every per-event command
    before the first stats/sort/limit/dedup (so, for the product's query, the sum of count(*) over all rows)."""
    scanned = [0, 0]
    plan = _extraction(compiled, field_limit)

    def records() -> Records:
        for seq, event in enumerate(events):
            scanned[0] += 1
            scanned[1] += len(event.message.encode("utf-8"))
            yield _EventRecord(event, seq, plan)

    matched = [0]

    def count(stream: Records) -> Records:
        for rec in stream:
            matched[0] += 1
            yield rec

    stream: Records = records()
    counted = False
    for kind, stage in compiled.stages:
        if kind == "event":
            stream = _run_ops(stream, stage)
        else:
            if not counted:
                stream, counted = count(stream), True
            stream = stage(stream)
    if not counted:
        stream = count(stream)

    rows: list[list[dict[str, str]]] = []
    projection = compiled.projection
    for rec in stream:
        row = []
        for name in projection:
            value = rec.get(name)
            if value is not None:  # a missing value is left out of the row, not sent as ""
                row.append({"field": name, "value": format_value(value)})
        if rec.is_event:
            row.append({"field": "@ptr", "value": rec.ptr})
        rows.append(row)
    return QueryOutput(rows, matched[0], scanned[0], scanned[1])


def _run_ops(stream: Records, ops: list[Callable[[Any], bool]]) -> Records:
    if len(ops) == 1:
        (op,) = ops
        for rec in stream:
            if op(rec):
                yield rec
        return
    for rec in stream:
        for op in ops:
            if not op(rec):
                break
        else:
            yield rec


def execute_query(
    query: str,
    events: Iterable[Event],
    *,
    field_limit: int = DEFAULT_FIELD_LIMIT,
    keep_null_groups: bool = True,
) -> QueryOutput:
    """Compile `query` and run it over `events` (in the order given). Raises MalformedQueryError."""
    return run_compiled(compile_query(query, keep_null_groups=keep_null_groups), events, field_limit=field_limit)
