"""What changed: the previous period's total and month-to-date spend, from the summaries earlier runs left beside
their CSVs (no extra Logs Insights queries, so no extra scan cost)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from lambda_function.store import ReportStore
from lambda_function.window import ReportWindow, day_window


@dataclass(frozen=True)
class PreviousPeriod:
    label: str
    total_cost: Decimal
    change: Decimal  # this period minus the previous one
    change_percent: Decimal | None  # None when the previous period cost nothing


@dataclass(frozen=True)
class MonthToDate:
    total_cost: Decimal
    days_reported: int
    days_in_range: int


def previous_window(window: ReportWindow) -> ReportWindow:
    """The period of the same length just before: yesterday's yesterday, last week's week before."""
    if window.is_single_day:
        return day_window(window.local_start.date() - timedelta(days=1), window.tz)
    length = window.end - window.start
    return ReportWindow(window.start - length, window.start, window.tz)


def compare_previous(store: ReportStore, window: ReportWindow, total: Decimal) -> PreviousPeriod | None:
    before = previous_window(window)
    summary = store.summary(before)
    if summary is None:
        return None
    previous = summary.total_cost
    change = total - previous
    try:
        percent = (change / previous * 100).quantize(Decimal("0.1")) if previous else None
    except InvalidOperation:  # a ratio beyond Decimal's precision: no percentage rather than an error
        percent = None
    return PreviousPeriod(before.label, previous, change, percent)


def month_to_date(store: ReportStore, window: ReportWindow, total: Decimal) -> MonthToDate | None:
    """For a daily report: the month's daily reports up to and including this one (a missing or unreadable day adds
    nothing: the sum is then a lower bound, and the days reported say so)."""
    if not window.is_single_day:
        return None
    day = window.local_start.date()
    earlier = store.summaries(day.replace(day=n) for n in range(1, day.day))
    costs = [summary.total_cost for summary in earlier.values()]
    return MonthToDate(total + sum(costs, Decimal(0)), len(costs) + 1, day.day)


@dataclass(frozen=True)
class History:
    """What the reports before this one say: the previous period, the month to date, and the previous report's
    footer (which price table priced it)."""

    window: ReportWindow
    previous: PreviousPeriod | None
    month_to_date: MonthToDate | None
    previous_footer: dict[str, Any]


def look_back(store: ReportStore, window: ReportWindow, total: Decimal) -> History:
    before = store.summary(previous_window(window))
    return History(
        window,
        compare_previous(store, window, total),
        month_to_date(store, window, total),
        before.footer if before else {},
    )
