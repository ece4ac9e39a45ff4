"""The report store: each earlier summary read once per run, whoever asks; claims created once; summaries that round
trip through their one type."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import boto3

from lambda_function.store import ReportStore
from lambda_function.store.reports import report_key, summary_key
from lambda_function.summary import ReportSummary, Spend, Summary, UnpricedModel
from lambda_function.window import day_window

from .support import BUCKET, GROUP, TODAY, configure, run

UTC_ZONE = ZoneInfo("UTC")
PREFIX = "bedrock-usage"


def _the_20th_before_today() -> date:
    this_month = TODAY.replace(day=20)
    if this_month < TODAY:
        return this_month
    last_month = TODAY.replace(day=1) - timedelta(days=1)
    return last_month.replace(day=20)


def _summary(day: date, total: str) -> Summary:
    team = [Spend("ml", Decimal(total), 1)]
    totals = ReportSummary(Decimal(total), 1, 0, 10, 5, 0, 0, 1, by_identity=team, by_attribution={"team": team})
    return Summary(day_window(day, UTC_ZONE).as_json(), totals, {"price_table_key": "bundled"})


def test_a_run_for_the_20th_reads_each_of_the_19_earlier_summaries_once(aws, monkeypatch, tmp_path):
    # GIVEN days 1-19 of the month reported (a dollar a day), a month budget, spikes and the reconciliation on:
    # the previous day, the month to date, the price changes, the spikes' week, the budget's month and the settled
    # day's month to date all look back
    the_20th = _the_20th_before_today()
    budgets = tmp_path / "budgets.csv"
    budgets.write_text("name,scope,period,amount,recipients\nall,total,month,1000,f@example.com\n")
    configure(aws, monkeypatch, ATTRIBUTION_KEYS="team", BUDGETS=str(budgets))
    aws.client("logs").create_log_group(logGroupName=GROUP)
    s3 = aws.client("s3")
    for n in range(1, 20):
        day = the_20th.replace(day=n)
        key = summary_key(report_key(PREFIX, day_window(day, UTC_ZONE)))
        s3.put_object(Bucket=BUCKET, Key=key, Body=_summary(day, "1").to_json())
    reads: Counter[str] = Counter()
    session = boto3.session.Session()
    session.events.register(
        "before-parameter-build.s3.GetObject", lambda params, **_: reads.update([params["Key"]])
    )  # every attempt of the product's S3 client

    # WHEN the 20th is reported
    now = datetime.combine(TODAY, time(6), tzinfo=UTC)
    response = run({"date": the_20th.isoformat(), "send_email": False}, session=session, now=now).response

    # THEN each object was fetched once: the 19 summaries, and nothing else twice
    assert response["status"] == "ok"
    summaries = {key for key in reads if key.startswith(f"{PREFIX}/reports/") and key.endswith(".json")}
    assert len(summaries) == 19
    assert [key for key, count in reads.items() if count > 1] == []
    # and what they said was used: 19 days at $1 before an empty 20th
    assert response["reconciliation"]["day"] == (the_20th - timedelta(days=2)).isoformat()
    written = json.loads(s3.get_object(Bucket=BUCKET, Key=response["summary_uri"].split("/", 3)[3])["Body"].read())
    assert written["watch"]["budgets"][0]["spend_usd"] == "19"  # 19 x $1 + today's $0


def test_a_summary_round_trips_through_its_type():
    # GIVEN a summary with every part the report writes
    team = [Spend("ml", Decimal("0.000123"), 3, 1), Spend("unattributed", Decimal("2.5"), 4)]
    teams = [*team, Spend("équipe-北京\u2028", Decimal("0.5"), 1)]  # an attribution value may be any text
    totals = ReportSummary(
        total_cost=Decimal("2.500123"),
        invocations=7,
        failed_invocations=1,
        input_tokens=1000,
        output_tokens=200,
        cache_read_tokens=30,
        cache_write_tokens=40,
        rows=2,
        cache_write_1h_tokens=10,
        long_context_invocations=1,
        unreadable_records=0,
        invalid_rows=0,
        by_identity=team,
        by_model=team,
        by_region=team,
        by_attribution={"team": teams},
        unpriced=[UnpricedModel("acme.new-model", "no price row", 5, 6, 0, 0, 1)],
    )
    summary = Summary(day_window(date(2026, 11, 20), UTC_ZONE).as_json(), totals, {"queries": 1}, {"budgets": []})
    # WHEN it is written and read back
    body = summary.to_json()
    again = Summary.from_json(body)
    # THEN it is the same summary, written on one line, money as exact strings
    assert again == summary
    assert body.count(b"\n") == 1 and b'"total_cost_usd":"2.500123"' in body
    # each breakdown line as the `summaries` table reads it: keys sorted, the cost an exact string
    line = b'{"cost_usd":"0.000123","invocations":3,"name":"ml","unpriced_invocations":1}'
    assert b'"by_identity":[' + line + b',{"cost_usd":"2.5","invocations":4,"name":"unattributed",' in body
    assert json.loads(body) == json.loads(body.decode("utf-8"))  # UTF-8 JSON, whatever the names
    assert again.breakdown_costs("by_attribution.team") == {
        "ml": Decimal("0.000123"),
        "unattributed": Decimal("2.5"),
        "équipe-北京\u2028": Decimal("0.5"),
    }


def test_a_claim_is_created_once_and_names_its_run(aws):
    # GIVEN a bucket
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    store = ReportStore(s3, BUCKET, PREFIX, UTC_ZONE)
    key = store.spike_alert_key("2026-11-20", "abc")
    now = datetime(2026, 11, 21, 6, tzinfo=UTC)
    # WHEN two runs claim the same marker, and the first one's retry claims it again
    first = store.claim(key, {"what": "spike"}, run_id="run-a", now=now)
    second = store.claim(key, {"what": "spike"}, run_id="run-b", now=now)
    retry = store.claim(key, {"what": "spike"}, run_id="run-a", now=now)
    # THEN only the first holds it (its own retry too), and the marker says who and when
    assert (first, second, retry) == (True, False, True)
    marker = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    assert marker == {"what": "spike", "run_id": "run-a", "claimed_at": "2026-11-21T06:00:00+00:00"}
    assert key == f"{PREFIX}/budget-alerts/2026-11-20/spike-abc.json"


# -- an earlier report's rows, read back as untrusted input -------------------------------------------------------------

ROWS_DAY = date(2026, 11, 20)


def _report_csv(*lines: list[str], header: list[str] | None = None) -> bytes:
    import csv
    import io

    from lambda_function.columns import CSV_COLUMNS

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header if header is not None else [*CSV_COLUMNS, "team"])
    writer.writerows(lines)
    return out.getvalue().encode()


def _row(identity: str, model: str, invocations: str, charge: str, team: str = "ml") -> list[str]:
    # the contract's order: Account Id, Identity ARN, Model Id, Region Name, input, output, Charges incurred,
    # Invocations, Failed, cache read, cache write, Pricing status, Images, Long-context, Unreadable, cache 1h; team
    status = "priced" if charge else "no price row"
    return ["111111111111", identity, model, "us-east-1", "10", "5", charge, invocations, "0", "0", "0", status]


def _stored_rows(aws, body: bytes | None):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    window = day_window(ROWS_DAY, UTC_ZONE)
    if body is not None:
        s3.put_object(Bucket=BUCKET, Key=report_key(PREFIX, window), Body=body)
    store = ReportStore(s3, BUCKET, PREFIX, UTC_ZONE)
    return store, window


def _full(row: list[str]) -> list[str]:
    return [*row, "0", "0", "0", "0", "ml"]


def test_a_report_csvs_rows_are_read_back_typed(aws):
    # GIVEN a day's report CSV: a priced row, an unpriced one (empty charge), an identity the CSV neutralised
    body = _report_csv(
        _full(_row("arn:aws:iam::111111111111:user/alice", "us.amazon.nova-lite-v1:0", "3", "0.001250")),
        _full(_row("arn:aws:iam::111111111111:user/bob", "acme.new-model", "2", "")),
        _full(_row("'=HYPERLINK(1)", "amazon.nova-lite-v1:0", "1", "1")),
    )
    store, window = _stored_rows(aws, body)
    # WHEN its rows are read back
    rows = store.report_rows(window)
    # THEN typed: counts as ints, charges exact, the unpriced one None (never 0), the text as the report had it
    assert rows == [
        {
            "account_id": "111111111111",
            "identity_arn": "arn:aws:iam::111111111111:user/alice",
            "model_id": "us.amazon.nova-lite-v1:0",
            "region": "us-east-1",
            "invocations": 3,
            "charge": Decimal("0.001250"),
        },
        {
            "account_id": "111111111111",
            "identity_arn": "arn:aws:iam::111111111111:user/bob",
            "model_id": "acme.new-model",
            "region": "us-east-1",
            "invocations": 2,
            "charge": None,
        },
        {
            "account_id": "111111111111",
            "identity_arn": "=HYPERLINK(1)",
            "model_id": "amazon.nova-lite-v1:0",
            "region": "us-east-1",
            "invocations": 1,
            "charge": Decimal(1),
        },
    ]
    assert store.skipped == [] and store.skipped_report(window) is False


def test_no_report_csv_is_none_and_not_counted(aws):
    store, window = _stored_rows(aws, None)
    assert store.report_rows(window) is None
    assert store.skipped == []


def _bad_bodies() -> list[bytes]:
    good = _full(_row("arn:aws:iam::111111111111:user/alice", "m", "3", "1"))
    return [
        b"not,a,report\n1,2,3\n",  # another CSV
        _report_csv(header=[]),  # no header
        _report_csv(_full(_row("a", "m", "three", "1"))),  # a count that is no count
        _report_csv(_full(_row("a", "m", "-1", "1"))),  # a negative count
        _report_csv(_full(_row("a", "m", "1", "NaN"))),  # a charge that is no amount
        _report_csv(_full(_row("a", "m", "1", "-2"))),  # a negative charge
        _report_csv(good[:-1]),  # a cell short
        b"\xff\xfe" + _report_csv(good),  # not UTF-8
    ]


def test_a_bad_report_csv_is_none_with_a_warning_counted_like_an_unreadable_summary(aws, caplog):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    window = day_window(ROWS_DAY, UTC_ZONE)
    for body in _bad_bodies():
        s3.put_object(Bucket=BUCKET, Key=report_key(PREFIX, window), Body=body)
        store = ReportStore(s3, BUCKET, PREFIX, UTC_ZONE)
        caplog.clear()
        assert store.report_rows(window) is None, body
        assert store.skipped == [report_key(PREFIX, window)] and store.skipped_report(window) is True
        assert "skipping the unreadable earlier report" in caplog.text


def test_a_report_csv_is_read_once_per_run(aws):
    body = _report_csv(_full(_row("arn:aws:iam::111111111111:user/alice", "m", "3", "1")))
    store, window = _stored_rows(aws, body)
    first = store.report_rows(window)
    aws.client("s3").delete_object(Bucket=BUCKET, Key=report_key(PREFIX, window))
    assert store.report_rows(window) == first and first is not None
