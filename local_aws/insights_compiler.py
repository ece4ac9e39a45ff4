"""Compile Logs Insights commands into a pipeline of closures: per-event steps (fields, filter, parse) and barriers
(stats, sort, limit, dedup). Pure; `insights_engine` runs the pipeline over events."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

from . import insights_aggregates as aggregates
from .insights_parser import (
    COMPARISONS,
    AggRef,
    Binary,
    Call,
    FieldRef,
    InList,
    Like,
    ListLit,
    Lit,
    MalformedQueryError,
    Node,
    Parser,
    Period,
    RegexLit,
    Star,
    Token,
    Unary,
    UnsupportedQueryError,
    tokenize,
)
from .insights_values import EPOCH, Timestamp, to_number, to_text

# `limit` inside the query text: "If you omit limit, the query defaults to returning up to 10,000 log events. You
# can specify a limit value of up to 100,000." (current limit-command docs)
QUERY_LIMIT_COMMAND_MAX = 100_000
_COMMANDS = {"fields", "filter", "stats", "sort", "limit", "parse", "display", "dedup"}
_UNSUPPORTED_COMMANDS = {
    "unnest", "expand", "lookup", "join", "pattern", "diff", "anomaly", "unmask", "filterindex", "source",
    "fieldsummary", "head", "tail",
}  # fmt: skip


Getter = Callable[[Any], Any]
_AGGREGATES = {"sum", "count", "count_distinct", "min", "max", "avg", "stddev", "pct", "earliest", "latest"}


def _eq(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return False
    if type(a) is str and type(b) is str:
        return a == b
    na, nb = to_number(a), to_number(b)
    if na is not None and nb is not None:
        return na == nb
    return to_text(a) == to_text(b)


def _order(a: Any, b: Any) -> int | None:
    if a is None or b is None:
        return None
    na, nb = to_number(a), to_number(b)
    if na is not None and nb is not None:
        return (na > nb) - (na < nb)
    ta, tb = to_text(a), to_text(b)
    return (ta > tb) - (ta < tb)


def _comparison(op: str) -> Callable[[Any, Any], bool]:
    # Every comparison with a missing field is false, `!=` included (the docs do not say; SQL-like three-valued
    # logic is the least surprising reading).
    if op == "=":
        return _eq
    if op == "!=":
        return lambda a, b: a is not None and b is not None and not _eq(a, b)
    tests: dict[str, Callable[[int], bool]] = {
        "<": lambda c: c < 0,
        "<=": lambda c: c <= 0,
        ">": lambda c: c > 0,
        ">=": lambda c: c >= 0,
    }
    test = tests[op]

    def compare(a: Any, b: Any) -> bool:
        result = _order(a, b)
        return result is not None and test(result)

    return compare


def _arithmetic(op: str) -> Callable[[Any, Any], Any]:
    def apply(a: Any, b: Any) -> Any:
        na, nb = to_number(a), to_number(b)
        if na is None or nb is None:
            return None
        if op == "+":
            return na + nb
        if op == "-":
            return na - nb
        if op == "*":
            return na * nb
        if op == "^":
            try:
                return na**nb
            except (OverflowError, ZeroDivisionError):
                return None
        if nb == 0:
            return None
        return na / nb if op == "/" else na % nb

    return apply


def _truthy(value: Any) -> bool:
    if value is None:
        return False
    if type(value) is bool:
        return value
    number = to_number(value)
    return number != 0 if number is not None else value != ""


def _floor_time(ms: int, amount: float, unit: int | str) -> int:
    """bin()/datefloor(): fixed units are aligned to the epoch (so days to UTC midnight); months, quarters and
    years to the UTC calendar."""
    if isinstance(unit, int):
        size = max(1, int(amount * unit))
        return ms - ms % size
    moment = EPOCH + timedelta(milliseconds=ms)
    step = max(1, int(amount)) * (3 if unit == "quarter" else 12 if unit == "year" else 1)
    months = moment.year * 12 + moment.month - 1
    months -= months % step
    year, month = divmod(months, 12)
    return int((datetime(year, month + 1, 1, tzinfo=UTC) - EPOCH).total_seconds() * 1000)


def _ceil_time(ms: int, amount: float, unit: int | str) -> int:
    floor = _floor_time(ms, amount, unit)
    if floor == ms:
        return ms
    if isinstance(unit, int):
        return floor + max(1, int(amount * unit))
    step = max(1, int(amount)) * (3 if unit == "quarter" else 12 if unit == "year" else 1)
    moment = EPOCH + timedelta(milliseconds=floor)
    year, month = divmod(moment.year * 12 + moment.month - 1 + step, 12)
    return int((datetime(year, month + 1, 1, tzinfo=UTC) - EPOCH).total_seconds() * 1000)


def _text_fn(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A string function: its first argument as displayed text; a missing argument gives a missing result."""

    def apply(*args: Any) -> Any:
        if any(a is None for a in args):
            return None
        return fn(to_text(args[0]), *args[1:])

    return apply


def _substr(s: str, start: Any, length: Any = None) -> Any:
    begin = to_number(start)
    if begin is None:
        return None
    if length is None:
        return s[int(begin) :]
    size = to_number(length)
    return None if size is None else s[int(begin) : int(begin) + int(size)]


def _trim(method: str) -> Callable[..., str]:
    def apply(s: str, chars: Any = None) -> str:
        return getattr(s, method)(None if chars is None else to_text(chars))

    return apply


def _numeric(fn: Callable[[float], Any]) -> Callable[[Any], Any]:
    def apply(value: Any) -> Any:
        number = to_number(value)
        if number is None:
            return None
        try:
            return fn(number)
        except (ValueError, OverflowError):
            return None

    return apply


def _millis(value: Any) -> Any:
    number = to_number(value)
    return None if number is None else int(number)


# name -> (min args, max args or None, implementation over evaluated values)
_SCALAR_FUNCTIONS: dict[str, tuple[int, int | None, Callable[..., Any]]] = {
    "concat": (1, None, lambda *args: "".join(to_text(a) for a in args if a is not None)),
    "strlen": (1, 1, _text_fn(len)),
    "tolower": (1, 1, _text_fn(str.lower)),
    "toupper": (1, 1, _text_fn(str.upper)),
    "trim": (1, 2, _text_fn(_trim("strip"))),
    "ltrim": (1, 2, _text_fn(_trim("lstrip"))),
    "rtrim": (1, 2, _text_fn(_trim("rstrip"))),
    "substr": (2, 3, _text_fn(_substr)),
    "replace": (3, 3, _text_fn(lambda s, old, new: s.replace(to_text(old), to_text(new)))),
    "strcontains": (2, 2, _text_fn(lambda s, sub: 1 if to_text(sub) in s else 0)),
    "isempty": (1, 1, lambda v: v is None or to_text(v) == ""),
    "isblank": (1, 1, lambda v: v is None or to_text(v).strip() == ""),
    "abs": (1, 1, _numeric(abs)),
    "floor": (1, 1, _numeric(math.floor)),
    "ceil": (1, 1, _numeric(math.ceil)),
    "sqrt": (1, 1, _numeric(math.sqrt)),
    "log": (1, 1, _numeric(math.log)),
    "tomillis": (1, 1, _millis),
    "frommillis": (1, 1, lambda v: None if (ms := _millis(v)) is None else Timestamp(ms)),
}


class _Compiler:
    """Turns expression trees into closures `record -> value`."""

    def __init__(self, parser: Parser, fields: set[str]):
        self.parser = parser
        self.fields = fields  # every field name the query reads, to know what to extract from JSON

    def fail(
        self, node: Node, message: str, error: type[MalformedQueryError] = MalformedQueryError
    ) -> MalformedQueryError:
        return error(message, node.start, node.end)

    def compile(self, node: Node) -> Getter:
        if isinstance(node, Lit):
            value = node.value
            return lambda rec: value
        if isinstance(node, FieldRef):
            name = node.name
            self.fields.add(name)
            return lambda rec: rec.get(name)
        if isinstance(node, AggRef):
            key = _slot_key(node.slot)
            return lambda rec: rec.get(key)
        if isinstance(node, Unary):
            operand = self.compile(node.operand)
            if node.op == "not":
                return lambda rec: not _truthy(operand(rec))
            return lambda rec: None if (n := to_number(operand(rec))) is None else -n
        if isinstance(node, Binary):
            return self.binary(node)
        if isinstance(node, Like):
            return self.like(node)
        if isinstance(node, InList):
            operand = self.compile(node.operand)
            items = [self.compile(item) for item in node.items]
            negate = node.negate

            def member(rec: Any) -> bool:
                value = operand(rec)
                if value is None:
                    return False
                found = any(_eq(value, item(rec)) for item in items)
                return found != negate

            return member
        if isinstance(node, Call):
            return self.call(node)
        if isinstance(node, RegexLit):
            raise self.fail(node, "a regular expression is only allowed after like, =~ or parse")
        if isinstance(node, Period):
            raise self.fail(node, "a time period is only allowed in bin(), datefloor() or dateceil()")
        if isinstance(node, Star):
            raise self.fail(node, "* is only allowed in count(*)")
        if isinstance(node, ListLit):
            raise self.fail(node, "a list is only allowed after in")
        raise self.fail(node, "unsupported expression")

    def binary(self, node: Binary) -> Getter:
        left, right = self.compile(node.left), self.compile(node.right)
        if node.op == "and":
            return lambda rec: _truthy(left(rec)) and _truthy(right(rec))
        if node.op == "or":
            return lambda rec: _truthy(left(rec)) or _truthy(right(rec))
        apply = _comparison(node.op) if node.op in COMPARISONS else _arithmetic(node.op)
        return lambda rec: apply(left(rec), right(rec))

    def like(self, node: Like) -> Getter:
        operand = self.compile(node.operand)
        negate = node.negate
        if isinstance(node.pattern, RegexLit):
            search = node.pattern.regex.search

            def matches(rec: Any) -> bool:
                value = operand(rec)
                if value is None:
                    return False
                return (search(value if type(value) is str else to_text(value)) is not None) != negate

            return matches
        needle = self.compile(node.pattern)  # `like "substring"`: case-sensitive substring match

        def contains(rec: Any) -> bool:
            value, sub = operand(rec), needle(rec)
            if value is None or sub is None:
                return False
            return (to_text(sub) in to_text(value)) != negate

        return contains

    def call(self, node: Call) -> Getter:
        name = node.name
        if name in _AGGREGATES:
            raise self.fail(node, f"{name}() is an aggregation function; it is only allowed in stats")
        if name == "coalesce":
            options = [self.compile(arg) for arg in self.arity(node, 1, None)]

            def first_present(rec: Any) -> Any:
                for option in options:
                    value = option(rec)
                    if value is not None:
                        return value
                return None

            return first_present
        if name == "ispresent":
            (arg,) = self.arity(node, 1, 1)
            getter = self.compile(arg)
            return lambda rec: getter(rec) is not None
        if name in ("greatest", "least"):
            getters = [self.compile(arg) for arg in self.arity(node, 1, None)]
            pick = max if name == "greatest" else min

            def extreme(rec: Any) -> Any:
                values = [v for v in (g(rec) for g in getters) if to_number(v) is not None]
                return pick(values, key=to_number) if values else None

            return extreme
        if name == "bin":
            (period,) = self.arity(node, 1, 1)
            amount, unit = self.period(period)
            return lambda rec: Timestamp(_floor_time(int(rec.get("@timestamp")), amount, unit))
        if name in ("datefloor", "dateceil"):
            value_node, period = self.arity(node, 2, 2)
            getter = self.compile(value_node)
            amount, unit = self.period(period)
            rounding = _floor_time if name == "datefloor" else _ceil_time

            def round_time(rec: Any) -> Any:
                ms = to_number(getter(rec))
                return None if ms is None else Timestamp(rounding(int(ms), amount, unit))

            return round_time
        if name in _SCALAR_FUNCTIONS:
            low, high, impl = _SCALAR_FUNCTIONS[name]
            getters = [self.compile(arg) for arg in self.arity(node, low, high)]
            return lambda rec: impl(*[g(rec) for g in getters])
        raise self.fail(node, f"unknown function {name}() (or one this test double does not implement)")

    def arity(self, node: Call, low: int, high: int | None) -> list[Node]:
        count = len(node.args)
        if count < low or (high is not None and count > high):
            expected = f"{low}" if low == high else f"{low} to {high}" if high else f"at least {low}"
            raise self.fail(node, f"{node.name}() takes {expected} argument(s), got {count}")
        return node.args

    def period(self, node: Node) -> tuple[float, int | str]:
        if not isinstance(node, Period):
            raise self.fail(node, "a time period such as 5m, 1h or 1d was expected")
        return node.amount, node.unit


def _slot_key(slot: int) -> str:
    return f"\x00agg{slot}"


@dataclass
class _AggSpec:
    make: Callable[[], Any]
    arg: Getter


def _aggregate(compiler: _Compiler, node: Call) -> _AggSpec:
    name, args = node.name, node.args
    for arg in args:
        if _contains_aggregate(arg):
            raise compiler.fail(arg, "aggregation functions cannot be nested")
    if name == "count":
        if not args or isinstance(args[0], Star):
            compiler.arity(node, 0, 1)
            return _AggSpec(aggregates.CountAll, lambda rec: None)
        (arg,) = compiler.arity(node, 1, 1)
        return _AggSpec(aggregates.Count, compiler.compile(arg))
    if name == "pct":
        arg, pct_node = compiler.arity(node, 2, 2)
        if not isinstance(pct_node, Lit) or to_number(pct_node.value) is None:
            raise compiler.fail(pct_node, "pct() needs a number as its second argument")
        p = float(to_number(pct_node.value))  # type: ignore[arg-type]
        return _AggSpec(lambda: aggregates.Percentile(p), compiler.compile(arg))
    (arg,) = compiler.arity(node, 1, 1)
    getter = compiler.compile(arg)
    if name in ("earliest", "latest"):
        sign = -1 if name == "earliest" else 1
        return _AggSpec(lambda: aggregates.ByTime(sign), lambda rec: (int(rec.get("@timestamp") or 0), getter(rec)))
    makers: dict[str, Callable[[], Any]] = {
        "sum": aggregates.Sum,
        "count_distinct": aggregates.CountDistinct,
        "min": lambda: aggregates.Extreme(-1),
        "max": lambda: aggregates.Extreme(1),
        "avg": aggregates.Mean,
        "stddev": lambda: aggregates.Mean(deviation=True),
    }
    return _AggSpec(makers[name], getter)


def _contains_aggregate(node: Node) -> bool:
    if isinstance(node, Call):
        return node.name in _AGGREGATES or any(_contains_aggregate(a) for a in node.args)
    children: list[Node] = []
    if isinstance(node, Unary):
        children = [node.operand]
    elif isinstance(node, Binary):
        children = [node.left, node.right]
    elif isinstance(node, Like):
        children = [node.operand, node.pattern]
    elif isinstance(node, InList):
        children = [node.operand, *node.items]
    return any(_contains_aggregate(c) for c in children)


def _lift_aggregates(compiler: _Compiler, node: Node, specs: list[_AggSpec]) -> Node:
    """Replace each aggregation call by a reference to its accumulator slot (so `sum(a) / count(*)` works)."""
    if isinstance(node, Call) and node.name in _AGGREGATES:
        specs.append(_aggregate(compiler, node))
        return AggRef(node.start, node.end, len(specs) - 1)
    if isinstance(node, Call):
        node.args = [_lift_aggregates(compiler, a, specs) for a in node.args]
    elif isinstance(node, Unary):
        node.operand = _lift_aggregates(compiler, node.operand, specs)
    elif isinstance(node, Binary):
        node.left = _lift_aggregates(compiler, node.left, specs)
        node.right = _lift_aggregates(compiler, node.right, specs)
    return node


class Row:
    """A result row after `stats`: plain named values."""

    __slots__ = ("values",)
    is_event = False

    def __init__(self, values: dict[str, Any]):
        self.values = values

    def get(self, name: str) -> Any:
        return self.values.get(name)

    def set(self, name: str, value: Any) -> None:
        self.values[name] = value


Records = Iterator[Any]
Stage = Callable[[Records], Records]


@dataclass
class CompiledQuery:
    """A parsed query, ready to run over any number of event sets."""

    text: str
    stages: list[tuple[str, Any]]  # ("event", [ops]) | ("barrier", stage)
    projection: list[str]
    aggregated: bool
    parse_names: set[str] = field(default_factory=set)
    fields: frozenset[str] = frozenset()  # names read anywhere in the query


def compile_query(text: str, *, keep_null_groups: bool = True) -> CompiledQuery:
    """Parse and check a query. Raises MalformedQueryError (with character offsets) for invalid queries."""
    if not text.strip():
        raise MalformedQueryError("the query is empty", 0, len(text))
    tokens = tokenize(text)
    commands: list[list[Token]] = [[]]
    for token in tokens:
        if token.kind == "op" and token.text == "|":
            commands.append([])
        else:
            commands[-1].append(token)
    stages: list[tuple[str, Any]] = []
    projection: list[str] | None = None
    aggregated = False
    parse_names: set[str] = set()
    fields: set[str] = set()

    def event_ops() -> list[Callable[[Any], bool]]:
        if not stages or stages[-1][0] != "event":
            stages.append(("event", []))
        return stages[-1][1]

    for command in commands:
        if not command:
            raise MalformedQueryError("an empty command (two pipes in a row, or a pipe at an end)", 0, len(text))
        head = command[0]
        word = head.text.lower()
        if head.kind != "ident" or head.quoted or word not in _COMMANDS:
            if head.kind == "ident" and word in _UNSUPPORTED_COMMANDS:
                raise UnsupportedQueryError(
                    f"the {head.text} command is not implemented by the test double", head.start, head.end
                )
            raise MalformedQueryError(f"unknown command {head.text!r}", head.start, head.end)
        parser = Parser(command[1:], text)
        compiler = _Compiler(parser, fields)
        if parser.done():
            raise MalformedQueryError(f"{word} needs arguments", head.start, head.end)

        if word in ("fields", "display"):
            # both compute their expressions; `fields` adds to the projection, `display` replaces it
            items = parser.item_list()
            assignments = [
                (alias, compiler.compile(node))
                for node, alias in items
                if not (isinstance(node, FieldRef) and node.name == alias)
            ]
            if assignments:
                event_ops().append(_assign_op(assignments))
            names = [alias for _, alias in items]
            projection = _merge(projection or [] if word == "fields" else [], names)
        elif word == "filter":
            predicate = compiler.compile(parser.expression())
            event_ops().append(lambda rec, p=predicate: _truthy(p(rec)))
        elif word == "parse":
            names, op = _parse_command(parser, compiler)
            parse_names.update(names)
            event_ops().append(op)
        elif word == "stats":
            stage, names = _stats_command(parser, compiler, parse_names, keep_null_groups)
            stages.append(("barrier", stage))
            projection, aggregated = names, True
        elif word == "sort":
            stages.append(("barrier", _sort_command(parser, compiler)))
        elif word == "limit":
            count = parser.take()
            if (
                count.kind != "number"
                or not isinstance(count.value, int)
                or not 0 < count.value <= QUERY_LIMIT_COMMAND_MAX
            ):
                raise MalformedQueryError(
                    f"limit needs a whole number from 1 to {QUERY_LIMIT_COMMAND_MAX}", count.start, count.end
                )
            stages.append(("barrier", lambda records, n=count.value: islice(records, n)))
        elif word == "dedup":
            getters = [compiler.compile(node) for node, _ in parser.item_list()]
            stages.append(("barrier", _dedup_stage(getters)))
        if not parser.done():
            token = parser.peek()
            assert token is not None
            raise MalformedQueryError(f"unexpected {token.text!r} at offset {token.start}", token.start, token.end)

    # "filter (duration>2000) is also a valid query, but the results do not show separate fields. Instead, the
    # results show the @timestamp and all log data in the @message field" (query syntax docs)
    projection = projection or ["@timestamp", "@message"]
    fields.update(projection)
    return CompiledQuery(text, stages, projection, aggregated, parse_names, frozenset(fields))


def _merge(names: list[str], more: list[str]) -> list[str]:
    out = list(names)
    for name in more:
        if name not in out:
            out.append(name)
    return out


def _assign_op(assignments: list[tuple[str, Getter]]) -> Callable[[Any], bool]:
    def assign(rec: Any) -> bool:
        for name, getter in assignments:
            rec.set(name, getter(rec))
        return True

    return assign


def _parse_command(parser: Parser, compiler: _Compiler) -> tuple[list[str], Callable[[Any], bool]]:
    """`parse [field] /regex with (?<name>...)/` or `parse [field] "glob * with * stars" as a, b`. The first match
    counts; "If a log event doesn't match the specified pattern, you still see it in the results, but without the
    extracted fields." The field defaults to @message."""
    source: Getter = lambda rec: rec.get("@message")  # noqa: E731
    token = parser.peek()
    if token is not None and token.kind not in ("regex", "string"):
        source = compiler.compile(parser.primary())
    pattern = parser.take()
    if pattern.kind == "regex":
        regex: re.Pattern[str] = pattern.value
        names = list(regex.groupindex)
        if not names:
            raise MalformedQueryError(
                "parse with a regular expression needs named groups such as (?<name>...)", pattern.start, pattern.end
            )
    elif pattern.kind == "string":
        pieces = pattern.value.split("*")
        if len(pieces) < 2:
            raise MalformedQueryError("a parse glob needs at least one *", pattern.start, pattern.end)
        if not parser.at_word("as"):
            raise MalformedQueryError("a parse glob needs `as` and one name per *", pattern.start, pattern.end)
        parser.take()
        names = [parser.name()]
        while parser.at_op(","):
            parser.take()
            names.append(parser.name())
        if len(names) != len(pieces) - 1:
            raise MalformedQueryError(
                f"the glob has {len(pieces) - 1} * but {len(names)} names", pattern.start, pattern.end
            )
        # Each * is lazy except the last, which takes the rest of the text.
        body = "".join(
            re.escape(piece) + ("(.*?)" if i < len(pieces) - 2 else "(.*)") for i, piece in enumerate(pieces[:-1])
        )
        regex = re.compile(body + re.escape(pieces[-1]), re.DOTALL)
    else:
        raise MalformedQueryError('parse needs a "glob" or a /regular expression/', pattern.start, pattern.end)
    named = bool(regex.groupindex)

    def extract(rec: Any) -> bool:
        value = source(rec)
        match = None if value is None else regex.search(value if type(value) is str else to_text(value))
        if match is None:
            for name in names:
                rec.set(name, None)
        elif named:
            for name, found in match.groupdict().items():
                rec.set(name, found)
        else:
            for name, found in zip(names, match.groups(), strict=True):
                rec.set(name, found)
        return True

    return names, extract


def _stats_command(
    parser: Parser, compiler: _Compiler, parse_names: set[str], keep_null_groups: bool
) -> tuple[Stage, list[str]]:
    items = parser.item_list(stop_words=("by",))
    by: list[tuple[Node, str]] = []
    if parser.at_word("by"):
        parser.take()
        by = parser.item_list()
    for node, alias in items + by:
        # FACTS §2: "A name made by parse cannot be reused as a stats alias."
        if alias in parse_names and not (isinstance(node, FieldRef) and node.name == alias):
            raise MalformedQueryError(
                f"{alias!r} is already a field made by parse; choose another stats alias", node.start, node.end
            )
    for node, _ in by:
        if _contains_aggregate(node):
            raise compiler.fail(node, "stats ... by cannot group by an aggregation")
    by_getters = [compiler.compile(node) for node, _ in by]
    by_names = [alias for _, alias in by]
    specs: list[_AggSpec] = []
    outputs: list[tuple[str, Getter]] = []
    for node, alias in items:
        lifted = _lift_aggregates(compiler, node, specs)
        outputs.append((alias, compiler.compile(lifted)))
    makers = [spec.make for spec in specs]
    args = [spec.arg for spec in specs]
    slot_keys = [_slot_key(i) for i in range(len(specs))]

    def run(records: Records) -> Records:
        groups: dict[tuple[Any, ...], list[Any]] = {}
        for rec in records:
            key = tuple(getter(rec) for getter in by_getters)
            # Events whose `by` value is missing: no AWS document says. Kept by default as their own group with
            # the field left out of the row (what the console shows as an empty cell), so the counts still add up
            # to recordsMatched; keep_null_groups=False models dropping them instead.
            if not keep_null_groups and any(part is None for part in key):
                continue
            states = groups.get(key)
            if states is None:
                states = groups[key] = [make() for make in makers]
            for state, arg in zip(states, args, strict=True):
                state.add(arg(rec))
        for key, states in groups.items():
            values: dict[str, Any] = dict(zip(by_names, key, strict=True))
            for slot_key, state in zip(slot_keys, states, strict=True):
                values[slot_key] = state.result()
            row = Row(values)
            for alias, getter in outputs:
                values[alias] = getter(row)
            for slot_key in slot_keys:
                del values[slot_key]
            yield row

    return run, _merge(by_names, [alias for alias, _ in outputs])


def _sort_command(parser: Parser, compiler: _Compiler) -> Stage:
    keys: list[tuple[Getter, bool]] = []
    while True:
        getter = compiler.compile(parser.expression())
        descending = False
        if parser.at_word("asc", "desc"):
            descending = parser.take().text.lower() == "desc"
        keys.append((getter, descending))
        if not parser.at_op(","):
            break
        parser.take()

    def run(records: Records) -> Records:
        rows = list(records)
        # Stable sorts from the last key to the first; missing values go last in either direction.
        for getter, descending in reversed(keys):
            rows.sort(key=lambda rec, g=getter, d=descending: _sort_key(g(rec), d), reverse=descending)
        return iter(rows)

    return run


def _sort_key(value: Any, descending: bool) -> tuple[int, Any]:
    if value is None:
        return (-1, 0) if descending else (3, 0)
    number = to_number(value)
    if number is not None:
        return (0, number)
    return (1, to_text(value))


def _dedup_stage(getters: list[Getter]) -> Stage:
    def run(records: Records) -> Records:
        seen: set[tuple[str | None, ...]] = set()
        for rec in records:
            key = tuple(None if (v := g(rec)) is None else to_text(v) for g in getters)
            if key not in seen:
                seen.add(key)
                yield rec

    return run
