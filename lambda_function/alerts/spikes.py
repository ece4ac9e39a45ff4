"""Spikes: who (an identity, or a team/project value) cost far more today than on a typical recent day, judged
against the median of the previous 7 days' summaries."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from lambda_function.summary import Summary

log = logging.getLogger(__name__)

HISTORY_DAYS = 7
MIN_HISTORY_DAYS = 3  # a median of one or two days is an anecdote, not a baseline


@dataclass(frozen=True)
class Spike:
    name: str
    cost: Decimal
    median: Decimal
    ratio: Decimal | None  # cost / median to 0.01; None when the median is 0 (nothing spent on a typical day)


def median(values: list[Decimal]) -> Decimal:
    """The middle value; of an even count, the mean of the two middle ones (exact, in Decimal)."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def _ratio(cost: Decimal, base: Decimal) -> Decimal | None:
    if not base:
        return None
    try:
        return (cost / base).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    except InvalidOperation:  # a ratio beyond Decimal's precision: none rather than an error
        return None


def find_spikes(
    today: dict[str, Decimal], history: list[dict[str, Decimal]], factor: Decimal, min_usd: Decimal
) -> list[Spike]:
    """The names whose cost today is above `factor` times their median over `history` and above `min_usd`, largest
    cost first.

    `history` holds one dict per earlier day that has a summary (up to the 7 previous days); a name missing from
    such a day cost 0 that day, while a day with no summary is simply not in `history`. With fewer than 3 days of
    history nothing is a spike: there is no baseline yet.
    """
    if len(history) < MIN_HISTORY_DAYS:
        return []
    spikes = []
    for name, cost in today.items():
        base = median([day.get(name, Decimal(0)) for day in history])
        if cost > factor * base and cost > min_usd:
            spikes.append(Spike(name, cost, base, _ratio(cost, base)))
    return sorted(spikes, key=lambda s: (-s.cost, s.name))


def week_before(day: date) -> list[date]:
    """The days whose summaries make a spike's baseline: the HISTORY_DAYS before `day`, newest first."""
    return [day - timedelta(days=n) for n in range(1, HISTORY_DAYS + 1)]


def baseline(summaries: Iterable[Summary], breakdown: str) -> list[dict[str, Decimal]]:
    """`find_spikes`'s history from earlier daily summaries (read by the store, which checked their shape): cost per
    name in `breakdown` (`by_identity`, `by_attribution.<key>`, ...). A summary written before that breakdown existed
    is left out like a missing day (counting everyone as 0 there would make anything a spike)."""
    history = []
    for summary in summaries:
        costs = summary.breakdown_costs(breakdown)
        if costs is None:
            log.info(
                "the summary of %s has no %s; left out of the spike baseline", summary.window.get("label"), breakdown
            )
            continue
        history.append(costs)
    return history
