"""Change against the previous period and month-to-date, from the summaries earlier runs left in S3."""

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from lambda_function.report.history import compare_previous, month_to_date, previous_window
from lambda_function.store import ReportStore, report_key
from lambda_function.window import ReportWindow, day_window

UTC_TZ = ZoneInfo("UTC")
BUCKET = "history"


def store(s3) -> ReportStore:
    return ReportStore(s3, BUCKET, "bedrock-usage", UTC_TZ)


def put_summary(s3, window, total):
    key = report_key("bedrock-usage", window).removesuffix(".csv") + ".json"
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps({"window": window.as_json(), "total_cost_usd": total}))


def test_previous_window_has_the_same_length():
    week = ReportWindow(datetime(2026, 11, 16, tzinfo=UTC), datetime(2026, 11, 23, tzinfo=UTC), UTC_TZ)
    before = previous_window(week)
    assert (before.start, before.end) == (datetime(2026, 11, 9, tzinfo=UTC), datetime(2026, 11, 16, tzinfo=UTC))
    # a 25-hour DST day's previous day is the 24-hour day before it, not "25 hours earlier"
    ny = ZoneInfo("America/New_York")
    sunday = day_window(date(2026, 11, 1), ny)
    assert previous_window(sunday).label == "2026-10-31"


def test_change_and_month_to_date(aws):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    put_summary(s3, day_window(date(2026, 11, 1), UTC_TZ), "10.000000")
    put_summary(s3, day_window(date(2026, 11, 2), UTC_TZ), "80.000000")
    # (no report for the 3rd)
    today = day_window(date(2026, 11, 4), UTC_TZ)
    put_summary(s3, day_window(date(2026, 11, 3), UTC_TZ), "40.000000")
    previous = compare_previous(store(s3), today, Decimal("50"))
    # 50 - 40 = +10, +25.0%
    assert (previous.label, previous.total_cost, previous.change, previous.change_percent) == (
        "2026-11-03",
        Decimal("40"),
        Decimal("10"),
        Decimal("25.0"),
    )
    mtd = month_to_date(store(s3), today, Decimal("50"))
    # 10 + 80 + 40 + 50 = 180, all 4 days reported
    assert (mtd.total_cost, mtd.days_reported, mtd.days_in_range) == (Decimal("180"), 4, 4)


def test_missing_history_is_said_not_invented(aws):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    today = day_window(date(2026, 11, 4), UTC_TZ)
    assert compare_previous(store(s3), today, Decimal("5")) is None
    mtd = month_to_date(store(s3), today, Decimal("5"))
    assert (mtd.total_cost, mtd.days_reported, mtd.days_in_range) == (Decimal("5"), 1, 4)


def put_raw(s3, window, body: bytes):
    key = report_key("bedrock-usage", window).removesuffix(".csv") + ".json"
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)


def test_unreadable_summaries_are_skipped_and_counted(aws):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    day = lambda n: day_window(date(2026, 11, n), UTC_TZ)  # noqa: E731
    put_summary(s3, day(1), "10.000000")
    put_raw(s3, day(2), b"{not json")  # cut off mid-write
    put_raw(s3, day(3), json.dumps({"window": day(3).as_json()}).encode())  # no total
    put_raw(s3, day(4), json.dumps({"window": day(4).as_json(), "total_cost_usd": "lots"}).encode())
    put_raw(s3, day(5), json.dumps({"window": day(5).as_json(), "total_cost_usd": "NaN"}).encode())
    put_raw(s3, day(6), b'["a list, not a summary"]')
    put_summary(s3, day(7), "2.500000")
    today = day(8)
    reports = store(s3)
    mtd = month_to_date(reports, today, Decimal("1"))
    skipped = reports.skipped
    # 10 + 2.5 + today's 1 = 13.5, from 3 of the 8 days; the five unreadable ones are named
    assert (mtd.total_cost, mtd.days_reported, mtd.days_in_range) == (Decimal("13.5"), 3, 8)
    assert [k.rsplit("/", 1)[-1][14:22] for k in skipped] == [
        "20261102",
        "20261103",
        "20261104",
        "20261105",
        "20261106",
    ]
    # a previous day that cannot be read gives no comparison, not an error
    reports = store(s3)
    assert compare_previous(reports, day(3), Decimal("1")) is None
    assert len(reports.skipped) == 1
