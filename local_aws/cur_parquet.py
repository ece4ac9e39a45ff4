"""CUR 2.0 Data Export objects for the demo and the tests: rows (dicts keyed by CUR 2.0's column names) written as
one Parquet object with the export's column types, by DuckDB (a development dependency).

Types as CUR 2.0 writes them: the dates are TIMESTAMP, amounts DOUBLE, `product` and `resource_tags`
MAP(VARCHAR, VARCHAR), everything else VARCHAR. A column a row leaves out is NULL.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

CUR_COLUMNS: dict[str, str] = {
    "bill_billing_period_start_date": "TIMESTAMP",
    "bill_billing_entity": "VARCHAR",
    "line_item_usage_start_date": "TIMESTAMP",
    "line_item_usage_end_date": "TIMESTAMP",
    "line_item_usage_account_id": "VARCHAR",
    "line_item_line_item_type": "VARCHAR",
    "line_item_product_code": "VARCHAR",
    "line_item_usage_type": "VARCHAR",
    "line_item_operation": "VARCHAR",
    "line_item_unblended_cost": "DOUBLE",
    "line_item_net_unblended_cost": "DOUBLE",
    "line_item_usage_amount": "DOUBLE",
    "line_item_iam_principal": "VARCHAR",
    "product_servicecode": "VARCHAR",
    "product_region_code": "VARCHAR",
    "product": "MAP(VARCHAR, VARCHAR)",
    "resource_tags": "MAP(VARCHAR, VARCHAR)",
}
MAPS = frozenset(name for name, kind in CUR_COLUMNS.items() if kind.startswith("MAP"))


def cur_parquet(rows: Iterable[Mapping[str, Any]]) -> bytes:
    """One Parquet object of CUR 2.0 rows. Unknown column names are refused (a typo would be a silent NULL)."""
    import duckdb

    rows = list(rows)
    for row in rows:
        unknown = set(row) - set(CUR_COLUMNS)
        if unknown:
            raise ValueError(f"not CUR 2.0 columns: {sorted(unknown)}")
    connection = duckdb.connect(":memory:")
    try:
        columns = ", ".join(f"{name} {kind}" for name, kind in CUR_COLUMNS.items())
        connection.execute(f"CREATE TABLE cur ({columns})")
        slots = ", ".join(
            "MAP(?::VARCHAR[], ?::VARCHAR[])" if name in MAPS else f"?::{kind}" for name, kind in CUR_COLUMNS.items()
        )
        values = []
        for row in rows:
            params: list[Any] = []
            for name in CUR_COLUMNS:
                value = row.get(name)
                if name in MAPS:
                    pairs = dict(value or {})
                    params += [list(pairs), list(pairs.values())]
                else:
                    params.append(_naive_utc(value) if isinstance(value, datetime) else value)
            values.append(params)
        if values:
            connection.executemany(f"INSERT INTO cur VALUES ({slots})", values)
        with tempfile.TemporaryDirectory(prefix="cur-") as scratch:
            path = os.path.join(scratch, "part-0.parquet")
            connection.execute(f"COPY cur TO '{path}' (FORMAT parquet)")
            with open(path, "rb") as written:
                return written.read()
    finally:
        connection.close()


def _naive_utc(value: datetime) -> datetime:
    return value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)
