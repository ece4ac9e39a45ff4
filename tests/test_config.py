"""Configuration from environment variables: every problem names its variable."""

import dataclasses

import pytest

from lambda_function.config import (
    LOG_LEVELS,
    MAX_ATTRIBUTION_KEYS,
    RESERVED_ATTRIBUTION_KEYS,
    SETTINGS,
    Config,
    email_address,
    is_email,
    load_config,
    parse_log_group,
)
from lambda_function.errors import ConfigError

GOOD = {
    "LOG_GROUP_NAMES": "/aws/bedrock/invocations, arn:aws:logs:eu-west-1:111122223333:log-group:/bedrock/eu:*",
    "REPORT_BUCKET": "acme-bedrock-reports",
    "SENDER": "Reports <reports@example.com>",
    "RECIPIENTS": "finops@example.com,platform@example.com",
    "REPORT_TIMEZONE": "Europe/Berlin",
    "AWS_REGION": "us-east-1",
}


def test_a_good_configuration():
    config = load_config(GOOD)
    assert [g.name for g in config.log_groups] == ["/aws/bedrock/invocations", "/bedrock/eu"]
    arn_group = config.log_groups[1]
    assert (arn_group.region, arn_group.account, arn_group.is_arn) == ("eu-west-1", "111122223333", True)
    assert arn_group.identifier == "arn:aws:logs:eu-west-1:111122223333:log-group:/bedrock/eu"  # ':*' dropped
    assert config.report_prefix == "bedrock-usage"
    assert config.recipients == ("finops@example.com", "platform@example.com")
    assert config.timezone.key == "Europe/Berlin"
    assert config.query_concurrency == 4


def test_defaults():
    config = load_config({k: v for k, v in GOOD.items() if k != "REPORT_TIMEZONE"})
    assert config.timezone.key == "UTC"


@pytest.mark.parametrize(
    ("change", "variable"),
    [
        ({"LOG_GROUP_NAMES": ""}, "LOG_GROUP_NAMES"),
        ({"LOG_GROUP_NAMES": "bad name with spaces?"}, "LOG_GROUP_NAMES"),
        ({"LOG_GROUP_NAMES": "arn:aws:logs:us-east-1:12:log-group:x"}, "LOG_GROUP_NAMES"),
        ({"REPORT_BUCKET": ""}, "REPORT_BUCKET"),
        ({"REPORT_BUCKET": "Not_A_Bucket"}, "REPORT_BUCKET"),
        ({"REPORT_PREFIX": "../escape"}, "REPORT_PREFIX"),
        ({"SENDER": "reports at example.com"}, "SENDER"),
        ({"RECIPIENTS": "a@example.com,nobody"}, "RECIPIENTS"),
        ({"REPORT_TIMEZONE": "Mars/Olympus"}, "REPORT_TIMEZONE"),
        ({"QUERY_CONCURRENCY": "many"}, "QUERY_CONCURRENCY"),
        ({"QUERY_CONCURRENCY": "0"}, "QUERY_CONCURRENCY"),
        ({"PRICE_TABLE": "/nonexistent/prices.csv"}, "PRICE_TABLE"),
        ({"AWS_REGION": ""}, "AWS_REGION"),
        ({"PRICE_DISCOUNT_PERCENT": "ten"}, "PRICE_DISCOUNT_PERCENT"),
        ({"PRICE_DISCOUNT_PERCENT": "100"}, "PRICE_DISCOUNT_PERCENT"),
        ({"PRICE_OVERRIDES": "/nonexistent/overrides.csv"}, "PRICE_OVERRIDES"),
        ({"PRICE_OVERRIDES": "s3://bucket-only"}, "PRICE_OVERRIDES"),
        ({"SES_REGION": "eu west 1"}, "SES_REGION"),
        ({"RECONCILE_LAG_DAYS": "-1"}, "RECONCILE_LAG_DAYS"),
        ({"RECONCILE_COST_METRIC": "ListPrice"}, "RECONCILE_COST_METRIC"),
        ({"RECONCILE_ALERT_PERCENT": "NaN"}, "RECONCILE_ALERT_PERCENT"),
        ({"RECONCILE_ALERT_PERCENT": "-5"}, "RECONCILE_ALERT_PERCENT"),
        ({"LINK_EXPIRY_HOURS": "169"}, "LINK_EXPIRY_HOURS"),  # a SigV4 presigned URL lives at most 7 days
        ({"RECONCILE_LAG_DAYS": "61"}, "RECONCILE_LAG_DAYS"),
        ({"BUDGETS": "/nonexistent/budgets.csv"}, "BUDGETS"),
        ({"BUDGETS": "s3://bucket-only/"}, "BUDGETS"),
        ({"SPIKE_FACTOR": "1"}, "SPIKE_FACTOR"),  # "above 1": a day at its median is no spike
        ({"SPIKE_FACTOR": "Infinity"}, "SPIKE_FACTOR"),
        ({"SPIKE_MIN_USD": "-1"}, "SPIKE_MIN_USD"),
        # the log level: one of Python's, in any case
        ({"LOG_LEVEL": "verbose"}, "LOG_LEVEL"),
        ({"LOG_LEVEL": "WARN"}, "LOG_LEVEL"),  # logging's alias, but not one the stack or the docs offer
        ({"LOG_LEVEL": "10"}, "LOG_LEVEL"),
        ({"LOG_LEVEL": "INFO\n"}, "LOG_LEVEL"),
        # attribution keys: tag-key characters, at most MAX_ATTRIBUTION_KEYS, no repeats ...
        ({"ATTRIBUTION_KEYS": "team name"}, "ATTRIBUTION_KEYS"),
        ({"ATTRIBUTION_KEYS": "t" * 65}, "ATTRIBUTION_KEYS"),
        ({"ATTRIBUTION_KEYS": ",".join(f"k{i}" for i in range(MAX_ATTRIBUTION_KEYS + 1))}, "ATTRIBUTION_KEYS"),
        ({"ATTRIBUTION_KEYS": "team,Team"}, "ATTRIBUTION_KEYS"),
        # ... and none a column of the report (checked at load, not when the run reaches the report)
        ({"ATTRIBUTION_KEYS": "team,region"}, "ATTRIBUTION_KEYS"),
        ({"ATTRIBUTION_KEYS": "Charge"}, "ATTRIBUTION_KEYS"),
        ({"ATTRIBUTION_KEYS": "pricing_status"}, "ATTRIBUTION_KEYS"),
        ({"ATTRIBUTION_KEYS": "project,INVOCATIONS"}, "ATTRIBUTION_KEYS"),
        ({"ATTRIBUTION_KEYS": "long_context_invocations"}, "ATTRIBUTION_KEYS"),
        ({"ATTRIBUTION_KEYS": "invalid"}, "ATTRIBUTION_KEYS"),
    ],
)
def test_each_bad_setting_is_named(change, variable):
    with pytest.raises(ConfigError) as caught:
        load_config({**GOOD, **change})
    assert caught.value.variable == variable
    assert str(caught.value).startswith(variable)


def test_sender_and_recipients_are_needed_only_to_send():
    config = load_config({k: v for k, v in GOOD.items() if k not in ("SENDER", "RECIPIENTS")})
    assert config.sender == ""
    with pytest.raises(ConfigError, match="SENDER"):
        config.require_email_settings(("a@example.com",))
    with pytest.raises(ConfigError, match="RECIPIENTS"):
        load_config(GOOD).require_email_settings(())


@pytest.mark.parametrize(
    ("change", "variable"),
    [
        # not numbers at all: NaN made the range check raise decimal.InvalidOperation
        ({"PRICE_DISCOUNT_PERCENT": "NaN"}, "PRICE_DISCOUNT_PERCENT"),
        ({"PRICE_DISCOUNT_PERCENT": "nan"}, "PRICE_DISCOUNT_PERCENT"),
        ({"PRICE_DISCOUNT_PERCENT": "sNaN"}, "PRICE_DISCOUNT_PERCENT"),
        ({"PRICE_DISCOUNT_PERCENT": "Infinity"}, "PRICE_DISCOUNT_PERCENT"),
        ({"PRICE_DISCOUNT_PERCENT": "-Infinity"}, "PRICE_DISCOUNT_PERCENT"),
        # a CR/LF in an address is a header injection waiting for a mail library that does not refuse it
        ({"SENDER": "Reports <reports@example.com>\r\nBcc: x@evil.com"}, "SENDER"),
        ({"SENDER": "Reports\r\nBcc: x@evil.com <reports@example.com>"}, "SENDER"),
        ({"SENDER": "Reports \x1b[31m <reports@example.com>"}, "SENDER"),
        ({"SENDER": "reports@example.com\n"}, "SENDER"),
        ({"SENDER": "reports@example.com\x00"}, "SENDER"),
        ({"RECIPIENTS": "a@example.com\n"}, "RECIPIENTS"),
        ({"RECIPIENTS": "a@example.com\r\nb@example.com"}, "RECIPIENTS"),
        ({"RECIPIENTS": "a@example.com,\tb@example.com"}, "RECIPIENTS"),
        # the other settings go into S3 keys, URLs and log group names
        ({"REPORT_BUCKET": "acme-bedrock-reports\n"}, "REPORT_BUCKET"),
        ({"REPORT_PREFIX": "bedrock-usage\n/"}, "REPORT_PREFIX"),
        ({"LOG_GROUP_NAMES": "/aws/bedrock/invocations\n"}, "LOG_GROUP_NAMES"),
        ({"AWS_REGION": "us-east-1\nx"}, "AWS_REGION"),
        ({"AWS_REGION": "us-east-1.evil.example"}, "AWS_REGION"),  # part of each endpoint's host name
        ({"REPORT_TIMEZONE": "UTC\x00"}, "REPORT_TIMEZONE"),
        ({"PRICE_OVERRIDES": "s3://bucket/key\r\nx"}, "PRICE_OVERRIDES"),
        ({"QUERY_CONCURRENCY": "4\n"}, "QUERY_CONCURRENCY"),
    ],
)
def test_non_numbers_and_control_characters_are_refused(change, variable):
    with pytest.raises(ConfigError) as caught:
        load_config({**GOOD, **change})
    assert caught.value.variable == variable
    assert str(caught.value).startswith(variable)


@pytest.mark.parametrize(
    ("check", "value"),
    [
        # re.match with $ also matches before a trailing newline
        (is_email, "a@example.com\n"),
        (email_address, "Reports <reports@example.com>\n"),
        (email_address, "reports@example.com\n"),
        (parse_log_group, "/aws/bedrock/invocations\n"),
        (parse_log_group, "arn:aws:logs:eu-west-1:111122223333:log-group:/bedrock/eu:*\n"),
    ],
)
def test_a_trailing_newline_does_not_pass_the_patterns(check, value):
    assert not check(value)
    assert check(value[:-1])  # the same value without it is fine


@pytest.mark.parametrize("region", ["us-east-1", "us-gov-west-1", "cn-northwest-1", "eusc-de-east-1"])
def test_region_names(region):
    assert load_config({**GOOD, "AWS_REGION": region}).default_region == region


@pytest.mark.parametrize(
    ("value", "level"),
    [
        (None, "INFO"),
        ("", "INFO"),
        ("debug", "DEBUG"),
        (" Warning ", "WARNING"),
        ("ERROR", "ERROR"),
        ("critical", "CRITICAL"),
    ],
)
def test_the_log_level_is_read_in_any_case_and_kept_in_upper_case(value, level):
    environ = GOOD if value is None else {**GOOD, "LOG_LEVEL": value}
    assert load_config(environ).log_level == level


def test_a_reserved_attribution_key_is_named_with_the_reason():
    with pytest.raises(ConfigError, match=r"^ATTRIBUTION_KEYS: 'Region', 'charge' would clash with a column"):
        load_config({**GOOD, "ATTRIBUTION_KEYS": "team,Region,charge"})
    # a key that only contains a column's name is fine
    config = load_config({**GOOD, "ATTRIBUTION_KEYS": "team, cost-center,region_owner"})
    assert config.attribution_keys == ("team", "cost-center", "region_owner")


def test_the_reserved_keys_are_the_frames_and_the_csvs_columns():
    from lambda_function.report import rows
    from lambda_function.sources.usage import COLUMNS

    assert {name.lower() for name in [*COLUMNS, *rows.CSV_COLUMNS]} <= RESERVED_ATTRIBUTION_KEYS
    # what pricing adds to the frame, and the report's own columns, case-insensitively
    # and `meta:<key>`, the usage frame's column of another key's request metadata
    for name in (
        "charge",
        "pricing_status",
        "priced_model_id",
        "long_context",
        "long_context_invocations",
        "charge_micros",  # the report rows' micro-dollars, and whether a row is priced
        "Is_Priced",
        "Charge",
        "meta:team",
    ):
        with pytest.raises(ConfigError, match="ATTRIBUTION_KEYS"):
            load_config({**GOOD, "ATTRIBUTION_KEYS": f"team,{name}"})


def test_the_region_falls_back_to_aws_default_region():
    environ = {k: v for k, v in GOOD.items() if k != "AWS_REGION"}
    assert load_config({**environ, "AWS_DEFAULT_REGION": "eu-west-1"}).default_region == "eu-west-1"
    assert load_config({**GOOD, "AWS_DEFAULT_REGION": "eu-west-1"}).default_region == "us-east-1"
    with pytest.raises(ConfigError) as caught:
        load_config({**environ, "AWS_DEFAULT_REGION": "eu-west-1\n"})
    assert caught.value.variable == "AWS_DEFAULT_REGION"


# The table itself: one entry per variable and per Config field, each default a valid value.


def test_the_table_fills_every_field_once():
    names = [setting.name for setting in SETTINGS]
    filled = [setting.field for setting in SETTINGS]
    assert len(set(names)) == len(names)
    assert len(set(filled)) == len(filled)
    # query_row_limit is no setting: the runner lowers it where the service refuses StartQuery's maximum
    assert set(filled) == {field.name for field in dataclasses.fields(Config)} - {"query_row_limit"}


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda setting: setting.name)
def test_each_setting_has_a_doc_line_and_a_default_that_is_the_configs(setting):
    assert setting.doc and "\n" not in setting.doc
    field = {field.name: field for field in dataclasses.fields(Config)}[setting.field]
    if setting.default is None:  # required: unset or empty is refused, naming the variable
        for raw in ("", "  "):
            with pytest.raises(ConfigError) as caught:
                setting.parse(raw)
            assert caught.value.variable == setting.name
            assert "is not set" in str(caught.value)
    else:
        value = setting.parse(setting.default)
        assert setting.parse("") == value == setting.parse(" ")  # unset or empty: the default
        if field.default is not dataclasses.MISSING:
            assert value == field.default


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda setting: setting.name)
def test_each_parser_refuses_a_control_character_naming_its_variable(setting):
    with pytest.raises(ConfigError) as caught:
        setting.parse((setting.default or "x") + "\r\n")
    assert caught.value.variable == setting.name


def test_the_log_levels_are_pythons():
    import logging

    for level in LOG_LEVELS:
        assert isinstance(logging.getLevelName(level), int)
