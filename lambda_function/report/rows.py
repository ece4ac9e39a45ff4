"""The report itself: the CSV people download and the summary the email and the response are made from."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import cast

import numpy as np
import pandas as pd

from lambda_function.columns import (
    CHARGE_MICROS,
    COUNTS,
    CSV_COLUMNS,
    CSV_NAMES,
    IMAGES,
    IS_PRICED,
    LONG_CONTEXT_INVOCATIONS,
    ROW_KEYS,
    object_column,
)
from lambda_function.errors import IncompleteResults
from lambda_function.pricing.engine import INVALID, PRICED, micro_dollars
from lambda_function.sources.attribution import UNATTRIBUTED
from lambda_function.summary import ReportSummary, Spend, UnpricedModel

CENT = Decimal("0.01")

_CSV_SOURCES = {csv_name: name for name, csv_name in CSV_NAMES.items()}
_TEXT_COLUMNS = {"Account Id", "Identity ARN", "Model Id", "Region Name", "Pricing status"}
_SUMMED = COUNTS + [IMAGES, LONG_CONTEXT_INVOCATIONS]
# What a spreadsheet app may read as the start of a formula, with the full-width forms (＝ ＋ － ＠) some of them
# fold to ASCII. Leading whitespace of any kind (TAB, CR, LF, NBSP, ...) is caught in neutralise: apps trim it.
_FORMULA_START = ("=", "+", "-", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20")


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


def _key_codes(rows: pd.DataFrame, keys: Sequence[str]) -> list[np.ndarray]:
    """Each key column as integer codes in the order of its values (factorized once, sorted)."""
    return [pd.factorize(rows[key], sort=True)[0] for key in keys]


def report_rows(priced: pd.DataFrame, attribution_keys: Sequence[str] = ()) -> pd.DataFrame:
    """One row per (account, identity ARN, model id as logged, region, and attribution values), over all days;
    largest charges first."""
    keys = [*ROW_KEYS, *attribution_keys]
    if priced.empty:
        return pd.DataFrame(columns=keys + _SUMMED + [CHARGE_MICROS, IS_PRICED, "pricing_status"])
    # Calls billed at their model's long-context tier (input above its threshold; see pricing.ContextTier).
    priced = priced.assign(long_context_invocations=priced["invocations"].where(priced["long_context"], 0))
    # Most CSV rows come from one usage row (one day, one set of options): those are taken as they are, and only
    # the keys with several usage rows go through the exact, Python-level Decimal sum.
    several = priced.duplicated(keys, keep=False)
    single = priced.loc[~several, [*keys, *_SUMMED, "charge", CHARGE_MICROS, "pricing_status"]].set_index(keys)
    if several.any():  # their micro-dollars: their exact charges summed, then rounded
        grouped = priced[several].groupby(keys, sort=False, dropna=False, observed=True)  # (categorical keys)
        merged = grouped[_SUMMED].sum()
        merged["charge"] = grouped["charge"].agg(_sum_charges)
        merged[CHARGE_MICROS] = [0 if c is None else micro_dollars(c) for c in merged["charge"].tolist()]
        merged["pricing_status"] = grouped["pricing_status"].agg(_status)
        single = pd.concat([single, merged])
    rows = single.reset_index()
    rows[IS_PRICED] = rows.pop("charge").notna().to_numpy()
    rows[CHARGE_MICROS] = rows[CHARGE_MICROS].astype(np.int64)
    total_tokens = rows["input_tokens"] + rows["output_tokens"] + rows["cache_read_tokens"] + rows["cache_write_tokens"]
    # Priced first, then the largest charge, the most tokens, and the keys (a stable tiebreak: re-runs produce
    # byte-identical CSVs). np.lexsort sorts by its last key first.
    order = np.lexsort(
        [
            *reversed(_key_codes(rows, keys)),
            -total_tokens.to_numpy(),
            -rows[CHARGE_MICROS].to_numpy(),
            ~rows[IS_PRICED].to_numpy(),
        ]
    )
    return rows.take(order).reset_index(drop=True)


# A CSV cell is quoted where it holds what would end or split it: a comma, a quote, or a line break (CR too: the csv
# module of Python 3.11 leaves a lone CR bare, and spreadsheet apps read it as a new row).
_SPLITS = re.compile(r'[,"\r\n]')


def csv_cells(values: list[str]) -> list[str]:
    """Text as CSV cells: quoted (and quotes doubled) only where needed, as spreadsheets expect. One search over a
    whole column first: most columns (ARNs, model ids, regions) never need quotes."""
    if not _SPLITS.search("".join(values)):  # one-character pattern: joining cannot make or hide a match
        return values
    return ['"' + v.replace('"', '""') + '"' if _SPLITS.search(v) else v for v in values]


CSV_CHUNK_ROWS = 10_000  # the CSV is built this many rows at a time: its cells as strings are several times its size


def _cells(rows: pd.DataFrame, name: str, attribution_keys: Sequence[str]) -> Callable[[int, int], list[str]]:
    """A CSV column's cells, rows [start, stop) at a time. Each distinct value becomes a cell once (a column repeats
    its values: the keys, the statuses, the counts of calls, images and cache writes)."""
    if name == "Charges incurred":
        micros, is_priced = rows[CHARGE_MICROS].to_numpy(), rows[IS_PRICED].to_numpy()
        return lambda start, stop: [
            f"{m // 10**6}.{m % 10**6:06d}" if p else ""
            for m, p in zip(micros[start:stop].tolist(), is_priced[start:stop].tolist(), strict=True)
        ]
    values = rows[_CSV_SOURCES.get(name, name)]
    if isinstance(values.dtype, pd.CategoricalDtype):  # the usage frame's keys
        codes, distinct = values.cat.codes.to_numpy(), values.cat.categories.tolist()
    else:
        codes, uniques = pd.factorize(values.to_numpy())
        distinct = uniques.tolist()
    texts = list(map(str, distinct))
    if name in _TEXT_COLUMNS or name in attribution_keys:
        texts = csv_cells(neutralise_all(texts))
    cells = object_column([*texts, ""])  # code -1, a missing value (none in a report's rows): an empty cell
    return lambda start, stop: cast(list[str], cells[codes[start:stop]].tolist())


def render_csv(rows: pd.DataFrame, attribution_keys: Sequence[str] = ()) -> bytes:
    """UTF-8 CSV with the contract's column order, then one column per attribution key (header: the key; empty
    when unattributed); unpriced charges are empty cells, never 0. Lines end in LF."""
    header = [*CSV_COLUMNS, *attribution_keys]
    columns = [_cells(rows, name, attribution_keys) for name in header] if len(rows) else []
    chunks = [(",".join(csv_cells(header)) + "\n").encode("utf-8")]
    for start in range(0, len(rows), CSV_CHUNK_ROWS):
        cells = [column(start, start + CSV_CHUNK_ROWS) for column in columns]
        chunks.append(("\n".join(map(",".join, zip(*cells, strict=True))) + "\n").encode("utf-8"))
    return b"".join(chunks)


def _dollars(micros: int, priced: bool) -> Decimal:
    # Decimal(0) where nothing was priced, as an exact sum starting from Decimal(0) would say.
    return Decimal(micros).scaleb(-6) if priced else Decimal(0)


def _breakdown(rows: pd.DataFrame, names: pd.Series) -> list[Spend]:
    """Spend per name, the largest cost first (then the most invocations, then the name)."""
    codes, uniques = pd.factorize(names, sort=True)
    parts = pd.DataFrame(
        {
            "micros": rows[CHARGE_MICROS].to_numpy(),  # the priced part only (0 where unpriced)
            "priced_rows": rows[IS_PRICED].to_numpy().astype(np.int64),
            "invocations": rows["invocations"].to_numpy(),
            "unpriced_invocations": rows["invocations"].where(~rows[IS_PRICED], 0).to_numpy(),
        }
    )
    totals = parts.groupby(codes, sort=True).sum()  # by code: in the names' order
    groups, micros, invocations = totals.index.to_numpy(), totals["micros"].to_numpy(), totals["invocations"].to_numpy()
    order = np.lexsort([groups, -invocations, -micros])
    labels = uniques.tolist()
    return [
        Spend(str(labels[code]), _dollars(m, p > 0), i, u)
        for code, m, p, i, u in zip(
            groups[order].tolist(),
            micros[order].tolist(),  # plain ints: numpy scalars cost more per use than the whole conversion
            totals["priced_rows"].to_numpy()[order].tolist(),
            invocations[order].tolist(),
            totals["unpriced_invocations"].to_numpy()[order].tolist(),
            strict=True,
        )
    ]


def _attribution_names(values: pd.Series) -> pd.Series:
    """An attribution key's values as breakdown names: "" (none found) is UNATTRIBUTED. A categorical (as
    `attribute_frame` makes them) is renamed and kept in sorted order, not expanded row by row."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        categories = values.cat.categories.tolist()
        if "" not in categories:
            return values
        if UNATTRIBUTED not in categories:
            renamed = values.cat.rename_categories({"": UNATTRIBUTED})
            return renamed.cat.reorder_categories(sorted(renamed.cat.categories.tolist()))
        values = values.astype(object)  # both: one name
    return values.replace("", UNATTRIBUTED)


def _count_invalid(rows: pd.DataFrame) -> int:
    """Rows whose status names an invalid count (a row's statuses are a handful of texts: each is read once)."""
    if rows.empty:
        return 0
    return sum(n for status, n in Counter(rows["pricing_status"].tolist()).items() if f"{INVALID}: " in status)


def summarise(rows: pd.DataFrame, attribution_keys: Sequence[str] = ()) -> ReportSummary:
    """Totals and breakdowns, computed from the CSV rows so that the email always agrees with the CSV."""
    if rows.empty:
        return ReportSummary(Decimal(0), 0, 0, 0, 0, 0, 0, 0, by_attribution={key: [] for key in attribution_keys})
    unpriced = []
    for model_id, group in rows[~rows[IS_PRICED]].groupby("model_id", sort=True, observed=True):
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
    return ReportSummary(
        total_cost=_dollars(int(rows[CHARGE_MICROS].sum()), bool(rows[IS_PRICED].any())),
        invocations=int(rows["invocations"].sum()),
        failed_invocations=int(rows["failed_invocations"].sum()),
        input_tokens=int(rows["input_tokens"].sum()),
        output_tokens=int(rows["output_tokens"].sum()),
        cache_read_tokens=int(rows["cache_read_tokens"].sum()),
        cache_write_tokens=int(rows["cache_write_tokens"].sum()),
        cache_write_1h_tokens=int(rows["cache_write_1h_tokens"].sum()),
        rows=len(rows),
        long_context_invocations=int(rows["long_context_invocations"].sum()),
        unreadable_records=int(rows["unreadable_records"].sum()),
        invalid_rows=_count_invalid(rows),
        by_identity=_breakdown(rows, rows["identity_arn"]),
        by_model=_breakdown(rows, rows["model_id"]),
        by_region=_breakdown(rows, rows["region"]),
        by_attribution={key: _breakdown(rows, _attribution_names(rows[key])) for key in attribution_keys},
        unpriced=unpriced,
    )


@dataclass(frozen=True)
class Report:
    """The report of a window: the CSV people download, and its totals (what the email and the summary show)."""

    csv: bytes
    totals: ReportSummary


def build_report(rows: pd.DataFrame, attribution_keys: Sequence[str], records_matched: int) -> Report:
    """The CSV and its totals from the report rows (`report_rows`). Every record the source matched must be in them:
    the source proved each query complete; this guards the frames and the CSV against dropping rows."""
    report = Report(render_csv(rows, attribution_keys), summarise(rows, attribution_keys))
    if report.totals.invocations != records_matched:
        raise IncompleteResults(
            f"the report has {report.totals.invocations} invocations but the source matched {records_matched}"
        )
    return report
