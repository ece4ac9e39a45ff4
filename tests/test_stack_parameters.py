"""The stack's parameters that tests/test_settings_table.py does not hold to a setting one for one: every free-text
parameter has a pattern, the log-group ARNs are ARNs the function reads the same way, the bucket names are ones the
function takes.

CloudFormation checks AllowedPattern with Java's regular expressions against the whole value (and, for a
CommaDelimitedList, against each item); the patterns here use nothing that Python's `re` reads otherwise.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cfnlint.decode import cfn_yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lambda_function.config import SETTINGS, parse_log_group

from .depth import examples

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = cfn_yaml.loads((ROOT / "cloudformation" / "template.yaml").read_text())
PARAMETERS = TEMPLATE["Parameters"]
BY_NAME = {setting.name: setting for setting in SETTINGS}
PRINTABLE_ASCII = st.characters(min_codepoint=0x20, max_codepoint=0x7E)


def accepts(parameter: str, value: str) -> bool:
    """Whether CloudFormation takes the value: each item of a CommaDelimitedList, the whole of a String."""
    spec = PARAMETERS[parameter]
    items = value.split(",") if spec["Type"] == "CommaDelimitedList" else [value]
    return all(re.fullmatch(spec["AllowedPattern"], item, re.ASCII) for item in items)


def from_pattern(parameter: str) -> st.SearchStrategy[str]:
    return st.from_regex(re.compile(PARAMETERS[parameter]["AllowedPattern"], re.ASCII), fullmatch=True).filter(
        lambda value: value.isprintable()
    )


@pytest.mark.parametrize("parameter", sorted(PARAMETERS))
def test_every_free_text_parameter_has_a_pattern_or_a_list(parameter):
    spec = PARAMETERS[parameter]
    if spec["Type"] in ("String", "CommaDelimitedList"):
        assert {"AllowedPattern", "AllowedValues"} & set(spec), f"{parameter} takes any text"
    if "AllowedPattern" in spec:
        pattern = spec["AllowedPattern"]
        # anchored at both ends, as the whole value must match; the default (if any) matches
        assert pattern.removeprefix("(?i)").startswith("^") and pattern.endswith("$"), parameter
        if "Default" in spec:
            assert accepts(parameter, str(spec["Default"])), parameter


def test_log_group_arns_are_arns_without_the_suffix():
    good = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/bedrock/modelinvocations"
    assert accepts("LogGroupArns", good)
    assert accepts("LogGroupArns", f"{good},arn:aws-us-gov:logs:us-gov-west-1:123456789012:log-group:bedrock#1")
    assert accepts("LogGroupArns", "")  # none: LogSource=s3 only (its rule)
    for bad in [
        "/aws/bedrock/modelinvocations",  # a bare name: the role's StartQuery grant would be MalformedPolicyDocument
        f"{good},/aws/bedrock/other",
        f"{good}:*",  # the template adds ':*' itself
        "arn:aws:logs:us-east-1:123456789012:log-group:*",
        "arn:aws:logs:us-east-1:12345:log-group:x",
        f" {good}",
    ]:
        assert not accepts("LogGroupArns", bad), bad


@settings(
    max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)
@given(from_pattern("LogGroupArns"))
def test_every_log_group_arn_the_stack_takes_the_function_reads_as_that_arn(arn):
    if not arn:  # no log group: LogSource=s3 (the stack's rules refuse it with cloudwatch, test_stack_logs.py)
        assert BY_NAME["LOG_GROUP_NAMES"].parse(arn) == ()
        return
    group = parse_log_group(arn)
    assert group is not None and group.is_arn and group.identifier == arn


@pytest.mark.parametrize("parameter", ["ReportBucketName", "ArtifactBucket"])
def test_bucket_names_the_stack_takes_are_bucket_names(parameter):
    for bad in ["Bucket", "b", "a..b", "xn--bucket", "bucket-", "-bucket", "bucket_name", "a" * 64]:
        assert not accepts(parameter, bad), bad
    assert accepts(parameter, "my-reports.example")


@settings(
    max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)
@given(from_pattern("ReportBucketName"))
def test_every_report_bucket_the_stack_takes_the_function_takes(bucket):
    # REPORT_BUCKET is the parameter or, empty, the bucket the stack creates
    if bucket:
        assert BY_NAME["REPORT_BUCKET"].parse(bucket) == bucket


@pytest.mark.parametrize(
    ("parameter", "good", "bad"),
    [
        (
            "ScheduleExpression",
            ["cron(0 6 * * ? *)", "cron(30 5 ? * MON-FRI *)", "rate(1 day)", "rate(12 hours)"],
            ["cron(0 6 * * ?)", "0 6 * * ? *", "rate(0 days)", "cron(0 6 * * ? *) ", "at(2026-01-01T00:00:00)"],
        ),
        ("ArtifactKey", ["bedrock-usage-report/0123456789abcdef.zip"], ["", "a b.zip", "x" * 1025, "pkg.zip\n"]),
        ("SenderIdentity", ["example.com", "reports@example.com"], ["example", "@example.com", "Reports <a@b.com>"]),
        ("AlarmEmail", ["", "oncall@example.com"], ["oncall", "On Call <oncall@example.com>", "a@b.com,c@d.com"]),
    ],
)
def test_other_free_text_parameters(parameter, good, bad):
    for value in good:
        assert accepts(parameter, value), value
    for value in bad:
        assert not accepts(parameter, value), value
