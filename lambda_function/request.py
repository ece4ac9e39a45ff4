"""Turn the invocation event (scheduled or manual) into a validated ReportRequest, or say which field is wrong."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from lambda_function.config import is_email
from lambda_function.errors import InvalidRequest
from lambda_function.window import MAX_WINDOW, PERIODS, UNIX_EPOCH, ReportWindow, day_window, local_midnight

ALLOWED_KEYS = ("start", "end", "date", "period", "recipients", "send_email", "force", "scheduled_time")

# EventBridge (rules) wraps scheduled invocations in this envelope; it carries no report options.
_SCHEDULED_EVENT_KEYS = {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}

# Scheduler stamps <aws.scheduler.scheduled-time> from its own clock and Lambda checks it against another, so a
# scheduled time may be a little ahead of `now`. Beyond this it is not skew but a window that has not happened.
SCHEDULER_CLOCK_SKEW = timedelta(minutes=5)

# An unknown key is named as the field only when it looks like one: the field goes into logs and the response
# as it is, and a key may hold control characters or a megabyte of text.
_FIELD_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


@dataclass(frozen=True)
class ReportRequest:
    window: ReportWindow
    recipients: tuple[str, ...]
    send_email: bool
    force: bool = False  # send the email again even if this window's email went out before
    partial: bool = False  # month to date: the window stops at the run, not at the end of a period
    # From the schedule (it sends `scheduled_time`, or an EventBridge rule's "Scheduled Event"), not by hand: only a
    # scheduled run's delivery tells the heartbeat alarm that the schedule works
    scheduled: bool = False


def _shown(value: Any) -> str:
    """The value for an error message: one line, at most 60 characters, and never raising."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # repr() of an int over 4,300 digits raises ValueError
        return f"a {type(value).__name__}"
    return text if len(text) <= 60 else text[:57] + "..."


def _text(field: str, value: Any, expected: str) -> str:
    """A string of printable ASCII, stripped; Python's date parsers accept a NUL separator or trailing byte."""
    if not isinstance(value, str):
        raise InvalidRequest(field, f"must be {expected}, got {_shown(value)}")
    if not value.isascii() or not value.isprintable():
        raise InvalidRequest(field, f"{_shown(value)} has characters other than printable ASCII")
    return value.strip()


def _parse_instant(field: str, value: Any, tz: ZoneInfo) -> datetime:
    """ISO 8601 with an offset, or a plain date read as midnight in the report's timezone; returned in UTC."""
    text = _text(field, value, "an ISO 8601 date or date-time string")
    if not text:
        raise InvalidRequest(field, "must be an ISO 8601 date or date-time string, got ''")
    try:
        if len(text) == 10:
            parsed = local_midnight(date.fromisoformat(text), tz)
        else:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidRequest(field, f"{text!r} is not an ISO 8601 date (2026-11-20) or date-time with offset") from None
    if parsed.tzinfo is None:
        raise InvalidRequest(
            field, f"{text!r} has no UTC offset; add one (2026-11-20T00:00:00Z, +01:00) or give a plain date"
        )
    if parsed.microsecond:
        raise InvalidRequest(field, f"{text!r} has fractions of a second; Logs Insights works in whole seconds")
    try:
        instant = parsed.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is in year 0 in UTC
        raise InvalidRequest(field, f"{text!r} is outside the dates a report can cover") from None
    if instant < UNIX_EPOCH:
        raise InvalidRequest(field, f"{text!r} is before 1970-01-01T00:00:00Z, where Logs Insights time begins")
    return instant


def _parse_day(value: Any) -> date:
    text = _text("date", value, "a date string like 2026-11-20")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidRequest("date", f"{text!r} is not a date like 2026-11-20") from None


def _finished(field: str, window: ReportWindow, now: datetime) -> ReportWindow:
    """Refuse a window that starts before the epoch or has not ended: a report of half a day looks like a whole one."""
    start, end = window.as_json()["start"], window.as_json()["end"]
    if window.start < UNIX_EPOCH:
        raise InvalidRequest(field, f"the window starts {start}, before 1970-01-01T00:00:00Z")
    if window.end > now:
        raise InvalidRequest(field, f"the window [{start}, {end}) is not over yet; only finished windows are reported")
    return window


def _window(event: Mapping[str, Any], tz: ZoneInfo, now: datetime) -> ReportWindow:
    has_range = "start" in event or "end" in event
    if "date" in event and has_range:
        raise InvalidRequest("date", "give either date or start/end, not both")
    if "period" in event and ("date" in event or has_range):
        raise InvalidRequest("period", "give either period, date or start/end")
    scheduled = None
    if "scheduled_time" in event:
        scheduled = _parse_instant("scheduled_time", event["scheduled_time"], tz)
        if scheduled > now + SCHEDULER_CLOCK_SKEW:
            minutes = SCHEDULER_CLOCK_SKEW.seconds // 60
            raise InvalidRequest(
                "scheduled_time",
                f"{scheduled.isoformat()} is more than {minutes} minutes after now ({now.isoformat()})",
            )
    if "date" in event:
        day = _parse_day(event["date"])
        try:
            window = day_window(day, tz)
        except OverflowError:  # 9999-12-31 has no next midnight; 0001-01-01 in Berlin starts in year 0 (UTC)
            raise InvalidRequest("date", f"{day.isoformat()} is outside the dates a report can cover") from None
        return _finished("date", window, now)
    if has_range:
        for field in ("start", "end"):
            if field not in event:
                raise InvalidRequest(field, "start and end go together; give both (end is exclusive)")
        start = _parse_instant("start", event["start"], tz)
        end = _parse_instant("end", event["end"], tz)
        if end <= start:
            raise InvalidRequest("end", f"must be after start ({event['end']} <= {event['start']})")
        if end - start > MAX_WINDOW:  # both in UTC: elapsed time, not wall clock
            raise InvalidRequest("end", f"the window is {end - start}; at most {MAX_WINDOW.days} days per report")
        return _finished("end", ReportWindow(start, end, tz), now)
    # The scheduled run: a period (the previous full day by default) relative to when it was *scheduled*,
    # so a late retry of yesterday's run still reports the same day (<aws.scheduler.scheduled-time>).
    field = "period" if scheduled is None else "scheduled_time"
    reference = now.replace(microsecond=0) if scheduled is None else scheduled  # month to date ends in whole seconds
    period = event.get("period", "previous_day")
    if not isinstance(period, str) or period not in PERIODS:
        raise InvalidRequest("period", f"{_shown(period)} is not one of {', '.join(PERIODS)}")
    local = reference.astimezone(tz)
    if period == "month_to_date" and local == local_midnight(local.date().replace(day=1), tz):
        raise InvalidRequest("period", "month_to_date at midnight on the 1st covers nothing yet")
    try:
        window = PERIODS[period](reference, tz)
    except ValueError:  # an empty month to date where midnight on the 1st is skipped by a clock change
        raise InvalidRequest("period", f"{period} at {local.isoformat()} covers nothing yet") from None
    return _finished(field, window, now)


def _recipients(
    event: Mapping[str, Any], default: tuple[str, ...], allowed: Callable[[str], bool] | None
) -> tuple[str, ...]:
    if "recipients" not in event:
        return default
    value = event["recipients"]
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise InvalidRequest("recipients", "must be a non-empty list of e-mail addresses")
    for address in value:
        if not address.isprintable():  # a CR/LF here would be a header injection attempt
            raise InvalidRequest("recipients", f"{_shown(address)} has control characters")
    cleaned = tuple(v.strip() for v in value)
    for address in cleaned:
        if not is_email(address):
            raise InvalidRequest("recipients", f"{_shown(address)} is not an e-mail address")
        if allowed is not None and not allowed(address):
            # whoever may invoke the function must not be able to mail its cost and identity data outside
            raise InvalidRequest("recipients", f"{_shown(address)} is not in ALLOWED_RECIPIENTS")
    return cleaned


def is_price_refresh(event: Any) -> bool:
    """True for the weekly price-refresh event `{"refresh_prices": true}` (its own schedule); it takes no other key."""
    if not isinstance(event, Mapping) or "refresh_prices" not in event:
        return False
    if event.get("refresh_prices") is not True or len(event) != 1:
        raise InvalidRequest("refresh_prices", 'the price refresh is asked for alone, as {"refresh_prices": true}')
    return True


def parse_request(
    event: Any,
    *,
    tz: ZoneInfo,
    now: datetime,
    default_recipients: tuple[str, ...],
    allowed: Callable[[str], bool] | None = None,
) -> ReportRequest:
    """Validate the event. Unknown keys are refused rather than ignored: a typo must not send a wrong report.
    `allowed` says whether an address the event names may receive the report (ALLOWED_RECIPIENTS)."""
    if event is None:
        event = {}
    if not isinstance(event, Mapping):
        raise InvalidRequest("event", f"must be a JSON object, got {type(event).__name__}")
    odd_keys = [key for key in event if not isinstance(key, str)]
    if odd_keys:  # only a Python caller can do this; JSON object keys are strings
        raise InvalidRequest("event", f"keys must be strings, got {_shown(odd_keys[0])}")
    from_rule = event.get("detail-type") == "Scheduled Event" and set(event) <= _SCHEDULED_EVENT_KEYS
    if from_rule:
        event = {"scheduled_time": event["time"]} if "time" in event else {}
    unknown = sorted(set(event) - set(ALLOWED_KEYS))
    if unknown:
        field = unknown[0] if _FIELD_NAME.fullmatch(unknown[0]) else "event"
        raise InvalidRequest(field, f"unknown key {_shown(unknown[0])}; allowed keys are {', '.join(ALLOWED_KEYS)}")
    send_email = event.get("send_email", True)
    if not isinstance(send_email, bool):
        raise InvalidRequest("send_email", f"must be true or false, got {_shown(send_email)}")
    force = event.get("force", False)
    if not isinstance(force, bool):
        raise InvalidRequest("force", f"must be true or false, got {_shown(force)}")
    return ReportRequest(
        window=_window(event, tz, now),
        recipients=_recipients(event, default_recipients, allowed),
        send_email=send_email,
        force=force,
        partial=event.get("period") == "month_to_date",
        scheduled=from_rule or "scheduled_time" in event,
    )


__all__ = ["ALLOWED_KEYS", "ReportRequest", "is_price_refresh", "parse_request"]
