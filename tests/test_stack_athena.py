"""The deploy guide's Athena queries, held to the Glue tables of the template and to the keys the function writes.

moto's Athena runs no SQL (FACTS §5) and no engine here speaks Athena's dialect, so the queries are read, not run:
every column they name is a column (or a struct field) of the table they read, and their filters, applied the way
Athena applies them (regexp_like finds a match anywhere; LIKE matches the whole value; date_diff('day', ...) of the
two dates cut from the name), keep exactly the daily reports among the objects the report store writes: not the
weekly, monthly or manual windows, not the month-to-date `bedrock-usage-partial_` files, not the email markers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from cfnlint.decode import cfn_yaml

from lambda_function.store.reports import email_marker_key, report_key, summary_key
from lambda_function.window import ReportWindow, day_window, month_to_date, previous_month, previous_week

ROOT = Path(__file__).resolve().parent.parent
GUIDE = (ROOT / "docs" / "deploy.md").read_text()
RESOURCES = cfn_yaml.loads((ROOT / "cloudformation" / "template.yaml").read_text())["Resources"]
QUERIES = re.findall(r"```sql\n(.*?)```", GUIDE, re.DOTALL)
SQL_WORDS = {
    "select",
    "sum",
    "cast",
    "nullif",
    "as",
    "decimal",
    "bigint",
    "count_if",
    "from",
    "where",
    "between",
    "and",
    "or",
    "not",
    "like",
    "group",
    "by",
    "order",
    "desc",
    "asc",
    "regexp_like",
    "regexp_extract",
    "date_diff",
    "date_parse",
    "on",
    "join",
    "in",
    "is",
    "null",
    "timestamp",
}


def table(name: str) -> dict[str, str]:
    """A Glue table's columns (partition keys included) and their types, by the table's name."""
    (properties,) = [
        r["Properties"]["TableInput"]
        for r in RESOURCES.values()
        if r["Type"] == "AWS::Glue::Table" and r["Properties"]["TableInput"]["Name"] == name
    ]
    columns = properties["StorageDescriptor"]["Columns"] + properties["PartitionKeys"]
    return {column["Name"]: column["Type"] for column in columns}


def struct_fields(type_: str) -> set[str]:
    return set(re.findall(r"(\w+):", type_.removeprefix("struct<")))


@dataclass(frozen=True)
class Query:
    sql: str

    @property
    def table(self) -> str:
        return re.search(r"FROM \w+\.(\w+)", self.sql).group(1)

    @property
    def code(self) -> str:
        """The SQL without comments and string literals (what names columns)."""
        without_comments = re.sub(r"--[^\n]*", "", self.sql)
        return re.sub(r"'[^']*'", "''", without_comments)

    def columns(self) -> set[str]:
        """The names the query reads as columns: bare words and "quoted" ones, but keywords, functions, the types
        and aliases after AS, and an alias used again (ORDER BY cost_usd)."""
        aliases = set(re.findall(r"\bAS (\w+)", self.code, re.IGNORECASE))
        code = re.sub(r"\bAS \w+", "", self.code, flags=re.IGNORECASE)
        words = set(re.findall(r'(?<![.\w])("\$?\w+"|[A-Za-z_]\w*\b)(?!\s*\()', code))
        names = {word.strip('"') for word in words} - {"bedrock_usage", self.table}
        return {name for name in names if name.lower() not in SQL_WORDS} - (aliases - set(table(self.table)))

    def fields(self) -> set[tuple[str, str]]:
        """The struct fields it reads: (column, field)."""
        return {(c.strip('"'), f) for c, f in re.findall(r'("?\w+"?)\.(\w+)', self.code) if c != "bedrock_usage"}

    def keeps(self, path: str, label: str = "") -> bool:
        """Whether the query's filters on "$path" (and on the window's label) keep this object."""
        sql = re.sub(r"--[^\n]*", "", self.sql)
        for negated, pattern in re.findall(r'(NOT )?regexp_like\("\$path", \'([^\']*)\'\)', sql):
            if bool(re.search(pattern, path)) == bool(negated):
                return False
        for negated, pattern in re.findall(r'"\$path" (NOT )?LIKE \'([^\']*)\'', sql):
            like = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
            if bool(re.fullmatch(like, path, re.DOTALL)) == bool(negated):
                return False
        for pattern in re.findall(r'regexp_like\("window"\.label, \'([^\']*)\'\)', sql):
            if not re.search(pattern, label):
                return False
        days = re.search(
            r"date_diff\('day',\s*date_parse\(regexp_extract\(\"\$path\", '([^']*)', 1\), '%Y%m%d'\),"
            r"\s*date_parse\(regexp_extract\(\"\$path\", '([^']*)', 1\), '%Y%m%d'\)\) = (\d+)",
            sql,
        )
        if days:
            first, last = (re.search(pattern, path) for pattern in days.groups()[:2])
            if not (first and last):
                return False  # Athena: NULL, and the row is not kept
            start, end = (datetime.strptime(match.group(1), "%Y%m%d").date() for match in (first, last))
            if (end - start).days != int(days.group(3)):
                return False
        return True


def query(table_name: str, words: str) -> Query:
    (found,) = [Query(sql) for sql in QUERIES if Query(sql).table == table_name and words in sql]
    return found


def test_the_guide_has_its_queries():
    assert len(QUERIES) >= 3
    assert {Query(sql).table for sql in QUERIES} == {"reports", "summaries", "cur_export"}


@pytest.mark.parametrize("sql", QUERIES, ids=lambda sql: Query(sql).table + ":" + sql.split("\n")[1].strip()[:30])
def test_every_column_a_query_reads_is_in_its_table(sql):
    q = Query(sql)
    columns = table(q.table)
    assert q.columns() <= set(columns) | {"$path"}, sorted(q.columns() - set(columns))
    for column, name in q.fields():
        assert column in columns and name in struct_fields(columns[column]), (column, name)


# ---------------------------------------------------------------------------------------------------------------
# The objects the report store writes into one day's folder (Berlin: the UTC stamps are not midnight)

BERLIN = ZoneInfo("Europe/Berlin")
DAY = date(2026, 11, 16)  # a Monday
PREFIX = "bedrock-usage"


def _key(window: ReportWindow, partial: bool = False) -> str:
    return f"s3://reports-bucket/{report_key(PREFIX, window, partial=partial)}"


DAILY = day_window(DAY, BERLIN)
OTHERS = {
    "weekly": previous_week(datetime(2026, 11, 23, 6, tzinfo=BERLIN), BERLIN),
    "monthly": previous_month(datetime(2026, 12, 1, 6, tzinfo=BERLIN), BERLIN),
    # a manual window of a few hours, and one of two days
    "manual hours": ReportWindow(
        datetime(2026, 11, 16, 6, tzinfo=BERLIN), datetime(2026, 11, 16, 18, tzinfo=BERLIN), BERLIN
    ),
    "manual days": ReportWindow(datetime(2026, 11, 16, tzinfo=BERLIN), datetime(2026, 11, 18, tzinfo=BERLIN), BERLIN),
}
# month to date, run on the 2nd at midnight: exactly the 1st, a whole day, yet not a finished daily report
PARTIAL = month_to_date(datetime(2026, 12, 2, tzinfo=BERLIN), BERLIN)


def test_the_samples_are_what_the_guide_says():
    assert DAILY.label == "2026-11-16" and PARTIAL.label == "2026-12-01"  # the partial one is a whole day
    assert OTHERS["monthly"].local_start.date() == date(2026, 11, 1) and OTHERS["weekly"].local_start.date() == DAY
    assert "bedrock-usage-partial_" in _key(PARTIAL, partial=True)
    assert (DAILY.end - DAILY.start) == timedelta(hours=24)


@pytest.mark.parametrize("words", ["identity_arn", "model_id LIKE"], ids=["cost by identity", "model trend"])
def test_the_csv_queries_keep_the_daily_reports_only(words):
    q = query("reports", words)
    assert q.keeps(_key(DAILY))
    assert q.keeps(_key(day_window(date(2026, 3, 29), BERLIN)))  # 23 hours: the clocks went forward
    assert q.keeps(_key(day_window(date(2026, 10, 25), BERLIN)))  # 25 hours
    # the month-to-date file of a whole day: the trend query counted it beside the day's own report
    assert not q.keeps(_key(PARTIAL, partial=True))
    for name, window in OTHERS.items():
        if name != "manual hours":  # 12 hours within one UTC date: date_diff 0
            assert not q.keeps(_key(window)), name
    assert not q.keeps(_key(OTHERS["manual hours"]))
    for other in (summary_key(_key(DAILY)), email_marker_key(_key(DAILY))):
        assert not q.keeps(other), other


def test_the_summary_query_counts_daily_windows_only():
    # it kept every summary: weeks, months and manual windows were summed as days
    q = query("summaries", "total_cost_usd")
    daily = summary_key(_key(DAILY))
    assert q.keeps(daily, DAILY.label)
    assert not q.keeps(summary_key(_key(PARTIAL, partial=True)), PARTIAL.label)
    for name, window in OTHERS.items():
        assert not q.keeps(summary_key(_key(window)), window.label), name
    assert not q.keeps(email_marker_key(_key(DAILY)), DAILY.label)
    assert not q.keeps(_key(DAILY), DAILY.label)  # the CSV beside it (read as empty rows by the JSON SerDe)
