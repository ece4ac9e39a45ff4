"""The bill's settings: CUR_EXPORT, CUR_TABLE, BILL_ENGINE, ATHENA_WORKGROUP, and RECONCILE_LAG_DAYS' default of 3
with a CUR export (its lines land 24-72 h late), an explicit value kept as given."""

from __future__ import annotations

import pytest

from lambda_function.config import load_config
from lambda_function.errors import ConfigError

GOOD = {"LOG_GROUP_NAMES": "/aws/bedrock/invocations", "REPORT_BUCKET": "reports-bucket", "AWS_REGION": "us-east-1"}


def test_without_cur_the_bill_is_cost_explorers_two_days_on():
    config = load_config(GOOD)
    assert (config.cur_export, config.cur_table, config.bill_engine, config.athena_workgroup) == (
        "",
        "",
        "embedded",
        "",
    )
    assert config.reconcile_lag_days == 2


@pytest.mark.parametrize("lag", [None, "", "  "])
def test_with_cur_the_lag_defaults_to_three_days(lag):
    environ = {**GOOD, "CUR_EXPORT": "s3://billing-exports/cur2/bedrock/"}
    if lag is not None:
        environ["RECONCILE_LAG_DAYS"] = lag
    config = load_config(environ)
    assert config.cur_export == "s3://billing-exports/cur2/bedrock"  # the trailing slash dropped
    assert config.reconcile_lag_days == 3


@pytest.mark.parametrize("lag", ["0", "2", "5"])
def test_an_explicit_lag_is_kept_with_cur(lag):
    config = load_config({**GOOD, "CUR_EXPORT": "s3://billing-exports", "RECONCILE_LAG_DAYS": lag})
    assert config.reconcile_lag_days == int(lag)


def test_the_athena_settings():
    config = load_config(
        {**GOOD, "CUR_TABLE": "cur_db.bedrock_cur", "BILL_ENGINE": "Athena", "ATHENA_WORKGROUP": "bedrock-report"}
    )
    assert (config.cur_table, config.bill_engine, config.athena_workgroup) == (
        "cur_db.bedrock_cur",
        "athena",
        "bedrock-report",
    )


@pytest.mark.parametrize(
    ("change", "variable"),
    [
        ({"CUR_EXPORT": "billing-exports/cur2"}, "CUR_EXPORT"),
        ({"CUR_EXPORT": "s3://Not_A_Bucket/cur"}, "CUR_EXPORT"),
        ({"CUR_EXPORT": "s3://billing-exports/../other"}, "CUR_EXPORT"),
        ({"CUR_TABLE": "bedrock_cur"}, "CUR_TABLE"),
        ({"CUR_TABLE": "db.table; DROP TABLE x"}, "CUR_TABLE"),
        ({"BILL_ENGINE": "spark"}, "BILL_ENGINE"),
        ({"ATHENA_WORKGROUP": "work group"}, "ATHENA_WORKGROUP"),
    ],
)
def test_each_bad_bill_setting_is_named(change, variable):
    with pytest.raises(ConfigError) as caught:
        load_config({**GOOD, **change})
    assert caught.value.variable == variable
