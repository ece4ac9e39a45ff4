"""`make invoke` against a stub `aws` on PATH: it waits as long as the function runs, prints the answer, and exits
non-zero when the report failed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Whatever the developer's shell says about regions and profiles, the scripts under test see only what a test sets.
REGION_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "SES_REGION")


def clean_env(bin_dir: Path, **extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name not in REGION_VARIABLES}
    return {**env, "PATH": f"{bin_dir}:{os.environ['PATH']}", **extra}


def stub_aws(tmp_path: Path, answer: str, function_error: bool) -> Path:
    """An `aws` that answers describe-stacks with a function name and `lambda invoke` with `answer`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    meta = '{"StatusCode": 200, "FunctionError": "Unhandled"}' if function_error else '{"StatusCode": 200}'
    script = f"""#!/usr/bin/env bash
echo "$@" >> "{tmp_path}/calls"
case "$1 $2" in
  "cloudformation describe-stacks") echo bedrock-usage-report-report ;;
  "lambda invoke") for last; do :; done; printf '%s' '{answer}' > "$last"; echo '{meta}' ;;
esac
"""
    aws = bin_dir / "aws"
    aws.write_text(script)
    aws.chmod(0o755)
    return bin_dir


def invoke(tmp_path: Path, answer: str, function_error: bool = False) -> subprocess.CompletedProcess:
    bin_dir = stub_aws(tmp_path, answer, function_error)
    env = clean_env(bin_dir, EVENT='{"date": "2026-11-20"}', AWS_REGION="eu-west-1")
    work = tmp_path / "repo"
    (work / "scripts").mkdir(parents=True)
    for script in ("stack.sh", "region.sh"):
        shutil.copy(ROOT / "scripts" / script, work / "scripts" / script)
    return subprocess.run(
        ["bash", str(work / "scripts" / "stack.sh"), "invoke"], env=env, capture_output=True, text=True, check=False
    )


def test_a_report_that_went_out_exits_0_and_prints_the_answer(tmp_path):
    result = invoke(tmp_path, '{"status": "ok", "rows": 3}')
    assert result.returncode == 0 and '"status": "ok"' in result.stdout
    calls = (tmp_path / "calls").read_text()
    assert "--cli-read-timeout 960" in calls  # not the CLI's 60 s, which would invoke the function again


@pytest.mark.parametrize(
    ("answer", "function_error"),
    [
        ('{"errorMessage": "REPORT_BUCKET: is not set", "errorType": "ConfigError"}', True),
        ('{"status": "error", "error": {"type": "InvalidRequest", "field": "date"}}', False),
    ],
    ids=["function-error", "refused-event"],
)
def test_a_failed_report_exits_non_zero(tmp_path, answer, function_error):
    result = invoke(tmp_path, answer, function_error)
    assert result.returncode == 1
    assert "the report failed" in result.stderr and answer.split(",")[0] in result.stdout


def ses_stub(tmp_path: Path, verified: set[str], production: bool) -> Path:
    """An `aws` whose SES v2 knows `verified` identities and whether the account left the sandbox."""
    bin_dir = tmp_path / "sesbin"
    bin_dir.mkdir()
    cases = "\n".join(f'    "{identity}") echo True ;;' for identity in sorted(verified))
    script = f"""#!/usr/bin/env bash
case "$1 $2" in
  "configure get") echo us-east-1 ;;
  "sesv2 get-email-identity")
    case "$4" in
{cases}
    *) echo "An error occurred (NotFoundException)" >&2; exit 254 ;;
    esac ;;
  "sesv2 get-account") echo {"True" if production else "False"} ;;
esac
"""
    (bin_dir / "aws").write_text(script)
    (bin_dir / "aws").chmod(0o755)
    return bin_dir


def ses_check(tmp_path: Path, verified: set[str], production: bool = True, **extra: str) -> subprocess.CompletedProcess:
    bin_dir = ses_stub(tmp_path, verified, production)
    env = clean_env(
        bin_dir, SENDER="Bedrock reports <reports@example.com>", RECIPIENTS="finops@example.com,cfo@other.org", **extra
    )
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "ses_check.sh")], env=env, capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize(
    ("verified", "identity", "recipient_identities"),
    [
        # SES authorizes against the address identity whenever it is verified, even with the domain verified too;
        # finops@example.com is then authorized against the domain as well, a second identity to grant
        ({"reports@example.com", "example.com"}, "reports@example.com", "example.com"),
        ({"example.com"}, "example.com", ""),
    ],
)
def test_the_identity_granted_is_the_one_ses_authorizes(tmp_path, verified, identity, recipient_identities):
    result = ses_check(tmp_path, verified)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [identity, recipient_identities]
    assert "sandbox" not in result.stderr


def test_no_verified_identity_stops_the_deploy_and_says_what_to_do(tmp_path):
    result = ses_check(tmp_path, set())
    assert result.returncode == 1 and result.stdout == ""
    assert "aws sesv2 create-email-identity --email-identity reports@example.com --region us-east-1" in result.stderr


def test_a_sandboxed_account_with_an_unverified_recipient_stops_the_deploy_with_the_commands(tmp_path):
    # it only warned: the stack deployed, and every email was refused
    result = ses_check(tmp_path, {"example.com"}, production=False)
    assert result.returncode == 1 and result.stdout == ""
    # finops@example.com is covered by the verified domain; cfo@other.org is not
    assert "in the sandbox" in result.stderr and "would get nothing: cfo@other.org\n" in result.stderr
    assert "aws sesv2 create-email-identity --email-identity cfo@other.org --region us-east-1" in result.stderr
    assert "--email-identity finops@example.com" not in result.stderr
    assert "aws sesv2 put-account-details --production-access-enabled" in result.stderr


def test_the_sandbox_check_covers_the_budgets_alert_recipients(tmp_path):
    result = ses_check(tmp_path, {"example.com"}, production=False, ALERT_RECIPIENTS="lead@example.com,ops@team.io")
    # lead@example.com is covered by the verified domain; ops@team.io and cfo@other.org are not
    assert result.returncode == 1
    assert "would get nothing: cfo@other.org ops@team.io" in result.stderr


def test_a_sandboxed_account_with_every_recipient_verified_grants_their_identities(tmp_path):
    result = ses_check(
        tmp_path,
        {"example.com", "cfo@other.org", "partner.org", "team.io"},
        production=False,
        ALERT_RECIPIENTS="ops@team.io",
        ALLOWED_RECIPIENTS="@example.com,cfo@other.org,@partner.org,@unverified.org",
    )
    assert result.returncode == 0, result.stderr
    # the sender's own identity (example.com) is granted already; a verified @domain entry is granted for a
    # manual run's recipients there, an unverified one has nothing to grant
    assert result.stdout.splitlines() == ["example.com", "cfo@other.org,team.io,partner.org"]


def test_make_deploy_passes_every_report_setting_of_the_stack():
    # A report setting the deploy script leaves out keeps its default on every redeploy, whatever the user exported.
    from cfnlint.decode import decode_str

    template, _ = decode_str((ROOT / "cloudformation" / "template.yaml").read_text())
    groups = template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    (settings,) = [g["Parameters"] for g in groups if g["Label"]["default"] == "Report settings"]
    deploy = (ROOT / "scripts" / "deploy.sh").read_text()
    assert "AttributionKeys" in settings and "Budgets" in settings
    assert [name for name in settings if f'"{name}=$' not in deploy] == []


# ---------------------------------------------------------------------------------------------------------------
# One region, resolved once: AWS_REGION, else AWS_DEFAULT_REGION, else the profile's; printed; passed to every call.

RECORDING_AWS = """#!{python}
import json, os, sys
args = sys.argv[1:]
with open(os.environ["AWS_CALLS"], "a") as calls:
    calls.write(json.dumps(args) + "\\n")
def value(flag):
    return args[args.index(flag) + 1] if flag in args else ""
verb = " ".join(args[:2])
if args[:3] == ["configure", "get", "region"]:
    region = os.environ.get("PROFILE_REGION", "")
    print(region) if region else sys.exit(1)
elif verb == "sesv2 get-email-identity":
    if value("--email-identity") not in os.environ.get("VERIFIED", "").split(","):
        sys.exit(254)
    print("True")
elif verb == "sesv2 get-account":
    print(os.environ.get("PRODUCTION", "True"))
elif verb == "sts get-caller-identity":
    print("arn:aws:iam::123456789012:user/deployer")
elif verb == "s3api get-bucket-location":
    print(value("--region"))  # the artifact bucket lives wherever it is asked for
elif verb == "cloudformation describe-stacks":
    print("bedrock-usage-report-report")
elif verb == "lambda invoke":
    open(args[-1], "w").write('{"status": "ok"}')
    print('{"StatusCode": 200}')
"""


def recording_aws(tmp_path: Path) -> Path:
    """An `aws` that records every call's arguments (one JSON list a line in $AWS_CALLS) and answers enough of
    configure, SES, STS, S3, CloudFormation and Lambda for the three scripts to run through."""
    bin_dir = tmp_path / "recbin"
    bin_dir.mkdir()
    (bin_dir / "aws").write_text(RECORDING_AWS.replace("{python}", sys.executable))
    (bin_dir / "aws").chmod(0o755)
    return bin_dir


def scripts_repo(tmp_path: Path) -> Path:
    """A checkout with the scripts, a package to upload and the template, as `make deploy` leaves them."""
    work = tmp_path / "repo"
    shutil.copytree(ROOT / "scripts", work / "scripts")
    (work / "dist").mkdir()
    (work / "dist" / "bedrock-usage-report.zip").write_bytes(b"PK\x05\x06" + bytes(18))
    (work / "cloudformation").mkdir()
    shutil.copy(ROOT / "cloudformation" / "template.yaml", work / "cloudformation" / "template.yaml")
    return work


DEPLOY_SETTINGS = {
    "ARTIFACT_BUCKET": "artifacts",
    "LOG_GROUP_ARNS": "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/bedrock/modelinvocations",
    "SENDER": "Bedrock reports <reports@example.com>",
    "RECIPIENTS": "finops@example.com",
    "ALARM_EMAIL": "oncall@example.com",
    "VERIFIED": "example.com",
}
SCRIPT_RUNS = {
    "deploy.sh": [],
    "stack.sh": ["invoke"],
    "ses_check.sh": [],
}


def run_script(tmp_path: Path, script: str, **env: str) -> tuple[subprocess.CompletedProcess, list[list[str]]]:
    work = scripts_repo(tmp_path)
    calls = tmp_path / "calls"
    calls.touch()
    environment = clean_env(recording_aws(tmp_path), AWS_CALLS=str(calls), **{**DEPLOY_SETTINGS, **env})
    result = subprocess.run(
        ["bash", str(work / "scripts" / script), *SCRIPT_RUNS[script]],
        cwd=work,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    return result, [json.loads(line) for line in calls.read_text().splitlines()]


def regions_passed(calls: list[list[str]]) -> list[str]:
    """The --region of every call but `aws configure get region` (which reads the profile, and takes none)."""
    passed = []
    for args in calls:
        if args[:3] == ["configure", "get", "region"]:
            continue
        assert "--region" in args, args
        passed.append(args[args.index("--region") + 1])
    return passed


@pytest.mark.parametrize("script", sorted(SCRIPT_RUNS))
@pytest.mark.parametrize(
    ("env", "region", "source"),
    [
        # AWS_REGION wins over the others, as it does in the AWS CLI v2
        (
            {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-west-2", "PROFILE_REGION": "us-east-1"},
            "eu-west-1",
            "AWS_REGION",
        ),
        # only AWS_DEFAULT_REGION: deploy.sh used to exit 1 without a word
        ({"AWS_DEFAULT_REGION": "eu-central-1", "PROFILE_REGION": "us-east-1"}, "eu-central-1", "AWS_DEFAULT_REGION"),
        ({"PROFILE_REGION": "ap-south-1"}, "ap-south-1", "the profile"),
    ],
    ids=["AWS_REGION", "AWS_DEFAULT_REGION", "profile"],
)
def test_one_region_is_resolved_printed_and_passed_to_every_call(tmp_path, script, env, region, source):
    result, calls = run_script(tmp_path, script, **env)
    assert result.returncode == 0, result.stderr
    assert f"region: {region} (from {source}" in result.stderr
    assert calls and set(regions_passed(calls)) == {region}, calls


@pytest.mark.parametrize("script", sorted(SCRIPT_RUNS))
def test_no_region_anywhere_stops_with_a_message_before_any_call(tmp_path, script):
    result, calls = run_script(tmp_path, script)
    assert result.returncode != 0
    assert "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION)" in result.stderr
    assert all(args[:3] == ["configure", "get", "region"] for args in calls), calls


def test_ses_is_checked_in_the_stacks_region_unless_ses_region_says_otherwise(tmp_path):
    # with AWS_REGION=eu-west-1 and a profile in us-east-1, SES was checked in one region and the stack deployed in
    # the other
    result, calls = run_script(tmp_path, "deploy.sh", AWS_REGION="eu-west-1", PROFILE_REGION="us-east-1")
    assert result.returncode == 0, result.stderr
    ses = [args for args in calls if args[0] == "sesv2"]
    assert ses and {args[args.index("--region") + 1] for args in ses} == {"eu-west-1"}
    deploy = next(args for args in calls if args[:2] == ["cloudformation", "deploy"])
    assert deploy[deploy.index("--region") + 1] == "eu-west-1"

    result, calls = run_script(tmp_path / "ses", "deploy.sh", AWS_REGION="eu-west-1", SES_REGION="us-east-1")
    assert result.returncode == 0, result.stderr
    assert {args[args.index("--region") + 1] for args in calls if args[0] == "sesv2"} == {"us-east-1"}
    assert {args[args.index("--region") + 1] for args in calls if args[0] != "sesv2"} == {"eu-west-1"}


def parameter_overrides(calls: list[list[str]]) -> dict[str, str]:
    """The stack parameters of the recorded `aws cloudformation deploy`."""
    deploy = next(args for args in calls if args[:2] == ["cloudformation", "deploy"])
    overrides = deploy[deploy.index("--parameter-overrides") + 1 :]
    return dict(item.split("=", 1) for item in overrides if "=" in item and not item.startswith("--"))


def test_deploy_gives_the_stack_addresses_as_its_patterns_take_them(tmp_path):
    # the stack takes lower-case addresses without spaces (IAM compares ses:Recipients case-sensitively)
    result, calls = run_script(
        tmp_path, "deploy.sh", AWS_REGION="eu-west-1", RECIPIENTS="FinOps@Example.com, cfo@example.com"
    )
    assert result.returncode == 0, result.stderr
    assert parameter_overrides(calls)["Recipients"] == "finops@example.com,cfo@example.com"


def test_a_first_deploy_on_a_sandboxed_account_grants_the_recipients_identities(tmp_path):
    result, calls = run_script(
        tmp_path,
        "deploy.sh",
        AWS_REGION="eu-west-1",
        PRODUCTION="False",
        VERIFIED="example.com,cfo@other.org",
        RECIPIENTS="finops@example.com,cfo@other.org",
    )
    assert result.returncode == 0, result.stderr
    parameters = parameter_overrides(calls)
    assert parameters["SenderIdentity"] == "example.com"
    # the account and partition from STS, the region SES's
    assert parameters["SesRecipientIdentityArns"] == "arn:aws:ses:eu-west-1:123456789012:identity/cfo@other.org"
    # the function's default, the domains of RECIPIENTS, given to the stack for the SES grant's condition
    assert parameters["AllowedRecipients"] == "@example.com,@other.org"


def test_a_deploy_that_ses_would_not_deliver_stops_before_anything_is_uploaded(tmp_path):
    result, calls = run_script(
        tmp_path, "deploy.sh", AWS_REGION="eu-west-1", PRODUCTION="False", RECIPIENTS="finops@example.com,cfo@other.org"
    )
    assert result.returncode == 1
    assert "aws sesv2 create-email-identity --email-identity cfo@other.org --region eu-west-1" in result.stderr
    assert [args for args in calls if args[0] in ("s3", "cloudformation")] == []


def test_explicit_allowed_recipients_are_passed_as_given(tmp_path):
    result, calls = run_script(
        tmp_path, "deploy.sh", AWS_REGION="eu-west-1", ALLOWED_RECIPIENTS="@Example.com, cfo@other.org"
    )
    assert result.returncode == 0, result.stderr
    assert parameter_overrides(calls)["AllowedRecipients"] == "@example.com,cfo@other.org"
    assert parameter_overrides(calls)["SesRecipientIdentityArns"] == ""


def test_deploy_passes_every_parameter_it_knows_of(tmp_path):
    # every stack parameter without a default is passed, and the optional ones the guide names
    from cfnlint.decode import decode_str

    template, _ = decode_str((ROOT / "cloudformation" / "template.yaml").read_text())
    result, calls = run_script(tmp_path, "deploy.sh", AWS_REGION="eu-west-1", BREAK_GLASS_ROLE_ARN="")
    assert result.returncode == 0, result.stderr
    passed = parameter_overrides(calls)
    assert set(passed) <= set(template["Parameters"])
    required = {name for name, spec in template["Parameters"].items() if "Default" not in spec}
    assert required <= set(passed)
    assert {"BreakGlassRoleArn", "AllowedRecipients", "SesRecipientIdentityArns"} <= set(passed)


def test_the_template_goes_through_the_artifact_bucket(tmp_path):
    # CloudFormation takes a template of at most 51,200 bytes inline; through S3, up to 1 MB
    result, calls = run_script(tmp_path, "deploy.sh", AWS_REGION="eu-west-1")
    assert result.returncode == 0, result.stderr
    deploy = next(args for args in calls if args[:2] == ["cloudformation", "deploy"])
    assert deploy[deploy.index("--s3-bucket") + 1] == "artifacts"
    assert (ROOT / "cloudformation" / "template.yaml").stat().st_size < 1_000_000


@pytest.mark.parametrize(
    "alarms",
    [
        {"ALARM_EMAIL": ""},
        {"ALARM_EMAIL": "oncall@example.com", "ALARM_TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:x"},
    ],
    ids=["neither", "both"],
)
def test_deploy_wants_an_alarm_address_or_topic_before_any_call(tmp_path, alarms):
    result, calls = run_script(tmp_path, "deploy.sh", AWS_REGION="eu-west-1", **alarms)
    assert result.returncode == 2 and calls == []
    assert "set ALARM_EMAIL" in result.stderr and "ALARM_TOPIC_ARN" in result.stderr


def test_deploy_passes_an_existing_alarm_topic(tmp_path):
    topic = "arn:aws:sns:eu-west-1:123456789012:oncall"
    result, calls = run_script(tmp_path, "deploy.sh", AWS_REGION="eu-west-1", ALARM_EMAIL="", ALARM_TOPIC_ARN=topic)
    assert result.returncode == 0, result.stderr
    assert (parameter_overrides(calls)["AlarmTopicArn"], parameter_overrides(calls)["AlarmEmail"]) == (topic, "")


def test_deploy_points_the_stack_at_a_cur_export_and_waits_72_hours_for_it(tmp_path):
    export = "s3://payer-cur/cur/bedrock-identity"
    result, calls = run_script(tmp_path / "cur", "deploy.sh", AWS_REGION="eu-west-1", CUR_EXPORT=export)
    assert result.returncode == 0, result.stderr
    passed = parameter_overrides(calls)
    assert (passed["CurExport"], passed["CurTable"]) == (export, "")
    assert passed["ReconcileLagDays"] == "3"  # CUR lines land up to 72 h late (Marketplace's)
    # an explicit lag is kept; without an export, Cost Explorer's 2 days and no CUR parameters set
    result, calls = run_script(
        tmp_path / "lag",
        "deploy.sh",
        AWS_REGION="eu-west-1",
        CUR_EXPORT=export,
        CUR_TABLE="billing.cur",
        RECONCILE_LAG_DAYS="5",
    )
    assert result.returncode == 0, result.stderr
    assert (parameter_overrides(calls)["ReconcileLagDays"], parameter_overrides(calls)["CurTable"]) == (
        "5",
        "billing.cur",
    )
    result, calls = run_script(tmp_path / "none", "deploy.sh", AWS_REGION="eu-west-1")
    passed = parameter_overrides(calls)
    assert (passed["CurExport"], passed["CurTable"], passed["ReconcileLagDays"]) == ("", "", "2")
