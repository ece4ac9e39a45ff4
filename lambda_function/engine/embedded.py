"""The embedded engine: the Athena SQL run in process by DuckDB over the relation's objects, read through the S3 API.

Why DuckDB rather than pyarrow: DuckDB runs the same SQL text Athena runs (after `dialect.to_duckdb`, a few token
renames), so the tests exercise the production query itself; with pyarrow the query would be a second
implementation in Python that could agree with the tests and not with Athena.

DuckDB is a development dependency (the demo, the CLI, the tests), not shipped in the Lambda zip: the stack uses
Athena. It is imported only when a query runs, and its absence is an EngineError saying so. DuckDB's own network
access (httpfs) is never used: the objects are listed and downloaded with boto3 into a temporary directory (only
the partitions the relation names), and DuckDB reads the files.

Objects of a `lines` relation are gunzipped as they download, in chunks (never a whole object in memory), so that
an object cut short or not gzip at all is found here and named (`UnreadableObjects`, every such object of the
query at once) instead of failing DuckDB's read half-way.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambda_function.engine import EngineError, QueryAnswer, Relation, UnreadableObjects, dialect
from lambda_function.errors import DeadlineExceeded

log = logging.getLogger(__name__)

MAX_BYTES = 512 * 1024**2  # what the embedded engine downloads at most, for all relations of a query
CHUNK_BYTES = 1024**2


def partition_prefixes(relation: Relation) -> list[str]:
    """The key prefixes of the partitions the relation names. With a `layout`, each combination of the values given
    fills it in (`{log_hour}/` and 2026/11/20/07: `prefix/2026/11/20/07/`). Otherwise hive keys are upper case in CUR's paths
    (`BILLING_PERIOD=2026-11/`), the column lower case in the SQL. A name given twice is either value (a local day
    straddling two billing periods reads both); different names nest in the order given."""
    prefix = relation.prefix.strip("/")
    if relation.layout:
        return [prefix + "/" + folder if prefix else folder for folder, _ in _layout_folders(relation)]
    values: dict[str, list[str]] = {}
    for name, value in relation.partitions:
        values.setdefault(name, []).append(value)
    paths = [prefix] if prefix else [""]
    for name, choices in values.items():
        paths = [f"{path}/{name.upper()}={value}".lstrip("/") for path in paths for value in choices]
    return [path + "/" if path else "" for path in paths]


def _layout_folders(relation: Relation) -> list[tuple[str, dict[str, str]]]:
    """Each folder a `layout` relation's partitions name, with the partition values it stands for."""
    values: dict[str, list[str]] = {}
    for name, value in relation.partitions:
        values.setdefault(name, []).append(value)
    combinations: list[dict[str, str]] = [{}]
    for name, choices in values.items():
        combinations = [{**combo, name: value} for combo in combinations for value in choices]
    folders = []
    for combo in combinations:
        try:
            folder = relation.layout.format(**combo)
        except KeyError as err:
            raise EngineError(f"the layout {relation.layout!r} names {err}, which the relation gives no value") from err
        folders.append((folder if folder.endswith("/") else folder + "/", combo))
    return folders


def partition_prefix(relation: Relation) -> str:
    """The one key prefix of a relation that names at most one value per partition."""
    (prefix,) = partition_prefixes(relation)
    return prefix


def _where(relation: Relation) -> str:
    return ", ".join(f"s3://{relation.bucket}/{prefix}" for prefix in partition_prefixes(relation))


def _data_key(key: str) -> bool:
    """Objects Athena reads: not folder markers, nor files whose name starts with `_` or `.` (Hive's convention)."""
    name = key.rsplit("/", 1)[-1]
    return bool(name) and not name.startswith(("_", "."))


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class EmbeddedEngine:
    """SqlEngine over S3 objects with DuckDB. `max_bytes` bounds what one query downloads (the function's memory)."""

    name = "embedded"

    def __init__(self, s3_client: Any, max_bytes: int = MAX_BYTES, clock: Callable[[], float] = time.monotonic):
        self.s3 = s3_client
        self.max_bytes = max_bytes
        self.clock = clock

    def run(self, sql: str, relations: dict[str, Relation], *, deadline: float) -> QueryAnswer:
        duckdb = _duckdb()
        try:
            text = dialect.to_duckdb(sql)
        except ValueError as err:
            raise EngineError(str(err)) from err
        listed = {name: self._list(relation, deadline) for name, relation in relations.items()}
        listed = {
            name: [
                (key, size)
                for key, size in objects
                if f"s3://{relations[name].bucket}/{key}" not in relations[name].exclude
            ]
            for name, objects in listed.items()
        }
        total = sum(size for objects in listed.values() for _, size in objects)
        if total > self.max_bytes:
            where = ", ".join(_where(r) for r in relations.values())
            raise EngineError(
                f"{where} holds {total:,} bytes, too large for the embedded engine (at most {self.max_bytes:,}): "
                "use Athena (LOG_ENGINE=athena for the invocation logs, BILL_ENGINE=athena for the bill)"
            )
        with tempfile.TemporaryDirectory(prefix="engine-") as scratch:
            connection = duckdb.connect(":memory:")
            try:
                downloaded = 0
                unreadable: list[tuple[str, str]] = []
                for name, relation in relations.items():
                    folder = os.path.join(scratch, name)
                    if relation.format == "lines":
                        files, size, bad = self._download_lines(relation, listed[name], folder, deadline)
                        unreadable += bad
                        downloaded += size
                        self._lines_view(connection, name, relation, files)
                        continue
                    paths, size = self._download(relation, listed[name], folder, deadline)
                    downloaded += size
                    self._view(connection, name, relation, paths)
                if unreadable:
                    raise UnreadableObjects(tuple(unreadable), downloaded)
                dialect.install_duckdb(connection)
                left = deadline - self.clock()
                if left <= 0:
                    raise DeadlineExceeded("the embedded query was not started: the run reached its deadline")
                # The query is interrupted when the deadline passes (on the wall clock: DuckDB runs in real time).
                alarm = threading.Timer(left, connection.interrupt) if left < float("inf") else None
                if alarm is not None:
                    alarm.daemon = True
                    alarm.start()
                try:
                    cursor = connection.execute(text)
                    columns = tuple(dialect.label(d[0]) for d in cursor.description or ())
                    rows = tuple(tuple(dialect.as_text(v) for v in row) for row in cursor.fetchall())
                except duckdb.InterruptException as err:
                    raise DeadlineExceeded("the embedded query was still running at the deadline: stopped") from err
                except duckdb.Error as err:
                    raise EngineError(f"the embedded engine could not run the query: {err}") from err
                finally:
                    if alarm is not None:
                        alarm.cancel()
            finally:
                connection.close()
        return QueryAnswer(columns, rows, bytes_scanned=downloaded, engine=self.name)

    def _list(self, relation: Relation, deadline: float) -> list[tuple[str, int]]:
        objects: list[tuple[str, int]] = []
        for prefix in partition_prefixes(relation):
            params: dict[str, Any] = {"Bucket": relation.bucket, "Prefix": prefix}
            if relation.layout:
                params["Delimiter"] = "/"  # the folder's own objects, not those of folders below it
            while True:
                self._check(deadline, "listing")
                try:
                    page = self.s3.list_objects_v2(**params)
                except (ClientError, BotoCoreError) as err:
                    raise EngineError(f"cannot list s3://{relation.bucket}/{prefix}: {err}") from err
                contents = page.get("Contents", [])
                objects += [(o["Key"], int(o.get("Size", 0))) for o in contents if _data_key(o["Key"])]
                if not page.get("IsTruncated"):
                    break
                params["ContinuationToken"] = page["NextContinuationToken"]
        if not objects and not relation.layout:  # a folder of lines may be empty: an hour without calls
            raise EngineError(f"no objects under {_where(relation)}: nothing to read (not exported yet?)")
        return objects

    def _download(
        self, relation: Relation, objects: list[tuple[str, int]], folder: str, deadline: float
    ) -> tuple[list[str], int]:
        """The objects as files under `folder`, keeping their keys below the prefix (so the hive partitions stay in
        the paths DuckDB reads), and the bytes downloaded."""
        base = relation.prefix.strip("/")
        base = base + "/" if base else ""
        files, downloaded = [], 0
        for key, _ in objects:
            self._check(deadline, "download")
            parts = key[len(base) :].split("/")
            if any(part in ("", ".", "..") for part in parts):
                raise EngineError(f"s3://{relation.bucket}/{key}: a key the embedded engine will not write to disk")
            path = os.path.join(folder, *parts)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            try:
                body = self.s3.get_object(Bucket=relation.bucket, Key=key)["Body"]
                with open(path, "wb") as out:  # in chunks: the function's memory holds DuckDB, not the objects
                    for chunk in body.iter_chunks(CHUNK_BYTES):
                        out.write(chunk)
                        downloaded += len(chunk)
            except (ClientError, BotoCoreError) as err:
                raise EngineError(f"cannot read s3://{relation.bucket}/{key}: {err}") from err
            files.append(path)
        return files, downloaded

    def _download_lines(
        self, relation: Relation, objects: list[tuple[str, int]], folder: str, deadline: float
    ) -> tuple[list[tuple[str, str, dict[str, str]]], int, list[tuple[str, str]]]:
        """The objects as plain-text files (gunzipped as they come when the key ends .gz), each with its s3 URI and
        partition values; the bytes downloaded; and the objects that could not be read, with why."""
        base = relation.prefix.strip("/")
        base = base + "/" if base else ""
        partitions = {folder_: combo for folder_, combo in _layout_folders(relation)}
        files: list[tuple[str, str, dict[str, str]]] = []
        unreadable: list[tuple[str, str]] = []
        downloaded = 0
        os.makedirs(folder, exist_ok=True)
        for n, (key, _) in enumerate(objects):
            self._check(deadline, "download")
            uri = f"s3://{relation.bucket}/{key}"
            path = os.path.join(folder, f"{n:06d}.txt")
            try:
                body = self.s3.get_object(Bucket=relation.bucket, Key=key)["Body"]
                with open(path, "wb") as out:
                    downloaded += _copy_lines(body, out, gzipped=key.endswith(".gz"))
            except (ClientError, BotoCoreError) as err:
                raise EngineError(f"cannot read {uri}: {err}") from err
            except _Unreadable as err:
                downloaded += err.size
                unreadable.append((uri, str(err)))
                continue
            below = key[len(base) :].rsplit("/", 1)[0] + "/"
            files.append((path, uri, partitions.get(below, {})))
        return files, downloaded, unreadable

    def _lines_view(
        self, connection: Any, name: str, relation: Relation, files: list[tuple[str, str, dict[str, str]]]
    ) -> None:
        """The view `name`: a row per line (`line`), with `"$path"` and the partition columns."""
        view = '"' + name.replace('"', '""') + '"'
        columns = list(dict.fromkeys(partition for partition, _ in relation.partitions))
        for column in columns:
            if not _COLUMN.fullmatch(column):
                raise EngineError(f"the partition {column!r} is not a plain column name")
        extra = "".join(f", {c}" for c in columns)
        if not files:
            nulls = "".join(f", NULL::VARCHAR AS {c}" for c in columns)
            connection.execute(
                f'CREATE VIEW {view} AS SELECT NULL::VARCHAR AS line, NULL::VARCHAR AS "$path"{nulls} WHERE false'
            )
            return
        table = '"files_' + name.replace('"', '""') + '"'
        rows = ", ".join(
            "(" + ", ".join(_sql_string(v) for v in (path, uri, *(values.get(c, "") for c in columns))) + ")"
            for path, uri, values in files
        )
        connection.execute(f'CREATE TABLE {table} AS SELECT * FROM (VALUES {rows}) AS t(filename, "$path"{extra})')
        paths = "[" + ", ".join(_sql_string(path) for path, _, _ in files) + "]"
        # One VARCHAR column: the delimiter is a control character JSON text never holds raw, and quoting is off.
        source = (
            f"read_csv({paths}, columns = {{'line': 'VARCHAR'}}, delim = chr(1), quote = '', escape = '', "
            "header = false, auto_detect = false, filename = true, max_line_size = 100000000)"
        )
        connection.execute(
            f'CREATE VIEW {view} AS SELECT d.line, f."$path"{extra} FROM {source} AS d JOIN {table} AS f USING (filename)'
        )

    def _view(self, connection: Any, name: str, relation: Relation, files: list[str]) -> None:
        paths = "[" + ", ".join(_sql_string(f) for f in files) + "]"
        # hive_types_autocast off: a partition value stays a string (`2026-11`), as Athena's projected column is.
        options = "hive_partitioning = true, hive_types_autocast = false, union_by_name = true"
        if relation.format == "parquet":
            source = f"read_parquet({paths}, {options})"
        elif relation.format == "json":
            source = f"read_json({paths}, format = 'newline_delimited', compression = 'gzip', {options})"
        else:
            raise EngineError(f"the relation {name} has format {relation.format!r}: the engines read parquet or json")
        view = '"' + name.replace('"', '""') + '"'
        try:
            connection.execute(f"CREATE VIEW {view} AS SELECT * FROM {source}")
        except Exception as err:  # duckdb.Error, imported lazily
            raise EngineError(
                f"the embedded engine cannot read {relation.format} under {_where(relation)}: {err}"
            ) from err

    def _check(self, deadline: float, what: str) -> None:
        if self.clock() >= deadline:
            raise DeadlineExceeded(f"the embedded engine's {what} was not started: the run reached its deadline")


_COLUMN = re.compile(r"[a-z_][a-z0-9_]{0,127}")


class _Unreadable(Exception):
    def __init__(self, why: str, size: int):
        super().__init__(why)
        self.size = size


def _copy_lines(body: Any, out: Any, *, gzipped: bool) -> int:
    """Copy an object's body to `out`, gunzipping it (every member) when `gzipped`; the bytes read. A gzip stream
    that ends early, or bytes that are not gzip, raise _Unreadable."""
    size = 0
    inflate = zlib.decompressobj(zlib.MAX_WBITS | 16)
    for chunk in body.iter_chunks(CHUNK_BYTES):
        size += len(chunk)
        if not gzipped:
            out.write(chunk)
            continue
        data = chunk
        while data:
            if inflate.eof:  # the member before ended: another starts here
                inflate = zlib.decompressobj(zlib.MAX_WBITS | 16)
            try:
                out.write(inflate.decompress(data))
            except zlib.error as err:
                raise _Unreadable(f"not gzip: {err}", size) from err
            data = inflate.unused_data
    if gzipped and size and not inflate.eof:
        raise _Unreadable(f"the gzip stream ends early, after {size:,} bytes: the object is cut short", size)
    return size


def _duckdb() -> Any:
    try:
        import duckdb
    except ImportError as err:
        raise EngineError(
            "the embedded engine needs the duckdb package (a development dependency: pip install -e '.[dev]'); "
            "in AWS use Athena (LOG_ENGINE=athena, BILL_ENGINE=athena)"
        ) from err
    return duckdb
