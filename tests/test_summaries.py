"""A stored summary read back: cost per name in a breakdown, as budgets, spikes and the reconciliation read it, and
one validation for every reader."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation

import pytest

from lambda_function.summary import Summary, SummaryError

WINDOW = {"start": "2026-11-20T00:00:00Z", "end": "2026-11-21T00:00:00Z", "timezone": "UTC", "label": "2026-11-20"}
DOCUMENT = {
    "window": WINDOW,
    "total_cost_usd": "7.5",
    "by_identity": [
        {"name": "alice", "cost_usd": "1.25", "invocations": 1},
        {"name": "alice", "cost_usd": "2", "invocations": 1},  # never written twice, but summed if it were
        {"name": "bob", "cost_usd": "4.25", "invocations": 1},
    ],
    "by_attribution": {"team": [{"name": "ml", "cost_usd": "7.5", "invocations": 2}]},
}


def breakdown_costs(document: dict, breakdown: str) -> dict[str, Decimal] | None:
    return Summary.from_json(json.dumps({"window": WINDOW, "total_cost_usd": "0", **document})).breakdown_costs(
        breakdown
    )


def test_costs_per_name():
    # alice 1.25 + 2 = 3.25
    assert breakdown_costs(DOCUMENT, "by_identity") == {"alice": Decimal("3.25"), "bob": Decimal("4.25")}
    assert breakdown_costs(DOCUMENT, "by_attribution.team") == {"ml": Decimal("7.5")}


def test_a_breakdown_the_summary_does_not_have_is_none():
    assert breakdown_costs(DOCUMENT, "by_model") is None  # written before it existed
    assert breakdown_costs(DOCUMENT, "by_attribution.project") is None  # a key added since
    assert breakdown_costs({"by_identity": []}, "by_attribution.team") is None


@pytest.mark.parametrize(
    ("document", "error"),
    [
        ({"by_identity": {"alice": "1"}}, TypeError),
        ({"by_identity": [{"name": "alice"}]}, KeyError),
        ({"by_identity": [{"name": 7, "cost_usd": "1"}]}, TypeError),
        ({"by_identity": [{"name": "alice", "cost_usd": "lots"}]}, InvalidOperation),
        ({"by_identity": [{"name": "alice", "cost_usd": "Infinity"}]}, InvalidOperation),
        ({"by_attribution": ["team"]}, TypeError),
        # figures no report writes: a negative cost, a trillion dollars and more, a count past 2^53
        ({"by_identity": [{"name": "alice", "cost_usd": "-0.01"}]}, ValueError),
        ({"by_identity": [{"name": "alice", "cost_usd": "1e30"}]}, ValueError),
        ({"by_identity": [{"name": "alice", "cost_usd": "1", "invocations": 2**53}]}, TypeError),
    ],
)
def test_a_malformed_breakdown_is_refused_naming_the_fault(document, error):
    breakdown = "by_attribution.team" if "by_attribution" in document else "by_identity"
    with pytest.raises(SummaryError, match=error.__name__):
        breakdown_costs(document, breakdown)


def test_an_unknown_breakdown_is_a_programming_error():
    with pytest.raises(ValueError, match="'by_colour' is not a breakdown"):
        breakdown_costs(DOCUMENT, "by_colour")


@pytest.mark.parametrize("total", ["1e30", "-5", "1000000000000.01", "NaN", "", None, True])
def test_a_total_no_report_writes_is_refused(total):
    with pytest.raises(SummaryError, match="total_cost_usd"):
        Summary.from_json(json.dumps({"window": WINDOW, "total_cost_usd": total}))


def test_the_largest_amount_a_report_writes_is_read():
    assert Summary.from_json(json.dumps({"window": WINDOW, "total_cost_usd": "1000000000000"})).total_cost == Decimal(
        10**12
    )
