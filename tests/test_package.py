"""The deployment zip, imported in a clean virtual environment that has only what Lambda gives (boto3 from the
runtime, pandas from the AWS SDK for pandas layer), runs the handler against the embedded AWS."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from local_aws.generate import generate_records, put_records

from .clean_venv import clean_venv

ROOT = Path(__file__).resolve().parent.parent
# What the python3.12 runtime (boto3) and the AWS SDK for pandas layer (pandas 2.2, numpy 2) provide: the layer's
# pandas is a major version behind the one the tests use, so this also proves the code runs on both.
RUNTIME_AND_LAYER = ["pandas==2.2.3", "numpy<2.3", "boto3==1.44.5"]


def _package(tmp_path_factory, *options: str) -> Path:
    out = tmp_path_factory.mktemp("dist") / "bedrock-usage-report.zip"
    build = tmp_path_factory.mktemp("build") / "package"
    command = [sys.executable, str(ROOT / "scripts" / "package.py"), "--out", str(out), "--build", str(build)]
    subprocess.run([*command, *options], check=True)
    return out


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    """The zip as deployed: python3.12 on arm64."""
    return _package(tmp_path_factory)


@pytest.fixture(scope="module")
def host_artifact(tmp_path_factory):
    """The same recipe for this machine's CPU and Python, so that its compiled wheels (markupsafe, msgspec) load
    here: what runs is the zip's layout and code, with the wheels Lambda's would be built from."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    return _package(tmp_path_factory, "--platform", f"manylinux2014_{platform.machine()}", "--python-version", version)


def test_the_zip_holds_the_product_and_nothing_else(artifact):
    names = zipfile.ZipFile(artifact).namelist()
    assert "lambda_function/handler.py" in names
    assert "templates/report_email.html.j2" in names
    # each template with its Python compiled ahead of time (a cold start skips Jinja's compiler)
    templates = sorted(path.name for path in (ROOT / "templates").glob("*.j2"))
    assert sorted(n.removeprefix("templates/compiled/") for n in names if n.startswith("templates/compiled/")) == [
        f"{name}.py" for name in templates
    ]
    assert "pricing/token_prices.csv" in names
    assert any(n.startswith("jinja2/") for n in names) and any(n.startswith("markupsafe/") for n in names)
    assert any(n.startswith("msgspec/_core") and n.endswith("aarch64-linux-gnu.so") for n in names)
    assert any(n.endswith("aarch64-linux-gnu.so") for n in names)  # built for the arm64 runtime
    assert not [n for n in names if n.startswith(("tests/", "local_aws/", "bench/", "pandas/", "boto3/", "moto/"))]
    # pricing/ ships as data only: its tables, none of the maintainers' tools (the product never imports them)
    assert not [n for n in names if n.startswith("pricing/") and n.endswith(".py")]
    tables = sorted(path.name for path in (ROOT / "pricing").glob("*.csv"))
    assert tables and sorted(n.removeprefix("pricing/") for n in names if n.startswith("pricing/")) == tables
    assert artifact.stat().st_size < 50 * 1024 * 1024


def test_the_zip_runs_the_handler_in_a_clean_environment(host_artifact, aws, tmp_path):
    # GIVEN a virtualenv with only the runtime's and the layer's packages (built once, then reused while the list
    # and the Python are unchanged: tests/clean_venv.py), and the zip unpacked as Lambda does
    python = clean_venv(RUNTIME_AND_LAYER)
    task = tmp_path / "task"
    zipfile.ZipFile(host_artifact).extractall(task)

    # AND a day of logs in the embedded AWS
    day = datetime.now(UTC).date() - timedelta(days=1)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    put_records(aws.client("logs"), "/aws/bedrock/pkg", generate_records(start, start + timedelta(days=1), count=300))
    aws.client("s3").create_bucket(Bucket="pkg-reports")

    # WHEN the handler runs from the unpacked zip
    script = (
        "import json, jinja2, msgspec, lambda_function\n"
        f"assert jinja2.__file__.startswith({str(task)!r}), jinja2.__file__\n"
        f"assert msgspec.__file__.startswith({str(task)!r}), msgspec.__file__\n"
        f"print(json.dumps(lambda_function.lambda_handler({{'date': {day.isoformat()!r}, 'send_email': False}}, None)))\n"
    )
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(task),
        "AWS_ENDPOINT_URL": aws.endpoint,
        "AWS_REGION": aws.region,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "LOG_GROUP_NAMES": "/aws/bedrock/pkg",
        "REPORT_BUCKET": "pkg-reports",
    }
    result = subprocess.run([str(python), "-c", script], cwd=task, env=env, capture_output=True, text=True, check=False)

    # THEN it answers ok and the CSV is in the bucket
    assert result.returncode == 0, result.stderr[-3000:]
    response = json.loads(result.stdout.strip().splitlines()[-1])
    assert response["status"] == "ok" and response["invocations"] == 300
    key = response["s3_uri"].removeprefix("s3://pkg-reports/")
    assert aws.client("s3").get_object(Bucket="pkg-reports", Key=key)["Body"].read().startswith(b"Account Id,")
    # moto and the project's dev tools are not there
    probe = subprocess.run([str(python), "-c", "import moto"], env=env, capture_output=True, check=False)
    assert probe.returncode != 0
