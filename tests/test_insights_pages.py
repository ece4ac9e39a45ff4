"""Reading GetQueryResults rows from the raw body: the same rows botocore would give, for any field text."""

from __future__ import annotations

import json
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lambda_function.sources.insights as insights
from lambda_function.config import parse_log_group
from lambda_function.errors import IncompleteResults
from lambda_function.sources.insights import (
    ROWS_KEY,
    Page,
    QueryResult,
    QuerySpec,
    _check_expected,
    _read_rows_raw,
    page_from_rows,
    rows_of,
)

from .depth import examples

names = st.sampled_from(["day", "identity", "model", "input_tokens", "invocations", "img_q"])
values = st.text(max_size=40)  # any text: quotes, backslashes, unicode, control characters
rows = st.lists(st.dictionaries(names, values, max_size=6), max_size=30)


@settings(max_examples=examples(300), deadline=None)
@given(rows=rows, status=st.sampled_from(["Complete", "Running"]), batch=st.integers(1, 8), indent=st.booleans())
def test_the_raw_body_reader_gives_botocores_rows(rows, status, batch, indent):
    body = {
        "results": [[{"field": k, "value": v} for k, v in row.items()] for row in rows],
        "statistics": {"recordsMatched": 3.0},
        "status": status,
    }
    response = {"status_code": 200, "headers": {}, "body": json.dumps(body, indent=2 if indent else None).encode()}
    custom: dict = {}
    with mock.patch.object(insights, "DECODE_ROWS", batch):  # rows decoded `batch` at a time (500 in a run)
        _read_rows_raw(response_dict=response, customized_response_dict=custom)
    page = custom[ROWS_KEY]
    # a Running answer's partial rows are dropped; a Complete one's kept exactly, in order
    assert list(rows_of([page])) == (rows if status == "Complete" else [])
    # what is left for botocore's parser: the body without its rows
    assert json.loads(response["body"]) == {"statistics": {"recordsMatched": 3.0}, "status": status}


@pytest.mark.parametrize("body", [b"", b"not json", b'{"results": "x"}', b"[1, 2]"])
def test_a_body_the_reader_does_not_understand_is_left_to_botocore(body):
    response = {"status_code": 200, "headers": {}, "body": body}
    custom: dict = {}
    _read_rows_raw(response_dict=response, customized_response_dict=custom)
    assert custom == {} and response["body"] == body


def test_a_body_with_a_row_the_reader_does_not_understand_is_left_whole_to_botocore():
    good = [{"field": "model", "value": "m"}]
    body = json.dumps({"results": [good] * 5 + [[{"field": "model", "value": 5}]], "status": "Complete"}).encode()
    response = {"status_code": 200, "headers": {}, "body": body}
    custom: dict = {}
    with mock.patch.object(insights, "DECODE_ROWS", 2):  # the sixth row is in the third batch
        _read_rows_raw(response_dict=response, customized_response_dict=custom)
    assert custom == {} and response["body"] == body  # no page of the rows before it


def test_an_error_answer_is_left_to_botocore():
    body = b'{"__type": "ThrottlingException", "results": []}'
    response = {"status_code": 400, "headers": {}, "body": body}
    custom: dict = {}
    _read_rows_raw(response_dict=response, customized_response_dict=custom)
    assert custom == {} and response["body"] == body


def _continuation(matched: int, expected: int) -> QueryResult:
    spec = QuerySpec("us-east-1", (parse_log_group("/g"),), 0, 10, "q", expect_matched=expected)
    return QueryResult(spec, [page_from_rows([])], records_matched=matched, records_scanned=0, bytes_scanned=0)


def test_a_continuation_must_match_exactly_what_the_part_before_left_over():
    # the part before left 7 records over; the continuation matched 6: one was in neither part
    with pytest.raises(IncompleteResults, match="6 records where 7 were left over"):
        _check_expected(_continuation(6, 7))
    # 9: two were in both parts (or arrived in between); a double count is as wrong as a loss
    with pytest.raises(IncompleteResults, match="9 records where 7 were left over"):
        _check_expected(_continuation(9, 7))
    _check_expected(_continuation(7, 7))


def test_a_page_reads_back_as_its_rows():
    page = page_from_rows([{"a": "1", "b": "x"}, {"b": "y"}])
    assert page == Page(2, {"a": ["1", None], "b": ["x", "y"]})
    assert list(rows_of([page])) == [{"a": "1", "b": "x"}, {"b": "y"}]
