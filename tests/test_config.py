"""Configuration from environment variables: every problem names its variable."""

import pytest

from lambda_function.config import load_config
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
