"""The event contract: what a manual or scheduled invocation may ask for, and the answer to a bad one."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from lambda_function.errors import InvalidRequest
from lambda_function.request import parse_request

UTC_TZ = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 11, 23, 6, 30, tzinfo=UTC)  # the morning run
DEFAULT_TO = ("finops@example.com",)


def parse(event, tz=UTC_TZ, now=NOW):
    return parse_request(event, tz=tz, now=now, default_recipients=DEFAULT_TO)


def utc(*args):
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("event", "tz", "start", "end"),
    [
        # empty event: the previous full day in REPORT_TIMEZONE
        ({}, UTC_TZ, utc(2026, 11, 22), utc(2026, 11, 23)),
        (None, UTC_TZ, utc(2026, 11, 22), utc(2026, 11, 23)),
        # Berlin is UTC+1 in November: its 22nd runs from 21st 23:00Z to 22nd 23:00Z
        ({}, BERLIN, utc(2026, 11, 21, 23), utc(2026, 11, 22, 23)),
        ({"date": "2026-11-20"}, UTC_TZ, utc(2026, 11, 20), utc(2026, 11, 21)),
        ({"date": "2026-11-20"}, BERLIN, utc(2026, 11, 19, 23), utc(2026, 11, 20, 23)),
        (
            {"start": "2026-11-01T00:00:00Z", "end": "2026-11-08T00:00:00Z"},
            BERLIN,
            utc(2026, 11, 1),
            utc(2026, 11, 8),
        ),
        (
            {"start": "2026-11-01T00:00:00+05:30", "end": "2026-11-01T12:00:00+05:30"},
            UTC_TZ,
            utc(2026, 10, 31, 18, 30),
            utc(2026, 11, 1, 6, 30),
        ),
        # plain dates are midnights in the report's timezone
        ({"start": "2026-11-01", "end": "2026-11-03"}, BERLIN, utc(2026, 10, 31, 23), utc(2026, 11, 2, 23)),
        # the scheduler's own time decides the day, not the clock when a retry happens to run
        ({"scheduled_time": "2026-11-20T05:00:00Z"}, UTC_TZ, utc(2026, 11, 19), utc(2026, 11, 20)),
        # an EventBridge rule's scheduled event is the same as an empty one
        (
            {
                "version": "0",
                "id": "x",
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "time": "2026-11-21T01:00:00Z",
                "detail": {},
            },
            UTC_TZ,
            utc(2026, 11, 20),
            utc(2026, 11, 21),
        ),
    ],
)
def test_windows(event, tz, start, end):
    request = parse(event, tz)
    assert request.window.start == start
    assert request.window.end == end
    assert request.recipients == DEFAULT_TO
    assert request.send_email is True


def test_recipients_and_send_email_override_the_defaults():
    request = parse({"date": "2026-11-20", "recipients": ["a@example.com", "b@example.org"], "send_email": False})
    assert request.recipients == ("a@example.com", "b@example.org")
    assert request.send_email is False


@pytest.mark.parametrize(
    ("event", "field", "words"),
    [
        ({"dates": "2026-11-20"}, "dates", "unknown key"),
        ({"date": "2026-11-31"}, "date", "not a date"),
        ({"date": 20261120}, "date", "date string"),
        ({"start": "yesterday", "end": "2026-11-08"}, "start", "not an ISO 8601"),
        ({"start": "2026-11-01T00:00:00", "end": "2026-11-08T00:00:00Z"}, "start", "no UTC offset"),
        ({"start": "2026-11-08", "end": "2026-11-08"}, "end", "must be after start"),
        ({"start": "2026-11-08", "end": "2026-11-01"}, "end", "must be after start"),
        ({"start": "2025-01-01", "end": "2026-01-03"}, "end", "at most 366 days"),
        ({"start": "2026-11-01"}, "end", "go together"),
        ({"date": "2026-11-20", "start": "2026-11-01", "end": "2026-11-02"}, "date", "not both"),
        ({"date": "2026-11-20", "recipients": ["not-an-address"]}, "recipients", "not an e-mail address"),
        ({"date": "2026-11-20", "recipients": ["ok@example.com", "bad@@example.com"]}, "recipients", "bad@@"),
        ({"date": "2026-11-20", "recipients": []}, "recipients", "non-empty list"),
        ({"date": "2026-11-20", "send_email": "no"}, "send_email", "true or false"),
        ({"date": "2026-12-01"}, "start", "in the future"),
        ({"start": "2026-11-01T00:00:00.5Z", "end": "2026-11-02"}, "start", "fractions of a second"),
    ],
)
def test_bad_requests_name_the_field(event, field, words):
    with pytest.raises(InvalidRequest) as caught:
        parse(event)
    assert caught.value.field == field
    assert words in str(caught.value)
    response = caught.value.as_response()
    assert response["status"] == "error"
    assert response["error"]["field"] == field


def test_an_event_that_is_not_an_object_is_refused():
    with pytest.raises(InvalidRequest) as caught:
        parse(["2026-11-20"])
    assert caught.value.field == "event"


def test_a_366_day_window_is_allowed():
    request = parse({"start": "2025-01-01", "end": "2026-01-02"})  # 2025 has 365 days: 366 in all
    assert (request.window.end - request.window.start).days == 366


NEW_YORK = ZoneInfo("America/New_York")
SYDNEY = ZoneInfo("Australia/Sydney")


@pytest.mark.parametrize(
    ("tz", "day", "start", "end", "hours"),
    [
        # New York falls back on 2026-11-01 (EDT -4 -> EST -5): a 25-hour day
        (NEW_YORK, "2026-11-01", utc(2026, 11, 1, 4), utc(2026, 11, 2, 5), 25),
        # ... and springs forward on 2026-03-08 (EST -5 -> EDT -4): 23 hours
        (NEW_YORK, "2026-03-08", utc(2026, 3, 8, 5), utc(2026, 3, 9, 4), 23),
        # Berlin: 2026-03-29 (CET +1 -> CEST +2) has 23 hours, 2026-10-25 has 25
        (BERLIN, "2026-03-29", utc(2026, 3, 28, 23), utc(2026, 3, 29, 22), 23),
        (BERLIN, "2026-10-25", utc(2026, 10, 24, 22), utc(2026, 10, 25, 23), 25),
        # Sydney, southern hemisphere: 2026-10-04 springs forward (AEST +10 -> AEDT +11), 23 hours
        (SYDNEY, "2026-10-04", utc(2026, 10, 3, 14), utc(2026, 10, 4, 13), 23),
    ],
)
def test_days_when_clocks_change(tz, day, start, end, hours):
    window = parse({"date": day}, tz).window
    assert (window.start, window.end) == (start, end)
    assert (window.end - window.start).total_seconds() == hours * 3600
    assert window.label == day


def test_the_scheduled_run_after_a_dst_change_covers_the_long_day():
    # the 06:00 New York run on 2026-11-02 reports Sunday 2026-11-01, all 25 hours of it
    window = parse({"scheduled_time": "2026-11-02T06:00:00-05:00"}, NEW_YORK, now=utc(2026, 11, 2, 11)).window
    assert (window.start, window.end) == (utc(2026, 11, 1, 4), utc(2026, 11, 2, 5))


@pytest.mark.parametrize(
    ("period", "tz", "start", "end"),
    [
        ("previous_day", UTC_TZ, utc(2026, 11, 22), utc(2026, 11, 23)),
        # NOW is Monday 2026-11-23: the previous ISO week is Mon 16th to Mon 23rd
        ("previous_week", UTC_TZ, utc(2026, 11, 16), utc(2026, 11, 23)),
        ("previous_month", UTC_TZ, utc(2026, 10, 1), utc(2026, 11, 1)),
        # October 2026 in Berlin: starts in CEST (+2), ends in CET (+1)
        ("previous_month", BERLIN, utc(2026, 9, 30, 22), utc(2026, 10, 31, 23)),
        ("month_to_date", UTC_TZ, utc(2026, 11, 1), NOW),
    ],
)
def test_periods(period, tz, start, end):
    window = parse({"period": period}, tz).window
    assert (window.start, window.end) == (start, end)


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"period": "last_fortnight"}, "period"),
        ({"period": "previous_week", "date": "2026-11-20"}, "period"),
        ({"force": "yes"}, "force"),
    ],
)
def test_bad_periods_and_force(event, field):
    with pytest.raises(InvalidRequest) as caught:
        parse(event)
    assert caught.value.field == field
