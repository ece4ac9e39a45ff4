"""SQL over S3 objects: the seam below the bill (CUR 2.0) and, next, the S3-delivered invocation logs. One SQL text
per query, written for Athena (Trino); an engine runs it over a named relation and answers rows of text, as Athena
does. `AthenaEngine` runs in AWS; `EmbeddedEngine` (DuckDB) runs the same text locally and in tests over the same
objects read through the S3 API. Dialect differences are handled in one place (`dialect.py`).

Contract (kept by both engines):
- `run(sql, relations, deadline=...)`: `sql` names each relation by its key in `relations` (e.g. `FROM cur`);
  a `Relation` says where its objects are (an S3 prefix of Parquet or gzip JSON-lines objects, hive partitions in
  the key such as `BILLING_PERIOD=2026-11/`) and, for Athena, which Glue table holds them.
- Every value comes back as text (None for NULL), as Athena's GetQueryResults gives it; callers type them.
- `bytes_scanned` is what the engine read (Athena's statistics; the embedded engine: the bytes of the objects it
  downloaded).
- A failure is `EngineError` (with the reason) and a deadline passed `DeadlineExceeded`; neither is ever a partial
  result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from lambda_function.errors import ReportError


class EngineError(ReportError):
    """The engine could not answer: the query failed, the objects cannot be read, or they are too large for it."""


@dataclass(frozen=True)
class Relation:
    """A table the SQL names: its objects under `s3://bucket/prefix` (Parquet, or gzip JSON lines), hive-style
    partitions in their keys, and the Glue table Athena reads them through."""

    bucket: str
    prefix: str
    format: str = "parquet"  # or "json"
    glue_table: str = ""  # "database.table", for Athena
    # (name, value) the query needs, e.g. (("billing_period", "2026-11"),); a name given twice reads either value.
    # Only the embedded engine uses them (Athena prunes partitions from the query's WHERE).
    partitions: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class QueryAnswer:
    columns: tuple[str, ...]
    rows: tuple[tuple[str | None, ...], ...]
    bytes_scanned: int = 0
    engine: str = ""  # "athena" | "embedded"


class SqlEngine(Protocol):
    name: str

    def run(self, sql: str, relations: dict[str, Relation], *, deadline: float) -> QueryAnswer: ...


__all__ = ["EngineError", "QueryAnswer", "Relation", "SqlEngine"]
