"""Query rows -> usage frame: every count exact or refused with a reason, whatever text Logs Insights sends."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from hypothesis import given, settings
from hypothesis import strategies as st

from lambda_function.sources.insights import page_from_rows
from lambda_function.sources.query import RESULT_FIELDS
from lambda_function.sources.usage import COUNTS, INVALID, MAX_EXACT, usage_frame

from .depth import examples

COUNT_FIELDS = [service for service, name in RESULT_FIELDS.items() if name in COUNTS]


def row(**counts: str) -> dict[str, str]:
    base = {
        "day": "2026-11-20 00:00:00.000",
        "account": "123456789012",
        "identity": "arn:aws:iam::123456789012:user/alice",
        "model": "amazon.nova-lite-v1:0",
        "src_region": "us-east-1",
        "input_tokens": "10",
        "output_tokens": "2",
        "invocations": "1",
        "failed_invocations": "0",
        "readable_records": "1",
    }
    return {**base, **counts}


def test_exact_counts_and_the_reasons_for_the_others():
    # 2^53 - 1 is the largest count a double-precision sum holds exactly; 2^53 is refused
    cases = {
        str(MAX_EXACT - 1): ("", MAX_EXACT - 1),
        str(MAX_EXACT): ("not exact", 0),
        "9223372036854775808": ("not exact", 0),  # 2^63: would wrap in int64
        "9.223372036854776e+18": ("not exact", 0),  # the same sum as a double prints it
        "-5": ("negative", 0),
        "12.5": ("not a whole number", 0),
        "1e+30": ("not exact", 0),
        "12.0": ("", 12),  # a whole number written as a double
        "NaN": ("not a number", 0),
        "true": ("not a number", 0),
    }
    for text, (reason, count) in cases.items():
        frame = usage_frame([page_from_rows([row(input_tokens=text)])])
        assert int(frame["input_tokens"].iloc[0]) == count, text
        assert reason in frame[INVALID].iloc[0], text
        assert bool(frame[INVALID].iloc[0]) == bool(reason), text
        assert int(frame["output_tokens"].iloc[0]) == 2  # the other counts stay exact


def test_records_without_readable_counts_are_counted():
    # 5 calls in the group, 3 with an input token count and 1 with an error code: 1 unreadable
    frame = usage_frame([page_from_rows([row(invocations="5", failed_invocations="1", readable_records="4")])])
    assert int(frame["unreadable_records"].iloc[0]) == 1
    # a query without the field (an older query) reads every record as readable
    legacy = row()
    del legacy["readable_records"]
    assert int(usage_frame([page_from_rows([legacy])])["unreadable_records"].iloc[0]) == 0


def test_the_same_group_from_two_queries_adds_up_and_keeps_each_reason():
    frame = usage_frame([page_from_rows([row(input_tokens="-1"), row(output_tokens="2.5"), row()])])
    assert len(frame) == 1
    assert int(frame["invocations"].iloc[0]) == 3
    reason = frame[INVALID].iloc[0]
    assert "input tokens -1 is negative" in reason and "output tokens 2.5 is not a whole number" in reason


numbers_as_text = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.text(max_size=30),
)


@settings(max_examples=examples(1000), deadline=None, database=None)
@given(st.dictionaries(st.sampled_from(COUNT_FIELDS), numbers_as_text, min_size=1))
def test_any_text_is_an_exact_count_or_a_reason(counts):
    frame = usage_frame([page_from_rows([row(**counts)])])
    assert len(frame) == 1
    reasons = [r for r in frame[INVALID].iloc[0].split("; ") if r]
    for name in COUNTS:
        assert 0 <= int(frame[name].iloc[0]) < MAX_EXACT
    for service, text in counts.items():
        name = RESULT_FIELDS[service]
        label = name.replace("_", " ") + " "
        if text == "":  # the field left out of the row: sum() over a group that never had it
            expected: int | None = 0
        else:
            try:
                number = Decimal(text.strip())
                exact = number.is_finite() and 0 <= number < MAX_EXACT and number == number.to_integral_value()
            except InvalidOperation:
                exact = False
            expected = int(number) if exact else None
        if expected is None:
            assert int(frame[name].iloc[0]) == 0, text
            assert any(r.startswith(label) for r in reasons), (text, reasons)
        else:
            assert int(frame[name].iloc[0]) == expected, text
            assert not any(r.startswith(label) for r in reasons), (text, reasons)
