"""The SQL engines under the bill: one query text, run by DuckDB over a generated CUR 2.0 export (read through the
S3 API of the embedded AWS) and sent, as `dialect.to_athena` makes it, to Athena (moto, answering injected results;
failures and slow queries injected at botocore's hooks)."""

from __future__ import annotations

import gzip
import json
import urllib.request
from datetime import datetime
from typing import Any
from urllib.parse import unquote

import pytest

from lambda_function.aws import AwsClients
from lambda_function.engine import EngineError, Relation, UnreadableObjects, dialect
from lambda_function.engine.athena import AthenaEngine
from lambda_function.engine.embedded import EmbeddedEngine, partition_prefix, partition_prefixes
from lambda_function.errors import DeadlineExceeded
from local_aws.cur_parquet import cur_parquet

from .faults import Faults
from .support import FakeTime

duckdb = pytest.importorskip("duckdb")

EXPORT_BUCKET = "cur-exports"
PREFIX = "cur/bedrock-export"
ALICE = "arn:aws:iam::111111111111:user/alice"
DEV = "arn:aws:sts::111111111111:assumed-role/Dev/session-1"
CLAUDE = "Claude Sonnet 4.5 (Amazon Bedrock Edition)"
CUR = Relation(  # CUR_EXPORT's data/ folder
    bucket=EXPORT_BUCKET,
    prefix=f"{PREFIX}/data",
    glue_table="cur_db.cur_2_0",
    partitions=(("billing_period", "2026-11"),),
)
RELATIONS = {"cur": CUR}

# Billed per identity and day, Bedrock usage only: the query the bill runs, in Athena's dialect.
SQL = """
SELECT line_item_iam_principal AS identity,
       line_item_usage_account_id AS account,
       date(line_item_usage_start_date) AS day,
       SUM(CAST(line_item_unblended_cost AS DECIMAL(38, 10))) AS billed,
       COUNT(*) AS lines
FROM cur
WHERE billing_period = '2026-11'
  AND line_item_line_item_type = 'Usage'
  AND (product_servicecode IN ('AmazonBedrock', 'AmazonBedrockService', 'AmazonBedrockFoundationModels')
       OR element_at(product, 'product_name') LIKE '%(Amazon Bedrock Edition)')
  AND CAST(line_item_usage_start_date AS DATE) = DATE '2026-11-03'
GROUP BY 1, 2, 3
ORDER BY 1, 2
"""


def line(**values: Any) -> dict[str, Any]:
    row = {
        "bill_billing_period_start_date": datetime(2026, 11, 1),
        "bill_billing_entity": "AWS",
        "line_item_usage_start_date": datetime(2026, 11, 3, 10),
        "line_item_usage_account_id": "111111111111",
        "line_item_line_item_type": "Usage",
        "line_item_product_code": "AmazonBedrock",
        "line_item_usage_type": "USE1-Nova-Pro-input-tokens",
        "line_item_operation": "InvokeModelInference",
        "line_item_unblended_cost": 1.0,
        "line_item_net_unblended_cost": 1.0,
        "line_item_usage_amount": 1000.0,
        "line_item_iam_principal": ALICE,
        "product_servicecode": "AmazonBedrock",
        "product_region_code": "us-east-1",
        "product": {"product_name": "Amazon Bedrock", "region": "us-east-1"},
        "resource_tags": {},
    }
    row.update(values)
    return row


NOVEMBER = [
    line(line_item_unblended_cost=1.25),
    line(line_item_unblended_cost=0.1, line_item_usage_start_date=datetime(2026, 11, 3, 23, 59)),
    line(line_item_unblended_cost=5.0, line_item_usage_start_date=datetime(2026, 11, 4, 0, 0)),  # another day
    # a marketplace Claude line counts for alice
    line(
        bill_billing_entity="AWS Marketplace",
        line_item_product_code="prod-claude",
        product_servicecode="prod-claude",
        product={"product_name": CLAUDE},
        line_item_unblended_cost=3.0,
    ),
    line(line_item_line_item_type="Tax", line_item_unblended_cost=0.5),  # tax: apart
    line(line_item_line_item_type="Credit", line_item_unblended_cost=-2.0),  # credit: apart
    line(product_servicecode="AmazonS3", product={"product_name": "Amazon S3"}, line_item_unblended_cost=100.0),
    line(
        bill_billing_entity="AWS Marketplace",
        product_servicecode="prod-saas",
        product={"product_name": "Some SaaS"},
        line_item_unblended_cost=7.0,
    ),
    line(line_item_iam_principal=DEV, product_servicecode="AmazonBedrockService", line_item_unblended_cost=2.5),
    line(line_item_iam_principal=None, line_item_usage_account_id="222222222222", line_item_unblended_cost=4.0),
]
# Worked by hand: alice 1.25 + 0.10 + 3.00 (Claude) = 4.35 in 3 lines; the role's session 2.50; a line without a
# principal (provisioned throughput) 4.00, its identity NULL (sorted last, as both engines do by default).
EXPECTED = (
    (ALICE, "111111111111", "2026-11-03", "4.3500000000", "3"),
    (DEV, "111111111111", "2026-11-03", "2.5000000000", "1"),
    (None, "222222222222", "2026-11-03", "4.0000000000", "1"),
)
COLUMNS = ("identity", "account", "day", "billed", "lines")


def key(period: str) -> str:
    return f"{PREFIX}/data/BILLING_PERIOD={period}/part-0.parquet"


@pytest.fixture
def export(aws):
    """The export: November's object, and October's (which a November query must not download)."""
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=EXPORT_BUCKET)
    november = cur_parquet(NOVEMBER)
    october = cur_parquet([line(line_item_usage_start_date=datetime(2026, 10, 3), line_item_unblended_cost=9.0)])
    s3.put_object(Bucket=EXPORT_BUCKET, Key=key("2026-11"), Body=november)
    s3.put_object(Bucket=EXPORT_BUCKET, Key=key("2026-10"), Body=october)
    return {"2026-11": len(november), "2026-10": len(october)}


class Recorder:
    """The product's clients (AwsClients) with fault rules, and every request URL they sent."""

    def __init__(self) -> None:
        self.faults = Faults()
        self.session = self.faults.session()
        self.urls: list[str] = []
        self.session.events.register_first("before-send", self._record)
        self.clients = AwsClients("us-east-1", session=self.session)

    def _record(self, request: Any, **_: Any) -> None:
        self.urls.append(request.url)


def embedded(recorder: Recorder, **kwargs: Any) -> EmbeddedEngine:
    return EmbeddedEngine(recorder.clients.client("s3"), **kwargs)


# -- the embedded engine --------------------------------------------------------------------------------------------
def test_a_sum_per_principal_with_a_map_filter_on_the_embedded_engine(export):
    recorder = Recorder()
    answer = embedded(recorder).run(SQL, RELATIONS, deadline=float("inf"))
    assert answer.engine == "embedded"
    assert answer.columns == COLUMNS
    assert answer.rows == EXPECTED


def test_only_the_named_partition_is_downloaded(export):
    recorder = Recorder()
    answer = embedded(recorder).run(SQL, RELATIONS, deadline=float("inf"))
    assert answer.bytes_scanned == export["2026-11"]
    downloads = [unquote(url) for url in recorder.urls if "part-0.parquet" in url]
    assert len(downloads) == 1 and "BILLING_PERIOD=2026-11/" in downloads[0]
    assert partition_prefix(CUR) == f"{PREFIX}/data/BILLING_PERIOD=2026-11/"


def test_the_partition_column_is_a_string_by_its_lower_case_name(export):
    sql = "SELECT billing_period, COUNT(*) AS n FROM cur GROUP BY billing_period"
    answer = embedded(Recorder()).run(sql, RELATIONS, deadline=float("inf"))
    assert answer.rows == (("2026-11", str(len(NOVEMBER))),)


def test_values_come_back_as_athena_writes_them(export):
    sql = """SELECT line_item_usage_start_date AS Started, line_item_unblended_cost > 2 AS big,
                    element_at(product, 'no_such_key') AS missing, CAST(line_item_usage_amount AS BIGINT) AS amount
             FROM cur WHERE line_item_iam_principal = 'arn:aws:sts::111111111111:assumed-role/Dev/session-1'"""
    answer = embedded(Recorder()).run(sql, RELATIONS, deadline=float("inf"))
    assert answer.columns == ("started", "big", "missing", "amount")
    assert answer.rows == (("2026-11-03 10:00:00.000", "true", None, "1000"),)


def test_an_export_too_large_is_refused_naming_athena_before_any_download(export):
    recorder = Recorder()
    engine = embedded(recorder, max_bytes=export["2026-11"] - 1)
    with pytest.raises(EngineError, match=r"too large for the embedded engine.*BILL_ENGINE=athena"):
        engine.run(SQL, RELATIONS, deadline=float("inf"))
    assert recorder.faults.count("GetObject") == 0


def test_an_object_that_is_not_parquet_is_an_engine_error(aws, export):
    aws.client("s3").put_object(Bucket=EXPORT_BUCKET, Key=key("2026-11"), Body=b"not parquet at all")
    with pytest.raises(EngineError, match="cannot read parquet"):
        embedded(Recorder()).run(SQL, RELATIONS, deadline=float("inf"))


def test_an_object_that_cannot_be_read_is_an_engine_error(export):
    recorder = Recorder()
    recorder.faults.add("GetObject", Faults.error(403, "AccessDenied", "no s3:GetObject on the export"), times=-1)
    with pytest.raises(EngineError, match=r"cannot read s3://cur-exports/.*AccessDenied"):
        embedded(recorder).run(SQL, RELATIONS, deadline=float("inf"))


def test_a_partition_not_exported_yet_is_an_engine_error(export):
    december = Relation(EXPORT_BUCKET, f"{PREFIX}/data", partitions=(("billing_period", "2026-12"),))
    with pytest.raises(EngineError, match=r"no objects under s3://cur-exports/.*BILLING_PERIOD=2026-12/"):
        embedded(Recorder()).run(SQL, {"cur": december}, deadline=float("inf"))


def test_hive_marker_files_are_not_read(aws, export):
    aws.client("s3").put_object(Bucket=EXPORT_BUCKET, Key=f"{PREFIX}/data/BILLING_PERIOD=2026-11/_SUCCESS", Body=b"")
    answer = embedded(Recorder()).run(SQL, RELATIONS, deadline=float("inf"))
    assert answer.rows == EXPECTED


def test_the_embedded_engine_starts_nothing_after_the_deadline(export):
    recorder = Recorder()
    time = FakeTime()
    engine = EmbeddedEngine(recorder.clients.client("s3"), clock=time.clock)
    with pytest.raises(DeadlineExceeded):
        engine.run(SQL, RELATIONS, deadline=time.now)
    assert recorder.urls == []


def test_gzip_json_lines_with_hive_partitions(aws):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=EXPORT_BUCKET)
    records = [{"identity": ALICE, "tokens": 10}, {"identity": ALICE, "tokens": 5}, {"identity": DEV, "tokens": 1}]
    body = gzip.compress("\n".join(json.dumps(r) for r in records).encode())
    s3.put_object(Bucket=EXPORT_BUCKET, Key="logs/DAY=2026-11-03/part-0.json.gz", Body=body)
    logs = Relation(EXPORT_BUCKET, "logs", format="json", partitions=(("day", "2026-11-03"),))
    sql = "SELECT identity, SUM(tokens) AS tokens, day FROM logs GROUP BY identity, day ORDER BY identity"
    answer = embedded(Recorder()).run(sql, {"logs": logs}, deadline=float("inf"))
    assert answer.rows == ((ALICE, "15", "2026-11-03"), (DEV, "1", "2026-11-03"))
    assert answer.bytes_scanned == len(body)


# -- Athena ---------------------------------------------------------------------------------------------------------
def inject_athena_results(aws: Any, *results: dict[str, Any]) -> None:
    """moto's Athena answers GetQueryResults from this queue (one result per query execution)."""
    body = json.dumps({"region": aws.region, "results": list(results)}).encode()
    request = urllib.request.Request(
        f"{aws.endpoint}/moto-api/static/athena/query-results",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201


def athena_row(*values: str | None) -> dict[str, Any]:
    return {"Data": [{} if v is None else {"VarCharValue": v} for v in values]}


class AthenaRecorder(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[dict[str, Any]] = []
        self.session.events.register("before-parameter-build.athena.StartQueryExecution", self._params)

    def _params(self, params: dict[str, Any], **_: Any) -> None:
        self.sent.append(dict(params))

    def engine(self, time: FakeTime | None = None) -> AthenaEngine:
        time = time or FakeTime()
        self.clients.bound(clock=time.clock, sleep=time.sleep, deadline=None)
        return AthenaEngine(self.clients.client("athena"), "primary", sleep=time.sleep, clock=time.clock)


def test_athena_is_sent_the_same_query_text_and_its_pages_come_back_as_text(aws):
    recorder = AthenaRecorder()
    header = athena_row(*COLUMNS)
    info = [{"Name": name, "Label": name, "Type": "varchar"} for name in COLUMNS]
    # the second page comes from moto's queue; the first, with the header row and a NextToken, from the hook
    inject_athena_results(aws, {"rows": [athena_row(*EXPECTED[2])], "column_info": info})
    first_page = {
        "ResultSet": {
            "Rows": [header, athena_row(*EXPECTED[0]), athena_row(*EXPECTED[1])],
            "ResultSetMetadata": {"ColumnInfo": info},
        },
        "NextToken": "page-2",
    }
    recorder.faults.add(
        "GetQueryResults", Faults.answer(lambda request: first_page), when=lambda r: b"NextToken" not in r.body
    )
    recorder.session.events.register("after-call.athena.GetQueryExecution", _scanned(123_456))

    answer = recorder.engine().run(SQL, RELATIONS, deadline=float("inf"))

    (sent,) = recorder.sent
    assert sent["QueryString"] == dialect.to_athena(SQL, RELATIONS)
    assert 'FROM "cur_db"."cur_2_0" AS cur\n' in sent["QueryString"]
    assert sent["WorkGroup"] == "primary" and sent["ClientRequestToken"]
    assert recorder.faults.count("GetQueryResults") == 2
    assert answer.engine == "athena"
    assert answer.columns == COLUMNS
    assert answer.rows == EXPECTED  # the same rows the embedded engine computes, header dropped, NULL as None
    assert answer.bytes_scanned == 123_456


def _scanned(size: int) -> Any:
    def handler(parsed: dict[str, Any], **_: Any) -> None:
        parsed["QueryExecution"].setdefault("Statistics", {})["DataScannedInBytes"] = size

    return handler


def _execution(state: str, reason: str = "") -> Any:
    def respond(request: Any) -> dict[str, Any]:
        query_id = json.loads(request.body)["QueryExecutionId"]
        status = {"State": state, **({"StateChangeReason": reason} if reason else {})}
        return {"QueryExecution": {"QueryExecutionId": query_id, "Status": status}}

    return respond


def test_a_failed_athena_query_is_an_engine_error_with_the_reason(aws):
    recorder = AthenaRecorder()
    reason = "COLUMN_NOT_FOUND: line 2:8: Column 'line_item_iam_principal' cannot be resolved"
    recorder.faults.add("GetQueryExecution", Faults.answer(_execution("FAILED", reason)), times=-1)
    with pytest.raises(EngineError, match="ended FAILED: COLUMN_NOT_FOUND"):
        recorder.engine().run(SQL, RELATIONS, deadline=float("inf"))
    assert recorder.faults.count("GetQueryResults") == 0
    assert recorder.faults.count("StopQueryExecution") == 0


def test_an_athena_query_still_running_at_the_deadline_is_stopped(aws):
    recorder = AthenaRecorder()
    time = FakeTime()
    deadline = time.now + 30
    recorder.faults.add("GetQueryExecution", Faults.answer(_execution("RUNNING")), times=-1)
    with pytest.raises(DeadlineExceeded, match="still RUNNING at the deadline"):
        recorder.engine(time).run(SQL, RELATIONS, deadline=deadline)
    assert recorder.faults.count("StopQueryExecution") == 1
    assert time.now == deadline  # the backoff never slept past it
    assert time.slept[:4] == [0.5, 1.0, 2.0, 4.0] and max(time.slept) <= 5.0
    assert recorder.faults.count("GetQueryResults") == 0
    (query_id,) = aws.client("athena").list_query_executions()["QueryExecutionIds"]
    state = aws.client("athena").get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]["State"]
    assert state == "CANCELLED"


def test_athena_refusing_the_query_is_an_engine_error(aws):
    recorder = AthenaRecorder()
    recorder.faults.add("StartQueryExecution", Faults.error(400, "InvalidRequestException", "bytes cutoff"))
    with pytest.raises(EngineError, match="did not start the query.*InvalidRequestException"):
        recorder.engine().run(SQL, RELATIONS, deadline=float("inf"))


def test_athena_starts_nothing_after_the_deadline(aws):
    recorder = AthenaRecorder()
    time = FakeTime()
    with pytest.raises(DeadlineExceeded):
        recorder.engine(time).run(SQL, RELATIONS, deadline=time.now)
    assert recorder.faults.calls == []


def test_an_embedded_query_still_running_at_the_deadline_is_interrupted(export):
    import time

    slow = "SELECT SUM(hash(i)) FROM range(1000000000000) t(i), cur"
    engine = embedded(Recorder())
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match="still running at the deadline"):
        engine.run(slow, RELATIONS, deadline=time.monotonic() + 0.5)
    assert time.monotonic() - started < 10


def test_a_partition_named_twice_reads_either_value(export):
    both = Relation(
        EXPORT_BUCKET, f"{PREFIX}/data", partitions=(("billing_period", "2026-10"), ("billing_period", "2026-11"))
    )
    sql = "SELECT billing_period, COUNT(*) AS n FROM cur GROUP BY 1 ORDER BY 1"
    answer = embedded(Recorder()).run(sql, {"cur": both}, deadline=float("inf"))
    assert answer.rows == (("2026-10", "1"), ("2026-11", str(len(NOVEMBER))))
    assert answer.bytes_scanned == export["2026-10"] + export["2026-11"]


def test_partition_prefixes():
    nested = Relation("b", "/logs/", partitions=(("region", "us-east-1"), ("day", "01"), ("day", "02")))
    assert partition_prefixes(nested) == ["logs/REGION=us-east-1/DAY=01/", "logs/REGION=us-east-1/DAY=02/"]
    assert partition_prefixes(Relation("b", "")) == [""]
    assert partition_prefixes(Relation("b", "cur/data")) == ["cur/data/"]


def test_an_athena_query_failing_on_one_object_names_it(aws):
    # GIVEN Athena ends the query FAILED on a gzip object cut short (the message names the split it could not read)
    recorder = AthenaRecorder()
    uri = "s3://logs/AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/2026/11/20/07/a.json.gz"
    reason = f"HIVE_CANNOT_OPEN_SPLIT: Error opening Hive split {uri} (offset=0, length=2048): Unexpected end of input stream"
    recorder.faults.add("GetQueryExecution", Faults.answer(_execution("FAILED", reason)), times=-1)
    # THEN the engine says which object, so that the caller can name it and ask again without it
    with pytest.raises(UnreadableObjects) as failed:
        recorder.engine().run(SQL, RELATIONS, deadline=float("inf"))
    assert [found for found, _ in failed.value.objects] == [uri]
