"""The Logs Insights adapter against the test double: truncation, the 200-field limit, throttling, failures and
deadlines end in an exact report or a loud failure — never a quiet undercount."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import boto3
import pandas as pd
import pytest
from botocore.config import Config

from lambda_function.config import parse_log_group
from lambda_function.errors import IncompleteResults, QueryFailed
from lambda_function.pricing.engine import load_context_tiers
from lambda_function.sources.insights import InsightsRunner, plan_queries, rows_of
from lambda_function.sources.query import COUNT_FIELD, SPLIT_FIELD, usage_query
from lambda_function.sources.usage import COUNTS, IMAGE_KEYS, KEYS, OPTION_KEYS, TIER_KEYS, usage_frame

# moto drops events more than 14 days old, so the logs are yesterday's (UTC), whatever day the suite runs.
DAY_START = int(datetime.combine(datetime.now(UTC).date() - timedelta(days=1), time(0), tzinfo=UTC).timestamp())
DAY_END = DAY_START + 86_400 - 1  # inclusive end second
ACCOUNT = "123456789012"
NO_RETRIES = Config(retries={"total_max_attempts": 1})


def record(
    second: int,
    user: str,
    model: str = "amazon.nova-lite-v1:0",
    i: int = 10,
    o: int = 1,
    region="us-east-1",
    body_fields: int = 1,
    error: str | None = None,
) -> dict:
    """A compact invocation record; `body_fields` messages in the body come BEFORE the token counts."""
    rec = {
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": datetime.fromtimestamp(DAY_START + second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "accountId": ACCOUNT,
        "identity": {"arn": f"arn:aws:iam::{ACCOUNT}:user/{user}"},
        "region": region,
        "requestId": f"req-{user}-{second}",
        "operation": "Converse",
        "modelId": model,
    }
    if error:
        rec["errorCode"] = error
        return rec
    rec["input"] = {
        "inputContentType": "application/json",
        "inputBodyJson": {"messages": [{"role": "user", "content": [{"text": f"m{n}"}]} for n in range(body_fields)]},
        "inputTokenCount": i,
    }
    rec["output"] = {"outputContentType": "application/json", "outputTokenCount": o}
    return rec


def put(logs, group: str, records: list[dict]) -> None:
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    events = sorted(
        (
            {
                "timestamp": int(datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00")).timestamp() * 1000),
                "message": json.dumps(r, separators=(",", ":")),
            }
            for r in records
        ),
        key=lambda e: e["timestamp"],
    )
    logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=events)


# The product's query, banded at the shipped tier table's thresholds (100K, 200K and 272K input tokens).
USAGE_QUERY = usage_query(load_context_tiers(Path(__file__).resolve().parent.parent / "pricing").thresholds)


def runner(**kwargs) -> InsightsRunner:
    clients: dict[str, object] = {}

    def client(region: str):
        # No botocore retries here: throttling must reach (and be shown to be handled by) the runner itself.
        return clients.setdefault(region, boto3.client("logs", region_name=region, config=NO_RETRIES))

    kwargs.setdefault("sleep", lambda s: None)
    kwargs.setdefault("split_field", SPLIT_FIELD)
    return InsightsRunner(client, **kwargs)


def run(groups: list[str], limit: int = 10_000, default_region: str = "us-east-1", **kwargs):
    specs = plan_queries([parse_log_group(g) for g in groups], default_region, DAY_START, DAY_END, USAGE_QUERY, limit)
    results, totals = runner(**kwargs).run_all(specs, COUNT_FIELD)
    return usage_frame(page for r in results for page in r.pages), totals


def test_a_truncated_result_is_split_until_exact(aws):
    # 40 identities x 3 calls spread over the day: 40 groups, but the limit is 7 rows per query.
    records = [record(second=(u * 2000 + k * 600), user=f"u{u:02d}", i=u + k, o=1) for u in range(40) for k in range(3)]
    put(aws.client("logs"), "/bedrock/a", records)
    frame, totals = run(["/bedrock/a"], limit=7)
    assert totals.splits > 0
    assert len(frame) == 40
    assert frame["invocations"].sum() == 120
    # user u07: inputs 7+0, 7+1, 7+2 = 24
    row = frame[frame["identity_arn"] == f"arn:aws:iam::{ACCOUNT}:user/u07"].iloc[0]
    assert (row["input_tokens"], row["output_tokens"], row["invocations"]) == (24, 3, 3)
    assert totals.records_matched == 120


def test_a_truncated_result_keeps_the_identities_it_holds_whole_and_asks_only_for_the_rest(aws):
    # GIVEN 40 identities, each calling all day long (3 calls from early to late): a split by time would find
    # every identity in every part. The limit is 10 rows.
    records = [record(second=k * 40_000 + u, user=f"u{u:02d}", i=1, o=1) for u in range(40) for k in range(3)]
    put(aws.client("logs"), "/bedrock/dense", records)

    frame, totals = run(["/bedrock/dense"], limit=10)

    # THEN rows come sorted by identity: each result of 10 rows keeps its first 9 identities (the 10th may have
    # more groups past the limit) and the next query starts at that 10th identity: 9 + 9 + 9 + 9 + 4 = 40
    assert len(frame) == 40 and frame["invocations"].sum() == 120
    assert totals.queries == 5 and totals.splits == 4
    assert totals.rows_fetched == 10 + 10 + 10 + 10 + 4  # each group fetched once, plus one re-read per split
    continued = [q.query_string for q in aws.insights.started[1:]]
    assert [q.split("| filter ")[1].split("\n")[0] for q in continued] == [
        f'i >= "arn:aws:iam::{ACCOUNT}:user/u{n:02d}"' for n in (9, 18, 27, 36)
    ]


def test_one_identity_over_the_limit_is_sliced_by_time_as_its_density_needs(aws):
    # GIVEN one identity using 30 models, one call each, evenly over the day (every 2,880 s); 8 rows a query
    records = [record(second=n * 2_880, user="solo", model=f"acme.model-{n:02d}", i=n) for n in range(30)]
    put(aws.client("logs"), "/bedrock/solo", records)

    frame, totals = run(["/bedrock/solo"], limit=8)

    # THEN 8 rows of 8 records stand for about 8 x 30 / 8 = 30 rows; at 6.4 rows a part (80 % of 8) that is
    # ceil(30 / 6.4) = 5 slices of the day (17,280 s each), each with 6 of the calls, all complete at once
    assert len(frame) == 30 and frame["input_tokens"].sum() == sum(range(30))
    assert totals.queries == 1 + 5 and totals.rows_fetched == 8 + 30


def test_a_burst_inside_one_second_is_split_by_identity(aws):
    # six identities in the same second: no split by time can separate them
    put(aws.client("logs"), "/bedrock/burst", [record(second=5, user=f"u{u}", i=u) for u in range(6)])
    frame, totals = run(["/bedrock/burst"], limit=3)
    assert len(frame) == 6 and frame["input_tokens"].sum() == 0 + 1 + 2 + 3 + 4 + 5
    assert totals.records_matched == 6 and totals.splits >= 1


def test_too_many_groups_of_one_identity_in_one_second_fails_loudly(aws):
    # one identity, four models, one second, three rows a query: neither identity nor time can separate them
    models = ["amazon.nova-lite-v1:0", "amazon.nova-micro-v1:0", "amazon.nova-pro-v1:0", "cohere.embed-english-v3"]
    put(aws.client("logs"), "/bedrock/one", [record(second=5, user="solo", model=m) for m in models])
    with pytest.raises(IncompleteResults, match="single second"):
        run(["/bedrock/one"], limit=3)


def test_records_without_an_identity_are_kept_through_a_split(aws):
    # Records that lack identity.arn come out as "" (usage: "unknown") and fall in the first identity range.
    anonymous = record(second=7, user="x", i=1000)
    del anonymous["identity"]
    records = [anonymous] + [record(second=100 + u, user=f"u{u:02d}", i=1) for u in range(12)]
    put(aws.client("logs"), "/bedrock/anon", records)
    frame, totals = run(["/bedrock/anon"], limit=4)
    assert totals.splits >= 1 and totals.records_matched == 13
    assert frame.loc[frame["identity_arn"] == "unknown", "input_tokens"].tolist() == [1000]


def test_a_refused_limit_falls_back_to_10000_rows_once_per_run(aws, caplog):
    # GIVEN a service that accepts at most 10,000 rows a query (the double refuses more, as older endpoints did)
    aws.insights.max_limit = 10_000
    put(aws.client("logs"), "/bedrock/a", [record(1, "a", i=2)])
    put(aws.client("logs"), "/bedrock/b", [record(2, "b", i=3)])
    # WHEN a run asks for 100,000 (the default), over two batches of log groups in two regions
    put(aws.client("logs", "eu-west-1"), "/bedrock/c", [record(3, "c", i=4, region="eu-west-1")])
    eu_arn = f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:/bedrock/c"
    with caplog.at_level("WARNING", logger="lambda_function.sources.insights"):
        frame, totals = run(["/bedrock/a", "/bedrock/b", eu_arn], limit=100_000, concurrency=1)
    # THEN every query that ran asked for 10,000, the answer is whole, and the fallback was said once
    assert [q.limit for q in aws.insights.started] == [10_000, 10_000]
    assert frame["input_tokens"].sum() == 2 + 3 + 4 and totals.row_limit == 10_000
    assert sum("refused a limit above 10000" in r.getMessage() for r in caplog.records) == 1


def test_results_are_read_a_page_at_a_time_and_polls_carry_no_partial_rows(aws):
    # GIVEN 10,050 groups: more than the 10,000 rows one GetQueryResults call returns
    records = [record(second=u % 80_000, user=f"u{u:05d}", i=1) for u in range(10_050)]
    put(aws.client("logs"), "/bedrock/wide", records)
    aws.insights.polls_until_running, aws.insights.polls_until_complete = 0, 2
    asked: list[dict] = []
    r = runner()
    client = r._client("us-east-1")
    client.meta.events.register(
        "provide-client-params.cloudwatch-logs.GetQueryResults", lambda params, **_: asked.append(dict(params))
    )
    specs = plan_queries([parse_log_group("/bedrock/wide")], "us-east-1", DAY_START, DAY_END, USAGE_QUERY, 100_000)
    results, totals = r.run_all(specs, COUNT_FIELD)
    frame = usage_frame(page for result in results for page in result.pages)
    # THEN one query, every group once, and each row fetched once
    assert totals.queries == 1 and len(frame) == 10_050 and totals.rows_fetched == 10_050
    # the two Running polls and the Complete one ask for one row; the rest comes in pages of up to 10,000
    assert [a.get("maxItems") for a in asked] == [1, 1, 1, 10_000, 10_000]
    assert [len(a) for a in asked[:3]] == [2, 2, 2] and all("nextToken" in a for a in asked[3:])
    assert [p.size for p in results[0].pages] == [1, 10_000, 49]


def test_rows_read_from_the_raw_body_equal_botocores_parse(aws):
    records = [
        record(second=u, user=f"u{u}", i=u, o=2 * u, error="ThrottlingException" if u == 3 else None) for u in range(20)
    ]
    put(aws.client("logs"), "/bedrock/same", records)
    results, _ = runner().run_all(
        plan_queries([parse_log_group("/bedrock/same")], "us-east-1", DAY_START, DAY_END, USAGE_QUERY, 100),
        COUNT_FIELD,
    )
    plain = boto3.client("logs", region_name="us-east-1", config=NO_RETRIES)  # no hook: botocore parses
    answer = plain.get_query_results(queryId=results[0].query_id)
    assert "results" not in runner()._client("us-east-1").get_query_results(queryId=results[0].query_id)
    expected = [{f["field"]: f["value"] for f in row} for row in answer["results"]]
    assert list(rows_of(results[0].pages)) == expected and len(expected) == 20


def test_token_counts_after_200_fields_are_still_counted(aws):
    # 600 messages of (role, text) flatten to 1,200+ fields before inputTokenCount: Insights would not extract it.
    big = record(second=60, user="big", i=123_456, o=789, body_fields=600)
    message = json.dumps(big)
    assert message.count('"role"') + message.count('"text"') == 1_200
    assert message.index('"inputTokenCount"') > message.rindex('"text"')
    records = [big, record(second=61, user="big", i=4, o=5)]
    put(aws.client("logs"), "/bedrock/big", records)
    frame, _ = run(["/bedrock/big"])
    assert (frame["input_tokens"].sum(), frame["output_tokens"].sum()) == (123_456 + 4, 789 + 5)
    # the parsed count bands the big call too: above 100K input tokens (band 1), apart from the small one (band 0)
    assert dict(zip(frame["input_band"], frame["input_tokens"], strict=True)) == {1: 123_456, 0: 4}


def test_failed_calls_are_counted_and_non_json_lines_ignored(aws):
    logs = aws.client("logs")
    put(logs, "/bedrock/mixed", [record(10, "a", i=5, o=5), record(11, "a", error="ThrottlingException")])
    logs.put_log_events(
        logGroupName="/bedrock/mixed",
        logStreamName="s",
        logEvents=[{"timestamp": (DAY_START + 12) * 1000, "message": "Bedrock logging permission check"}],
    )
    frame, totals = run(["/bedrock/mixed"])
    assert (frame.loc[0, "invocations"], frame.loc[0, "failed_invocations"], frame.loc[0, "input_tokens"]) == (2, 1, 5)
    assert totals.records_matched == 2


@pytest.mark.parametrize("status", ["Failed", "Timeout", "Cancelled"])
def test_a_query_that_does_not_complete_is_an_error_naming_it(aws, status):
    put(aws.client("logs"), "/bedrock/f", [record(1, "a")])
    aws.insights.fail_next(status)
    with pytest.raises(QueryFailed, match=rf"ended {status}") as caught:
        run(["/bedrock/f"])
    assert "/bedrock/f" in str(caught.value)


def test_the_deadline_stops_running_queries(aws):
    put(aws.client("logs"), "/bedrock/slow", [record(1, "a")])
    aws.insights.polls_until_running = 0
    aws.insights.polls_until_complete = 1_000
    now = [0.0]

    def clock():
        now[0] += 1.0  # every look at the clock is a second later
        return now[0]

    with pytest.raises(QueryFailed, match="deadline"):
        run(["/bedrock/slow"], clock=clock, deadline=10.0)
    assert aws.insights.started[-1].status == "Cancelled"


def test_one_failed_query_stops_the_others(aws):
    # GIVEN two regions, so two queries; the eu-west-1 one fails after 3 polls, the other would run 1,000 polls
    put(aws.client("logs"), "/bedrock/us", [record(1, "a")])
    put(aws.client("logs", "eu-west-1"), "/bedrock/eu", [record(2, "b", region="eu-west-1")])
    aws.insights.polls_until_running = 0
    aws.insights.polls_until_complete = 1_000
    aws.insights.fail_next("Failed", when=lambda q: q.region == "eu-west-1", polls=3)
    eu_arn = f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:/bedrock/eu"

    # WHEN both run side by side (polling without waiting)
    with pytest.raises(QueryFailed, match="ended Failed") as caught:
        run(["/bedrock/us", eu_arn], concurrency=2)

    # THEN the error names the failed query, and the us-east-1 query was stopped rather than left to finish
    assert "eu-west-1" in str(caught.value)
    us_query = next(q for q in aws.insights.started if q.region == "us-east-1")
    assert us_query.status == "Cancelled"
    assert us_query.polls < 1_000


def test_concurrency_limits_are_retried(aws):
    put(aws.client("logs"), "/bedrock/t", [record(1, "a", i=3)])
    aws.insights.throttle_next(5, "LimitExceededException")
    aws.insights.throttle_next(2, "ThrottlingException")
    frame, _ = run(["/bedrock/t"])  # the 8th attempt starts
    assert frame.loc[0, "input_tokens"] == 3


def test_a_limit_that_never_clears_is_raised_for_lambda_to_retry(aws):
    put(aws.client("logs"), "/bedrock/t", [record(1, "a", i=3)])
    aws.insights.throttle_next(8, "LimitExceededException")
    with pytest.raises(Exception, match="LimitExceededException"):
        run(["/bedrock/t"])


def test_more_than_50_log_groups_are_batched(aws):
    logs = aws.client("logs")
    groups = [f"/bedrock/g{n:02d}" for n in range(51)]
    for n, group in enumerate(groups):
        put(logs, group, [record(n, "a", i=n)])
    frame, totals = run(groups)
    assert totals.queries == 2  # 50 + 1
    assert frame.loc[0, "input_tokens"] == sum(range(51))  # 0 + 1 + ... + 50 = 1275
    assert sorted(len(q.log_groups) for q in aws.insights.started) == [1, 50]


def test_three_log_groups_in_two_regions_equal_the_sum_of_each(aws):
    put(aws.client("logs"), "/bedrock/use1-a", [record(1, "a", i=10), record(2, "b", i=20)])
    put(
        aws.client("logs"),
        "/bedrock/use1-b",
        [record(3, "a", i=1, model="us.anthropic.claude-3-5-haiku-20241022-v1:0")],
    )
    put(aws.client("logs", "eu-west-1"), "/bedrock/euw1", [record(4, "a", i=100, region="eu-west-1")])
    eu_arn = f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:/bedrock/euw1:*"
    together, totals = run(["/bedrock/use1-a", "/bedrock/use1-b", eu_arn])
    assert totals.queries == 2  # one per region
    parts = [run([g])[0] for g in ("/bedrock/use1-a", "/bedrock/use1-b", eu_arn)]
    keys = KEYS + IMAGE_KEYS + TIER_KEYS + OPTION_KEYS
    # (each run's text keys are categoricals over its own values: compared as values)
    separately = pd.concat([p.astype(object) for p in parts]).groupby(keys, as_index=False)[COUNTS].sum()
    assert together.astype(object)[keys + COUNTS].equals(separately.astype(object))
    assert together["input_tokens"].sum() == 10 + 20 + 1 + 100


def test_requests_are_banded_by_the_tier_thresholds_their_input_is_above(aws):
    sonnet = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
    calls = [
        record(1, "a", sonnet, i=90_000),
        record(2, "a", sonnet, i=200_000),
        record(3, "a", sonnet, i=200_001),
        record(4, "a", sonnet, i=450_000),
        record(5, "a", sonnet, i=460_000),
    ]
    put(aws.client("logs"), "/bedrock/long", calls)
    frame, _ = run(["/bedrock/long"])
    got = {r.input_band: (r.input_tokens, r.invocations) for r in frame.itertuples()}
    # 100K < 200,000 (band 1); 200K < 200,001 <= 272K (band 2); 450,000 and 460,000 above 272K (band 3)
    assert got == {0: (90_000, 1), 1: (200_000, 1), 2: (200_001, 1), 3: (910_000, 2)}


def test_image_settings_are_aggregated_by_the_query(aws):
    def image(second, width, height, quality, n):
        rec = record(second, "artist", model="amazon.titan-image-generator-v1", i=12, o=0)
        rec["input"]["inputBodyJson"] = {
            "taskType": "TEXT_IMAGE",
            "textToImageParams": {"text": "a lighthouse"},
            "imageGenerationConfig": {"numberOfImages": n, "quality": quality, "width": width, "height": height},
        }
        return rec

    put(
        aws.client("logs"),
        "/bedrock/img",
        [
            image(1, 1024, 1024, "premium", 2),
            image(2, 1024, 1024, "premium", 2),
            image(3, 512, 512, "standard", 1),
            record(4, "artist", model="amazon.titan-image-generator-v1", error="ThrottlingException"),
        ],
    )
    frame, _ = run(["/bedrock/img"])
    got = {
        (r.image_width, r.image_height, r.image_quality, r.images_per_call): (r.invocations, r.failed_invocations)
        for r in frame.itertuples()
    }
    assert got == {(1024, 1024, "premium", 2): (2, 0), (512, 512, "standard", 1): (1, 0), (-1, -1, "-", -1): (1, 1)}


def test_one_hour_cache_writes_are_read_from_the_logged_bodies(aws):
    sonnet = "global.anthropic.claude-sonnet-4-5-20250929-v1:0"

    def cached(second, user, write, usage=None):
        rec = record(second, user, model=sonnet, i=100, o=10)
        rec["input"]["cacheWriteInputTokenCount"] = write
        if usage is not None:
            rec["output"]["outputBodyJson"] = {"usage": usage}
        return rec

    put(
        aws.client("logs"),
        "/bedrock/ttl",
        [
            # Converse: cacheDetails, in both key orders; 3,000 of 5,000 written for an hour
            cached(
                1,
                "conv",
                5_000,
                {
                    "inputTokens": 100,
                    "cacheDetails": [{"ttl": "5m", "inputTokens": 2_000}, {"ttl": "1h", "inputTokens": 3_000}],
                },
            ),
            cached(2, "conv", 700, {"cacheDetails": [{"inputTokens": 700, "ttl": "1h"}]}),
            # Anthropic InvokeModel: cache_creation; 400 of 1,000 for an hour
            cached(
                3,
                "invoke",
                1_000,
                {
                    "input_tokens": 100,
                    "cache_creation": {"ephemeral_5m_input_tokens": 600, "ephemeral_1h_input_tokens": 400},
                },
            ),
            # no body: the TTL of these 900 writes is not in the log
            cached(4, "nobody", 900),
            # a body with only 5-minute writes: known, none of them 1-hour
            cached(5, "fivemin", 250, {"cacheDetails": [{"ttl": "5m", "inputTokens": 250}]}),
        ],
    )
    frame, _ = run(["/bedrock/ttl"])
    got = {
        r.identity_arn.rsplit("/", 1)[-1]: (
            r.cache_write_tokens,
            r.cache_write_1h_tokens,
            r.cache_write_ttl_unknown_tokens,
        )
        for r in frame.itertuples()
    }
    # conv: 5,000 + 700 written, 3,000 + 700 of them for an hour, all with a known TTL
    assert got == {
        "conv": (5_700, 3_700, 0),
        "invoke": (1_000, 400, 0),
        "nobody": (900, 0, 900),
        "fivemin": (250, 0, 0),
    }


def test_latency_mode_and_service_tier_are_group_keys(aws):
    def call(second, user, latency=None, tier=None, body_fields=1):
        rec = record(second, user, body_fields=body_fields)
        if latency:
            rec["performanceConfig"] = {"latency": latency}
        if tier:
            rec["input"]["inputBodyJson"]["serviceTier"] = {"type": tier}
        return rec

    put(
        aws.client("logs"),
        "/bedrock/options",
        [
            call(1, "a"),
            call(2, "a", latency="optimized"),
            call(3, "a", latency="optimized", body_fields=400),  # past the 200-field limit: read by parse
            call(4, "a", tier="priority"),
            call(5, "a", tier="flex", body_fields=400),
            call(6, "a", latency="standard", tier="default"),
        ],
    )
    frame, _ = run(["/bedrock/options"])
    got = {(r.latency, r.service_tier): r.invocations for r in frame.itertuples()}
    assert got == {
        ("standard", "default"): 2,
        ("optimized", "default"): 2,
        ("standard", "priority"): 1,
        ("standard", "flex"): 1,
    }


def test_request_metadata_values_are_group_keys_even_past_the_200_field_limit(aws):
    # GIVEN calls tagged through Converse requestMetadata, one of them a 600-message record: Insights extracts no
    # field after its first 200, and requestMetadata comes after the bodies, so the parse fallback must read it
    def tagged(second, user, meta, fields=1, i=10):
        rec = record(second=second, user=user, i=i, body_fields=fields)
        if meta is not None:
            rec["requestMetadata"] = meta
        return rec

    records = [
        tagged(1, "a", {"team": "search", "cost-center": "cc-1"}),
        tagged(2, "a", {"cost-center": "cc-1", "team": "search"}, fields=600, i=20),
        tagged(3, "a", {"team": "data"}),
        tagged(4, "a", None),
    ]
    put(aws.client("logs"), "/bedrock/meta", records)
    query = usage_query((), ["team", "cost-center"])
    specs = plan_queries([parse_log_group("/bedrock/meta")], "us-east-1", DAY_START, DAY_END, query, 100)
    results, _ = runner().run_all(specs, COUNT_FIELD)
    frame = usage_frame((page for r in results for page in r.pages), ["team", "cost-center"])
    # THEN one row per (team, cost-center) pair; "" where a call had no value
    found = {(row["meta:team"], row["meta:cost-center"]): row["input_tokens"] for _, row in frame.iterrows()}
    assert found == {("search", "cc-1"): 10 + 20, ("data", ""): 10, ("", ""): 10}


def test_a_service_ordering_the_split_field_unlike_us_fails_loudly_rather_than_miscount(aws):
    # GIVEN identities the double orders as numbers (1, 2, 3, 10, 11, 12) where Python orders text ("1" < "10" <
    # "11" < "12" < "2" < "3"); 5 rows a query
    records = []
    for n, name in enumerate(["1", "2", "3", "10", "11", "12"]):
        rec = record(second=n, user="x")
        rec["identity"] = {"arn": name}
        records.append(rec)
    put(aws.client("logs"), "/bedrock/numeric", records)
    # WHEN the first result (1, 2, 3, 10, 11) keeps what sorts before "11" in our order ("1", "10") and the rest
    # (identity >= "11", by the service's order: 11, 12) matches 2 records where 6 - 2 = 4 were left over
    with pytest.raises(IncompleteResults, match="matched 2 records where 4 were left over"):
        run(["/bedrock/numeric"], limit=5)
