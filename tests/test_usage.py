"""Query rows -> usage frame: every count exact or refused with a reason, whatever text Logs Insights sends."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from hypothesis import given, settings
from hypothesis import strategies as st

from lambda_function.sources.insights import page_from_rows
from lambda_function.sources.query import FOLDED, OPTIONS_FIELD, READABLE_FIELD, RESULT_FIELDS
from lambda_function.sources.usage import COUNTS, INVALID, MAX_EXACT, usage_frame

from .depth import examples

COUNT_FIELDS = [service for service, name in RESULT_FIELDS.items() if name in COUNTS]
SERVICE_NAME = {name: service for service, name in RESULT_FIELDS.items()} | {"readable_records": READABLE_FIELD}


def row(**counts: str) -> dict[str, str]:
    """A query row, given by the usage frame's names (input_tokens=...), in the service's short names."""
    base = {
        "usage_date": "2026-11-20 00:00:00.000",
        "account_id": "123456789012",
        "identity_arn": "arn:aws:iam::123456789012:user/alice",
        "model_id": "amazon.nova-lite-v1:0",
        "region": "us-east-1",
        "input_tokens": "10",
        "output_tokens": "2",
        "invocations": "1",
        "failed_invocations": "0",
        "readable_records": "1",
    }
    folded = {OPTIONS_FIELD: "||||||0|"}  # a text call: no image settings, default tier and latency, band 0
    return folded | {SERVICE_NAME.get(name, name): value for name, value in {**base, **counts}.items()}


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


def test_a_sum_the_service_leaves_out_or_empty_is_zero_not_invalid():
    # a group where the field never appeared: Logs Insights leaves it out of the row, or sends it empty
    rows = [row(cache_read_tokens="7"), row(identity_arn="arn:aws:iam::123456789012:user/bob")]
    rows.append(row(identity_arn="arn:aws:iam::123456789012:user/carol", cache_read_tokens=""))
    frame = usage_frame([page_from_rows(rows)]).sort_values("identity_arn")
    assert frame["cache_read_tokens"].tolist() == [7, 0, 0]  # alice, bob (no field), carol (empty)
    assert frame[INVALID].tolist() == ["", "", ""]


def test_records_without_readable_counts_are_counted():
    # 5 calls in the group, 3 with an input token count and 1 with an error code: 1 unreadable
    frame = usage_frame([page_from_rows([row(invocations="5", failed_invocations="1", readable_records="4")])])
    assert int(frame["unreadable_records"].iloc[0]) == 1
    # a query without the field (an older query) reads every record as readable
    legacy = row()
    del legacy[READABLE_FIELD]
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


@settings(max_examples=examples(1000), deadline=None, database=None)
@given(st.lists(st.text(max_size=12), min_size=0, max_size=10).map("|".join))
def test_any_options_field_is_read_or_refused_by_name(options):
    # the folded options (width|height|steps|images|tier|latency|band|quality): typed, or the row names why not
    frame = usage_frame([page_from_rows([{**row(), OPTIONS_FIELD: options}])])
    assert len(frame) == 1
    reason = frame[INVALID].iloc[0]
    parts = options.split("|", len(FOLDED) - 1)
    if len(parts) != len(FOLDED):
        assert f"options {options!r} cannot be read" in reason
        assert frame["service_tier"].iloc[0] == "default" and int(frame["image_width"].iloc[0]) == -1
    else:
        assert "options" not in reason
        tier, latency, quality = parts[4], parts[5], parts[7]
        assert frame["service_tier"].iloc[0] == (tier.lower() if tier else "default")
        assert frame["latency"].iloc[0] == (latency.lower() if latency else "standard")
        assert frame["image_quality"].iloc[0] == (quality.lower() if quality else "-")
        assert int(frame["input_band"].iloc[0]) >= 0


def test_a_text_call_and_an_image_call_unfold_to_their_settings():
    text, image = row(), {**row(), OPTIONS_FIELD: "1024|768|50|2|priority|optimized|3|Premium"}
    frame = usage_frame([page_from_rows([{**text, OPTIONS_FIELD: "||||||0|"}, image])])
    got = frame[["image_width", "image_height", "image_steps", "images_per_call", "service_tier", "latency",
                 "input_band", "image_quality", "invocations"]].values.tolist()  # fmt: skip
    assert sorted(got) == sorted([[-1, -1, -1, -1, "default", "standard", 0, "-", 1],
                                  [1024, 768, 50, 2, "priority", "optimized", 3, "premium", 1]])  # fmt: skip


def test_an_image_setting_that_is_not_a_finite_number_is_not_stated():
    # an image width of "inf" (JSON has no infinity, but a body is anyone's text) is read as "not stated", never a crash
    frame = usage_frame([page_from_rows([{**row(), OPTIONS_FIELD: "inf|1e999|nan|abc||||"}])])
    got = frame[["image_width", "image_height", "image_steps", "images_per_call"]].iloc[0].tolist()
    assert got == [-1, -1, -1, -1]


def test_a_row_without_the_options_field_is_refused_not_priced_as_standard():
    # the service always makes the field (concat); a row without it would otherwise price a priority call as default
    text = {k: v for k, v in row().items() if k != OPTIONS_FIELD}
    frame = usage_frame([page_from_rows([text])])
    assert frame[INVALID].iloc[0] == "the options field is missing"


def test_rows_that_type_alike_are_one_group_within_a_page_and_across_pages():
    # "Priority" and "priority" are two groups to the query's `stats ... by` but one tier: one row, counts added.
    # An identity missing from one page's row and "unknown" in the next page's are both the "unknown" identity.
    upper, lower = (
        {**row(), OPTIONS_FIELD: "||||Priority||0|"},
        {**row(input_tokens="5"), OPTIONS_FIELD: "||||priority||0|"},
    )
    unknown = {k: v for k, v in row(input_tokens="7").items() if k != SERVICE_NAME["identity_arn"]}
    named = row(input_tokens="1", identity_arn="unknown")
    frame = usage_frame([page_from_rows([upper, lower, unknown]), page_from_rows([named])])
    got = sorted(frame[["identity_arn", "service_tier", "input_tokens", "invocations"]].values.tolist())
    assert got == [
        ["arn:aws:iam::123456789012:user/alice", "priority", 15, 2],
        ["unknown", "default", 8, 2],
    ]


def test_the_text_keys_are_categoricals_over_their_sorted_values():
    # the report sorts, dedupes and breaks down on the categories' codes: they must follow the values' order
    arns = ["arn:aws:iam::123456789012:user/zoe", "arn:aws:iam::123456789012:user/al", "arn:aws:iam::1:role/b"]
    frame = usage_frame(
        [page_from_rows([row(identity_arn=arns[0])]), page_from_rows([row(identity_arn=a) for a in arns[1:]])]
    )
    identities = frame["identity_arn"]
    assert list(identities.cat.categories) == sorted(arns)
    assert identities.tolist() == arns
    # sorted: ...012:user/al, ...012:user/zoe, then ::1:role/b ("2" sorts before ":")
    assert identities.cat.codes.tolist() == [1, 0, 2]


def test_a_setting_beyond_int64_is_kept_as_read_not_a_crash():
    # "1E100" reads as a whole number (int(float(...))) past int64: the column keeps it as a Python int
    frame = usage_frame([page_from_rows([{**row(), OPTIONS_FIELD: "1E100|||||||"}, row()])])
    assert sorted(frame["image_width"].tolist()) == [-1, int(1e100)]  # the double nearest 10^100, as int() reads it
    assert frame[INVALID].tolist() == ["", ""]
