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
        ({"date": "2026-12-01"}, "date", "not over yet"),
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


KIRITIMATI = ZoneInfo("Pacific/Kiritimati")  # UTC+14, the earliest day on Earth
PAGO_PAGO = ZoneInfo("Pacific/Pago_Pago")  # UTC-11, one of the latest
TOKYO = ZoneInfo("Asia/Tokyo")  # UTC+9 since 1951 (Kiritimati was still UTC-10:40 in 1970)


def envelope(time):
    """An EventBridge rule's scheduled event, as Lambda receives it."""
    return {
        "version": "0",
        "id": "x",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "time": time,
        "region": "us-east-1",
        "resources": [],
        "detail": {},
    }


@pytest.mark.parametrize(
    ("event", "tz", "field"),
    [
        # values of the wrong type, including unhashable ones
        ({"period": []}, UTC_TZ, "period"),
        ({"period": {}}, UTC_TZ, "period"),
        ({"period": None}, UTC_TZ, "period"),
        ({"period": 1}, UTC_TZ, "period"),
        ({"date": None}, UTC_TZ, "date"),
        ({"date": ["2026-11-20"]}, UTC_TZ, "date"),
        ({"date": True}, UTC_TZ, "date"),
        ({"date": 10**5000}, UTC_TZ, "date"),  # repr() of an int this long raises ValueError
        ({"start": None, "end": "2026-11-02"}, UTC_TZ, "start"),
        ({"start": "2026-11-01", "end": float("nan")}, UTC_TZ, "end"),
        ({"start": "2026-11-01", "end": {"at": "2026-11-02"}}, UTC_TZ, "end"),
        ({"scheduled_time": None}, UTC_TZ, "scheduled_time"),
        ({"scheduled_time": 1_700_000_000}, UTC_TZ, "scheduled_time"),
        ({"recipients": None}, UTC_TZ, "recipients"),
        ({"recipients": {"to": "a@example.com"}}, UTC_TZ, "recipients"),
        ({"recipients": [None]}, UTC_TZ, "recipients"),
        ({"send_email": None}, UTC_TZ, "send_email"),
        ({"force": 10**5000}, UTC_TZ, "force"),
        # keys that are not strings (sorting them with strings raised TypeError), or are empty
        ({1: "x", "date": "2026-11-20"}, UTC_TZ, "event"),
        ({"": "x"}, UTC_TZ, "event"),
        # strings with NUL or other control characters: Python's parsers accept some of them
        ({"start": "2026-11-01\x0000:00:00Z", "end": "2026-11-02"}, UTC_TZ, "start"),
        ({"start": "2026-11-01T00:00:00Z\x00", "end": "2026-11-02"}, UTC_TZ, "start"),
        ({"scheduled_time": "2026-11-20T05:00:00Z\n"}, UTC_TZ, "scheduled_time"),
        ({"date": "2026-11-20\x00"}, UTC_TZ, "date"),
        ({"date": "２０２６-11-20"}, UTC_TZ, "date"),
        ({"date": "2026-11-20", "recipients": ["a@example.com\n"]}, UTC_TZ, "recipients"),
        ({"date": "2026-11-20", "recipients": ["a@example.com\r\nBcc: x@evil.com"]}, UTC_TZ, "recipients"),
        # a window before the Unix epoch: StartQuery's startTime must be >= 0
        ({"date": "1969-12-31"}, UTC_TZ, "date"),
        ({"date": "1970-01-01"}, TOKYO, "date"),  # its midnight is 1969-12-31T15:00Z
        ({"start": "1969-12-31T23:59:59Z", "end": "1970-01-01T01:00:00Z"}, UTC_TZ, "start"),
        ({"start": "0001-01-01T00:00:00Z", "end": "0001-01-02T00:00:00Z"}, UTC_TZ, "start"),
        ({"start": "0001-01-01", "end": "0001-01-02"}, BERLIN, "start"),  # year 0 in UTC: OverflowError
        ({"start": "0001-01-01T00:00:00+14:00", "end": "1970-01-02T00:00:00Z"}, UTC_TZ, "start"),
        ({"scheduled_time": "0001-01-01T00:00:00Z"}, UTC_TZ, "scheduled_time"),
        ({"scheduled_time": "1970-01-01T05:00:00Z"}, UTC_TZ, "scheduled_time"),  # previous day is 1969-12-31
        (envelope("0001-01-01T00:00:00Z"), UTC_TZ, "scheduled_time"),
        (envelope("0001-01-01T00:00:00Z"), BERLIN, "scheduled_time"),
        (envelope(None), UTC_TZ, "scheduled_time"),
        # days that cannot be represented at all
        ({"date": "9999-12-31"}, UTC_TZ, "date"),
        ({"date": "9999-12-31"}, PAGO_PAGO, "date"),
        ({"date": "0001-01-01"}, BERLIN, "date"),
    ],
)
def test_malformed_values_are_refused_naming_the_field(event, tz, field):
    with pytest.raises(InvalidRequest) as caught:
        parse(event, tz)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


def test_the_epoch_itself_is_the_earliest_start():
    window = parse({"date": "1970-01-01"}).window
    assert window.start == utc(1970, 1, 1)
    assert window.epoch_range() == (0, 86_399)  # 24 h = 86,400 s; the inclusive end is 1 s before


@pytest.mark.parametrize(
    ("event", "tz", "field"),
    [
        # NOW is 2026-11-23T06:30Z: today is not over, tomorrow has not begun
        ({"date": "2026-11-23"}, UTC_TZ, "date"),
        ({"date": "2026-11-24"}, UTC_TZ, "date"),
        # Pago Pago (-11): its 22nd runs from 22nd 11:00Z to 23rd 11:00Z, still four and a half hours to go
        ({"date": "2026-11-22"}, PAGO_PAGO, "date"),
        ({"start": "2026-11-23T00:00:00Z", "end": "2026-11-23T06:30:01Z"}, UTC_TZ, "end"),
        ({"start": "2026-11-23", "end": "2026-11-24"}, UTC_TZ, "end"),
        # more than 5 minutes of clock skew between Scheduler and Lambda: 06:35:01 is 5 min 1 s after NOW
        ({"scheduled_time": "2026-11-23T06:35:01Z"}, UTC_TZ, "scheduled_time"),
        ({"scheduled_time": "2026-11-24T05:00:00Z"}, UTC_TZ, "scheduled_time"),
        (envelope("2026-11-24T05:00:00Z"), UTC_TZ, "scheduled_time"),
        # within the allowance, but month to date would then end 3 minutes after NOW
        ({"period": "month_to_date", "scheduled_time": "2026-11-23T06:33:00Z"}, UTC_TZ, "scheduled_time"),
    ],
)
def test_only_finished_windows_are_reported(event, tz, field):
    with pytest.raises(InvalidRequest) as caught:
        parse(event, tz)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


@pytest.mark.parametrize(
    ("event", "tz", "start", "end"),
    [
        # a window may end exactly now
        ({"start": "2026-11-23T00:00:00Z", "end": "2026-11-23T06:30:00Z"}, UTC_TZ, utc(2026, 11, 23), NOW),
        # Kiritimati (+14): its 23rd ran from 22nd 10:00Z to 23rd 10:00Z, not over; its 22nd is
        ({"date": "2026-11-22"}, KIRITIMATI, utc(2026, 11, 21, 10), utc(2026, 11, 22, 10)),
        # Scheduler's clock 5 minutes ahead of Lambda's is allowed: still the previous day
        ({"scheduled_time": "2026-11-23T06:35:00Z"}, UTC_TZ, utc(2026, 11, 22), utc(2026, 11, 23)),
        ({"period": "month_to_date", "scheduled_time": "2026-11-23T06:30:00Z"}, UTC_TZ, utc(2026, 11, 1), NOW),
    ],
)
def test_windows_that_end_by_now(event, tz, start, end):
    window = parse(event, tz).window
    assert (window.start, window.end) == (start, end)


def test_a_scheduled_day_that_is_not_over_yet_is_refused():
    # scheduled for 00:02 on the 24th (2 minutes of skew allowed), but the 23rd ends at 00:00, after 23:59
    with pytest.raises(InvalidRequest) as caught:
        parse({"scheduled_time": "2026-11-24T00:02:00Z"}, now=utc(2026, 11, 23, 23, 59))
    assert caught.value.field == "scheduled_time"


def test_month_to_date_within_the_first_second_of_the_month_covers_nothing():
    # now has a fraction of a second; the window would be [00:00:00, 00:00:00)
    with pytest.raises(InvalidRequest) as caught:
        parse({"period": "month_to_date"}, now=datetime(2026, 12, 1, 0, 0, 0, 500_000, tzinfo=UTC))
    assert caught.value.field == "period"


@pytest.mark.parametrize(
    ("event", "partial"),
    [
        ({"period": "month_to_date"}, True),
        ({"period": "previous_day"}, False),
        ({"period": "previous_month"}, False),
        ({}, False),
        ({"date": "2026-11-20"}, False),
        ({"start": "2026-11-23T00:00:00Z", "end": "2026-11-23T06:00:00Z"}, False),
    ],
)
def test_only_month_to_date_is_partial(event, partial):
    assert parse(event).partial is partial
