"""The report window: a half-open, timezone-aware interval [start, end)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

MAX_WINDOW = timedelta(days=366)
# StartQuery takes epoch seconds and refuses a negative startTime, so no window starts before this.
UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ReportWindow:
    start: datetime
    end: datetime
    tz: ZoneInfo

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("ReportWindow needs timezone-aware datetimes")
        if self.end <= self.start:
            raise ValueError("ReportWindow end must be after start")
        # Kept in UTC: Python subtracts two datetimes sharing a ZoneInfo by wall clock, which would make a
        # 25-hour DST day 24 hours long. Local views come from local_start/local_end.
        object.__setattr__(self, "start", self.start.astimezone(UTC))
        object.__setattr__(self, "end", self.end.astimezone(UTC))

    @property
    def local_start(self) -> datetime:
        return self.start.astimezone(self.tz)

    @property
    def local_end(self) -> datetime:
        return self.end.astimezone(self.tz)

    @property
    def is_single_day(self) -> bool:
        start, end = self.local_start, self.local_end
        return start.time() == time(0) and end.time() == time(0) and end.date() - start.date() == timedelta(days=1)

    @property
    def label(self) -> str:
        """How people name the window: `2026-11-20` for a whole day, else both ends in the report's timezone."""
        if self.is_single_day:
            return self.local_start.date().isoformat()
        start, end = self.local_start, self.local_end
        if start.time() == time(0) and end.time() == time(0):
            last_day = end.date() - timedelta(days=1)
            return f"{start.date().isoformat()} to {last_day.isoformat()}"
        return f"{start.isoformat(timespec='seconds')} to {end.isoformat(timespec='seconds')}"

    def epoch_range(self) -> tuple[int, int]:
        """StartQuery's startTime/endTime: epoch seconds, both INCLUSIVE, so the half-open end becomes end - 1 s."""
        return int(self.start.timestamp()), int(self.end.timestamp()) - 1

    def as_json(self) -> dict[str, str]:
        return {
            "start": self.start.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "end": self.end.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "timezone": self.tz.key,
            "label": self.label,
        }


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)


def day_window(day: date, tz: ZoneInfo) -> ReportWindow:
    """The whole local day: 24 hours, or 23/25 on the days clocks change."""
    return ReportWindow(local_midnight(day, tz), local_midnight(day + timedelta(days=1), tz), tz)


def previous_day(now: datetime, tz: ZoneInfo) -> ReportWindow:
    """The last full day in `tz` before `now` — what the daily schedule reports."""
    today = now.astimezone(tz).date()
    return day_window(today - timedelta(days=1), tz)


def previous_week(now: datetime, tz: ZoneInfo) -> ReportWindow:
    """The last full ISO week (Monday to Monday) in `tz` before `now`."""
    today = now.astimezone(tz).date()
    this_monday = today - timedelta(days=today.weekday())
    return ReportWindow(local_midnight(this_monday - timedelta(days=7), tz), local_midnight(this_monday, tz), tz)


def previous_month(now: datetime, tz: ZoneInfo) -> ReportWindow:
    first_of_this = now.astimezone(tz).date().replace(day=1)
    first_of_last = (first_of_this - timedelta(days=1)).replace(day=1)
    return ReportWindow(local_midnight(first_of_last, tz), local_midnight(first_of_this, tz), tz)


def month_to_date(now: datetime, tz: ZoneInfo) -> ReportWindow:
    """From the first of this month in `tz` up to `now` (whole seconds); on the 1st at midnight, nothing yet."""
    first = local_midnight(now.astimezone(tz).date().replace(day=1), tz)
    return ReportWindow(first, now.replace(microsecond=0), tz)


PERIODS = {
    "previous_day": previous_day,
    "previous_week": previous_week,
    "previous_month": previous_month,
    "month_to_date": month_to_date,
}
