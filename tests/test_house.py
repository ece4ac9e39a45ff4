"""The shape of the package, held: no import cycle between modules or packages, the store alone knows the bucket's
keys and S3's error codes, the handler stays a table of contents, each package names its public API."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

PRODUCT = Path(__file__).resolve().parent.parent / "lambda_function"
PACKAGES = sorted(p.name for p in PRODUCT.iterdir() if (p / "__init__.py").exists())


def _module_name(path: Path) -> str:
    parts = path.relative_to(PRODUCT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in PRODUCT.rglob("*.py")}


def _imported(path: Path) -> set[str]:
    """The product's modules `path` imports when it runs (imports under `if TYPE_CHECKING:` are for the checker)."""
    tree = ast.parse(path.read_text())
    skipped = {
        id(node)
        for guard in ast.walk(tree)
        if isinstance(guard, ast.If) and "TYPE_CHECKING" in ast.unparse(guard.test)
        for node in ast.walk(guard)
    }
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lambda_function"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                names.add(full if full in MODULES else node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("lambda_function"))
    return names & set(MODULES)


def _unit(module: str) -> str:
    """The package a module belongs to, or the top-level module itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    done: set[str] = set()

    def visit(node: str, path: tuple[str, ...]) -> list[str]:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return []
        for other in sorted(graph.get(node, ())):
            found = visit(other, (*path, node))
            if found:
                return found
        done.add(node)
        return []

    for node in sorted(graph):
        found = visit(node, ())
        if found:
            return found
    return []


def test_no_module_imports_itself_back():
    graph = {module: _imported(path) - {module} for module, path in MODULES.items()}
    assert _cycle(graph) == []


def test_no_package_imports_itself_back():
    # packages as units: a lower layer (store, pricing, sources) never imports a higher one (report, alerts, ...)
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        unit = _unit(module)
        graph.setdefault(unit, set()).update(_unit(m) for m in _imported(path) if _unit(m) != unit)
    graph.pop("lambda_function", None)  # the package's own __init__: the Lambda entry point
    assert _cycle(graph) == []


# S3's error codes, and the pieces of the bucket's layout: only store/ may name them.
S3_CODES = re.compile(r"\b(NoSuchKey|NoSuchBucket|PreconditionFailed|ConditionalRequestConflict|AllAccessDisabled)\b")
LAYOUT = re.compile(r"""["'/](reports/|budget-alerts|prices/|\.email-sent\.json)""")


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _unit(m) != "store"))
def test_only_the_store_knows_s3s_codes_and_the_buckets_keys(module):
    code = "\n".join(
        line for line in MODULES[module].read_text().splitlines() if not line.lstrip().startswith(("#", "`"))
    )
    code = re.sub(r'"""[\s\S]*?"""', "", code)  # docstrings may describe the layout
    assert not S3_CODES.findall(code)
    assert not LAYOUT.findall(code)


def test_the_handler_is_a_table_of_contents():
    handler = MODULES["lambda_function.handler"].read_text()
    tree = ast.parse(handler)
    (run_report,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "run_report"]
    assert run_report.end_lineno is not None
    assert run_report.end_lineno - run_report.lineno + 1 <= 50
    # one numbered step per stage, in order
    steps = [
        int(n)
        for n in re.findall(r"^\s+(?:try:\s+)?# (\d+)\.", ast.get_source_segment(handler, run_report) or "", re.M)
    ]
    assert steps == sorted(steps) and len(steps) >= 8


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_names_its_public_api(package):
    module = importlib.import_module(f"lambda_function.{package}")
    assert module.__doc__, f"{package} has no docstring saying what it holds"
    assert module.__all__ and all(hasattr(module, name) for name in module.__all__)
