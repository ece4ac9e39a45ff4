"""dialect.py: the one text written for Athena, as each engine runs it, and DuckDB's values as Athena's text."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from lambda_function.engine import Relation, dialect

duckdb = pytest.importorskip("duckdb")

CUR = {"cur": Relation("bucket", "cur/data", glue_table="cur_db.cur_2_0")}


def duck(sql: str) -> list[tuple]:
    connection = duckdb.connect(":memory:")
    dialect.install_duckdb(connection)
    return connection.execute(dialect.to_duckdb(sql)).fetchall()


# -- relation names -----------------------------------------------------------------------------------------------
def test_athena_reads_the_glue_table_under_the_relations_name():
    assert dialect.to_athena("SELECT cur.x FROM cur WHERE y = 1", CUR) == (
        'SELECT cur.x FROM "cur_db"."cur_2_0" AS cur WHERE y = 1'
    )


def test_an_alias_written_in_the_sql_is_kept():
    assert dialect.to_athena("SELECT c.x FROM cur AS c", CUR) == 'SELECT c.x FROM "cur_db"."cur_2_0" AS c'
    assert dialect.to_athena("SELECT c.x FROM cur c JOIN cur d ON c.k = d.k", CUR) == (
        'SELECT c.x FROM "cur_db"."cur_2_0" c JOIN "cur_db"."cur_2_0" d ON c.k = d.k'
    )


def test_the_name_is_replaced_only_where_a_relation_stands():
    sql = "SELECT 'from cur' AS cur_label, \"cur\" -- FROM cur\nFROM cur\nGROUP BY 1"
    assert dialect.to_athena(sql, CUR) == (
        'SELECT \'from cur\' AS cur_label, "cur" -- FROM cur\nFROM "cur_db"."cur_2_0" AS cur\nGROUP BY 1'
    )


def test_duckdb_keeps_the_relation_name_its_view_has():
    assert dialect.to_duckdb("SELECT x FROM cur") == "SELECT x FROM cur"


def test_a_relation_without_a_glue_table_cannot_go_to_athena():
    with pytest.raises(ValueError, match="no Glue table"):
        dialect.to_athena("SELECT 1 FROM cur", {"cur": Relation("bucket", "prefix")})
    with pytest.raises(ValueError, match="database.table"):
        dialect.quoted_table("just_a_table")


# -- map access ---------------------------------------------------------------------------------------------------
def test_element_at_is_the_maps_value_in_duckdb_whatever_its_version():
    sql = "SELECT element_at(m, 'product_name'), element_at(m, 'missing') FROM (SELECT MAP(['product_name'], ['Claude (Amazon Bedrock Edition)']) AS m)"
    assert duck(sql) == [("Claude (Amazon Bedrock Edition)", None)]
    # the DuckDB text calls the macro; Athena gets Trino's own function
    assert "trino_element_at(m, 'product_name')" in dialect.to_duckdb(sql)
    assert dialect.to_athena(sql) == sql


def test_duckdbs_own_element_at_is_what_the_macro_is_for():
    # DuckDB 2.0 answers a list where Trino answers the value: the reason for the macro (if DuckDB changes, the
    # macro follows it: install_duckdb probes the version at hand)
    raw = duckdb.connect(":memory:").execute("SELECT element_at(MAP(['k'], ['v']), 'k')").fetchone()[0]
    assert raw in (["v"], "v")


def test_a_map_filter_as_the_cur_query_writes_it():
    sql = """SELECT COUNT(*) FROM (VALUES (MAP(['product_name'], ['Claude Sonnet 4.5 (Amazon Bedrock Edition)'])),
                                          (MAP(['product_name'], ['Some SaaS'])), (MAP(['region'], ['x']))) t(product)
             WHERE element_at(product, 'product_name') LIKE '%(Amazon Bedrock Edition)'"""
    assert duck(sql) == [(1,)]


# -- dates and decimals -------------------------------------------------------------------------------------------
def test_the_day_of_a_timestamp_both_ways():
    sql = "SELECT date(t), CAST(t AS DATE), t >= TIMESTAMP '2026-11-03 00:00:00' FROM (SELECT TIMESTAMP '2026-11-03 23:59:59' AS t)"
    assert duck(sql) == [(dt.date(2026, 11, 3), dt.date(2026, 11, 3), True)]


def test_money_is_summed_as_a_decimal_with_precision_and_scale():
    sql = "SELECT SUM(CAST(c AS DECIMAL(38, 10))) FROM (VALUES (0.1::DOUBLE), (0.2::DOUBLE)) t(c)"
    ((total,),) = duck(sql)
    assert dialect.as_text(total) == "0.3000000000"  # as doubles, 0.30000000000000004


@pytest.mark.parametrize("translate", [dialect.to_duckdb, dialect.to_athena])
def test_a_bare_decimal_is_refused_its_defaults_differ(translate):
    with pytest.raises(ValueError, match=r"DECIMAL\(precision, scale\)"):
        translate("SELECT SUM(CAST(c AS DECIMAL)) FROM cur")
    assert translate("SELECT 'DECIMAL' FROM cur")  # a string is not a type


# -- values as text -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, None),
        (True, "true"),
        (3, "3"),
        (Decimal("0E-10"), "0.0000000000"),
        (Decimal("4.3500000000"), "4.3500000000"),
        (dt.date(2026, 11, 3), "2026-11-03"),
        (dt.datetime(2026, 11, 3, 10, 0, 0, 123456), "2026-11-03 10:00:00.123"),
        (dt.datetime(2026, 11, 3, 10, tzinfo=dt.UTC), "2026-11-03 10:00:00.000 UTC"),
        ({"product_name": "x", "region": None}, "{product_name=x, region=null}"),
        (["a", "b"], "[a, b]"),
        ("text", "text"),
    ],
)
def test_values_as_athena_writes_them(value, text):
    assert dialect.as_text(value) == text


def test_column_labels_are_lower_case():
    assert dialect.label("Billed_USD") == "billed_usd"


@pytest.mark.parametrize(
    "literal",
    [
        "TIMESTAMP '2026-11-03T00:00:00'",
        "TIMESTAMP '2026-11-03 00:00:00Z'",
        "TIMESTAMP '2026-11-03 00:00:00 UTC'",
        "DATE '2026-11-3'",
        "DATE '2026-11-03 00:00:00'",
    ],
)
@pytest.mark.parametrize("translate", [dialect.to_duckdb, dialect.to_athena])
def test_date_and_timestamp_literals_only_in_the_form_both_read_alike(literal, translate):
    with pytest.raises(ValueError, match="literals as"):
        translate(f"SELECT 1 FROM cur WHERE t >= {literal}")


@pytest.mark.parametrize(
    "literal", ["TIMESTAMP '2026-11-03 00:00:00'", "TIMESTAMP '2026-11-03 00:00:00.250'", "DATE '2026-11-03'"]
)
def test_literals_in_the_common_form_pass(literal):
    sql = f"SELECT {literal} AS t"
    assert dialect.to_athena(sql) == dialect.to_duckdb(sql) == sql
    assert duck(sql)[0][0] is not None
