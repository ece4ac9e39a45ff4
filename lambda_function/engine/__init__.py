"""SQL over S3 objects: the seam below the bill (CUR 2.0) and, next, the S3-delivered invocation logs. One SQL text
per query, written for Athena (Trino); an engine runs it over a named relation and answers rows of text, as Athena
does. `AthenaEngine` runs in AWS; `EmbeddedEngine` (DuckDB) runs the same text locally and in tests over the same
objects read through the S3 API. Dialect differences are handled in one place (`dialect.py`).

Contract (kept by both engines):
- `run(sql, relations, deadline=...)`: `sql` names each relation by its key in `relations` (e.g. `FROM cur`);
  a `Relation` says where its objects are (an S3 prefix of Parquet objects with hive partitions in the key such as
  `BILLING_PERIOD=2026-11/`, or of text lines, gzip or plain, in folders a `layout` names such as
  `2026/11/20/07/`) and, for Athena, which Glue table holds them.
- A relation of `lines` has one column, `line` (each line of each object, as text), the partition columns, and
  `"$path"` (the object's `s3://` URI, as Athena's pseudo-column gives it), for every format.
- Every value comes back as text (None for NULL), as Athena's GetQueryResults gives it; callers type them.
- `bytes_scanned` is what the engine read (Athena's statistics; the embedded engine: the bytes of the objects it
  downloaded).
- A failure is `EngineError` (with the reason) and a deadline passed `DeadlineExceeded`; neither is ever a partial
  result. Objects that cannot be read (a gzip cut short, bytes that are not gzip) fail the query with
  `UnreadableObjects` naming them, so that a caller can name them and ask again with them in `Relation.exclude`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from lambda_function.errors import ReportError


class EngineError(ReportError):
    """The engine could not answer: the query failed, the objects cannot be read, or they are too large for it."""


class UnreadableObjects(EngineError):
    """Objects of a relation that cannot be read: (s3 URI, why) each. The embedded engine names every one it found;
    Athena names the one its query stopped at."""

    def __init__(self, objects: tuple[tuple[str, str], ...], bytes_scanned: int = 0):
        self.objects = objects
        self.bytes_scanned = bytes_scanned  # what the failed query read (and Athena bills) all the same
        names = "; ".join(f"{uri} ({why})" for uri, why in objects[:5])
        more = f" and {len(objects) - 5} more" if len(objects) > 5 else ""
        super().__init__(f"objects that cannot be read: {names}{more}")


@dataclass(frozen=True)
class Relation:
    """A table the SQL names: its objects under `s3://bucket/prefix` (Parquet, gzip JSON, or text lines), its
    partitions in their keys (hive-style, or as `layout` says), and the Glue table Athena reads them through."""

    bucket: str
    prefix: str
    format: str = "parquet"  # or "json", or "lines" (one column, `line`: objects ending .gz are gunzipped)
    glue_table: str = ""  # "database.table", for Athena
    # (name, value) the query needs, e.g. (("billing_period", "2026-11"),); a name given twice reads either value.
    # Only the embedded engine uses them (Athena prunes partitions from the query's WHERE).
    partitions: tuple[tuple[str, str], ...] = ()
    # Where a partition's objects are below the prefix when the keys are not hive-style: "{log_hour}/" puts
    # log_hour=2026/11/20/07 under `prefix/2026/11/20/07/` (as Athena's storage.location.template does). Only the
    # objects directly in that folder are read, not those in folders below it.
    layout: str = ""
    # Objects (s3:// URIs) left out; the SQL must leave them out too (`"$path" NOT IN (...)`), for Athena.
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class QueryAnswer:
    columns: tuple[str, ...]
    rows: tuple[tuple[str | None, ...], ...]
    bytes_scanned: int = 0
    engine: str = ""  # "athena" | "embedded"


class SqlEngine(Protocol):
    name: str

    def run(self, sql: str, relations: dict[str, Relation], *, deadline: float) -> QueryAnswer: ...


__all__ = ["EngineError", "QueryAnswer", "Relation", "SqlEngine", "UnreadableObjects"]
