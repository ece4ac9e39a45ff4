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
