"""Change against the previous period and month-to-date, from the summaries earlier runs left in S3."""

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from lambda_function.deliver import report_key
from lambda_function.history import compare_previous, month_to_date, previous_window
from lambda_function.window import ReportWindow, day_window

UTC_TZ = ZoneInfo("UTC")
BUCKET = "history"


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
    previous = compare_previous(s3, BUCKET, "bedrock-usage", today, Decimal("50"))
    # 50 - 40 = +10, +25.0%
    assert (previous.label, previous.total_cost, previous.change, previous.change_percent) == (
        "2026-11-03",
        Decimal("40"),
        Decimal("10"),
        Decimal("25.0"),
    )
    mtd = month_to_date(s3, BUCKET, "bedrock-usage", today, Decimal("50"))
    # 10 + 80 + 40 + 50 = 180, all 4 days reported
    assert (mtd.total_cost, mtd.days_reported, mtd.days_in_range) == (Decimal("180"), 4, 4)


def test_missing_history_is_said_not_invented(aws):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    today = day_window(date(2026, 11, 4), UTC_TZ)
    assert compare_previous(s3, BUCKET, "bedrock-usage", today, Decimal("5")) is None
    mtd = month_to_date(s3, BUCKET, "bedrock-usage", today, Decimal("5"))
    assert (mtd.total_cost, mtd.days_reported, mtd.days_in_range) == (Decimal("5"), 1, 4)
