"""The report itself: the CSV people download and the summary the email and the response are made from."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd

from lambda_function.columns import COUNTS, CSV_COLUMNS, CSV_NAMES, IMAGES, LONG_CONTEXT_INVOCATIONS, ROW_KEYS
from lambda_function.errors import IncompleteResults
from lambda_function.pricing.engine import INVALID, PRICED
from lambda_function.sources.attribution import UNATTRIBUTED
from lambda_function.summary import ReportSummary, Spend, UnpricedModel

CENT = Decimal("0.01")
MICRO = Decimal("0.000001")  # CSV charges keep micro-dollars: a Nova Micro call costs far less than a cent

_CSV_SOURCES = {csv_name: name for name, csv_name in CSV_NAMES.items()}
_TEXT_COLUMNS = {"Account Id", "Identity ARN", "Model Id", "Region Name", "Pricing status"}
_SUMMED = COUNTS + [IMAGES, LONG_CONTEXT_INVOCATIONS]
# What a spreadsheet app may read as the start of a formula, with the full-width forms (＝ ＋ － ＠) some of them
# fold to ASCII. Leading whitespace of any kind (TAB, CR, LF, NBSP, ...) is caught in neutralise: apps trim it.
_FORMULA_START = ("=", "+", "-", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def to_micro(amount: Decimal) -> Decimal:
    return amount.quantize(MICRO, rounding=ROUND_HALF_UP)


def money(amount: Decimal) -> str:
    """$1,234.57 — what the email shows (the CSV keeps the exact micro-dollar figures)."""
    return f"${amount.quantize(CENT, rounding=ROUND_HALF_UP):,.2f}"


def neutralise(text: str) -> str:
    """Keep spreadsheet apps from running a cell as a formula (CSV injection)."""
    return "'" + text if text.startswith(_FORMULA_START) or text[:1].isspace() else text


# The first characters `neutralise` quotes: the formula starts and every whitespace character (all of them are
# below U+3001), for the column-at-a-time form below.
_QUOTED_FIRST = frozenset(_FORMULA_START) | frozenset(c for c in map(chr, range(0x3001)) if c.isspace())


def neutralise_all(values: list[str]) -> list[str]:
    """`neutralise` of each value: one set lookup per cell, a CSV of 50,000 rows has 200,000 text cells."""
    return ["'" + v if v[:1] in _QUOTED_FIRST else v for v in values]


def cost_label(spend: Spend) -> str:
    """What a breakdown line shows: never $0.00 for usage we could not price."""
    if spend.unpriced_invocations and spend.unpriced_invocations == spend.invocations:
        return "unpriced"
    return money(spend.cost) + (" + unpriced" if spend.unpriced_invocations else "")


def _sum_charges(charges: pd.Series) -> Decimal | None:
    """A group's charge: exact sum, or None if any part of it is unpriced (a partial number would mislead)."""
    total = Decimal(0)
    for charge in charges:
        if charge is None:
            return None
        total += charge
    return total


def _status(statuses: pd.Series) -> str:
    reasons = sorted({s for s in statuses if s != PRICED})
    return "; ".join(reasons) if reasons else PRICED


# Columns of the usage, priced and report frames, and the CSV's headers: an attribution key becomes a column of
# each, so it must be none of them (checked before any query is paid for).
def report_rows(priced: pd.DataFrame, attribution_keys: Sequence[str] = ()) -> pd.DataFrame:
    """One row per (account, identity ARN, model id as logged, region, and attribution values), over all days;
    largest charges first."""
    keys = [*ROW_KEYS, *attribution_keys]
    if priced.empty:
        empty = pd.DataFrame(columns=keys + _SUMMED + ["charge", "pricing_status"])
        return empty
    # Calls billed at their model's long-context tier (input above its threshold; see pricing.ContextTier).
    priced = priced.assign(long_context_invocations=priced["invocations"].where(priced["long_context"], 0))
    # Most CSV rows come from one usage row (one day, one set of options): those are taken as they are, and only
    # the keys with several usage rows go through the exact, Python-level Decimal sum.
    several = priced.duplicated(keys, keep=False)
    single = priced.loc[~several, [*keys, *_SUMMED, "charge", "pricing_status"]].set_index(keys)
    grouped = priced[several].groupby(keys, sort=False, dropna=False)
    merged = grouped[_SUMMED].sum()
    merged["charge"] = grouped["charge"].agg(_sum_charges)
    merged["pricing_status"] = grouped["pricing_status"].agg(_status)
    rows = pd.concat([single, merged]) if len(merged) else single
    rows = rows.reset_index()
    rows["charge"] = [None if c is None else to_micro(c) for c in rows["charge"]]
    total_tokens = rows["input_tokens"] + rows["output_tokens"] + rows["cache_read_tokens"] + rows["cache_write_tokens"]
    order = pd.DataFrame(
        {
            "is_unpriced": rows["charge"].isna(),
            "charge": [float(c) if c is not None else 0.0 for c in rows["charge"]],
            "tokens": total_tokens,
        }
    )
    # Stable tiebreak on the keys so re-runs produce byte-identical CSVs.
    keyed = pd.concat([order, rows[keys]], axis=1)
    ordered = keyed.sort_values(
        ["is_unpriced", "charge", "tokens", *keys], ascending=[True, False, False, *[True] * len(keys)]
    ).index
    return rows.loc[ordered].reset_index(drop=True)


def render_csv(rows: pd.DataFrame, attribution_keys: Sequence[str] = ()) -> bytes:
    """UTF-8 CSV with the contract's column order, then one column per attribution key (header: the key; empty
    when unattributed); unpriced charges are empty cells, never 0."""
    columns: list[list[object]] = []
    for name in [*CSV_COLUMNS, *attribution_keys]:
        values = rows[_CSV_SOURCES.get(name, name)].tolist() if not rows.empty else []
        if name in _TEXT_COLUMNS or name in attribution_keys:
            values = neutralise_all([str(v) for v in values])
        elif name == "Charges incurred":
            values = ["" if c is None else f"{c:f}" for c in values]
        columns.append(values)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")  # quotes only where needed, as spreadsheets expect
    writer.writerow([*CSV_COLUMNS, *attribution_keys])
    writer.writerows(zip(*columns, strict=True))
    return buffer.getvalue().encode("utf-8")


def _micros(charges: pd.Series) -> np.ndarray:
    """Report-row charges (already rounded to micro-dollars) as int64 micro-dollars: exact, and summed by numpy."""
    return np.array([0 if c is None else int(c.scaleb(6)) for c in charges], dtype=np.int64)


def _dollars(micros: int, priced: bool) -> Decimal:
    # Decimal(0) where nothing was priced, as an exact sum starting from Decimal(0) would say.
    return Decimal(int(micros)).scaleb(-6) if priced else Decimal(0)


def _breakdown(rows: pd.DataFrame, key: str, micros: np.ndarray) -> list[Spend]:
    unpriced = rows["charge"].isna()
    parts = pd.DataFrame(
        {
            "name": rows[key],
            "micros": micros,  # the priced part only
            "priced_rows": (~unpriced).astype("int64"),
            "invocations": rows["invocations"],
            "unpriced_invocations": rows["invocations"].where(unpriced, 0),
        }
    )
    totals = parts.groupby("name", sort=False).sum()
    spends = [
        Spend(str(name), _dollars(m, p > 0), i, u)
        for name, m, p, i, u in zip(
            totals.index.tolist(),
            totals["micros"].tolist(),  # plain ints: numpy scalars cost more per use than the whole conversion
            totals["priced_rows"].tolist(),
            totals["invocations"].tolist(),
            totals["unpriced_invocations"].tolist(),
            strict=True,
        )
    ]
    return sorted(spends, key=lambda s: (-s.cost, -s.invocations, s.name))


def _count_invalid(rows: pd.DataFrame) -> int:
    if rows.empty:
        return 0
    return int(rows["pricing_status"].str.contains(f"{INVALID}: ", regex=False).sum())


def summarise(rows: pd.DataFrame, attribution_keys: Sequence[str] = ()) -> ReportSummary:
    """Totals and breakdowns, computed from the CSV rows so that the email always agrees with the CSV."""
    unpriced = []
    missing = rows[rows["charge"].isna()] if not rows.empty else rows
    for model_id, group in missing.groupby("model_id", sort=True):
        unpriced.append(
            UnpricedModel(
                model_id=str(model_id),
                reason=_status(group["pricing_status"]),
                input_tokens=int(group["input_tokens"].sum()),
                output_tokens=int(group["output_tokens"].sum()),
                cache_read_tokens=int(group["cache_read_tokens"].sum()),
                cache_write_tokens=int(group["cache_write_tokens"].sum()),
                invocations=int(group["invocations"].sum()),
            )
        )
    micros = _micros(rows["charge"]) if not rows.empty else np.zeros(0, dtype=np.int64)
    total = _dollars(int(micros.sum()), bool(rows["charge"].notna().any())) if not rows.empty else Decimal(0)
    return ReportSummary(
        total_cost=total,
        invocations=int(rows["invocations"].sum()),
        failed_invocations=int(rows["failed_invocations"].sum()),
        input_tokens=int(rows["input_tokens"].sum()),
        output_tokens=int(rows["output_tokens"].sum()),
        cache_read_tokens=int(rows["cache_read_tokens"].sum()),
        cache_write_tokens=int(rows["cache_write_tokens"].sum()),
        cache_write_1h_tokens=int(rows["cache_write_1h_tokens"].sum()) if not rows.empty else 0,
        rows=len(rows),
        long_context_invocations=int(rows["long_context_invocations"].sum()) if not rows.empty else 0,
        unreadable_records=int(rows["unreadable_records"].sum()) if not rows.empty else 0,
        invalid_rows=_count_invalid(rows),
        by_identity=_breakdown(rows, "identity_arn", micros) if not rows.empty else [],
        by_model=_breakdown(rows, "model_id", micros) if not rows.empty else [],
        by_region=_breakdown(rows, "region", micros) if not rows.empty else [],
        by_attribution={
            key: _breakdown(rows.assign(**{key: rows[key].replace("", UNATTRIBUTED)}), key, micros)
            if not rows.empty
            else []
            for key in attribution_keys
        },
        unpriced=unpriced,
    )


@dataclass(frozen=True)
class Report:
    """The report of a window: the CSV people download, and its totals (what the email and the summary show)."""

    csv: bytes
    totals: ReportSummary


def build_report(priced: pd.DataFrame, attribution_keys: Sequence[str], records_matched: int) -> Report:
    """The CSV and its totals from the priced usage. Every record the source matched must be in them: the source
    proved each query complete; this guards the frame and the CSV against dropping rows."""
    rows = report_rows(priced, attribution_keys)
    del priced  # at 100,000 groups a frame is tens of MiB (the caller passes its only reference)
    report = Report(render_csv(rows, attribution_keys), summarise(rows, attribution_keys))
    if report.totals.invocations != records_matched:
        raise IncompleteResults(
            f"the report has {report.totals.invocations} invocations but the source matched {records_matched}"
        )
    return report
