"""The CSV contract and the summary the email is made from."""

import csv
import io
from datetime import date
from decimal import Decimal

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lambda_function.pricing.engine import PRICED, micro_dollars
from lambda_function.report.rows import (
    CSV_COLUMNS,
    csv_cells,
    money,
    neutralise,
    neutralise_all,
    render_csv,
    report_rows,
    summarise,
)

from .depth import examples

ALICE = "arn:aws:iam::123456789012:user/alice"
BOB = "arn:aws:sts::123456789012:assumed-role/BatchJobs/run-42"
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
UNKNOWN = "acme.unknown-model-v1:0"


def priced_row(identity, model, day, charge, status=PRICED, i=0, o=0, cr=0, cw=0, n=1, failed=0, long=False):
    return {
        "usage_date": day,
        "account_id": "123456789012",
        "identity_arn": identity,
        "model_id": model,
        "region": "us-east-1",
        "input_tokens": i,
        "output_tokens": o,
        "cache_read_tokens": cr,
        "cache_write_tokens": cw,
        "invocations": n,
        "failed_invocations": failed,
        "unreadable_records": 0,
        "cache_write_1h_tokens": 0,
        "cache_write_ttl_unknown_tokens": 0,
        "long_context": long,
        "priced_model_id": model,
        "images": 0,
        "charge": charge,
        "charge_micros": 0 if charge is None else micro_dollars(charge),
        "pricing_status": status,
    }


FRAME = pd.DataFrame(
    [
        # alice on Haiku over two days: 0.1234565 + 0.2 = 0.3234565 -> 0.323457 at micro-dollar precision (half up)
        priced_row(ALICE, HAIKU, date(2026, 11, 20), Decimal("0.1234565"), i=100, o=10, n=2),
        priced_row(ALICE, HAIKU, date(2026, 11, 21), Decimal("0.2"), i=50, o=5, n=3, failed=1),
        # bob spends more: first row
        # (its 4 calls were billed at a long-context tier: the column counts them)
        priced_row(BOB, HAIKU, date(2026, 11, 20), Decimal("1.5"), i=1000, o=100, cr=7, cw=3, n=4, long=True),
        # an unknown model: tokens kept, no charge, last
        priced_row(
            BOB,
            UNKNOWN,
            date(2026, 11, 20),
            None,
            "unpriced: model acme.unknown-model-v1:0 is not in the price table",
            i=999,
            o=9,
            n=6,
            failed=2,
        ),
        # a row priced on one day and not on the other is unpriced as a whole, never a partial charge
        priced_row(ALICE, "amazon.nova-lite-v1:0", date(2026, 11, 20), Decimal("0.5"), i=10, n=1),
        priced_row(
            ALICE, "amazon.nova-lite-v1:0", date(2026, 11, 21), None, "unpriced: no cache-write price", cw=10, n=1
        ),
    ]
)


def read_csv(data: bytes):
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def test_csv_columns_order_and_values():
    rows = report_rows(FRAME)
    data = render_csv(rows)
    assert data.decode("utf-8").splitlines()[0] == ",".join(CSV_COLUMNS)
    assert CSV_COLUMNS[:7] == [
        "Account Id",
        "Identity ARN",
        "Model Id",
        "Region Name",
        "Number of Input tokens",
        "Number of output tokens",
        "Charges incurred",
    ]
    table = read_csv(data)
    assert [(r["Identity ARN"], r["Model Id"], r["Charges incurred"]) for r in table] == [
        (BOB, HAIKU, "1.500000"),
        (ALICE, HAIKU, "0.323457"),
        (BOB, UNKNOWN, ""),  # more tokens than the nova row: first among the unpriced
        (ALICE, "amazon.nova-lite-v1:0", ""),
    ]
    alice = table[1]
    assert alice["Number of Input tokens"] == "150"
    assert alice["Number of output tokens"] == "15"
    assert alice["Invocations"] == "5"
    assert alice["Failed invocations"] == "1"
    assert alice["Pricing status"] == "priced"
    bob = table[0]
    assert (bob["Cache read input tokens"], bob["Cache write input tokens"]) == ("7", "3")
    assert (bob["Long-context invocations"], alice["Long-context invocations"]) == ("4", "0")
    assert table[2]["Pricing status"].startswith("unpriced: model acme.unknown-model-v1:0")
    assert table[2]["Number of Input tokens"] == "999"
    assert table[3]["Pricing status"] == "unpriced: no cache-write price"


def test_summary_agrees_with_the_csv():
    rows = report_rows(FRAME)
    summary = summarise(rows)
    # 1.500000 + 0.323457 (the CSV's own figures)
    assert summary.total_cost == Decimal("1.823457")
    assert summary.invocations == 2 + 3 + 4 + 6 + 1 + 1
    assert summary.failed_invocations == 3
    assert summary.long_context_invocations == 4  # bob's Haiku row
    assert summary.input_tokens == 100 + 50 + 1000 + 999 + 10
    assert summary.unpriced_models == ["acme.unknown-model-v1:0", "amazon.nova-lite-v1:0"]
    assert summary.unpriced[0].input_tokens == 999
    assert [s.name for s in summary.by_identity] == [BOB, ALICE]
    assert summary.by_identity[0].cost == Decimal("1.5")
    assert summary.by_identity[0].unpriced_invocations == 6


def test_empty_usage_gives_a_header_only_csv_and_zero_totals():
    rows = report_rows(FRAME.iloc[0:0])
    assert render_csv(rows).decode() == ",".join(CSV_COLUMNS) + "\n"
    summary = summarise(rows)
    assert (summary.total_cost, summary.invocations, summary.rows) == (Decimal(0), 0, 0)


def test_formula_injection_is_neutralised():
    assert neutralise('=HYPERLINK("http://x")') == '\'=HYPERLINK("http://x")'
    assert neutralise("+1") == "'+1"
    assert neutralise("-1") == "'-1"
    assert neutralise("@SUM(A1)") == "'@SUM(A1)"
    assert neutralise("arn:aws:iam::1:user/x") == "arn:aws:iam::1:user/x"
    evil = FRAME.iloc[[0]].copy()
    evil["model_id"] = "=cmd|' /C calc'!A0"
    row = read_csv(render_csv(report_rows(evil)))[0]
    assert row["Model Id"] == "'=cmd|' /C calc'!A0"


def test_money_rounds_half_up_to_cents():
    assert money(Decimal("1234.565")) == "$1,234.57"
    assert money(Decimal("0.004999")) == "$0.00"


def test_breakdowns_never_show_unpriced_usage_as_zero():
    from lambda_function.report.rows import Spend, cost_label

    assert cost_label(Spend("acme.unknown-model-v1:0", Decimal(0), 420, 420)) == "unpriced"
    assert cost_label(Spend("bob", Decimal("1.5"), 10, 6)) == "$1.50 + unpriced"
    assert cost_label(Spend("alice", Decimal("0.323457"), 5, 0)) == "$0.32"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        # any leading whitespace: spreadsheet apps may trim it and then see the formula
        (" =1+1", "' =1+1"),
        ("\n=1+1", "'\n=1+1"),
        ("\x0b@SUM(A1)", "'\x0b@SUM(A1)"),
        ("\u00a0+1", "'\u00a0+1"),
        ("\u3000-1", "'\u3000-1"),
        (" plain", "' plain"),
        # full-width forms, which some spreadsheet apps read as their ASCII twins
        ("\uff1dHYPERLINK(1)", "'\uff1dHYPERLINK(1)"),
        ("\uff0b1", "'\uff0b1"),
        ("\uff0d1", "'\uff0d1"),
        ("\uff20SUM(A1)", "'\uff20SUM(A1)"),
        # unchanged
        ("", ""),
        ("arn:aws:iam::123456789012:user/alice", "arn:aws:iam::123456789012:user/alice"),
        ("anthropic.claude-3-haiku-20240307-v1:0", "anthropic.claude-3-haiku-20240307-v1:0"),
        ("us-east-1", "us-east-1"),
        ("1.5", "1.5"),
        ("a=b", "a=b"),
    ],
)
def test_neutralise_table(text, expected):
    assert neutralise(text) == expected


@settings(max_examples=examples(1000), deadline=None)
@given(st.lists(st.text(max_size=6), max_size=20))
def test_a_column_is_neutralised_as_each_of_its_cells_is(values):
    assert neutralise_all(values) == [neutralise(v) for v in values]


_CELL = st.text(alphabet=st.sampled_from(list('a,"\r\n =-\u2028é')), max_size=5)


@settings(max_examples=examples(1000), deadline=None)
@given(st.lists(st.tuples(_CELL, _CELL, _CELL), max_size=8))
def test_csv_cells_read_back_as_written_and_as_the_csv_module_writes_them(rows):
    columns = [list(column) for column in zip(*rows, strict=True)] or [[], [], []]
    text = "".join(line + "\n" for line in map(",".join, zip(*map(csv_cells, columns), strict=True)))
    # a reader gets every cell back, whatever it holds (commas, quotes, CR, LF)
    assert [tuple(r) for r in csv.reader(io.StringIO(text, newline=""))] == rows
    # and it is the csv module's own output, except that a lone CR is quoted too (Python 3.11's leaves it bare,
    # which spreadsheet apps read as a new row)
    if not any("\r" in cell for row in rows for cell in row):
        expected = io.StringIO()
        csv.writer(expected, lineterminator="\n").writerows(rows)
        assert text == expected.getvalue()


@settings(max_examples=examples(300), deadline=None)
@given(identity=_CELL.filter(bool), model=_CELL.filter(bool), categorical=st.booleans())
def test_any_text_key_reads_back_from_the_csv_neutralised(identity, model, categorical):
    frame = FRAME.iloc[[0, 2]].copy()
    frame["identity_arn"] = [identity, "arn:aws:iam::1:user/b"]
    frame["model_id"] = model
    if categorical:  # as the usage frame makes its keys
        frame = frame.astype({"identity_arn": "category", "model_id": "category"})
    got = {(row["Identity ARN"], row["Model Id"]) for row in read_csv(render_csv(report_rows(frame)))}
    assert got == {(neutralise(identity), neutralise(model)), ("arn:aws:iam::1:user/b", neutralise(model))}


def test_the_csv_is_the_same_whatever_rows_it_is_built_at_a_time(monkeypatch):
    import lambda_function.report.rows as rows_module

    rows = report_rows(FRAME.astype({"identity_arn": "category"}))
    whole = render_csv(rows)
    for chunk in (1, 2, 3):  # rows per chunk: 4 rows at 1, at 2 (even), at 3 (a short last chunk)
        monkeypatch.setattr(rows_module, "CSV_CHUNK_ROWS", chunk)
        assert render_csv(rows) == whole
    assert whole.count(b"\n") == len(rows) + 1 == 5


@pytest.mark.parametrize("categorical", [False, True])
def test_a_missing_value_is_an_empty_cell(categorical):
    frame = FRAME.iloc[[0, 2]].copy()
    frame["team"] = ["ml", None]
    if categorical:
        frame["team"] = frame["team"].astype("category")
    rows = read_csv(render_csv(report_rows(frame, ["team"]), ["team"]))
    assert [(row["Identity ARN"], row["team"]) for row in rows] == [(BOB, ""), (ALICE, "ml")]


@pytest.mark.parametrize("categorical", [False, True])
def test_a_blank_attribution_and_a_tag_literally_unattributed_are_one_line(categorical):
    # rows 0, 1 and 2 of FRAME: alice (n=2, n=3: one CSV row) and bob (n=4); a third identity tagged "unattributed"
    frame = FRAME.iloc[[0, 1, 2, 2]].copy()
    frame["identity_arn"] = [ALICE, ALICE, BOB, "arn:aws:iam::1:user/c"]
    frame["team"] = ["", "", "ml", "unattributed"]
    if categorical:  # as attribute_frame makes it
        frame["team"] = frame["team"].astype("category")
    teams = summarise(report_rows(frame, ["team"]), ["team"]).by_attribution["team"]
    # the largest cost first: alice's 0.323457 (0.3234565 half up) + the third's 1.5, then bob's 1.5
    assert [(t.name, t.invocations, t.cost) for t in teams] == [
        ("unattributed", 9, Decimal("1.823457")),
        ("ml", 4, Decimal("1.5")),
    ]
