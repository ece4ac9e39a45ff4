"""The Logs Insights test double: the query language (pure engine) and the service behaviour through boto3 + moto.

Expectations are hand-computed; the arithmetic is written next to them. Documented examples come from the
CloudWatch Logs Insights query-syntax pages and FACTS §2.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.logs.models import logs_backends

from lambda_function.sources.query import usage_query
from local_aws.insights import Event, InsightsDouble, MalformedQueryError, execute_query

ACCOUNT = "123456789012"
REGION = "us-east-1"
GROUP = "/aws/bedrock/modelinvocations"


# -- helpers --------------------------------------------------------------------------------------------------------


def ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def event(message: Any, at: int = ms("2026-11-20T10:00:00Z"), group: str = "/g") -> Event:
    text = message if isinstance(message, str) else json.dumps(message, separators=(",", ":"))
    return Event(at, text, group, "stream-1")


def rows(query: str, events: list[Event], **kwargs: Any) -> list[dict[str, str]]:
    """Result rows as dicts, without the opaque @ptr."""
    output = execute_query(query, events, **kwargs)
    return [{f["field"]: f["value"] for f in row if f["field"] != "@ptr"} for row in output.rows]


def compact(record: dict[str, Any]) -> str:
    # The samples are pretty-printed; CloudWatch stores one compact JSON object per event.
    return json.dumps(record, separators=(",", ":"))


def leaves(node: Any, prefix: str = "") -> list[str]:
    """Flattened leaf names in document order, the way Logs Insights names them (a JSON null is no field)."""
    if isinstance(node, dict | list):
        items = node.items() if isinstance(node, dict) else enumerate(node)
        return [name for key, value in items for name in leaves(value, f"{prefix}{key}.")]
    return [] if node is None else [prefix[:-1]]


def huge_converse(record: dict[str, Any], tools: int = 250) -> dict[str, Any]:
    """A Converse record with a long tool config: 1,000+ leaves, the token counts after the body."""
    big = copy.deepcopy(record)
    specs = big["input"]["inputBodyJson"]["toolConfig"]["tools"]
    big["input"]["inputBodyJson"]["toolConfig"]["tools"] = [copy.deepcopy(specs[i % len(specs)]) for i in range(tools)]
    return big


def failed_call(record: dict[str, Any]) -> dict[str, Any]:
    # FACTS §1: "A failed call has no input/output at all"
    failed = {k: v for k, v in record.items() if k not in ("input", "output")}
    failed["errorCode"] = "ThrottlingException"
    return failed


# -- the query language ------------------------------------------------------------------------------------------------

PEOPLE = [
    event({"name": "ann", "status": 404, "latency": 12.5, "tags": ["a", "b"]}),
    event({"name": "bob", "status": 200, "latency": 3}),
    event({"name": "cyd", "status": 500}),
    event("2026-11-20 [ERROR] disk full"),
]


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("filter status = 404", ["ann"]),
        ("filter status != 404", ["bob", "cyd"]),  # a missing status is not "!= 404"
        ("filter status < 404", ["bob"]),
        ("filter status <= 404", ["ann", "bob"]),
        ("filter status > 404", ["cyd"]),
        ("filter status >= 404", ["ann", "cyd"]),
        ("filter status = '404'", ["ann"]),  # text and number compare as numbers
        ("filter name like /^[ab]/", ["ann", "bob"]),
        ('filter name like "y"', ["cyd"]),
        ("filter name not like /n/", ["bob", "cyd"]),
        ("filter name =~ /(?i)BOB/", ["bob"]),
        ('filter name in ["ann", "cyd"]', ["ann", "cyd"]),
        ('filter name not in ["ann", "cyd"]', ["bob"]),
        ("filter status >= 400 and latency > 10", ["ann"]),
        ("filter status = 200 or latency > 10", ["ann", "bob"]),
        ("filter not (status = 200 or latency > 10) and ispresent(name)", ["cyd"]),
        ("filter ispresent(latency)", ["ann", "bob"]),
        ("filter tags.1 = 'b'", ["ann"]),  # arrays flatten by index
    ],
)
def test_filter(query: str, names: list[str]) -> None:
    assert [r.get("name") for r in rows(f"{query} | fields name", PEOPLE)] == names


def test_filter_like_on_raw_message_and_default_fields() -> None:
    # "filter (duration>2000) is also a valid query [...] the results show the @timestamp and [...] @message"
    output = execute_query("filter @message like /ERROR/", PEOPLE)
    (row,) = output.rows
    assert [f["field"] for f in row] == ["@timestamp", "@message", "@ptr"]
    assert row[0]["value"] == "2026-11-20 10:00:00.000"
    assert row[1]["value"] == "2026-11-20 [ERROR] disk full"
    assert (output.records_matched, output.records_scanned) == (1, 4)
    assert output.bytes_scanned == sum(len(e.message.encode()) for e in PEOPLE)


def test_parse_glob_docs_example() -> None:
    query = """FIELDS @message
      | PARSE @message "* [*] *" as loggingTime, loggingType, loggingMessage
      | FILTER loggingType IN ["ERROR", "INFO"]
      | DISPLAY loggingMessage, loggingType"""
    assert rows(query, PEOPLE) == [{"loggingMessage": "disk full", "loggingType": "ERROR"}]


def test_parse_regex_takes_the_first_match_and_leaves_non_matching_events_unset() -> None:
    events = [event("took 12 ms then 40 ms"), event("no numbers here")]
    query = r"parse @message /took (?<first>\d+) ms/ | fields first, ispresent(first) as found"
    assert rows(query, events) == [{"first": "12", "found": "true"}, {"found": "false"}]


def test_parse_values_are_text_but_add_up_as_numbers() -> None:
    events = [event("in=1000"), event("in=23"), event("in=7")]
    query = r"parse @message /in=(?<n>\d+)/ | stats sum(n) as total, min(n) as low, max(n) as high, avg(n) as mean"
    # 1000 + 23 + 7 = 1030; numeric min/max (not "1000" < "23" < "7" as text); 1030 / 3 = 343.333...
    assert rows(query, events) == [{"total": "1030", "low": "7", "high": "1000", "mean": "343.3333333333333"}]


def test_coalesce_takes_the_first_present_value() -> None:
    events = [event({"a": 1, "b": 2}), event({"b": 2}), event({"c": 3})]
    assert rows("fields coalesce(a, b, 0) as v", events) == [{"v": "1"}, {"v": "2"}, {"v": "0"}]


def test_functions() -> None:
    query = """fields strlen(name) as len, toupper(name) as up, tolower('MiXeD') as low,
                      concat(name, '-', status) as both, abs(0 - latency) as a, floor(latency) as f, ceil(latency) as c
               | filter name = 'ann'"""
    assert rows(query, PEOPLE) == [
        {"len": "3", "up": "ANN", "low": "mixed", "both": "ann-404", "a": "12.5", "f": "12", "c": "13"}
    ]


USAGE = [
    # day 1 (2026-11-20): ann/m1 twice, ann/m2 once, bob/m1 once (failed); day 2: ann/m1 once
    event({"user": "ann", "model": "m1", "tokens": 100}, ms("2026-11-20T01:00:00Z")),
    event({"user": "ann", "model": "m1", "tokens": 50}, ms("2026-11-20T23:59:59.999Z")),
    event({"user": "ann", "model": "m2", "tokens": 7}, ms("2026-11-20T12:00:00Z")),
    event({"user": "bob", "model": "m1", "error": "ThrottlingException"}, ms("2026-11-20T13:30:00Z")),
    event({"user": "ann", "model": "m1", "tokens": 1}, ms("2026-11-21T00:00:00Z")),
]


def test_stats_by_several_fields_and_bin_1d() -> None:
    query = """stats sum(tokens) as tokens, count(*) as calls, count(error) as failed,
                     min(@timestamp) as first, max(@timestamp) as last
               by bin(1d) as day, user, model"""
    assert rows(query, USAGE) == [
        # 100 + 50 = 150 over two calls; the bin value is the UTC day start
        {"day": "2026-11-20 00:00:00.000", "user": "ann", "model": "m1", "tokens": "150", "calls": "2",
         "failed": "0", "first": "2026-11-20 01:00:00.000", "last": "2026-11-20 23:59:59.999"},
        {"day": "2026-11-20 00:00:00.000", "user": "ann", "model": "m2", "tokens": "7", "calls": "1",
         "failed": "0", "first": "2026-11-20 12:00:00.000", "last": "2026-11-20 12:00:00.000"},
        # no tokens field at all: no sum, so the field is left out of the row; count(error) = 1
        {"day": "2026-11-20 00:00:00.000", "user": "bob", "model": "m1", "calls": "1",
         "failed": "1", "first": "2026-11-20 13:30:00.000", "last": "2026-11-20 13:30:00.000"},
        {"day": "2026-11-21 00:00:00.000", "user": "ann", "model": "m1", "tokens": "1", "calls": "1",
         "failed": "0", "first": "2026-11-21 00:00:00.000", "last": "2026-11-21 00:00:00.000"},
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("period", "bins"),
    [
        ("1h", {"2026-11-20 01:00:00.000": "1", "2026-11-20 23:00:00.000": "1", "2026-11-20 12:00:00.000": "1",
                "2026-11-20 13:00:00.000": "1", "2026-11-21 00:00:00.000": "1"}),
        ("5m", {"2026-11-20 01:00:00.000": "1", "2026-11-20 23:55:00.000": "1", "2026-11-20 12:00:00.000": "1",
                "2026-11-20 13:30:00.000": "1", "2026-11-21 00:00:00.000": "1"}),
        ("1d", {"2026-11-20 00:00:00.000": "4", "2026-11-21 00:00:00.000": "1"}),
    ],
)  # fmt: skip
def test_bin_periods(period: str, bins: dict[str, str]) -> None:
    found = rows(f"stats count(*) as n by bin({period})", USAGE)
    assert {r[f"bin({period})"]: r["n"] for r in found} == bins


def test_count_distinct_and_aggregate_arithmetic() -> None:
    query = "stats count_distinct(user) as users, count_distinct(model) as models, sum(tokens) / count(tokens) as mean"
    # (100 + 50 + 7 + 1) / 4 = 39.5
    assert rows(query, USAGE) == [{"users": "2", "models": "2", "mean": "39.5"}]


def test_events_without_the_group_field_form_their_own_group() -> None:
    # Not documented by AWS: kept by default (the counts still add up to recordsMatched), dropped on request.
    query = "stats count(*) as n by error"
    assert rows(query, USAGE) == [{"n": "4"}, {"error": "ThrottlingException", "n": "1"}]
    assert rows(query, USAGE, keep_null_groups=False) == [{"error": "ThrottlingException", "n": "1"}]


def test_sort_and_limit() -> None:
    query = "stats sum(tokens) as t by user, model | sort t desc | limit 2"
    # ann/m1 = 100 + 50 + 1 = 151, ann/m2 = 7, bob/m1 has no sum (missing values sort last)
    assert rows(query, USAGE) == [{"user": "ann", "model": "m1", "t": "151"}, {"user": "ann", "model": "m2", "t": "7"}]
    assert [r["user"] for r in rows("fields user | sort @timestamp desc | limit 3", USAGE)] == ["ann", "ann", "bob"]


def test_comments_newlines_and_backticks() -> None:
    query = """# count Ann's calls
    filter `user` = 'ann'   # a trailing comment
    | stats
        count(*) as calls"""
    assert rows(query, USAGE) == [{"calls": "4"}]


def test_json_fields_flatten_with_dots_and_non_json_has_only_system_fields() -> None:
    events = [
        event({"identity": {"arn": "arn:x"}, "a": [{"b": 1}, {"b": 2}], "flag": True, "gone": None}),
        event("plain"),
    ]
    query = "fields `identity.arn`, a.1.b, flag, gone, @log, @logStream"
    assert rows(query, events) == [
        {"identity.arn": "arn:x", "a.1.b": "2", "flag": "true", "@log": "123456789012:/g", "@logStream": "stream-1"},
        {"@log": "123456789012:/g", "@logStream": "stream-1"},
    ]


def test_only_the_first_200_json_fields_are_extracted_but_parse_reads_the_raw_message() -> None:
    big = huge_converse(HAIKU)
    names = leaves(big)
    assert len(names) > 1000
    assert names.index("input.inputTokenCount") > 200  # the count comes after the body (FACTS §2)
    assert names.index("identity.arn") < 200
    events = [event(compact(big))]
    query = r"""parse @message /"inputTokenCount"\s*:\s*(?<p_in>\d+)/
                | fields input.inputTokenCount as extracted, p_in, identity.arn"""
    assert rows(query, events) == [{"p_in": "1023", "identity.arn": HAIKU["identity"]["arn"]}]
    # the same record with a field limit above its size: everything is extracted
    assert rows(query, events, field_limit=5000)[0]["extracted"] == "1023"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("bogus x", "unknown command 'bogus'"),
        ("", "empty"),
        ("fields a |", "empty command"),
        (r"parse @message /(?<p_in>\d+)/ | stats count(*) as p_in", "'p_in' is already a field made by parse"),
        ("filter @message like /abc", "unterminated regular expression"),
        ("parse @message /(?<x>a/", "invalid regular expression"),
        ("filter (a = 1", "ends where more was expected"),
        ("filter a = 1)", "unexpected ')'"),
        ("filter sum(a) > 1", "only allowed in stats"),
        ('parse @message "* *" as a', "2 * but 1 names"),
        ("fields nosuch(a)", "unknown function"),
        ("stats count(*) by bin(3parsecs)", "unknown time unit"),
        ("limit 0", "limit needs a whole number"),
        ('filter a = "open', "unterminated quote"),
    ],
)
def test_malformed_queries(query: str, message: str) -> None:
    with pytest.raises(MalformedQueryError) as caught:
        execute_query(query, [])
    assert message in caught.value.message


# -- the product's query over real-shaped records ------------------------------------------------------------------------


def product_records() -> list[tuple[int, str]]:
    """(timestamp ms, message): the two public samples, a second Haiku call, a 1,000-field Converse call, a failed
    call, and the one-off non-JSON line a log group gets when permissions are set up (FACTS §1)."""
    haiku_at = ms(HAIKU["timestamp"])
    second = dict(HAIKU, requestId="00000000-0000-4000-8000-000000000002")
    return [
        (ms(NOVA["timestamp"]), compact(NOVA)),
        (haiku_at - 60_000, "Permission check for Bedrock model invocation logging"),
        (haiku_at, compact(HAIKU)),
        (haiku_at + 60_000, compact(second)),
        (haiku_at + 120_000, compact(huge_converse(HAIKU))),
        (haiku_at + 180_000, compact(failed_call(HAIKU))),
    ]


# The product's query, banded at the shipped tier table's thresholds (100K, 200K, 272K input tokens).
USAGE_QUERY = usage_query((100_000, 200_000, 272_000))

# text-model records carry no image settings, the default tier and latency ("" in the folded options field) and
# band 0 (input up to 100K tokens): image width|height|steps|images|tier|latency|band|quality
NO_IMAGE = {"o": "||||||0|"}
HAIKU_ROW = {
    "d": "2025-12-17 00:00:00.000",
    "a": "027425703396",
    "i": "arn:aws:iam::027425703396:user/robbat1",
    "m": "global.anthropic.claude-haiku-4-5-20251001-v1:0",
    "r": "us-east-1",
    **NO_IMAGE,
    "n": "3069",  # input tokens: 1023 x 3 successful calls (the 1,000-field one read by parse); the failed call adds 0
    "u": "267",  # output tokens: 89 x 3
    "cr": "0",
    "cw": "0",
    "ch": "0",
    "cu": "0",
    "c": "4",  # invocations
    "f": "1",  # failed
    "k": "4",  # readable: 3 with an input token count + 1 with an error code
}
NOVA_ROW = {
    "d": "2025-03-11 00:00:00.000",
    "a": "XXXXXXXXXXXXX",
    "i": "arn:aws:iam::XXXXXXXXXXXX:user/dheeraj",
    "m": "amazon.nova-lite-v1:0",
    "r": "us-east-1",
    **NO_IMAGE,
    "n": "4",
    "u": "38",
    "cr": "0",
    "cw": "0",
    "ch": "0",
    "cu": "0",
    "c": "1",
    "f": "0",
    "k": "1",
}


def test_product_query_sums_real_shaped_records() -> None:
    events = [Event(at, message, GROUP, "s") for at, message in product_records()]
    output = execute_query(USAGE_QUERY, events)
    found = [{f["field"]: f["value"] for f in row} for row in output.rows]
    assert found == [HAIKU_ROW, NOVA_ROW]  # sorted by identity ("arn:aws:iam::0..." before "arn:aws:iam::X...")
    assert (output.records_matched, output.records_scanned) == (5, 6)  # the permission-check line is filtered out
    # ... and the trap it avoids: summing the extracted field misses the 1,000-field record (1023 x 2 = 2046)
    naive = rows("filter modelId like /haiku/ | stats sum(input.inputTokenCount) as t", events)
    assert naive == [{"t": "2046"}]


def test_product_query_bands_requests_by_the_thresholds_their_input_is_above() -> None:
    # Input for a long-context tier is uncached + cache read + cache write (FACTS §3: "above 200K input tokens").
    def call(second: int, uncached: int, cache_read: int, cache_write: int) -> tuple[int, str]:
        record = json.loads(compact(HAIKU))
        record["input"].update(
            inputTokenCount=uncached, cacheReadInputTokenCount=cache_read, cacheWriteInputTokenCount=cache_write
        )
        return ms(HAIKU["timestamp"]) + second * 1000, compact(record)

    calls = [
        call(1, 10, 0, 0),  # 10: band 0
        call(2, 60_000, 40_000, 0),  # exactly 100,000: band 0
        call(3, 60_000, 0, 40_001),  # 100,001: above 100K, band 1
        call(4, 150_000, 50_000, 0),  # exactly 200,000: band 1
        call(5, 150_000, 0, 50_001),  # 200,001: above 100K and 200K, band 2
        call(6, 500_000, 0, 0),  # above all three, band 3
    ]
    found = rows(USAGE_QUERY, [Event(at, message, GROUP, "s") for at, message in calls])
    by_band = {r["o"].split("|")[6]: (r["n"], r["cr"], r["c"]) for r in found}
    assert by_band == {
        "0": ("60010", "40000", "2"),
        "1": ("210000", "50000", "2"),
        "2": ("150000", "0", "1"),
        "3": ("500000", "0", "1"),
    }
    # without thresholds there is no band at all
    unbanded = rows(usage_query(), [Event(at, message, GROUP, "s") for at, message in calls])
    assert {r["o"] for r in unbanded} == {"||||||" + "|"}


# -- the service, through boto3 and moto ------------------------------------------------------------------------------

# moto keeps only events from the last 14 days, so service tests use yesterday (UTC).
DAY = (int(time.time()) // 86_400 - 1) * 86_400
NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1})  # see every throttle ourselves


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A factory: service(**double options) -> (double, logs client) on mock_aws, torn down after the test."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):  # the session's embedded server must not take these calls
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with ExitStack() as stack:

        def start(**options: Any) -> tuple[InsightsDouble, Any]:
            double = stack.enter_context(InsightsDouble(**options).installed())
            stack.enter_context(mock_aws())
            if not _CLIENT:  # creating a client costs ~0.1 s; moto intercepts an existing one just the same
                _CLIENT.append(boto3.client("logs", region_name=REGION, config=NO_RETRIES))
            return double, _CLIENT[0]

        yield start


_CLIENT: list[Any] = []


def put(client: Any, messages: list[tuple[int, str]], group: str = GROUP) -> None:
    client.create_log_group(logGroupName=group)
    client.create_log_stream(logGroupName=group, logStreamName="s")
    client.put_log_events(
        logGroupName=group,
        logStreamName="s",
        logEvents=[{"timestamp": at, "message": text} for at, text in sorted(messages)],
    )


def poll(client: Any, query_id: str, **kwargs: Any) -> list[dict[str, Any]]:
    """Every GetQueryResults response until a final status (the double counts polls; no sleeping)."""
    responses = []
    while True:
        responses.append(client.get_query_results(queryId=query_id, **kwargs))
        if responses[-1]["status"] not in ("Scheduled", "Running"):
            return responses


def error_code(err: pytest.ExceptionInfo[ClientError]) -> str:
    return str(err.value.response["Error"]["Code"])


def test_product_query_end_to_end_through_boto3(service: Any) -> None:
    double, logs = service(polls_until_running=1, polls_until_complete=2)
    # the same records, moved to yesterday: Nova at 01:00, the Haiku calls from 02:00
    records = product_records()
    moved = [
        ((DAY + 3600) * 1000 if i == 0 else (DAY + 7200) * 1000 + (at - records[2][0]), text)
        for i, (at, text) in enumerate(records)
    ]
    put(logs, moved)
    query_id = logs.start_query(logGroupName=GROUP, startTime=DAY, endTime=DAY + 86_399, queryString=USAGE_QUERY)[
        "queryId"
    ]

    responses = poll(logs, query_id)

    assert [r["status"] for r in responses] == ["Scheduled", "Running", "Complete"]
    final = responses[-1]
    found = [{f["field"]: f["value"] for f in row} for row in final["results"]]
    day = datetime.fromtimestamp(DAY, UTC).strftime("%Y-%m-%d 00:00:00.000")
    nova = dict(NOVA_ROW, d=day)
    haiku = dict(HAIKU_ROW, d=day)
    assert found == [haiku, nova]  # sorted by identity
    stats = final["statistics"]
    assert (stats["recordsMatched"], stats["recordsScanned"]) == (5.0, 6.0)
    assert stats["bytesScanned"] == float(sum(len(text.encode()) for _, text in moved))
    assert all(isinstance(v, float) for v in stats.values())
    (started,) = double.started
    assert (started.log_groups, started.start_time, started.end_time, started.limit) == (
        (GROUP,),
        DAY,
        DAY + 86_399,
        10_000,
    )
    assert started.status == "Complete"


def test_running_returns_partial_rows_and_statistics(service: Any) -> None:
    _, logs = service(polls_until_running=1, polls_until_complete=2)
    put(logs, [((DAY + i) * 1000, json.dumps({"n": i})) for i in range(4)])
    query_id = logs.start_query(
        logGroupName=GROUP, startTime=DAY, endTime=DAY + 10, queryString="stats count(*) as c, sum(n) as s"
    )["queryId"]

    scheduled, running, complete = poll(logs, query_id)

    assert (scheduled["status"], scheduled["results"]) == ("Scheduled", [])
    # Running: the first half of the scan, events 0 and 1 -> count 2, sum 0 + 1 = 1
    assert running["status"] == "Running"
    assert running["results"] == [[{"field": "c", "value": "2"}, {"field": "s", "value": "1"}]]
    assert running["statistics"]["recordsScanned"] == 2.0
    # Complete: 4 events, 0 + 1 + 2 + 3 = 6
    assert complete["results"] == [[{"field": "c", "value": "4"}, {"field": "s", "value": "6"}]]


def test_a_result_over_the_limit_ends_complete_with_exactly_limit_rows_and_no_warning(service: Any) -> None:
    _, logs = service(polls_until_running=0, polls_until_complete=0)
    put(logs, [((DAY + i) * 1000, json.dumps({"user": f"u{i}"})) for i in range(5)])
    query_id = logs.start_query(
        logGroupName=GROUP, startTime=DAY, endTime=DAY + 10, queryString="stats count(*) as c by user", limit=3
    )["queryId"]

    (response,) = poll(logs, query_id)

    assert response["status"] == "Complete"
    assert len(response["results"]) == 3  # 5 groups, 3 returned
    assert response["statistics"]["recordsMatched"] == 5.0  # the only hint: 3 rows x count 1 != 5
    assert set(response) - {"ResponseMetadata"} == {"queryLanguage", "results", "statistics", "status"}
    assert response["statistics"]["resultCount"] == 3.0


def test_results_page_by_max_items(service: Any) -> None:
    _, logs = service(polls_until_running=0, polls_until_complete=0)
    put(logs, [((DAY + i) * 1000, f"line {i}") for i in range(5)])
    query_id = logs.start_query(logGroupName=GROUP, startTime=DAY, endTime=DAY + 10, queryString="fields @message")[
        "queryId"
    ]
    first = logs.get_query_results(queryId=query_id, maxItems=3)
    second = logs.get_query_results(queryId=query_id, maxItems=3, nextToken=first["nextToken"])
    assert [len(first["results"]), len(second["results"])] == [3, 2]
    assert "nextToken" not in second


def test_more_than_the_concurrency_cap_gives_limit_exceeded(service: Any) -> None:
    _, logs = service(concurrency_cap=2, polls_until_running=1, polls_until_complete=2)
    put(logs, [(DAY * 1000, "x")])
    start = {"logGroupName": GROUP, "startTime": DAY, "endTime": DAY + 1, "queryString": "fields @message"}
    first = logs.start_query(**start)["queryId"]
    logs.start_query(**start)

    with pytest.raises(ClientError) as err:
        logs.start_query(**start)
    assert error_code(err) == "LimitExceededException"

    poll(logs, first)  # one finishes, a slot frees up
    logs.start_query(**start)


@pytest.mark.parametrize("status", ["Failed", "Timeout"])
def test_fail_next_ends_the_next_matching_query_that_way(service: Any, status: str) -> None:
    double, logs = service(polls_until_running=0, polls_until_complete=1)
    put(logs, [(DAY * 1000, "x")])
    double.fail_next(status, when=lambda q: "doomed" in q.query_string)
    start = {"logGroupName": GROUP, "startTime": DAY, "endTime": DAY + 1}
    fine = logs.start_query(queryString="fields @message", **start)["queryId"]
    doomed = logs.start_query(queryString="fields @message # doomed", **start)["queryId"]
    again = logs.start_query(queryString="fields @message # doomed", **start)["queryId"]

    assert [r["status"] for r in poll(logs, fine)] == ["Running", "Complete"]
    assert [r["status"] for r in poll(logs, doomed)] == ["Running", status]
    assert poll(logs, doomed)[-1]["results"] == []
    assert poll(logs, again)[-1]["status"] == "Complete"  # the directive was used once


def test_stop_query_cancels_and_cannot_stop_twice(service: Any) -> None:
    double, logs = service(polls_until_running=1, polls_until_complete=5)
    put(logs, [(DAY * 1000, "x")])
    query_id = logs.start_query(logGroupName=GROUP, startTime=DAY, endTime=DAY + 1, queryString="fields @message")[
        "queryId"
    ]

    assert logs.stop_query(queryId=query_id)["success"] is True
    assert logs.get_query_results(queryId=query_id)["status"] == "Cancelled"
    assert double.query(query_id).status == "Cancelled"
    with pytest.raises(ClientError) as err:
        logs.stop_query(queryId=query_id)
    assert error_code(err) == "InvalidParameterException"


def test_unknown_query_id_is_resource_not_found(service: Any) -> None:
    _, logs = service()
    for call in (logs.get_query_results, logs.stop_query):
        with pytest.raises(ClientError) as err:
            call(queryId="11111111-2222-3333-4444-555555555555")
        assert error_code(err) == "ResourceNotFoundException"


def test_log_group_identifiers_accept_names_and_arns_in_other_regions_and_accounts(service: Any) -> None:
    double, logs = service(polls_until_running=0, polls_until_complete=0)
    put(logs, [(DAY * 1000, json.dumps({"n": 1}))], group="/local")
    other = logs_backends["210987654321"]["eu-west-1"]  # a source account in another region
    other.create_log_group("/remote", tags={})
    other.create_log_stream("/remote", "s")
    other.put_log_events("/remote", "s", [{"timestamp": DAY * 1000 + 5, "message": json.dumps({"n": 2})}])
    remote = "arn:aws:logs:eu-west-1:210987654321:log-group:/remote"

    query_id = logs.start_query(
        logGroupIdentifiers=["/local", remote], startTime=DAY, endTime=DAY + 1, queryString="stats sum(n) as s by @log"
    )["queryId"]

    (response,) = poll(logs, query_id)
    assert [{f["field"]: f["value"] for f in row} for row in response["results"]] == [
        {"@log": f"{ACCOUNT}:/local", "s": "1"},
        {"@log": "210987654321:/remote", "s": "2"},
    ]
    assert double.started[0].resolved_groups == ((ACCOUNT, REGION, "/local"), ("210987654321", "eu-west-1", "/remote"))
    # "If you specify an ARN [...] Don't include an * at the end." (StartQuery API reference)
    with pytest.raises(ClientError) as err:
        logs.start_query(
            logGroupIdentifiers=[remote + ":*"], startTime=DAY, endTime=DAY + 1, queryString="fields @message"
        )
    assert error_code(err) == "InvalidParameterException"


def test_end_time_is_inclusive_to_its_last_millisecond(service: Any) -> None:
    _, logs = service(polls_until_running=0, polls_until_complete=0)
    start, end = DAY + 100, DAY + 200
    put(
        logs,
        [
            (start * 1000 - 1, "before"),
            (start * 1000, "first"),
            (end * 1000 + 999, "last"),
            ((end + 1) * 1000, "after"),
        ],
    )
    query_id = logs.start_query(logGroupName=GROUP, startTime=start, endTime=end, queryString="fields @message")[
        "queryId"
    ]
    (response,) = poll(logs, query_id)
    assert [row[0]["value"] for row in response["results"]] == ["first", "last"]


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"logGroupName": None, "logGroupNames": [f"/g{i}" for i in range(51)]}, "InvalidParameterException"),
        ({"logGroupNames": [GROUP]}, "InvalidParameterException"),  # both logGroupName and logGroupNames
        ({"logGroupName": "/nope"}, "ResourceNotFoundException"),
        ({"queryString": "fields @message " + "#" * 10_000}, "InvalidParameterException"),
        ({"limit": 100_001}, "InvalidParameterException"),
        ({"endTime": DAY - 1}, "InvalidParameterException"),
        ({"queryString": "fields @message | nonsense"}, "MalformedQueryException"),
    ],
)
def test_start_query_rejects_bad_requests(service: Any, change: dict[str, Any], code: str) -> None:
    _, logs = service()
    put(logs, [(DAY * 1000, "x")])
    request = {"logGroupName": GROUP, "startTime": DAY, "endTime": DAY + 1, "queryString": "fields @message", **change}
    with pytest.raises(ClientError) as err:
        logs.start_query(**{k: v for k, v in request.items() if v is not None})
    assert error_code(err) == code


def test_malformed_query_reports_where(service: Any) -> None:
    _, logs = service()
    put(logs, [(DAY * 1000, "x")])
    with pytest.raises(ClientError) as err:
        logs.start_query(logGroupName=GROUP, startTime=DAY, endTime=DAY + 1, queryString="fields a | bogus b")
    assert err.value.response["queryCompileError"]["location"] == {"startCharOffset": 11, "endCharOffset": 16}


@pytest.mark.parametrize("code", ["ThrottlingException", "LimitExceededException"])
def test_throttle_next_fails_that_many_start_query_calls(service: Any, code: str) -> None:
    double, logs = service()
    put(logs, [(DAY * 1000, "x")])
    double.throttle_next(2, code=code)
    start = {"logGroupName": GROUP, "startTime": DAY, "endTime": DAY + 1, "queryString": "fields @message"}
    for _ in range(2):
        with pytest.raises(ClientError) as err:
            logs.start_query(**start)
        assert error_code(err) == code
    logs.start_query(**start)
    assert len(double.started) == 1


def test_concurrent_polling_from_threads(service: Any) -> None:
    # The product runs queries from a thread pool; every one must get its own, complete answer.
    _, logs = service(polls_until_running=1, polls_until_complete=3)
    put(logs, [((DAY + i) * 1000, json.dumps({"n": i})) for i in range(20)])

    def run(width: int) -> str:
        query = f"filter n < {width} | stats count(*) as c"
        query_id = logs.start_query(logGroupName=GROUP, startTime=DAY, endTime=DAY + 60, queryString=query)["queryId"]
        return str(poll(logs, query_id)[-1]["results"][0][0]["value"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(run, range(1, 17))) == [str(width) for width in range(1, 17)]


def test_describe_queries_lists_status(service: Any) -> None:
    _, logs = service(polls_until_running=0, polls_until_complete=1)
    put(logs, [(DAY * 1000, "x")])
    query_id = logs.start_query(logGroupName=GROUP, startTime=DAY, endTime=DAY + 1, queryString="fields @message")[
        "queryId"
    ]
    assert [(q["queryId"], q["status"]) for q in logs.describe_queries(logGroupName=GROUP)["queries"]] == [
        (query_id, "Running")
    ]
    poll(logs, query_id)
    assert logs.describe_queries(status="Complete")["queries"][0]["queryId"] == query_id


def test_answers_through_the_embedded_moto_server(aws: Any) -> None:
    # The demo and the product's end-to-end tests reach moto over HTTP (AWS_ENDPOINT_URL); the double answers there too.
    logs = aws.client("logs")
    put(logs, [(DAY * 1000, json.dumps({"n": 20})), (DAY * 1000 + 1, json.dumps({"n": 22}))])
    query_id = logs.start_query(logGroupName=GROUP, startTime=DAY, endTime=DAY, queryString="stats sum(n) as total")[
        "queryId"
    ]
    assert poll(logs, query_id)[-1]["results"] == [[{"field": "total", "value": "42"}]]
    assert aws.insights.started[0].query_string == "stats sum(n) as total"


# -- the public sample records, verbatim (FACTS §1; /work/shared/samples) -------------------------------------------------

HAIKU = json.loads(
    r"""{
  "timestamp": "2025-12-17T01:09:56Z",
  "accountId": "027425703396",
  "region": "us-east-1",
  "requestId": "8d8903c3-e948-4c21-b4d9-6029f785f196",
  "operation": "ConverseStream",
  "modelId": "global.anthropic.claude-haiku-4-5-20251001-v1:0",
  "identity": {
    "arn": "arn:aws:iam::027425703396:user/robbat1"
  },
  "input": {
    "inputContentType": "application/json",
    "inputBodyJson": {
      "messages": [
        {
          "role": "user",
          "content": [
            {
              "text": "What immunizations does patient PAT001 need?"
            }
          ]
        }
      ],
      "system": [
        {
          "text": "You are a helpful healthcare virtual assistant that helps the user with booking appointment for a immunization for a child.\nUse the tools/functions available to you to help the user.\n\nFollow these strict rules:\n1. Use patient_id=PAT001 for patient operations\n2. Only use Immunization EMR for patient_id=PAT001 for searching and booking\n\nDo not make up any information. Ask for clarification if needed.\n\nAlways format your responses in a clear, friendly manner with proper spacing and structure.\n"
        }
      ],
      "inferenceConfig": {
        "temperature": 0.7
      },
      "toolConfig": {
        "tools": [
          {
            "toolSpec": {
              "name": "LocalFHIRAPI___bookAppointment",
              "description": "Book appointment for the given datetime slot",
              "inputSchema": {
                "json": {
                  "type": "object",
                  "properties": {
                    "date_string": {
                      "examples": [
                        "2025-01-15 10:00"
                      ],
                      "type": "string",
                      "description": "Preferred date and time in YYYY-MM-DD HH:MM format"
                    }
                  },
                  "required": [
                    "date_string"
                  ]
                }
              }
            }
          },
          {
            "toolSpec": {
              "name": "LocalFHIRAPI___getPatient",
              "description": "Returns patient details based on patient id from mock data",
              "inputSchema": {
                "json": {
                  "type": "object",
                  "properties": {
                    "patient_id": {
                      "examples": [
                        "patient-001"
                      ],
                      "type": "string",
                      "description": "ID of the patient to return (e.g., patient-001, patient-002, patient-003)"
                    }
                  },
                  "required": [
                    "patient_id"
                  ]
                }
              }
            }
          },
          {
            "toolSpec": {
              "name": "LocalFHIRAPI___getSlots",
              "description": "Returns doctor details along with available datetime slots near the requested date",
              "inputSchema": {
                "json": {
                  "type": "object",
                  "properties": {
                    "date_string": {
                      "examples": [
                        "2025-01-15"
                      ],
                      "type": "string",
                      "description": "Preferred date in YYYY-MM-DD format"
                    }
                  },
                  "required": [
                    "date_string"
                  ]
                }
              }
            }
          },
          {
            "toolSpec": {
              "name": "LocalFHIRAPI___searchImmunization",
              "description": "Search immunization records based on Patient ID",
              "inputSchema": {
                "json": {
                  "type": "object",
                  "properties": {
                    "search_value": {
                      "examples": [
                        "patient-001"
                      ],
                      "type": "string",
                      "description": "Patient ID to search for immunization records"
                    }
                  },
                  "required": [
                    "search_value"
                  ]
                }
              }
            }
          }
        ],
        "toolChoice": {
          "auto": {}
        }
      }
    },
    "inputTokenCount": 1023,
    "cacheReadInputTokenCount": 0,
    "cacheWriteInputTokenCount": 0
  },
  "output": {
    "outputContentType": "application/json",
    "outputBodyJson": {
      "output": {
        "message": {
          "role": "assistant",
          "content": [
            {
              "text": "I'll search for the immunization records for patient PAT001 to see what immunizations they need."
            },
            {
              "toolUse": {
                "toolUseId": "tooluse_50nrLqI5R2ChSyM6RY4NFw",
                "name": "LocalFHIRAPI___searchImmunization",
                "type": "tool_use",
                "input": {
                  "search_value": "PAT001"
                }
              }
            }
          ]
        }
      },
      "stopReason": "tool_use",
      "metrics": {
        "latencyMs": 858
      },
      "usage": {
        "inputTokens": 1023,
        "outputTokens": 89,
        "totalTokens": 1112
      }
    },
    "outputTokenCount": 89
  },
  "inferenceRegion": "us-east-2",
  "schemaType": "ModelInvocationLog",
  "schemaVersion": "1.0"
}"""
)  # 1023 in / 89 out, 2025-12-17T01:09:56Z
NOVA = json.loads(
    r"""{
    "schemaType": "ModelInvocationLog",
    "schemaVersion": "1.0",
    "timestamp": "2025-03-11T00:38:02Z",
    "accountId": "XXXXXXXXXXXXX",
    "identity": {
        "arn": "arn:aws:iam::XXXXXXXXXXXX:user/dheeraj"
    },
    "region": "us-east-1",
    "requestId": "ff4b6c63-5561-4431-93b8-06a817275900",
    "operation": "ConverseStream",
    "modelId": "amazon.nova-lite-v1:0",
    "input": {
        "inputContentType": "application/json",
        "inputBodyJson": {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "text": "hello how are you"
                        }
                    ]
                }
            ],
            "inferenceConfig": {
                "maxTokens": 512,
                "temperature": 0.7,
                "topP": 0.9,
                "stopSequences": []
            },
            "additionalModelRequestFields": {}
        },
        "inputTokenCount": 4,
        "cacheReadInputTokenCount": 0,
        "cacheWriteInputTokenCount": 0
    },
    "output": {
        "outputContentType": "application/json",
        "outputBodyJson": {
            "output": {
                "message": {
                    "role": "assistant",
                    "content": [
                        {
                            "text": "Hello! I'm doing well, thank you for asking. How can I assist you today? If you have any questions or need help with something, feel free to let me know."
                        }
                    ]
                }
            },
            "stopReason": "end_turn",
            "metrics": {
                "latencyMs": 302
            },
            "usage": {
                "inputTokens": 4,
                "outputTokens": 38,
                "totalTokens": 42
            }
        },
        "outputTokenCount": 38
    }
}"""
)  # 4 in / 38 out, 2025-03-11T00:38:02Z
