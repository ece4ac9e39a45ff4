"""The whole product on the embedded AWS, read back the way a user would: the CSV from S3, the email from SES."""

from __future__ import annotations

import csv
import email
import email.policy
import gc
import io
import json
import os
import re
import zipfile
from datetime import UTC, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest

from lambda_function import lambda_handler
from lambda_function.__main__ import main as cli
from lambda_function.config import load_config
from lambda_function.errors import ConfigError, QueryFailed
from lambda_function.handler import RUN_COLLECTION_THRESHOLD, AwsClients, fewer_collections, run_report
from lambda_function.report.rows import CSV_COLUMNS, money
from local_aws.generate import expected_totals, generate_records, put_records

GROUP = "/aws/bedrock/modelinvocations"
BUCKET = "e2e-reports"
RECIPIENTS = ["finops@example.com", "platform@example.com"]
# moto keeps 14 days of log events: the report covers yesterday (UTC), whatever day the suite runs.
TODAY = datetime.now(UTC).date()
DAY = TODAY - timedelta(days=1)
START = datetime.combine(DAY, time(0), tzinfo=UTC)
END = START + timedelta(days=1)
NOW = datetime.combine(TODAY, time(6, 0), tzinfo=UTC)
UNKNOWN_MODEL = "acme.unknown-model-v1:0"


@pytest.fixture(scope="module")
def records():
    return generate_records(START, END, count=3_000, seed=11)


@pytest.fixture
def account(aws, records, monkeypatch):
    aws.client("s3").create_bucket(Bucket=BUCKET)
    aws.client("ses").verify_email_identity(EmailAddress="reports@example.com")
    put_records(aws.client("logs"), GROUP, records)
    env = {
        "LOG_GROUP_NAMES": GROUP,
        "REPORT_BUCKET": BUCKET,
        "SENDER": "Bedrock reports <reports@example.com>",
        "RECIPIENTS": ",".join(RECIPIENTS),
        "REPORT_TIMEZONE": "UTC",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PRICE_TABLE", raising=False)
    # The Lambda entry point and the CLI sleep for real between polls (no injected sleep): queries complete at the
    # first poll here; polling itself is tested in test_insights_runner.py and test_deadlines.py.
    aws.insights.polls_until_running = aws.insights.polls_until_complete = 0
    return aws


def report(event):
    config = load_config(os.environ)
    return run_report(event, config, AwsClients(config.default_region), now=NOW, sleep=lambda s: None)


def s3_objects(aws):
    return aws.client("s3").list_objects_v2(Bucket=BUCKET).get("Contents", [])


def read_s3_csv(aws, response):
    key = response["s3_uri"].removeprefix(f"s3://{BUCKET}/")
    return aws.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()


def parse_csv(data: bytes):
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def test_the_daily_report_end_to_end(account, records):
    # WHEN the scheduled run fires (empty event)
    response = report({}).response

    # THEN the answer names yesterday's window and the CSV's place
    assert response["status"] == "ok"
    assert response["window"]["start"] == START.isoformat().replace("+00:00", "Z")
    assert response["window"]["end"] == END.isoformat().replace("+00:00", "Z")
    stamp = f"{START:%Y%m%dT%H%M%SZ}_{END:%Y%m%dT%H%M%SZ}"
    assert response["s3_uri"] == f"s3://{BUCKET}/bedrock-usage/reports/{DAY:%Y/%m/%d}/bedrock-usage_{stamp}.csv"

    # AND the CSV in S3 has every record's tokens, per account, identity, model and region
    data = read_s3_csv(account, response)
    rows = parse_csv(data)
    assert list(rows[0].keys()) == CSV_COLUMNS
    # (Sonnet 4.5 bills calls above 200K input tokens at its long-context tier; the other models here have none)
    sonnet_45 = "anthropic.claude-sonnet-4-5-20250929-v1:0"
    truth = expected_totals(records, {"us." + sonnet_45: 200_000, "global." + sonnet_45: 200_000})
    assert len(rows) == len(truth) == response["rows"]
    by_key = {(r["Account Id"], r["Identity ARN"], r["Model Id"], r["Region Name"]): r for r in rows}
    for t in truth.itertuples(index=False):
        row = by_key[(t.account_id, t.identity_arn, t.model_id, t.region)]
        assert int(row["Number of Input tokens"]) == t.input_tokens
        assert int(row["Number of output tokens"]) == t.output_tokens
        assert int(row["Cache read input tokens"]) == t.cache_read_tokens
        assert int(row["Cache write input tokens"]) == t.cache_write_tokens
        assert int(row["Cache write 1h input tokens"]) == t.cache_write_1h_tokens
        assert int(row["Invocations"]) == t.invocations
        assert int(row["Failed invocations"]) == t.failed_invocations
        assert int(row["Long-context invocations"]) == t.long_context_invocations
    assert response["invocations"] == len(records) == response["records_matched"]
    assert response["failed_invocations"] == sum(1 for r in records if "errorCode" in r) > 0
    assert truth["long_context_invocations"].sum() > 0
    assert truth["cache_write_1h_tokens"].sum() > 0  # the generator writes some caches for an hour

    # AND the unknown model keeps its tokens with no charge, and is named
    unknown = [r for r in rows if r["Model Id"] == UNKNOWN_MODEL]
    assert unknown and all(r["Charges incurred"] == "" for r in unknown)
    assert all(r["Pricing status"].startswith("unpriced") for r in unknown)
    assert sum(int(r["Number of Input tokens"]) for r in unknown) > 0
    assert response["unpriced_models"] == [UNKNOWN_MODEL]

    # AND a Nova Lite row costs what FACTS §3's prices say: 0.06 in / 0.24 out / 0.015 cache read per 1M
    nova = next(r for r in rows if r["Model Id"] == "amazon.nova-lite-v1:0")
    expected = (
        int(nova["Number of Input tokens"]) * Decimal("0.06")
        + int(nova["Number of output tokens"]) * Decimal("0.24")
        + int(nova["Cache read input tokens"]) * Decimal("0.015")
    ) / Decimal(1_000_000)
    assert Decimal(nova["Charges incurred"]) == expected.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)

    # AND the total is the CSV's own sum, with largest charges first
    charges = [Decimal(r["Charges incurred"]) for r in rows if r["Charges incurred"]]
    assert Decimal(response["total_cost_usd"]) == sum(charges)
    assert charges == sorted(charges, reverse=True)

    # AND one email went to the recipients, its attachment byte-identical to the S3 object
    sent = account.sent_emails()
    assert len(sent) == 1
    assert sorted(set(sent[0].destinations)) == sorted(RECIPIENTS)
    message = email.message_from_bytes(sent[0].raw_data.encode("utf-8"), policy=email.policy.default)
    assert response["email"]["sent"] is True and response["email"]["message_id"] == sent[0].id
    attachment = next(message.iter_attachments())
    assert attachment.get_content_type() == "text/csv"
    assert attachment.get_payload(decode=True) == data
    # AND the email's totals are the CSV's sums
    total = money(sum(charges))
    assert total in message["Subject"] and DAY.isoformat() in message["Subject"]
    html = message.get_body(preferencelist=("html",)).get_content()
    text = message.get_body(preferencelist=("plain",)).get_content()
    invocations = f"{sum(int(r['Invocations']) for r in rows):,}"
    for body in (html, text):
        assert total in body
        assert invocations in body
        assert UNKNOWN_MODEL in body
    assert "UNPRICED USAGE" in text
    long_calls = int(truth["long_context_invocations"].sum())
    assert f"Long-context invocations: {long_calls:,} " in text
    assert f"{long_calls:,} long-context" in html

    # AND the raw message is what SES asks for: 7-bit ASCII, no line over 998 characters
    raw = sent[0].raw_data.encode("utf-8")
    assert raw.isascii()
    assert max(len(line) for line in raw.splitlines()) <= 998


def test_a_rerun_overwrites_the_same_object(account):
    first = report({"date": DAY.isoformat(), "send_email": False}).response
    second = report({"date": DAY.isoformat(), "send_email": False}).response
    assert first["s3_uri"] == second["s3_uri"]
    csv_key = first["s3_uri"].removeprefix(f"s3://{BUCKET}/")
    # one CSV and its JSON summary, overwritten in place
    assert sorted(o["Key"] for o in s3_objects(account)) == [csv_key, csv_key.removesuffix(".csv") + ".json"]
    assert account.sent_emails() == []


def test_a_run_collects_less_and_leaves_the_collector_as_it_found_it(account):
    before = (gc.get_threshold(), gc.get_freeze_count())
    # during a run, what was alive before it is frozen and collections are rarer
    with fewer_collections():
        assert gc.get_threshold()[0] == RUN_COLLECTION_THRESHOLD and gc.get_freeze_count() > 0
    # after one, whether it reported, was refused or failed, all is as before
    report({"date": DAY.isoformat(), "send_email": False})
    report({"date": "yesterday-ish"})
    with pytest.raises(ZeroDivisionError), fewer_collections():
        _ = 1 / 0
    assert (gc.get_threshold(), gc.get_freeze_count()) == before


def test_a_duplicate_invocation_sends_one_email_and_force_sends_again(account):
    first = report({"date": DAY.isoformat()}).response
    again = report({"date": DAY.isoformat()}).response  # Scheduler or Lambda retrying the same window
    assert first["email"]["sent"] is True
    assert again["email"]["sent"] is False and "already sent" in again["email"]["reason"]
    assert again["s3_uri"] == first["s3_uri"]  # the CSV itself is rewritten
    assert len(account.sent_emails()) == 1
    forced = report({"date": DAY.isoformat(), "force": True}).response
    assert forced["email"]["sent"] is True
    assert len(account.sent_emails()) == 2


def test_the_json_summary_beside_the_csv(account):
    response = report({"date": DAY.isoformat(), "send_email": False}).response
    key = response["summary_uri"].removeprefix(f"s3://{BUCKET}/")
    body = account.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert body.count(b"\n") == 1  # one object on one line: Athena's JSON SerDe reads it (the stack's table)
    document = json.loads(body)
    assert document["total_cost_usd"] == response["total_cost_usd"]
    assert document["invocations"] == response["invocations"]
    csv_rows = parse_csv(read_s3_csv(account, response))
    assert document["long_context_invocations"] == sum(int(r["Long-context invocations"]) for r in csv_rows) > 0
    assert [u["model_id"] for u in document["unpriced"]] == [UNKNOWN_MODEL]
    assert document["footer"]["log_groups"] == [GROUP]
    assert document["footer"]["records_matched"] == response["records_matched"]
    # the prices' version names both tables that priced the report
    assert re.fullmatch(
        r"token_prices\.csv@[0-9a-f]{12}, context_tiers\.csv@[0-9a-f]{12}, service_options\.csv@[0-9a-f]{12}",
        document["footer"]["price_table_version"],
    )
    assert sum(Decimal(m["cost_usd"]) for m in document["by_model"]) == Decimal(response["total_cost_usd"])


def test_a_report_too_large_to_attach_carries_the_link(account, monkeypatch):
    # GIVEN an SES limit (27 KB here) that this report's message exceeds even with the CSV zipped (28 KB)
    monkeypatch.setattr("lambda_function.delivery.email.SES_MAX_RAW_MESSAGE", 27_000)
    response = report({"date": DAY.isoformat()}).response
    raw = account.sent_emails()[0].raw_data.encode("utf-8")
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert list(message.iter_attachments()) == []
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert "too large to attach" in text
    assert "X-Amz-Signature=" in text and response["s3_uri"].rsplit("/", 1)[-1] in text
    assert len(raw) <= 27_000


def _zip_attachment(account, response):
    raw = account.sent_emails()[0].raw_data.encode("utf-8")
    message = email.message_from_bytes(raw, policy=email.policy.default)
    (attachment,) = list(message.iter_attachments())
    name = response["s3_uri"].rsplit("/", 1)[-1]
    assert attachment.get_filename() == name + ".zip" and attachment.get_content_type() == "application/zip"
    with zipfile.ZipFile(io.BytesIO(attachment.get_content())) as archive:
        assert archive.namelist() == [name]
        unzipped = archive.read(name)
    stored = account.client("s3").get_object(Bucket=BUCKET, Key=response["s3_uri"].split("/", 3)[3])["Body"].read()
    assert unzipped == stored  # the CSV, byte for byte
    return message.get_body(preferencelist=("plain",)).get_content(), name, len(raw)


def test_a_csv_above_the_zip_size_is_attached_zipped(account, monkeypatch):
    # GIVEN ZIP_ATTACHMENT_ABOVE_MB=0: every CSV is zipped
    monkeypatch.setenv("ZIP_ATTACHMENT_ABOVE_MB", "0")
    response = report({"date": DAY.isoformat()}).response
    text, name, _ = _zip_attachment(account, response)
    assert f"The CSV is attached zipped ({name}.zip: " in text


def test_a_message_too_large_for_ses_with_the_csv_falls_back_to_it_zipped(account, monkeypatch):
    # GIVEN a CSV under the zip size whose message (52 KB here) is over an SES limit of 30 KB: zipped, it fits (28 KB)
    monkeypatch.setattr("lambda_function.delivery.email.SES_MAX_RAW_MESSAGE", 30_000)
    response = report({"date": DAY.isoformat()}).response
    text, name, size = _zip_attachment(account, response)
    assert size <= 30_000 and f"{name}.zip" in text


def test_a_manual_window_and_recipients(account, records):
    half = START + timedelta(hours=12)
    response = report({"start": START.isoformat(), "end": half.isoformat(), "recipients": ["cfo@example.com"]}).response
    in_window = [r for r in records if r["timestamp"] < half.strftime("%Y-%m-%dT%H:%M:%SZ")]
    assert response["invocations"] == len(in_window)
    assert account.sent_emails()[0].destinations[0] == "cfo@example.com"


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"dat": DAY.isoformat()}, "dat"),
        ({"date": "yesterday"}, "date"),
        ({"start": END.isoformat(), "end": START.isoformat()}, "end"),
        ({"start": "2024-01-01", "end": "2025-06-01"}, "end"),
        ({"date": DAY.isoformat(), "recipients": ["finops-at-example.com"]}, "recipients"),
        # outside ALLOWED_RECIPIENTS (by default the domains of RECIPIENTS: @example.com)
        ({"date": DAY.isoformat(), "recipients": ["me@gmail.com"]}, "recipients"),
        ({"date": DAY.isoformat(), "recipients": ["cfo@example.com", "cfo@example.com.evil.io"]}, "recipients"),
    ],
)
def test_bad_input_gets_an_answer_and_does_nothing(account, event, field):
    response = lambda_handler(event, None)
    assert response["status"] == "error"
    assert response["error"]["field"] == field
    assert response["error"]["message"].startswith(field)
    assert s3_objects(account) == []
    assert account.sent_emails() == []


def test_a_failed_query_delivers_nothing(account):
    account.insights.fail_next("Timeout")
    with pytest.raises(QueryFailed, match="Timeout"):
        report({"date": DAY.isoformat()})
    assert s3_objects(account) == []
    assert account.sent_emails() == []


def test_a_missing_setting_is_raised_naming_it(account, monkeypatch):
    monkeypatch.delenv("REPORT_BUCKET")
    with pytest.raises(ConfigError, match="REPORT_BUCKET"):
        lambda_handler({}, None)


def test_the_command_line(account, tmp_path, capsys):
    code = cli(["--date", DAY.isoformat(), "--no-email", "--out", str(tmp_path)])
    response = json.loads(capsys.readouterr().out)
    assert code == 0 and response["status"] == "ok"
    assert response["email"]["sent"] is False
    files = response["local_files"]
    with open(files["csv"], "rb") as handle:
        assert handle.read() == read_s3_csv(account, response)
    assert os.path.getsize(files["eml"]) > 0 and os.path.getsize(files["html"]) > 0

    code = cli(["--start", "2026-11-10", "--end", "2026-11-01"])
    response = json.loads(capsys.readouterr().out)
    assert code == 2
    assert response["error"]["field"] == "end"


def test_recipients_are_allowed_not_free(account, monkeypatch):
    # GIVEN reports allowed to one outside address and the company's domain
    monkeypatch.setenv("ALLOWED_RECIPIENTS", "auditor@partner.io,@example.com")
    # WHEN a run names the auditor, and another someone else at partner.io
    sent = report({"date": DAY.isoformat(), "recipients": ["auditor@partner.io", "cfo@example.com"]}).response
    refused = report({"date": DAY.isoformat(), "recipients": ["intern@partner.io"], "force": True}).response
    # THEN the first goes out, the second is refused naming the address, and nothing more was sent
    assert sent["email"]["sent"] is True
    assert refused["status"] == "error" and refused["error"]["field"] == "recipients"
    assert "'intern@partner.io' is not in ALLOWED_RECIPIENTS" in refused["error"]["message"]
    assert sorted(a for m in account.sent_emails() for a in set(m.destinations)) == [
        "auditor@partner.io",
        "cfo@example.com",
    ]


def test_more_than_50_recipients_are_sent_in_batches(account):
    many = [f"user{n:03d}@example.com" for n in range(120)]
    response = report({"date": DAY.isoformat(), "recipients": many}).response
    sent = account.sent_emails()
    # 120 = 50 + 50 + 20, each message naming only its own batch
    assert len(sent) == 3 and len(response["email"]["message_ids"]) == 3
    assert [len(set(m.destinations)) for m in sent] == [50, 50, 20]
    assert sorted(a for m in sent for a in set(m.destinations)) == many


def test_the_run_metrics_for_cloudwatch(account, capsys):
    # the Lambda entry point prints one Embedded Metric Format line per run (no API call, no IAM), through Powertools:
    # each value an array; tests/test_metrics.py holds the lines to the specification
    response = lambda_handler({"scheduled_time": f"{TODAY.isoformat()}T00:00:00Z"}, None)  # what the schedule sends
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    (record,) = [line for line in lines if "ReportDelivered" in line]
    assert record["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "BedrockUsageReport"
    assert record["ReportDelivered"] == [1] and response["email"]["sent"] is True
    assert record["TotalCostUSD"] == [float(response["total_cost_usd"])]
    assert record["Invocations"] == [response["invocations"]] == [3_000]
    assert record["UnpricedInvocations"][0] > 0  # the unknown model's calls
    assert record["window"] == DAY.isoformat()


def test_every_log_line_carries_the_run_id_and_the_window(account, caplog):
    class Context:
        aws_request_id = "req-0001"

        def get_remaining_time_in_millis(self):
            return 900_000

    caplog.set_level("INFO")
    lambda_handler({"date": DAY.isoformat(), "send_email": False}, Context())
    ours = [r for r in caplog.records if r.name.startswith("lambda_function")]
    assert any(r.getMessage().startswith("reporting ") for r in ours)
    assert {
        (getattr(r, "run_id", None), getattr(r, "window", None)) for r in ours if "reporting" in r.getMessage()
    } == {("req-0001", DAY.isoformat())}
