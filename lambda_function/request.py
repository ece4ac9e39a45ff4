"""Turn the invocation event (scheduled or manual) into a validated ReportRequest, or say which field is wrong."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from .config import is_email
from .errors import InvalidRequest
from .window import MAX_WINDOW, PERIODS, ReportWindow, day_window, local_midnight

ALLOWED_KEYS = ("start", "end", "date", "period", "recipients", "send_email", "force", "scheduled_time")

# EventBridge (rules) wraps scheduled invocations in this envelope; it carries no report options.
_SCHEDULED_EVENT_KEYS = {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}


@dataclass(frozen=True)
class ReportRequest:
    window: ReportWindow
    recipients: tuple[str, ...]
    send_email: bool
    force: bool = False  # send the email again even if this window's email went out before


def _parse_instant(field: str, value: Any, tz: ZoneInfo) -> datetime:
    """ISO 8601 with an offset, or a plain date read as midnight in the report's timezone."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(field, f"must be an ISO 8601 date or date-time string, got {value!r}")
    text = value.strip()
    try:
        if len(text) == 10:
            return local_midnight(date.fromisoformat(text), tz)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidRequest(field, f"{text!r} is not an ISO 8601 date (2026-11-20) or date-time with offset") from None
    if parsed.tzinfo is None:
        raise InvalidRequest(
            field, f"{text!r} has no UTC offset; add one (2026-11-20T00:00:00Z, +01:00) or give a plain date"
        )
    if parsed.microsecond:
        raise InvalidRequest(field, f"{text!r} has fractions of a second; Logs Insights works in whole seconds")
    return parsed


def _parse_day(value: Any) -> date:
    if not isinstance(value, str):
        raise InvalidRequest("date", f"must be a date string like 2026-11-20, got {value!r}")
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidRequest("date", f"{value!r} is not a date like 2026-11-20") from None


def _window(event: Mapping[str, Any], tz: ZoneInfo, now: datetime) -> ReportWindow:
    has_range = "start" in event or "end" in event
    if "date" in event and has_range:
        raise InvalidRequest("date", "give either date or start/end, not both")
    if "period" in event and ("date" in event or has_range):
        raise InvalidRequest("period", "give either period, date or start/end")
    if "date" in event:
        window = day_window(_parse_day(event["date"]), tz)
    elif has_range:
        for field in ("start", "end"):
            if field not in event:
                raise InvalidRequest(field, "start and end go together; give both (end is exclusive)")
        start = _parse_instant("start", event["start"], tz)
        end = _parse_instant("end", event["end"], tz)
        if end <= start:
            raise InvalidRequest("end", f"must be after start ({event['end']} <= {event['start']})")
        if end.astimezone(UTC) - start.astimezone(UTC) > MAX_WINDOW:  # elapsed time, not wall clock
            raise InvalidRequest("end", f"the window is {end - start}; at most {MAX_WINDOW.days} days per report")
        window = ReportWindow(start, end, tz)
    else:
        # The scheduled run: a period (the previous full day by default) relative to when it was *scheduled*,
        # so a late retry of yesterday's run still reports the same day (<aws.scheduler.scheduled-time>).
        reference = now
        if "scheduled_time" in event:
            reference = _parse_instant("scheduled_time", event["scheduled_time"], tz)
        period = event.get("period", "previous_day")
        if period not in PERIODS:
            raise InvalidRequest("period", f"{period!r} is not one of {', '.join(PERIODS)}")
        if period == "month_to_date" and reference.astimezone(tz) == local_midnight(
            reference.astimezone(tz).date().replace(day=1), tz
        ):
            raise InvalidRequest("period", "month_to_date at midnight on the 1st covers nothing yet")
        window = PERIODS[period](reference, tz)
    if window.start >= now:
        raise InvalidRequest("start", f"{window.start.isoformat()} is in the future; there is nothing to report yet")
    return window


def _recipients(value: Any, default: tuple[str, ...]) -> tuple[str, ...]:
    if value is None:
        return default
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise InvalidRequest("recipients", "must be a non-empty list of e-mail addresses")
    cleaned = tuple(v.strip() for v in value)
    for address in cleaned:
        if not is_email(address):
            raise InvalidRequest("recipients", f"{address!r} is not an e-mail address")
    return cleaned


def parse_request(event: Any, *, tz: ZoneInfo, now: datetime, default_recipients: tuple[str, ...]) -> ReportRequest:
    """Validate the event. Unknown keys are refused rather than ignored: a typo must not send a wrong report."""
    if event is None:
        event = {}
    if not isinstance(event, Mapping):
        raise InvalidRequest("event", f"must be a JSON object, got {type(event).__name__}")
    if event.get("detail-type") == "Scheduled Event" and set(event) <= _SCHEDULED_EVENT_KEYS:
        event = {"scheduled_time": event["time"]} if "time" in event else {}
    unknown = sorted(set(event) - set(ALLOWED_KEYS))
    if unknown:
        raise InvalidRequest(unknown[0], f"unknown key; allowed keys are {', '.join(ALLOWED_KEYS)}")
    send_email = event.get("send_email", True)
    if not isinstance(send_email, bool):
        raise InvalidRequest("send_email", f"must be true or false, got {send_email!r}")
    force = event.get("force", False)
    if not isinstance(force, bool):
        raise InvalidRequest("force", f"must be true or false, got {force!r}")
    return ReportRequest(
        window=_window(event, tz, now),
        recipients=_recipients(event.get("recipients"), default_recipients),
        send_email=send_email,
        force=force,
    )


__all__ = ["ALLOWED_KEYS", "ReportRequest", "parse_request"]
