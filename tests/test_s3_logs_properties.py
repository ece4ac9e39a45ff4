"""Properties of the S3 source's parsers: the gzip reader of the embedded engine (any split into members and
chunks reads back the same bytes; any cut is named, never read as fewer lines), the hour folders of any window,
and the JSON paths the dialect rewrites."""

from __future__ import annotations

import gzip
import io
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from lambda_function.engine import dialect
from lambda_function.engine.embedded import _copy_lines, _Unreadable
from lambda_function.sources.logs_sql import HOUR_FORMAT, log_hours

from .depth import examples


class _Body:
    """An S3 body handing out `data` in the chunk sizes given (as botocore's StreamingBody.iter_chunks would)."""

    def __init__(self, data: bytes, sizes: list[int]):
        self.data, self.sizes = data, sizes

    def iter_chunks(self, _size: int):
        at = 0
        for size in self.sizes:
            if at >= len(self.data):
                return
            yield self.data[at : at + size]
            at += size
        if at < len(self.data):
            yield self.data[at:]


def _members(parts: list[bytes]) -> bytes:
    return b"".join(gzip.compress(part, mtime=0) for part in parts)


@settings(max_examples=examples(300), deadline=None)
@given(
    parts=st.lists(st.binary(max_size=400), min_size=1, max_size=4),
    sizes=st.lists(st.integers(1, 64), max_size=30),
)
def test_any_members_in_any_chunks_read_back_whole(parts, sizes):
    data = _members(parts)
    out = io.BytesIO()
    assert _copy_lines(_Body(data, sizes), out, gzipped=True) == len(data)
    assert out.getvalue() == b"".join(parts)


@settings(max_examples=examples(300), deadline=None)
@given(
    parts=st.lists(st.binary(min_size=1, max_size=400), min_size=1, max_size=3),
    cut=st.floats(0.0, 1.0, exclude_max=True),
    sizes=st.lists(st.integers(1, 64), max_size=30),
)
def test_a_gzip_stream_cut_anywhere_is_unreadable(parts, cut, sizes):
    data = _members(parts)
    kept = data[: max(1, int(len(data) * cut))]
    # A cut exactly between two members leaves a valid gzip of fewer members: nothing (nor Athena) can tell.
    ends = {sum(len(gzip.compress(part, mtime=0)) for part in parts[:n]) for n in range(1, len(parts))}
    assume(len(kept) not in ends)
    with pytest.raises(_Unreadable):
        _copy_lines(_Body(kept, sizes), io.BytesIO(), gzipped=True)


def test_bytes_that_are_not_gzip_are_unreadable_and_an_empty_object_is_no_lines():
    with pytest.raises(_Unreadable, match="not gzip"):
        _copy_lines(_Body(b'{"schemaType": "ModelInvocationLog"}\n', []), io.BytesIO(), gzipped=True)
    assert _copy_lines(_Body(b"", []), io.BytesIO(), gzipped=True) == 0


@settings(max_examples=examples(500), deadline=None)
@given(
    start=st.datetimes(datetime(2024, 1, 1), datetime(2030, 1, 1), timezones=st.just(UTC)),
    seconds=st.integers(1, 40 * 86_400),
)
def test_the_hour_folders_of_any_window_cover_it_exactly(start, seconds):
    end = start + timedelta(seconds=seconds)
    own, after = log_hours(start, end)
    hours = [datetime.strptime(h, HOUR_FORMAT).replace(tzinfo=UTC) for h in own + after]
    # consecutive hours, the first holding the start, the last of the window's own holding the last instant
    assert all(b - a == timedelta(hours=1) for a, b in zip(hours, hours[1:], strict=False))
    assert hours[0] <= start < hours[0] + timedelta(hours=1)
    last = hours[len(own) - 1]
    assert last <= end - timedelta(microseconds=1) < last + timedelta(hours=1)
    assert len(after) == 1


@given(key=st.from_regex(r"[A-Za-z0-9_.:/=+@-]{1,64}", fullmatch=True))
def test_a_json_path_naming_any_attribution_key_reads_the_same_key_in_duckdb(key):
    import duckdb

    sql = f"""SELECT json_extract_scalar(json_parse('{{"m": {{"{key}": "v"}}}}'), '$.m["{key}"]')"""
    connection = duckdb.connect()
    dialect.install_duckdb(connection)
    assert connection.execute(dialect.to_duckdb(sql)).fetchone() == ("v",)
