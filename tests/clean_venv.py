"""A virtualenv holding only the given requirements, built once and reused while its requirement list, the Python
that made it and its contents are unchanged (tests/test_package.py: what Lambda's runtime and layer provide).

Kept under .cache/test-venvs/ in the repository (git-ignored), or under $TEST_VENV_CACHE. `make clean` removes it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMPLETE = "complete.json"  # written last: a virtualenv without it was interrupted and is built again


def cache_dir() -> Path:
    return Path(os.environ.get("TEST_VENV_CACHE") or ROOT / ".cache" / "test-venvs")


def clean_venv(requirements: list[str]) -> Path:
    """The python of a virtualenv with exactly `requirements` pip-installed, building it only when none is cached."""
    # The key: the requirement list, and the interpreter the virtualenv links to (its version and where it lives).
    identity: dict[str, object] = {
        "requirements": requirements,
        "python": sys.version,
        "base": os.path.realpath(sys.executable),
    }
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    env_dir = root / key
    python = env_dir / "bin" / "python"
    # one builder at a time (two workers or two checkouts sharing $TEST_VENV_CACHE); the others wait, then reuse
    with open(root / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _complete(env_dir, identity):
            shutil.rmtree(env_dir, ignore_errors=True)
            venv.EnvBuilder(with_pip=True).create(env_dir)
            subprocess.run([str(python), "-m", "pip", "install", "--quiet", *requirements], check=True)
            record = {**identity, "installed": _installed(python)}
            (env_dir / COMPLETE).write_text(json.dumps(record, sort_keys=True))
    return python


# every distribution the virtualenv holds, as "name==version"
_LIST = "import importlib.metadata as m; print('\\n'.join(sorted(f'{d.name}=={d.version}' for d in m.distributions())))"


def _installed(python: Path) -> list[str] | None:
    if not python.exists():
        return None
    result = subprocess.run([str(python), "-I", "-c", _LIST], capture_output=True, text=True, check=False)
    return result.stdout.split() if result.returncode == 0 else None


def _complete(env_dir: Path, identity: dict[str, object]) -> bool:
    """Built to the end for this key, its interpreter still starts, and it holds what it held then: nothing was
    removed, and nothing (moto, say) was installed into it since."""
    try:
        recorded = json.loads((env_dir / COMPLETE).read_text())
    except (OSError, ValueError):
        return False
    if {k: v for k, v in recorded.items() if k != "installed"} != identity:
        return False
    installed = _installed(env_dir / "bin" / "python")
    return installed is not None and installed == recorded.get("installed")
