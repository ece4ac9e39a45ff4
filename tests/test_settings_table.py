"""The stack and the README held to the one table of settings (lambda_function/config.py SETTINGS).

Every stack parameter that becomes an environment variable of the function is a setting of the table; every
constraint the stack puts on such a parameter (AllowedPattern, AllowedValues, MinValue/MaxValue) is shown by
sample values to agree with the setting's parser; and every setting is documented in the README's table.

Where the two disagree on purpose, the samples say so: the code is laxer where it reads a hand-set variable
(`team, project`, `1e1`, a local path), and a few values the stack lets through are refused by the code at load:
KNOWN_DISAGREEMENTS lists them, each still shown to disagree, so that fixing one makes this test ask for its move.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytest
from cfnlint.decode import cfn_yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lambda_function.config import COST_METRICS, RESERVED_ATTRIBUTION_KEYS, SETTINGS, Setting
from lambda_function.errors import ConfigError

from .depth import examples

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = cfn_yaml.loads((ROOT / "cloudformation" / "template.yaml").read_text())
PARAMETERS = TEMPLATE["Parameters"]
ENVIRONMENT = TEMPLATE["Resources"]["ReportFunction"]["Properties"]["Environment"]["Variables"]
README = (ROOT / "README.md").read_text()
BY_NAME = {setting.name: setting for setting in SETTINGS}
# Settings the stack does not pass: Lambda sets the region; the price table is the packaged one (or the bucket's)
NOT_FROM_THE_STACK = {"AWS_REGION", "PRICE_TABLE"}


def _refs(value: object) -> set[str]:
    """The names a template value refers to with Ref, at any depth (Fn::Join, Fn::If, ...)."""
    if isinstance(value, dict):
        found = {value["Ref"]} if isinstance(value.get("Ref"), str) else set()
        return found.union(*(_refs(item) for item in value.values()))
    if isinstance(value, list):
        return set().union(*(_refs(item) for item in value))
    return set()


def _parameter_variables() -> dict[str, str]:
    """Each stack parameter that reaches the function's environment, with the variable it becomes."""
    return {ref: variable for variable, value in ENVIRONMENT.items() for ref in _refs(value) if ref in PARAMETERS}


# The parameters passed as they are (`VARIABLE: !Ref Parameter`): the function reads exactly what the stack checked.
DIRECT = {
    value["Ref"]: variable
    for variable, value in ENVIRONMENT.items()
    if isinstance(value, dict) and list(value) == ["Ref"] and value["Ref"] in PARAMETERS
}
CONSTRAINED = sorted(
    parameter
    for parameter in DIRECT
    if {"AllowedPattern", "AllowedValues", "MinValue", "MaxValue"} & set(PARAMETERS[parameter])
)


def _setting(parameter: str) -> Setting:
    return BY_NAME[DIRECT[parameter]]


def stack_accepts(parameter: str, value: str) -> bool:
    """Whether CloudFormation takes the value for the parameter (its type and constraints)."""
    spec = PARAMETERS[parameter]
    if "AllowedValues" in spec and value not in [str(allowed) for allowed in spec["AllowedValues"]]:
        return False
    if spec["Type"] == "Number":  # an integer or a float
        if not re.fullmatch(r"-?\d+(\.\d+)?", value, re.ASCII):
            return False
        number = Decimal(value)
        if "MinValue" in spec and number < Decimal(str(spec["MinValue"])):
            return False
        if "MaxValue" in spec and number > Decimal(str(spec["MaxValue"])):
            return False
    # CloudFormation's patterns are Java's: \d is ASCII-only there
    return "AllowedPattern" not in spec or bool(re.fullmatch(spec["AllowedPattern"], value, re.ASCII))


def code_accepts(parameter: str, value: str) -> bool:
    try:
        _setting(parameter).parse(value)
    except ConfigError as refused:
        assert refused.variable == DIRECT[parameter]
        return False
    return True


# ---------------------------------------------------------------------------------------------------------------
# Every parameter that becomes a variable is a setting, and every setting (but Lambda's own) comes from the stack.


def test_every_parameter_that_reaches_the_function_is_a_setting():
    variables = _parameter_variables()
    assert {"LogGroupArns", "ReportBucketName", "QueryConcurrency", "LogLevel"} <= set(variables)  # it finds them
    assert {variable for variable in variables.values() if variable not in BY_NAME} == set()
    assert set(ENVIRONMENT) <= set(BY_NAME), sorted(set(ENVIRONMENT) - set(BY_NAME))


def test_every_setting_but_lambdas_own_comes_from_the_stack():
    # a setting left out of the stack could only be set in the console, and the next deploy would undo it
    assert set(BY_NAME) - NOT_FROM_THE_STACK == set(ENVIRONMENT)


@pytest.mark.parametrize("parameter", sorted(p for p in DIRECT if "Default" in PARAMETERS[p]))
def test_a_parameters_default_is_the_settings(parameter):
    setting = _setting(parameter)
    assert setting.parse(str(PARAMETERS[parameter]["Default"])) == setting.parse(setting.default or "")


# ---------------------------------------------------------------------------------------------------------------
# AllowedValues and MinValue/MaxValue: every value the stack offers loads; the ones just outside are refused.


@pytest.mark.parametrize("parameter", [p for p in CONSTRAINED if "AllowedValues" in PARAMETERS[p]])
def test_every_allowed_value_loads_and_others_do_not(parameter):
    allowed = [str(value) for value in PARAMETERS[parameter]["AllowedValues"]]
    for value in allowed:
        assert code_accepts(parameter, value), value
        assert str(_setting(parameter).parse(value)) == value  # as the stack gave it
    for value in ["TRACE", "ListPrice", "verbose", "WARN", "unblendedcost"]:
        assert not stack_accepts(parameter, value)
        if value.upper() not in allowed:  # the code reads the log level in any case
            assert not code_accepts(parameter, value), value


def test_the_cost_metrics_are_the_stacks():
    assert tuple(PARAMETERS["ReconcileCostMetric"]["AllowedValues"]) == COST_METRICS


def test_no_setting_is_a_number_parameter():
    # A Number parameter takes 2.5 and 4.0, which the code's whole numbers refuse: the stack's whole-number settings
    # are Strings with a pattern
    assert [p for p in DIRECT if PARAMETERS[p]["Type"] == "Number"] == []


WHOLE_NUMBERS = ["LinkExpiryHours", "QueryConcurrency", "ReconcileLagDays", "ZipAttachmentAboveMB"]


@pytest.mark.parametrize("parameter", WHOLE_NUMBERS)
def test_the_whole_number_ranges_are_the_same(parameter):
    # the code is meant to be exactly as strict: every whole number, written plainly, is taken by both or neither
    taken = [value for value in range(-3, 1000) if code_accepts(parameter, str(value))]
    assert taken, "no value the code takes"
    for value in range(-3, 1000):
        assert stack_accepts(parameter, str(value)) is (value in taken), value
    for value in [f"{taken[0]}.0", f"{taken[-1]}.5", f"{taken[0]}e0"]:
        assert not stack_accepts(parameter, value) and not code_accepts(parameter, value), value


def test_the_stack_refuses_every_attribution_key_the_report_reserves():
    # the pattern spells the reserved names out (CloudFormation cannot import them): held to columns.RESERVED here
    for name in sorted(RESERVED_ATTRIBUTION_KEYS):
        for value in [name, name.upper(), f"team,{name}", f"{name.title()},project"]:
            assert not code_accepts("AttributionKeys", value), value
            if " " not in name:  # a key with a space is refused by its characters anyway
                assert not stack_accepts("AttributionKeys", value), value


# ---------------------------------------------------------------------------------------------------------------
# AllowedPattern: any value the pattern takes loads (generated from the pattern itself), hand samples on either
# side, and the known disagreements.

PRINTABLE_ASCII = st.characters(min_codepoint=0x20, max_codepoint=0x7E)

# Per parameter: values both refuse, and values only the stack refuses (the code is laxer by design: it also
# reads hand-set variables and the CLI's environment).
SAMPLES: dict[str, dict[str, list[str]]] = {
    "ReportPrefix": {
        "both_refuse": ["reports space", "bedrock\\usage", "bédrock", "/", "//", "a..b", "../reports", "reports/.."],
        # the code trims the slashes; a '*' would be a wildcard in the policies that name the prefix
        "only_the_stack_refuses": ["", "/reports", "reports/", "/reports/", "*", "reports*", "reports/*"],
    },
    "SesRegion": {
        "both_refuse": ["eu west 1", "eu-west-1.evil.example", "EU-WEST-1", "euwest1", "-eu-west-1"],
        "only_the_stack_refuses": [],
    },
    "PriceDiscountPercent": {
        "both_refuse": ["100", "150", "-1", "-0.5", "ten", "NaN", "Infinity", "1,5"],
        # "" is the default (0) to the code, as for every setting: the stack always passes its own default
        "only_the_stack_refuses": ["", "100.0e-1", "1e1", "5.", ".5", "007", "+5"],
    },
    "PriceOverrides": {
        "both_refuse": ["s3://bucket-only", "s3://bucket-only/", "/nonexistent/overrides.csv", "s3://bucket//"],
        # a packaged file needs no permission; the stack's parameter is for S3 only, and its key names one object
        # to grant (no wildcard, no policy variable, no trailing space the code would trim)
        "only_the_stack_refuses": [
            str(ROOT / "pricing" / "token_prices.csv"),
            "s3://Bucket/key",
            "s3://b/key",
            "s3://bucket/prices.csv ",
            "s3://bucket/*",
            "s3://bucket/prices-?.csv",
            "s3://bucket/${aws:username}.csv",
        ],
    },
    "Budgets": {
        "both_refuse": ["s3://bucket-only", "s3://bucket-only/", "/nonexistent/budgets.csv", "s3://bucket// "],
        "only_the_stack_refuses": [
            str(ROOT / "pricing" / "token_prices.csv"),
            "s3://Bucket/key",
            "s3://b/key",
            "s3://bucket/budgets/",
            "s3://bucket/*",
        ],
    },
    "AttributionKeys": {
        "both_refuse": [
            *["team name", "t" * 65, "a,b,c,d,e,f", "team;project", "équipe"],
            # repeated (compared without case), a column of the report, a request-metadata column's prefix
            *["team,Team", "team,project,TEAM", "team,region", "Charge", "meta:team", "team,meta:team"],
        ],
        "only_the_stack_refuses": ["team, project", "team,,project", ",team"],
    },
    "SpikeFactor": {
        "both_refuse": ["-2", "NaN", "Infinity", "three", "1", "1.0", "1.000", "0.5", "0", "01"],
        "only_the_stack_refuses": ["", "3e0", "2.", "+3", "02"],
    },
    "SpikeMinUsd": {
        "both_refuse": ["-1", "-0.01", "NaN", "Infinity", "$1"],
        "only_the_stack_refuses": ["", "1e2", "1.", ".5"],
    },
    "ReconcileAlertPercent": {
        "both_refuse": ["-5", "NaN", "-Infinity", "five"],
        "only_the_stack_refuses": ["", "5e0", "5.", ".5"],
    },
    "Sender": {
        "both_refuse": ["reports", "reports@example", "Reports <reports@example>", "Reports <reports@example.com"],
        # the stack takes ASCII display names without commas, and no spaces around the address
        "only_the_stack_refuses": [
            "Rapports Bédrock <reports@example.com>",
            "Reports, Inc <reports@example.com>",
            "Reports < reports@example.com >",
            "reports@example.com ",
        ],
    },
    "Recipients": {
        "both_refuse": ["finops", "finops@example", "a@b.com;c@d.com", "finops@example.com,cfo"],
        # lower case and commas only: IAM compares ses:Recipients case-sensitively; "" sends to the event's only
        "only_the_stack_refuses": ["", "FinOps@example.com", "a@x.com, b@y.com", "a@x.com b@y.com"],
    },
    "AllowedRecipients": {
        "both_refuse": ["example.com", "@example", "finops@", "@", "a@b.com;c@d.com", "@example.com,finops"],
        # lower case and commas only: the role's ses:Recipients condition is made of them (IAM compares exactly)
        "only_the_stack_refuses": ["@Example.com", "FinOps@example.com", "@example.com, @partner.org", "@a.com @b.org"],
    },
    "CurExport": {
        "both_refuse": ["cur-bucket/cur", "s3://Cur-Bucket/cur", "s3://cur-bucket/a..b", "s3://cur bucket/x"],
        # the role's grants are built from the prefix's segments (at most four, no trailing slash or wildcard)
        "only_the_stack_refuses": [
            "s3://cur-bucket",
            "s3://cur-bucket/",
            "s3://cur-bucket/cur/",
            "s3://cur-bucket//cur",
            "s3://cur-bucket/a/b/c/d/e",
            "s3://cur-bucket/cur/*",
        ],
    },
    "LogS3Location": {
        "both_refuse": ["log-bucket/logs", "s3://Log-Bucket/logs", "s3://log-bucket/a..b", "s3://log bucket/x"]
        + ["s3://b/logs", "s3://log-bucket/bedrock logs", "s3://xn--log-bucket/logs", "https://log-bucket/logs"],
        # the role's grants and the table's folders are built from the text itself (at most four key segments,
        # no trailing or doubled slash, no wildcard); the code trims what it can
        "only_the_stack_refuses": [
            "s3://log-bucket/",
            "s3://log-bucket/logs/",
            "s3://log-bucket//logs",
            "s3://log-bucket/a/b/c/d/e",
            "s3://log-bucket/logs/*",
            "s3://log-bucket/logs*",
        ],
    },
    "ReportTimezone": {
        "both_refuse": ["Europe Berlin", "../etc/passwd", "/UTC", "Europe/"],
        "only_the_stack_refuses": [""],
    },
    "QueryConcurrency": {
        "both_refuse": ["0", "31", "2.5", "4.0", "-1", "four"],
        "only_the_stack_refuses": ["", "04", "+4"],
    },
    "LinkExpiryHours": {
        "both_refuse": ["0", "169", "1.5", "-1", "1e2"],
        "only_the_stack_refuses": ["", "024", "+24"],
    },
    "ReconcileLagDays": {
        "both_refuse": ["61", "2.0", "-1", "two"],
        "only_the_stack_refuses": ["", "007", "+2"],
    },
    "ZipAttachmentAboveMB": {
        "both_refuse": ["41", "2.5", "-1", "two", "1e1"],
        "only_the_stack_refuses": ["", "02", "+2"],
    },
}

# Values the stack takes and the code refuses at load (the stack deploys, the first run fails naming the
# variable), or reads otherwise than the stack's own resources do. Reported; each is still shown to disagree below.
KNOWN_DISAGREEMENTS: dict[str, dict[str, str]] = {
    # a pattern can hold a zone name's shape, not IANA's list (the schedule refuses an unknown zone at deploy)
    "ReportTimezone": {"Mars/Olympus_Mons": "a zone name's shape that IANA does not have"},
}


def _known_disagreement(parameter: str, value: str) -> bool:
    """Whether a generated value falls in one of KNOWN_DISAGREEMENTS' kinds."""
    if parameter == "ReportTimezone":
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            return True
    return False


PATTERNED = [p for p in CONSTRAINED if "AllowedPattern" in PARAMETERS[p]]


def test_every_patterned_parameter_has_samples():
    assert sorted(SAMPLES) == sorted(PATTERNED)


@pytest.mark.parametrize("parameter", PATTERNED)
def test_what_the_stack_refuses_the_code_refuses_where_it_is_as_strict(parameter):
    for value in SAMPLES[parameter]["both_refuse"]:
        assert not stack_accepts(parameter, value), value
        assert not code_accepts(parameter, value), value
    for value in SAMPLES[parameter]["only_the_stack_refuses"]:
        assert not stack_accepts(parameter, value), value
        assert code_accepts(parameter, value), value


@pytest.mark.parametrize(
    ("parameter", "value"),
    [(parameter, value) for parameter, values in KNOWN_DISAGREEMENTS.items() for value in values],
)
def test_the_known_disagreements_still_disagree(parameter, value):
    # when this fails, the stack or the code was brought in line: move the value to SAMPLES
    assert stack_accepts(parameter, value)
    assert not code_accepts(parameter, value) or _setting(parameter).parse(value) != value
    assert _known_disagreement(parameter, value)


@pytest.mark.parametrize("parameter", PATTERNED)
def test_what_the_stack_accepts_loads_as_given(parameter):
    pattern = re.compile(PARAMETERS[parameter]["AllowedPattern"], re.ASCII)
    setting = _setting(parameter)

    @settings(max_examples=examples(300), deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.from_regex(pattern, fullmatch=True, alphabet=PRINTABLE_ASCII))
    def check(value: str) -> None:
        assert stack_accepts(parameter, value)
        if _known_disagreement(parameter, value):
            return
        assert code_accepts(parameter, value), value
        # the stack uses the same text in its own resources (the report prefix and the objects in the role's
        # policy, the SES region): the function must use it unchanged
        if parameter in (
            *("ReportPrefix", "PriceOverrides", "Budgets", "SesRegion", "AttributionKeys", "Recipients"),
            "LogS3Location",
        ):
            parsed = setting.parse(value)
            assert (",".join(parsed) if isinstance(parsed, tuple) else parsed) == value
        if parameter == "AllowedRecipients":  # the same entries as the role's ses:Recipients (a repeat read once)
            assert set(setting.parse(value)) == set(value.split(",")) - {""}

    check()


# ---------------------------------------------------------------------------------------------------------------
# The README's settings table names every setting, and only settings.


def _readme_settings() -> list[str]:
    section = README.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", section, re.MULTILINE)


@pytest.mark.parametrize("name", list(BY_NAME))
def test_every_setting_is_in_the_readmes_table(name):
    assert name in _readme_settings()


def test_the_readmes_table_names_only_settings():
    documented = _readme_settings()
    assert len(documented) >= 15  # the section was found
    assert set(documented) <= set(BY_NAME), sorted(set(documented) - set(BY_NAME))
