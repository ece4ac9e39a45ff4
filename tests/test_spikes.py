"""Spikes: today's cost per name against the median of the previous 7 days' summaries, worked out by hand; the
history read back from the report store (moto), unreadable summaries skipped and named."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from lambda_function.alerts.spikes import Spike, baseline, find_spikes, median, week_before
from lambda_function.config import load_config
from lambda_function.errors import ConfigError
from lambda_function.store import ReportStore
from lambda_function.store.reports import report_key, summary_key
from lambda_function.window import day_window

D = Decimal
FACTOR, MIN_USD = D(3), D("1.00")
ALICE = "arn:aws:iam::123456789012:user/alice"
BOB = "arn:aws:iam::123456789012:user/bob"
BUCKET = "spike-reports"
PREFIX = "bedrock-usage"
TZ = ZoneInfo("UTC")
TODAY = date(2026, 11, 20)


def test_median_of_odd_and_even_counts():
    assert median([D(5), D(1), D(3)]) == D(3)
    # 1, 2, 4, 10: the mean of the middle two, (2 + 4) / 2 = 3
    assert median([D(10), D(1), D(4), D(2)]) == D(3)
    # (2 + 3) / 2 = 2.5, exactly
    assert median([D(2), D(3)]) == D("2.5")


def test_a_spike_against_the_7_day_median():
    # alice's 7 previous days: 2, 3, 2, 4, 3, 2, 5 -> sorted 2 2 2 3 3 4 5 -> median 3
    history = [{ALICE: D(c), BOB: D("1.5")} for c in (2, 3, 2, 4, 3, 2, 5)]
    # 10 > 3 x 3 = 9 and 10 > $1: a spike, 10 / 3 = 3.33x; bob's 4.4 < 3 x 1.5 = 4.5: not one
    today = {ALICE: D(10), BOB: D("4.4")}
    assert find_spikes(today, history, FACTOR, MIN_USD) == [Spike(ALICE, D(10), D(3), D("3.33"))]
    # exactly 3 x the median is not above it: 9 = 3 x 3
    assert find_spikes({ALICE: D(9)}, history, FACTOR, MIN_USD) == []


def test_below_the_minimum_is_not_a_spike():
    # 0.10, 0.20, 0.10 -> median 0.10; 0.90 is 9x that, but not above $1
    history = [{ALICE: D(c)} for c in ("0.10", "0.20", "0.10")]
    assert find_spikes({ALICE: D("0.90")}, history, FACTOR, MIN_USD) == []
    # with SPIKE_MIN_USD 0.50 it is one: 0.90 > 0.50 and > 3 x 0.10 = 0.30
    assert find_spikes({ALICE: D("0.90")}, history, FACTOR, D("0.50")) == [Spike(ALICE, D("0.90"), D("0.10"), D(9))]


def test_fewer_than_3_days_of_history_flags_nothing():
    two_days = [{ALICE: D(1)}, {ALICE: D(1)}]
    assert find_spikes({ALICE: D(100)}, two_days, FACTOR, MIN_USD) == []
    assert find_spikes({ALICE: D(100)}, [*two_days, {ALICE: D(1)}], FACTOR, MIN_USD) == [
        Spike(ALICE, D(100), D(1), D(100))
    ]


def test_a_name_missing_from_a_day_cost_0_that_day():
    # bob appears on 1 of 3 days with summaries: 0, 0, 6 -> median 0; today's $2 is a spike with no ratio
    history = [{ALICE: D(1)}, {ALICE: D(1)}, {ALICE: D(1), BOB: D(6)}]
    assert find_spikes({BOB: D(2)}, history, FACTOR, MIN_USD) == [Spike(BOB, D(2), D(0), None)]
    # a day without a summary is not in the history at all: bob's 6, 6, 6 over 3 summaries -> median 6, no spike
    assert find_spikes({BOB: D(7)}, [{BOB: D(6)}] * 3, FACTOR, MIN_USD) == []


def test_largest_cost_first():
    history = [{}, {}, {}]
    spikes = find_spikes({ALICE: D(5), BOB: D(50)}, history, FACTOR, MIN_USD)
    assert [s.name for s in spikes] == [BOB, ALICE]


def items(costs: dict[str, str]) -> list[dict]:
    return [{"name": n, "cost_usd": c, "invocations": 1, "unpriced_invocations": 0} for n, c in costs.items()]


def put_day(s3, day: date, by_identity: dict[str, str], team: dict[str, str] | None = None) -> None:
    document = {
        "window": day_window(day, TZ).as_json(),
        "total_cost_usd": str(sum(D(c) for c in by_identity.values())),
        "by_identity": items(by_identity),
        "by_model": [],
        "by_region": [],
    }
    if team is not None:
        document["by_attribution"] = {"team": items(team)}
    s3.put_object(Bucket=BUCKET, Key=day_summary_key(day), Body=json.dumps(document).encode())


def day_summary_key(day: date) -> str:
    return summary_key(report_key(PREFIX, day_window(day, TZ)))


def week_of_summaries(s3, skipped: list[str]):
    """The week before TODAY as the store reads it for a run, newest first; what it could not read into `skipped`."""
    store = ReportStore(s3, BUCKET, PREFIX, TZ)
    found = store.summaries(week_before(TODAY)).values()
    skipped.extend(store.skipped)
    return found


def test_history_from_the_previous_7_summaries(aws):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    day = lambda n: TODAY - timedelta(days=n)  # noqa: E731
    put_day(s3, day(1), {ALICE: "2"}, team={"ml": "2"})
    put_day(s3, day(2), {ALICE: "3", BOB: "1"}, team={"ml": "4"})
    # day 3: no report
    s3.put_object(Bucket=BUCKET, Key=day_summary_key(day(4)), Body=b"{cut off")  # unreadable
    put_day(s3, day(5), {ALICE: "4"})  # written before attribution: no by_attribution
    bad = {"window": day_window(day(6), TZ).as_json(), "total_cost_usd": "1", "by_identity": [{"name": ALICE}]}
    s3.put_object(Bucket=BUCKET, Key=day_summary_key(day(6)), Body=json.dumps(bad))  # no cost_usd
    put_day(s3, day(7), {BOB: "9"}, team={"ml": "1"})
    put_day(s3, day(8), {ALICE: "100"})  # 8 days back: outside the 7

    skipped: list[str] = []
    history = baseline(week_of_summaries(s3, skipped), "by_identity")
    # newest first; days 3 (none), 4 and 6 (unreadable) left out
    assert history == [{ALICE: D(2)}, {ALICE: D(3), BOB: D(1)}, {ALICE: D(4)}, {BOB: D(9)}]
    assert skipped == [day_summary_key(day(4)), day_summary_key(day(6))]
    # alice: 2, 3, 4, 0 -> sorted 0 2 3 4 -> median (2 + 3) / 2 = 2.5; today's 8 > 7.5: a spike of 3.2x
    assert find_spikes({ALICE: D(8)}, history, FACTOR, MIN_USD) == [Spike(ALICE, D(8), D("2.5"), D("3.20"))]

    # by team: only the days whose summary has that breakdown (1, 2, 7): ml 2, 4, 1 -> median 2; 7 > 6
    skipped.clear()
    teams = baseline(week_of_summaries(s3, skipped), "by_attribution.team")
    assert teams == [{"ml": D(2)}, {"ml": D(4)}, {"ml": D(1)}]
    assert find_spikes({"ml": D(7)}, teams, FACTOR, MIN_USD) == [Spike("ml", D(7), D(2), D("3.50"))]
    assert len(skipped) == 2


def test_the_spike_settings():
    good = {"LOG_GROUP_NAMES": "/aws/bedrock/invocations", "REPORT_BUCKET": "acme-reports", "AWS_REGION": "us-east-1"}
    config = load_config(good)
    assert (config.spike_factor, config.spike_min_usd) == (D(3), D("1.00"))
    config = load_config({**good, "SPIKE_FACTOR": "2.5", "SPIKE_MIN_USD": "0"})
    assert (config.spike_factor, config.spike_min_usd) == (D("2.5"), D(0))
    for name, value in [
        ("SPIKE_FACTOR", "1"),
        ("SPIKE_FACTOR", "0.5"),
        ("SPIKE_FACTOR", "NaN"),
        ("SPIKE_FACTOR", "Infinity"),
        ("SPIKE_FACTOR", "three"),
        ("SPIKE_MIN_USD", "-1"),
        ("SPIKE_MIN_USD", "sNaN"),
        ("SPIKE_MIN_USD", "$1"),
    ]:
        with pytest.raises(ConfigError) as caught:
            load_config({**good, name: value})
        assert caught.value.variable == name, value
