"""`make demo LOG_SOURCE=s3`: the demo's days delivered to S3 as Bedrock writes them and read back by the embedded
engine give the report the demo gives through Logs Insights, byte for byte, and the summary says where it read."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from typing import Any

from local_aws import demo
from local_aws.insights import InsightsDouble

RECORDS = 2_000  # the demo makes 24,000 a day; the same days with fewer records keep the test quick


def _instant_polls() -> InsightsDouble:
    """Queries complete at the first poll: the Lambda entry point the demo calls sleeps for real between polls."""
    return InsightsDouble(polls_until_running=0, polls_until_complete=0)


def test_the_demos_day_is_the_same_report_from_either_source(tmp_path, monkeypatch):
    for name in {**demo.report_environment("UTC"), **demo.log_environment("s3")}:
        monkeypatch.setenv(name, "")  # the demo sets them for its run: put back afterwards
    summaries: dict[str, dict[str, Any]] = {}
    read_back = demo.read_back

    def keep_summary(aws, response, out):
        """The summary document, read while the embedded AWS is still up."""
        bucket, key = response["summary_uri"].removeprefix("s3://").split("/", 1)
        summaries[out.name] = json.loads(aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
        return read_back(aws, response, out)

    monkeypatch.setattr(demo, "read_back", keep_summary)
    # the handler refuses a window not over yet: the demo runs on today's clock, both runs at the same instant
    now = datetime.combine(datetime.now(UTC).date(), time(6, 0), tzinfo=UTC)
    responses = {
        source: demo.run_demo(
            tmp_path / source, records=RECORDS, timezone="UTC", now=now, insights=_instant_polls(), log_source=source
        )
        for source in ("cloudwatch", "s3")
    }
    (insights_csv,) = (tmp_path / "cloudwatch").glob("*.csv")
    (s3_csv,) = (tmp_path / "s3").glob("*.csv")
    assert s3_csv.name == insights_csv.name
    assert s3_csv.read_bytes() == insights_csv.read_bytes()
    day = (now - timedelta(days=1)).date()
    assert responses["s3"]["window"] == responses["cloudwatch"]["window"]
    assert day.strftime("%Y%m%d") in s3_csv.name
    invocations = responses["s3"]["invocations"]
    assert invocations == responses["cloudwatch"]["invocations"] == RECORDS + 400  # with the runaway agent's calls
    footer = summaries["s3"]["footer"]
    assert footer["source"] == "s3"
    assert footer["log_location"] == demo.LOG_LOCATION
    assert footer["records_matched"] == invocations
    assert footer["log_gaps"]["hours_without_objects_count"] == 0
    assert footer["log_gaps"]["unreadable_objects_count"] == 0
    assert summaries["cloudwatch"]["footer"].get("source") != "s3"
