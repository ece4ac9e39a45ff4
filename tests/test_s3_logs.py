"""LOG_SOURCE=s3: the invocation logs delivered to S3, aggregated by the SQL on the engine seam (the embedded engine
here, DuckDB over the same objects Athena reads), give the report Logs Insights gives, byte for byte; and every gap
(an hour without objects, an object cut short, a line that is not JSON) is named, never a silent under-count."""

from __future__ import annotations

import gzip
import json
import os
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from lambda_function.aws import AwsClients
from lambda_function.config import load_config
from lambda_function.engine import EngineError, dialect
from lambda_function.engine.embedded import EmbeddedEngine
from lambda_function.errors import ConfigError, IncompleteResults
from lambda_function.pricing.engine import load_context_tiers
from lambda_function.sources.logs_sql import log_hours, logs_query
from lambda_function.sources.s3logs import MAX_UNREADABLE, S3LogsSource, logs_prefix
from lambda_function.window import ReportWindow
from local_aws.generate import generate_records, put_records
from local_aws.s3_delivery import put_delivered
from tests.support import ACCOUNT_ID, BUCKET, GROUP, SENDER, emails, objects, run, summary_document, text_body
from tests.test_insights_runner import record

LOGS_BUCKET = "bedrock-invocation-logs"
LOCATION = f"s3://{LOGS_BUCKET}/bedrock"
TODAY = datetime.now(UTC).date()
DAY = TODAY - timedelta(days=1)
START = datetime.combine(DAY, time(0), tzinfo=UTC)
END = START + timedelta(days=1)
NOW = datetime.combine(TODAY, time(6, 0), tzinfo=UTC)
ROOT = Path(__file__).resolve().parent.parent
USAGE_THRESHOLDS = load_context_tiers(ROOT / "pricing").thresholds


def _account(aws, monkeypatch, records, **env):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.create_bucket(Bucket=LOGS_BUCKET)
    aws.client("ses").verify_email_identity(EmailAddress=SENDER)
    put_records(aws.client("logs"), GROUP, records)
    keys = put_delivered(s3, LOCATION, ACCOUNT_ID, "us-east-1", records, late_seconds=env.pop("late_seconds", 0))
    for name, value in {
        "LOG_GROUP_NAMES": GROUP,
        "REPORT_BUCKET": BUCKET,
        "SENDER": SENDER,
        "RECIPIENTS": "finops@example.com",
        "REPORT_TIMEZONE": "UTC",
        "LOG_S3_LOCATION": LOCATION,
        **env,
    }.items():
        monkeypatch.setenv(name, value)
    return keys


def _report(aws, monkeypatch, source, day=DAY):
    monkeypatch.setenv("LOG_SOURCE", source)
    result = run({"date": day.isoformat(), "send_email": False}, now=NOW)
    assert result.response["status"] == "ok", result.response
    return result


def test_the_same_report_from_either_source(aws, monkeypatch):
    records = generate_records(START, END, count=2_000, seed=5, large_record_rate=0.02)
    _account(aws, monkeypatch, records, ATTRIBUTION_KEYS="team", late_seconds=30)
    insights = _report(aws, monkeypatch, "cloudwatch")
    s3 = _report(aws, monkeypatch, "s3")
    assert s3.csv == insights.csv
    assert s3.response["invocations"] == insights.response["invocations"] == len(records)
    footer = summary_document(aws, s3.response)["footer"]
    assert footer["source"] == "s3"
    assert footer["records_matched"] == len(records)


# -- the corpus: what holds for Logs Insights holds for the S3-delivered logs ------------------------------------


def _collect(aws, records, raw_lines=(), keys=(), thresholds=USAGE_THRESHOLDS, window=(START, END), now=NOW):
    """The usage frame and totals of the S3 source over `records` (and `raw_lines`, written as they are into one
    more object of the first hour), through the embedded engine."""
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=LOGS_BUCKET)
    put_delivered(s3, LOCATION, ACCOUNT_ID, "us-east-1", records)
    if raw_lines:
        bucket, prefix = logs_prefix(LOCATION, ACCOUNT_ID, "us-east-1")
        body = gzip.compress(("\n".join(raw_lines) + "\n").encode())
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{window[0]:%Y/%m/%d/%H}/raw.json.gz", Body=body)
    env = {"LOG_SOURCE": "s3", "LOG_S3_LOCATION": LOCATION, "REPORT_BUCKET": BUCKET, "AWS_REGION": "us-east-1"}
    config = load_config({**env, "ATTRIBUTION_KEYS": ",".join(keys)})
    source = S3LogsSource(config, AwsClients("us-east-1"), now=lambda: now)
    source.check()
    collected = source.collect(ReportWindow(*window, ZoneInfo("UTC")), thresholds, deadline=float("inf"))
    return collected.frame, collected.totals


def _by_user(frame, *columns):
    return {r["identity_arn"].rsplit("/", 1)[-1]: tuple(r[c] for c in columns) for _, r in frame.iterrows()}


def test_counts_past_the_200_field_limit_bands_and_failed_calls(aws):
    sonnet = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
    records = [
        record(1, "long", sonnet, i=90_000, body_fields=600),  # 600 messages before the counts
        record(2, "long", sonnet, i=200_001),
        record(3, "long", sonnet, i=460_000),
        record(4, "long", sonnet, i=450_000),
        record(5, "failed", error="ThrottlingException"),
    ]
    frame, totals = _collect(aws, records)
    bands = {
        r.input_band: (r.input_tokens, r.invocations) for r in frame.itertuples() if r.identity_arn.endswith("long")
    }
    # 90K: band 0; 200,001 is above 200K (band 2: above 100K and 200K); 450K and 460K above 272K too (band 3)
    assert bands == {0: (90_000, 1), 2: (200_001, 1), 3: (910_000, 2)}
    assert _by_user(frame[frame.identity_arn.str.endswith("failed")], "invocations", "failed_invocations") == {
        "failed": (1, 1)
    }
    assert totals.records_matched == 5


def test_images_cache_ttls_tiers_latency_and_metadata(aws):
    def image(second, width, quality, n):
        rec = record(second, "artist", model="amazon.titan-image-generator-v1", i=12, o=0)
        rec["input"]["inputBodyJson"] = {
            "taskType": "TEXT_IMAGE",
            "imageGenerationConfig": {"numberOfImages": n, "quality": quality, "width": width, "height": width},
        }
        return rec

    def cached(second, user, write, usage=None):
        rec = record(second, user, model="global.anthropic.claude-sonnet-4-5-20250929-v1:0", i=100, o=10)
        rec["input"]["cacheWriteInputTokenCount"] = write
        if usage is not None:
            rec["output"]["outputBodyJson"] = {"usage": usage}
        return rec

    def option(second, latency=None, tier=None, fields=1, meta=None):
        rec = record(second, "opt", body_fields=fields)
        if latency:
            rec["performanceConfig"] = {"latency": latency}
        if tier:
            rec["input"]["inputBodyJson"]["serviceTier"] = {"type": tier}
        if meta:
            rec["requestMetadata"] = meta
        return rec

    records = [
        image(10, 1024, "premium", 2),
        image(11, 1024, "premium", 2),
        image(12, 512, "standard", 1),
        cached(
            20,
            "conv",
            5_000,
            {"cacheDetails": [{"ttl": "5m", "inputTokens": 2_000}, {"ttl": "1h", "inputTokens": 3_000}]},
        ),
        cached(21, "conv", 700, {"cacheDetails": [{"inputTokens": 700, "ttl": "1h"}]}),
        cached(
            22,
            "invoke",
            1_000,
            {"cache_creation": {"ephemeral_5m_input_tokens": 600, "ephemeral_1h_input_tokens": 400}},
        ),
        cached(23, "nobody", 900),
        option(30, latency="optimized", fields=400, meta={"team.name": "search"}),
        option(31, tier="flex", fields=400, meta={"team.name": "search"}),
        option(32, tier="priority"),
    ]
    frame, _ = _collect(aws, records, keys=["team.name"])
    images = {
        (r.image_width, r.image_quality, r.images_per_call): r.invocations
        for r in frame.itertuples()
        if r.identity_arn.endswith("artist")
    }
    assert images == {(1024, "premium", 2): 2, (512, "standard", 1): 1}
    cache = frame[frame.model_id.str.contains("sonnet")]
    assert _by_user(cache, "cache_write_tokens", "cache_write_1h_tokens", "cache_write_ttl_unknown_tokens") == {
        "conv": (5_700, 3_700, 0),
        "invoke": (1_000, 400, 0),
        "nobody": (900, 0, 900),
    }
    options = {
        (r["latency"], r["service_tier"], r["meta:team.name"]): r["invocations"]
        for _, r in frame[frame.identity_arn.str.endswith("opt")].iterrows()
    }
    assert options == {
        ("optimized", "default", "search"): 1,
        ("standard", "flex", "search"): 1,
        ("standard", "priority", ""): 1,
    }


def test_bad_counts_are_refused_by_name_and_a_record_cut_short_is_unreadable(aws):
    records = [record(1, "good", i=1_000)]
    for n, (user, value) in enumerate({"negative": -5, "fraction": 12.5, "huge": 1e30, "yes": True}.items()):
        rec = record(10 + n, user)
        rec["input"]["inputTokenCount"] = value
        records.append(rec)
    cut = json.dumps(record(40, "cut"), separators=(",", ":"))
    frame, totals = _collect(aws, records, raw_lines=[cut[: cut.index('"input"') + 20], "not json at all"])
    rows = _by_user(frame, "input_tokens", "invalid", "invocations", "unreadable_records")
    assert rows["good"] == (1_000, "", 1, 0)
    assert rows["negative"][1] == "input tokens -5 is negative"
    assert rows["fraction"][1] == "input tokens 12.5 is not a whole number"
    assert "is not exact" in rows["huge"][1]
    assert rows["yes"][1] == "input tokens 'true' is not a number"
    assert all(rows[user][0] == 0 for user in ("negative", "fraction", "huge", "yes"))  # never a partial sum
    # the record cut short is counted, as unreadable; both lines that are not JSON are named
    assert rows["cut"] == (0, "", 1, 1)
    assert totals.records_matched == 6
    assert totals.lines_not_json == 2
    assert totals.footer()["log_gaps"]["lines_not_json"] == 2


# -- gaps: named in the report and the summary, never a silent under-count -----------------------------------------


def _cut_short(s3, key):
    """Cut an object's gzip stream in half, as a delivery interrupted mid-write would leave it."""
    body = s3.get_object(Bucket=LOGS_BUCKET, Key=key)["Body"].read()
    s3.put_object(Bucket=LOGS_BUCKET, Key=key, Body=body[: len(body) // 2])


def test_an_object_cut_short_and_an_hour_without_objects_are_named_and_left_out(aws, monkeypatch):
    # GIVEN a day of calls every 10 minutes, except none between 05:00 and 06:00, delivered 2 objects an hour
    records = [record(n * 600, f"u{n % 3}", i=100, o=10) for n in range(144) if not 30 <= n < 36]
    keys = _account(aws, monkeypatch, records, RECIPIENTS="finops@example.com")
    # AND the first object of 07:00 cut short: it holds the calls at 07:00, 07:10 and 07:20
    broken = next(key for key in keys if f"/{DAY:%Y/%m/%d}/07/" in key)
    _cut_short(aws.client("s3"), broken)
    monkeypatch.setenv("LOG_SOURCE", "s3")
    result = run({"date": DAY.isoformat()}, now=NOW)
    response = result.response
    # THEN the report is made from everything else: 138 calls, less the 3 in the object that cannot be read
    assert response["status"] == "ok"
    assert response["invocations"] == response["records_matched"] == 138 - 3
    footer = summary_document(aws, response)["footer"]
    assert (footer["hours_read"], footer["hours_in_window"]) == (23, 24)
    gaps = footer["log_gaps"]
    assert [item["object"] for item in gaps["unreadable_objects"]] == [f"s3://{LOGS_BUCKET}/{broken}"]
    assert "cut short" in gaps["unreadable_objects"][0]["why"]
    assert gaps["hours_without_objects"] == [f"{DAY:%Y/%m/%d}/05"]
    # AND the metrics count both gaps, and what the embedded engine scanned cost nothing
    (metrics,) = [m for m in result.metrics if "LogGaps" in m]
    assert (metrics["LogGaps"], metrics["QueryCostUSD"]) == (2, 0.0)
    # AND the email says so, by name
    (message,) = emails(aws)
    body = text_body(message)
    assert "GAPS IN THE S3-DELIVERED LOGS" in body
    assert f"s3://{LOGS_BUCKET}/{broken}" in body
    assert f"1 hour of the window without any object (no calls, or a delivery missing): {DAY:%Y/%m/%d}/05" in body
    assert "23 of the window's 24 hours with objects, and the hour after for late deliveries" in body
    assert "(by the embedded engine: no Athena charge)" in body


def test_records_without_a_readable_timestamp_are_counted_not_dropped(aws):
    good = record(60, "a", i=7)
    odd = record(120, "a", i=9)
    odd["timestamp"] = "yesterday at noon"
    frame, totals = _collect(aws, [good], raw_lines=[json.dumps(odd)])
    assert int(frame["input_tokens"].sum()) == 7
    assert totals.records_without_time == 1
    assert totals.footer()["log_gaps"]["records_without_time"] == 1


def test_past_the_limit_of_unreadable_objects_there_is_no_report(aws, monkeypatch):
    records = [record(n * 300, "a") for n in range(288)]  # every 5 minutes: 2 objects in each of 24 hours
    keys = _account(aws, monkeypatch, records)
    for key in keys[: MAX_UNREADABLE + 1]:
        _cut_short(aws.client("s3"), key)
    monkeypatch.setenv("LOG_SOURCE", "s3")
    with pytest.raises(IncompleteResults, match=r"21 objects .* a broken delivery, not a gap: no report"):
        run({"date": DAY.isoformat(), "send_email": False}, now=NOW)
    assert not [key for key in objects(aws) if key.endswith(".csv")]


@pytest.mark.parametrize(
    ("zone", "day", "hours"),
    [
        ("America/New_York", date(2026, 11, 1), 25),  # clocks go back: a 25-hour day, 04:00 UTC to 05:00 UTC
        ("America/New_York", date(2026, 3, 8), 23),  # clocks go forward: 23 hours
        ("Asia/Kolkata", date(2026, 11, 20), 25),  # +05:30: 18:30 to 18:30 UTC touches 25 UTC hours
    ],
)
def test_a_local_day_reads_the_utc_hours_it_overlaps(zone, day, hours):
    tz = ZoneInfo(zone)
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    own, after = log_hours(start, end)
    assert len(own) == hours and len(after) == 1
    assert own[0] == start.astimezone(UTC).strftime("%Y/%m/%d/%H")
    assert after == [(end.astimezone(UTC) + timedelta(minutes=59)).strftime("%Y/%m/%d/%H")]


def test_a_half_hour_zone_counts_each_call_on_its_own_side_of_midnight(aws, monkeypatch):
    # GIVEN calls at 18:29:59 and 18:30:00 UTC on either side of India's midnight, delivered in the same hour folder
    tz = ZoneInfo("Asia/Kolkata")
    local_midnight = datetime.combine(DAY, time(0), tzinfo=tz)
    calls = []
    for n, offset in enumerate((-1, 0, 3_600 * 24 - 1, 3_600 * 24)):
        rec = record(0, f"edge{n}", i=10 + n)
        rec["timestamp"] = (local_midnight + timedelta(seconds=offset)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        calls.append(rec)
    _account(aws, monkeypatch, calls, REPORT_TIMEZONE="Asia/Kolkata")
    insights = _report(aws, monkeypatch, "cloudwatch")
    s3 = _report(aws, monkeypatch, "s3")
    # THEN only the calls at local 00:00:00 and 23:59:59 are the day's, through either source
    assert s3.csv == insights.csv
    assert s3.response["invocations"] == 2


def test_a_window_too_large_for_the_function_names_athena(aws):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=LOGS_BUCKET)
    put_delivered(s3, LOCATION, ACCOUNT_ID, "us-east-1", [record(n * 60, "a") for n in range(600)])
    config = load_config(
        {"LOG_SOURCE": "s3", "LOG_S3_LOCATION": LOCATION, "REPORT_BUCKET": BUCKET, "AWS_REGION": "us-east-1"}
    )
    source = S3LogsSource(config, AwsClients("us-east-1"), now=lambda: NOW)
    source.check()
    relation = source.relation(START, END, ())
    with pytest.raises(EngineError, match=r"too large for the embedded engine.*LOG_ENGINE=athena"):
        EmbeddedEngine(s3, max_bytes=1_000).run(logs_query(START, END), {"logs": relation}, deadline=float("inf"))


# -- Athena, at the HTTP boundary: the same SQL text, over the stack's Glue table -----------------------------------


def _athena(answer, *, fail_first_on=""):
    """Athena as botocore sees it: each StartQueryExecution recorded; the first query FAILED naming `fail_first_on`
    when given; then SUCCEEDED with `answer`'s rows (what the embedded engine computed over the same objects), and
    30 MB scanned a query."""
    from .faults import Faults

    faults, sent = Faults(), []

    def athena(request):
        target = request.headers.get("X-Amz-Target", b"")
        return (target.decode() if isinstance(target, bytes) else target).startswith("AmazonAthena.")

    def started(request):
        sent.append(json.loads(request.body))
        return {"QueryExecutionId": f"q-{len(sent)}"}

    def execution(request):
        query_id = json.loads(request.body)["QueryExecutionId"]
        status = {"State": "SUCCEEDED"}
        if fail_first_on and query_id == "q-1":
            reason = f"HIVE_CANNOT_OPEN_SPLIT: Error opening Hive split {fail_first_on} (offset=0, length=99): Unexpected end of input stream"
            status = {"State": "FAILED", "StateChangeReason": reason}
        return {
            "QueryExecution": {
                "QueryExecutionId": query_id,
                "Status": status,
                "Statistics": {"DataScannedInBytes": 30_000_000},
            }
        }

    rows = [answer.columns, *answer.rows]
    results = {
        "ResultSet": {
            "Rows": [{"Data": [{} if v is None else {"VarCharValue": v} for v in row]} for row in rows],
            "ResultSetMetadata": {"ColumnInfo": [{"Name": n, "Type": "varchar"} for n in answer.columns]},
        }
    }
    faults.add("StartQueryExecution", when=athena, action=faults.answer(started), times=-1)
    faults.add("GetQueryExecution", when=athena, action=faults.answer(execution), times=-1)
    faults.add("GetQueryResults", when=athena, action=faults.answer(lambda request: results), times=-1)
    return faults, sent


def test_athena_runs_the_same_text_over_the_glue_table_and_an_object_it_cannot_read_is_left_out(aws, monkeypatch):
    records = generate_records(START, END, count=300, seed=8)
    keys = _account(
        aws, monkeypatch, records, LOG_TABLE="bedrock_usage.invocation_logs", ATHENA_WORKGROUP="bedrock-report"
    )
    embedded = _report(aws, monkeypatch, "s3")
    # what the embedded engine answers over the same objects: Athena's rows, in this double
    config = load_config(os.environ)
    source = S3LogsSource(config, AwsClients("us-east-1"), now=lambda: NOW)
    source.check()
    thresholds = USAGE_THRESHOLDS
    relation = source.relation(START, END, ())
    sql = logs_query(START, END, thresholds)
    answer = EmbeddedEngine(aws.client("s3")).run(sql, {"logs": relation}, deadline=float("inf"))
    broken = f"s3://{LOGS_BUCKET}/{keys[3]}"
    faults, sent = _athena(answer, fail_first_on=broken)

    monkeypatch.setenv("LOG_ENGINE", "athena")
    result = run({"date": DAY.isoformat(), "send_email": False}, now=NOW, session=faults.session())

    # THEN Athena was asked the embedded engine's text, over the stack's table, in its workgroup, then again
    # without the object its first run could not open
    first, second = sent
    assert first["QueryString"] == dialect.to_athena(sql, {"logs": relation})
    assert 'FROM "bedrock_usage"."invocation_logs" AS logs' in first["QueryString"]
    assert first["WorkGroup"] == "bedrock-report"
    assert second["QueryString"] == dialect.to_athena(
        logs_query(START, END, thresholds, exclude=[broken]), {"logs": relation}
    )
    assert f"\"$path\" <> '{broken}'" in second["QueryString"]
    # only the window's 24 hour folders and the one after are named, by their projected partition values
    assert first["QueryString"].count(f"'{DAY:%Y/%m/%d}/") == 24 and f"'{TODAY:%Y/%m/%d}/00'" in first["QueryString"]
    # AND with the same rows, the same report (this double's second answer still holds the broken object's rows)
    assert result.csv == embedded.csv
    footer = summary_document(aws, result.response)["footer"]
    assert footer["engine"] == "athena" and footer["queries"] == 2
    # 30 MB scanned by each of the two queries: 60 MB at $5 per TB = $0.0003
    assert (footer["bytes_scanned"], footer["query_cost"]) == (60_000_000, "$0.0003")
    assert footer["log_gaps"]["unreadable_objects"][0]["object"] == broken


# -- settings ---------------------------------------------------------------------------------------------------------

BASE = {"REPORT_BUCKET": BUCKET, "AWS_REGION": "us-east-1"}


@pytest.mark.parametrize(
    ("env", "named", "why"),
    [
        ({"LOG_SOURCE": "kinesis"}, "LOG_SOURCE", "'kinesis' is not one of cloudwatch, s3"),
        ({}, "LOG_GROUP_NAMES", "is not set"),  # cloudwatch, the default, needs log groups
        ({"LOG_SOURCE": "s3"}, "LOG_S3_LOCATION", "is not set"),
        ({"LOG_SOURCE": "s3", "LOG_S3_LOCATION": "bucket/logs"}, "LOG_S3_LOCATION", "not an s3://"),
        ({"LOG_SOURCE": "s3", "LOG_S3_LOCATION": LOCATION, "LOG_ENGINE": "spark"}, "LOG_ENGINE", "'spark'"),
        ({"LOG_SOURCE": "s3", "LOG_S3_LOCATION": LOCATION, "LOG_TABLE": "no-dot"}, "LOG_TABLE", "database.table"),
    ],
)
def test_a_bad_log_setting_is_named(env, named, why):
    with pytest.raises(ConfigError) as refused:
        load_config({**BASE, **env})
    assert refused.value.variable == named and why in str(refused.value)


def test_s3_needs_no_log_groups_and_athena_needs_a_table(aws):
    config = load_config({**BASE, "LOG_SOURCE": "S3", "LOG_S3_LOCATION": LOCATION + "/", "LOG_ENGINE": "athena"})
    assert (config.log_source, config.log_s3_location, config.log_groups) == ("s3", LOCATION, ())
    source = S3LogsSource(config, AwsClients("us-east-1"), now=lambda: NOW)
    with pytest.raises(ConfigError) as refused:
        source.check()
    assert refused.value.variable == "LOG_TABLE"


def test_two_deliveries_to_one_hour_folder_keep_both(aws):
    # a late record of the day before lands in the folder of the report's first hour, delivered separately
    late = record(-10, "late")  # 23:59:50 the day before, delivered 30 s late: in the 00 folder
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=LOGS_BUCKET)
    first = put_delivered(s3, LOCATION, ACCOUNT_ID, "us-east-1", [late], late_seconds=30)
    second = put_delivered(s3, LOCATION, ACCOUNT_ID, "us-east-1", [record(5, "a"), record(6, "b")])
    assert len(set(first + second)) == 3
    frame, totals = _collect(aws, [record(7, "c")])
    assert sorted(frame["identity_arn"].str.rsplit("/", n=1).str[-1]) == ["a", "b", "c"]
    assert totals.records_outside_window == 1  # read in the window's first hour folder, and left out by its time
