"""The report itself: the CSV people download and the summary the email and the response are made from."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd

from lambda_function.errors import ConfigError
from lambda_function.pricing.engine import INVALID, PRICED
from lambda_function.sources.attribution import UNATTRIBUTED
from lambda_function.sources.usage import COLUMNS, COUNTS

CENT = Decimal("0.01")
MICRO = Decimal("0.000001")  # CSV charges keep micro-dollars: a Nova Micro call costs far less than a cent

CSV_COLUMNS = [
    "Account Id",
    "Identity ARN",
    "Model Id",
    "Region Name",
    "Number of Input tokens",
    "Number of output tokens",
    "Charges incurred",
    "Invocations",
    "Failed invocations",
    "Cache read input tokens",
    "Cache write input tokens",
    "Pricing status",
    "Images generated",
    "Long-context invocations",
    "Unreadable records",
    "Cache write 1h input tokens",
]
_ROW_KEYS = ["account_id", "identity_arn", "model_id", "region"]
_SOURCE_COLUMNS = {
    "account_id": "Account Id",
    "identity_arn": "Identity ARN",
    "model_id": "Model Id",
    "region": "Region Name",
    "input_tokens": "Number of Input tokens",
    "output_tokens": "Number of output tokens",
    "charge": "Charges incurred",
    "invocations": "Invocations",
    "failed_invocations": "Failed invocations",
    "cache_read_tokens": "Cache read input tokens",
    "cache_write_tokens": "Cache write input tokens",
    "pricing_status": "Pricing status",
    "images": "Images generated",
    "long_context_invocations": "Long-context invocations",
    "unreadable_records": "Unreadable records",
    "cache_write_1h_tokens": "Cache write 1h input tokens",
}
_CSV_SOURCES = {csv_name: name for name, csv_name in _SOURCE_COLUMNS.items()}
_TEXT_COLUMNS = {"Account Id", "Identity ARN", "Model Id", "Region Name", "Pricing status"}
_SUMMED = COUNTS + ["images", "long_context_invocations"]
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


@dataclass(frozen=True)
class UnpricedModel:
    model_id: str
    reason: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    invocations: int


@dataclass(frozen=True)
class Spend:
    """One line of a breakdown: a name, its priced cost, and its invocations."""

    name: str
    cost: Decimal
    invocations: int
    unpriced_invocations: int = 0


def cost_label(spend: Spend) -> str:
    """What a breakdown line shows: never $0.00 for usage we could not price."""
    if spend.unpriced_invocations and spend.unpriced_invocations == spend.invocations:
        return "unpriced"
    return money(spend.cost) + (" + unpriced" if spend.unpriced_invocations else "")


@dataclass
class ReportSummary:
    total_cost: Decimal
    invocations: int
    failed_invocations: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    rows: int
    cache_write_1h_tokens: int = 0  # the 1-hour part of cache_write_tokens
    long_context_invocations: int = 0  # billed at a model's long-context tier
    unreadable_records: int = 0  # successful calls whose token counts could not be read (not priced)
    invalid_rows: int = 0  # CSV rows whose logged counts are unusable (not priced)
    by_identity: list[Spend] = field(default_factory=list)
    by_model: list[Spend] = field(default_factory=list)
    by_region: list[Spend] = field(default_factory=list)
    by_attribution: dict[str, list[Spend]] = field(default_factory=dict)  # per ATTRIBUTION_KEYS key
    unpriced: list[UnpricedModel] = field(default_factory=list)

    @property
    def unpriced_models(self) -> list[str]:
        return [u.model_id for u in self.unpriced]


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
_RESERVED = {
    name.lower()
    for name in [
        *COLUMNS,
        INVALID,
        *CSV_COLUMNS,
        *_SUMMED,
        "charge",
        "pricing_status",
        "priced_model_id",
        "long_context",
    ]
}


def check_attribution_keys(keys: Sequence[str]) -> None:
    taken = [key for key in keys if key.lower() in _RESERVED]
    if taken:
        raise ConfigError(
            "ATTRIBUTION_KEYS", f"{', '.join(map(repr, taken))} would clash with a column of the report; choose another"
        )


def report_rows(priced: pd.DataFrame, attribution_keys: Sequence[str] = ()) -> pd.DataFrame:
    """One row per (account, identity ARN, model id as logged, region, and attribution values), over all days;
    largest charges first."""
    keys = [*_ROW_KEYS, *attribution_keys]
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
            values = [neutralise(str(v)) for v in values]
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
        Spend(str(name), _dollars(m, p > 0), int(i), int(u))
        for name, m, p, i, u in zip(
            totals.index,
            totals["micros"],
            totals["priced_rows"],
            totals["invocations"],
            totals["unpriced_invocations"],
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


def _spend_json(spends: list[Spend]) -> list[dict[str, object]]:
    return [
        {
            "name": s.name,
            "cost_usd": f"{s.cost:f}",
            "invocations": s.invocations,
            "unpriced_invocations": s.unpriced_invocations,
        }
        for s in spends
    ]


def summary_document(summary: ReportSummary, window: dict[str, str], footer: dict[str, object]) -> dict[str, object]:
    """The machine-readable summary written beside the CSV (money as strings: exact, never floats)."""
    return {
        "schema": "bedrock-usage-report/summary/1",
        "window": window,
        "total_cost_usd": f"{summary.total_cost:f}",
        "invocations": summary.invocations,
        "failed_invocations": summary.failed_invocations,
        "long_context_invocations": summary.long_context_invocations,
        "unreadable_records": summary.unreadable_records,
        "invalid_rows": summary.invalid_rows,
        "tokens": {
            "input": summary.input_tokens,
            "output": summary.output_tokens,
            "cache_read": summary.cache_read_tokens,
            "cache_write": summary.cache_write_tokens,
            "cache_write_1h": summary.cache_write_1h_tokens,
        },
        "rows": summary.rows,
        "by_identity": _spend_json(summary.by_identity),
        "by_model": _spend_json(summary.by_model),
        "by_region": _spend_json(summary.by_region),
        "by_attribution": {key: _spend_json(spends) for key, spends in summary.by_attribution.items()},
        "unpriced": [
            {
                "model_id": u.model_id,
                "reason": u.reason,
                "invocations": u.invocations,
                "input_tokens": u.input_tokens,
                "output_tokens": u.output_tokens,
                "cache_read_tokens": u.cache_read_tokens,
                "cache_write_tokens": u.cache_write_tokens,
            }
            for u in summary.unpriced
        ],
        "footer": footer,
    }
