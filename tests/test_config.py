"""Configuration from environment variables: every problem names its variable."""

import pytest

from lambda_function.config import email_address, is_email, load_config, parse_log_group
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
