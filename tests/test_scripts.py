"""`make invoke` against a stub `aws` on PATH: it waits as long as the function runs, prints the answer, and exits
non-zero when the report failed."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


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
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "EVENT": '{"date": "2026-11-20"}'}
    work = tmp_path / "repo"
    (work / "scripts").mkdir(parents=True)
    (work / "scripts" / "stack.sh").write_text((ROOT / "scripts" / "stack.sh").read_text())
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
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "SENDER": "Bedrock reports <reports@example.com>",
        "RECIPIENTS": "finops@example.com,cfo@other.org",
        **extra,
    }
    env.pop("SES_REGION", None)
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "ses_check.sh")], env=env, capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize(
    ("verified", "identity"),
    [
        # SES authorizes against the address identity whenever it is verified, even with the domain verified too
        ({"reports@example.com", "example.com"}, "reports@example.com"),
        ({"example.com"}, "example.com"),
    ],
)
def test_the_identity_granted_is_the_one_ses_authorizes(tmp_path, verified, identity):
    result = ses_check(tmp_path, verified)
    assert result.returncode == 0 and result.stdout.strip() == identity
    assert "sandbox" not in result.stderr


def test_no_verified_identity_stops_the_deploy_and_says_what_to_do(tmp_path):
    result = ses_check(tmp_path, set())
    assert result.returncode == 1 and result.stdout == ""
    assert "aws sesv2 create-email-identity --email-identity reports@example.com --region us-east-1" in result.stderr


def test_the_sandbox_names_the_recipients_who_would_get_nothing(tmp_path):
    result = ses_check(tmp_path, {"example.com"}, production=False)
    assert result.returncode == 0 and result.stdout.strip() == "example.com"
    # finops@example.com is covered by the verified domain; cfo@other.org is not
    assert "in the sandbox" in result.stderr and "would get nothing: cfo@other.org" in result.stderr
    assert "finops@example.com" not in result.stderr.split("would get nothing:")[1].splitlines()[0]


def test_the_sandbox_check_covers_the_budgets_alert_recipients(tmp_path):
    result = ses_check(tmp_path, {"example.com"}, production=False, ALERT_RECIPIENTS="lead@example.com,ops@team.io")
    # lead@example.com is covered by the verified domain; ops@team.io and cfo@other.org are not
    assert "would get nothing: cfo@other.org ops@team.io" in result.stderr


def test_make_deploy_passes_every_report_setting_of_the_stack():
    # A report setting the deploy script leaves out keeps its default on every redeploy, whatever the user exported.
    from cfnlint.decode import decode_str

    template, _ = decode_str((ROOT / "cloudformation" / "template.yaml").read_text())
    groups = template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    (settings,) = [g["Parameters"] for g in groups if g["Label"]["default"] == "Report settings"]
    deploy = (ROOT / "scripts" / "deploy.sh").read_text()
    assert "AttributionKeys" in settings and "Budgets" in settings
    assert [name for name in settings if f'"{name}=$' not in deploy] == []
