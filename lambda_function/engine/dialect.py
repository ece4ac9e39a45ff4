"""The one place where Athena (Trino) and DuckDB differ. Queries are written for Athena; `to_athena` and `to_duckdb`
turn that one text into what each engine runs, and `as_text` renders the embedded engine's values as Athena's
GetQueryResults would.

The differences handled here:
- relation names: the SQL says `FROM cur`; Athena reads the Glue table (`FROM "database"."table" AS cur`), DuckDB a
  view named `cur` (made by the embedded engine), so its text keeps the name;
- map access: write `element_at(product, 'product_name')` as Trino does (the value, NULL for a missing key).
  DuckDB's `element_at` answers a list (`['value']`, `[]`) in some versions and the value in others: the DuckDB text
  calls `trino_element_at`, a macro `install_duckdb` defines for the version at hand, which answers the value;
- JSON and regular expressions (the invocation-log query): `try(json_parse(text))` is Trino's "the JSON, or NULL
  when the text is not JSON"; `json_extract_scalar(json, path)` answers a scalar's text and NULL for an object or
  an array (DuckDB's `json_extract_string` answers their JSON text); `regexp_extract(text, pattern, group)` answers
  NULL where the pattern does not match (DuckDB: ''); `regexp_like` is DuckDB's `regexp_matches` (both: the
  pattern found anywhere). The DuckDB text calls macros `install_duckdb` defines for the first three. A JSON path
  names a key with other characters as `$.requestMetadata["team.name"]` (Trino's form), written
  `$.requestMetadata."team.name"` for DuckDB;
- DECIMAL without precision and scale means DECIMAL(38, 0) to Trino and DECIMAL(18, 3) to DuckDB: both
  translations refuse it, so money is always summed as `CAST(... AS DECIMAL(p, s))` (both engines then sum to
  DECIMAL(38, s) and render the same digits);
- DATE and TIMESTAMP literals: Trino wants `TIMESTAMP '2026-11-03 00:00:00'` (a space, no zone: a zone makes it a
  TIMESTAMP WITH TIME ZONE), DuckDB also takes `2026-11-03T00:00:00Z`; both translations refuse any other form;
- values as text: Athena renders timestamps with milliseconds (`2026-11-03 10:00:00.000`), booleans in lower case,
  maps as `{k=v}` and arrays as `[a, b]`; column labels come back in lower case.

Alike in both, relied on by the CUR query: `date(ts)` and `CAST(ts AS DATE)`, `DATE '…'` and `TIMESTAMP '…'`
literals, `LIKE`, `IN`, `COALESCE`, `||`, double-quoted identifiers, hive partition columns by their lower-case names
(the keys say `BILLING_PERIOD=2026-11`, both read the column `billing_period` as the string `2026-11`).
Not translated (write around them): `/` of two integers (Trino truncates, DuckDB answers a double: cast first); the
text of a DOUBLE (Java's rendering in Athena, Python's here: sum money as DECIMAL); date formatting functions
(`date_format` is Trino's, `strftime` DuckDB's).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lambda_function.engine import Relation

_TOKENS = re.compile(
    r"""
    (?P<string>'(?:[^']|'')*')
   |(?P<quoted>"(?:[^"]|"")*")
   |(?P<comment>--[^\n]*|/\*.*?\*/)
   |(?P<word>[A-Za-z_][A-Za-z0-9_$]*)
   |(?P<space>\s+)
   |(?P<other>.)
    """,
    re.X | re.S,
)
# Words after a relation that are not its alias: the relation gets `AS <name>` so that `cur.column` still resolves.
_NOT_ALIAS = frozenset(
    [
        "where",
        "group",
        "order",
        "limit",
        "join",
        "inner",
        "left",
        "right",
        "full",
        "cross",
        "natural",
        "on",
        "using",
        "union",
        "intersect",
        "except",
        "having",
        "window",
        "offset",
        "fetch",
        "tablesample",
    ]
)
ELEMENT_AT = "trino_element_at"
# Trino functions DuckDB has under another name, or with another meaning (then a macro of install_duckdb's).
_RENAMED = {
    "element_at": ELEMENT_AT,
    "json_parse": "trino_json_parse",
    "json_extract_scalar": "trino_json_extract_scalar",
    "regexp_extract": "trino_regexp_extract",
    "regexp_like": "regexp_matches",
}
_BRACKET_KEY = re.compile(r'\["((?:[^"\\]|\\.)*)"\]')
# Literals both engines read alike: Trino wants a space between date and time (DuckDB also takes `T`) and reads a
# trailing zone as a TIMESTAMP WITH TIME ZONE; DuckDB takes other forms Trino refuses.
_LITERALS = {
    "date": re.compile(r"\d{4}-\d{2}-\d{2}"),
    "timestamp": re.compile(r"\d{4}-\d{2}-\d{2}( \d{2}:\d{2}:\d{2}(\.\d{1,3})?)?"),
}
_LITERAL_FORMS = {"date": "'YYYY-MM-DD'", "timestamp": "'YYYY-MM-DD HH:MM:SS[.fff]' (UTC, no zone)"}


def _tokens(sql: str) -> list[tuple[str, str]]:
    return [(m.lastgroup or "other", m.group()) for m in _TOKENS.finditer(sql)]


def _significant(tokens: list[tuple[str, str]], start: int, step: int) -> Iterator[tuple[int, str, str]]:
    i = start
    while 0 <= i < len(tokens):
        kind, text = tokens[i]
        if kind not in ("space", "comment"):
            yield i, kind, text
        i += step


def _next(tokens: list[tuple[str, str]], i: int) -> tuple[str, str]:
    return next(((kind, text) for _, kind, text in _significant(tokens, i + 1, 1)), ("", ""))


def _previous(tokens: list[tuple[str, str]], i: int) -> tuple[str, str]:
    return next(((kind, text) for _, kind, text in _significant(tokens, i - 1, -1)), ("", ""))


def _refuse_what_differs(tokens: list[tuple[str, str]]) -> None:
    """What would run on both engines with different meanings, or on one only: refused in both translations."""
    for i, (kind, text) in enumerate(tokens):
        word = text.lower() if kind == "word" else ""
        if word == "decimal" and _next(tokens, i)[1] != "(":
            raise ValueError("write DECIMAL(precision, scale): a bare DECIMAL is (38, 0) in Athena, (18, 3) in DuckDB")
        if word in _LITERALS:
            after_kind, after = _next(tokens, i)
            if after_kind == "string" and not _LITERALS[word].fullmatch(after[1:-1]):
                raise ValueError(
                    f"write {text.upper()} literals as {_LITERAL_FORMS[word]}: {text} {after} is read differently "
                    "(or refused) by Athena and DuckDB"
                )


def quoted_table(glue_table: str) -> str:
    """ "database.table" as Athena's quoted name: "database"."table"."""
    parts = glue_table.split(".")
    if len(parts) < 2 or not all(parts):
        raise ValueError(f"a Glue table is named database.table, not {glue_table!r}")
    return ".".join('"' + part.replace('"', '""') + '"' for part in parts)


def to_athena(sql: str, relations: Mapping[str, Relation] | None = None) -> str:
    """The text Athena runs: each relation named after FROM or JOIN replaced by its Glue table (keeping the name as
    the alias). Without relations (or with relations that have no Glue table) only the checks apply."""
    tokens = _tokens(sql)
    _refuse_what_differs(tokens)
    tables = {name.lower(): r.glue_table for name, r in (relations or {}).items()}
    out: list[str] = []
    for i, (kind, text) in enumerate(tokens):
        name = text.lower()
        if kind == "word" and name in tables and _previous(tokens, i)[1].lower() in ("from", "join"):
            if not tables[name]:
                raise ValueError(f"the relation {text} has no Glue table for Athena")
            after_kind, after = _next(tokens, i)
            has_alias = after.lower() == "as" or (after_kind in ("word", "quoted") and after.lower() not in _NOT_ALIAS)
            out.append(quoted_table(tables[name]) + ("" if has_alias else f" AS {text}"))
        else:
            out.append(text)
    return "".join(out)


def to_duckdb(sql: str) -> str:
    """The text DuckDB runs (over views named as the relations, with `install_duckdb`'s macros)."""
    tokens = _tokens(sql)
    _refuse_what_differs(tokens)
    out = []
    for i, (kind, text) in enumerate(tokens):
        if kind == "word" and text.lower() in _RENAMED and _next(tokens, i)[1] == "(":
            out.append(_RENAMED[text.lower()])
        elif kind == "string" and text.startswith("'$"):  # a JSON path: ["key"] is ."key" in DuckDB
            out.append(_BRACKET_KEY.sub(lambda m: '."' + m.group(1) + '"', text))
        else:
            out.append(text)
    return "".join(out)


def install_duckdb(connection: Any) -> None:
    """Define `trino_element_at(map, key)` (the value; NULL for a missing key) for this DuckDB's version, and the
    JSON and regular-expression functions as Trino means them."""
    probe = connection.execute("SELECT element_at(MAP(['k'], ['v']), 'k')").fetchone()[0]
    body = "element_at(m, k)[1]" if isinstance(probe, list) else "element_at(m, k)"
    connection.execute(f"CREATE OR REPLACE MACRO {ELEMENT_AT}(m, k) AS {body}")
    connection.execute("CREATE OR REPLACE MACRO trino_json_parse(t) AS CASE WHEN json_valid(t) THEN t::JSON END")
    connection.execute(
        "CREATE OR REPLACE MACRO trino_json_extract_scalar(j, p) AS "
        "CASE WHEN json_type(j, p) IN ('OBJECT', 'ARRAY') THEN NULL ELSE json_extract_string(j, p) END"
    )
    connection.execute(
        "CREATE OR REPLACE MACRO trino_regexp_extract(t, p, g) AS "
        "CASE WHEN regexp_matches(t, p) THEN regexp_extract(t, p, g) END"
    )


def as_text(value: Any) -> str | None:
    """A DuckDB value as Athena's GetQueryResults writes it (VarCharValue; None for NULL)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        zone = ""
        if value.tzinfo is not None:
            value, zone = value.astimezone(dt.UTC).replace(tzinfo=None), " UTC"
        return value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}{zone}"
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_inner(k)}={_inner(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_inner(v) for v in value) + "]"
    if isinstance(value, bytes):
        return value.hex(" ")
    return str(value)


def _inner(value: Any) -> str:
    """A value inside a map or an array: NULL is written `null` there."""
    text = as_text(value)
    return "null" if text is None else text


def label(column: str) -> str:
    """A column label as Athena answers it (lower case)."""
    return column.lower()
