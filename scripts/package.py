"""`make package`: the Lambda deployment zip for python3.12 on arm64.

Holds the product (lambda_function/), its templates and price tables (pricing/*.csv: data, not the tools beside
them), and the dependencies that neither the runtime (boto3, and with it jmespath) nor the AWS SDK for pandas layer
(pandas, numpy) provides: jinja2, markupsafe and msgspec (arm64 wheels), aws-lambda-powertools and
typing-extensions (pure Python). No tests, no dev tools. The zip is reproducible: sorted entries, fixed timestamps.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from lambda_function.report.mail import compile_templates  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
# Exactly these (pip --no-deps): each pinned as in constraints.txt, their own dependencies listed or from the runtime
VENDORED = [
    "jinja2==3.1.6",
    "markupsafe==3.0.4",
    "aws-lambda-powertools==3.37.0",
    "typing-extensions==4.16.0",
    "msgspec==0.23.0",
]
ZIP_LIMIT = 50 * 1024 * 1024  # direct upload limit; S3-deployed zips may be larger but must unzip to < 250 MB
UNZIPPED_LIMIT = 250 * 1024 * 1024  # function + layers, unzipped
# The AWS SDK for pandas layer beside it unzips to 167 MiB (3.16.0) to 204 MiB (3.16.1; aws/aws-sdk-pandas#3331)
PANDAS_LAYER_UNZIPPED = 204 * 1024 * 1024
FIXED_TIME = (2020, 1, 1, 0, 0, 0)


def stage(build: Path, platform: str, python_version: str) -> None:
    if build.exists():
        shutil.rmtree(build)
    build.mkdir(parents=True)
    shutil.copytree(ROOT / "lambda_function", build / "lambda_function", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "templates", build / "templates", ignore=shutil.ignore_patterns("compiled"))
    # a cold start skips Jinja's compiler; and Python's too where this Python is the runtime's (bytecode is per version)
    runtime = python_version == f"{sys.version_info.major}.{sys.version_info.minor}"
    compile_templates(build / "templates", build / "templates" / "compiled", bytecode=runtime)
    (build / "pricing").mkdir()
    # the tables only: pricing/'s code is the maintainers' tools, which the function never imports
    for item in sorted((ROOT / "pricing").glob("*.csv")):
        shutil.copy2(item, build / "pricing" / item.name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-compile",
            "--target",
            str(build),
            "--platform",
            platform,
            "--python-version",
            python_version,
            "--implementation",
            "cp",
            "--only-binary=:all:",
            "--no-deps",
            *VENDORED,
        ],
        check=True,
    )
    for junk in build.glob("*.dist-info"):
        shutil.rmtree(junk)


def write_zip(build: Path, artifact: Path) -> tuple[int, int]:
    artifact.parent.mkdir(parents=True, exist_ok=True)
    unzipped = 0
    with zipfile.ZipFile(artifact, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in sorted(p for p in build.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(str(path.relative_to(build)), date_time=FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            data = path.read_bytes()
            unzipped += len(data)
            archive.writestr(info, data)
    return artifact.stat().st_size, unzipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", type=Path, default=ROOT / "build" / "package")
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / "bedrock-usage-report.zip")
    parser.add_argument("--platform", default="manylinux2014_aarch64")
    parser.add_argument("--python-version", default="3.12")
    args = parser.parse_args(argv)
    stage(args.build, args.platform, args.python_version)
    zipped, unzipped = write_zip(args.build, args.out)
    with_layer = unzipped + PANDAS_LAYER_UNZIPPED
    print(
        f"{args.out}: {zipped:,} bytes zipped, {unzipped:,} bytes unzipped "
        f"({with_layer / 2**20:.0f} of {UNZIPPED_LIMIT / 2**20:.0f} MiB with the AWS SDK for pandas layer)"
    )
    if zipped > ZIP_LIMIT or with_layer > UNZIPPED_LIMIT:
        print("the artifact is over Lambda's size limits", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
