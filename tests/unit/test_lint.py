"""Static checks that fail the suite, not a user: pyflakes-class errors (ruff), imports that point up
the layers of shared/DESIGN.md (import-linter) and type errors (mypy); both configured in pyproject.toml."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _tool(name: str) -> str:
    """The venv's own ``name`` (the one the test extras installed), else one on PATH; never a skip."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert found, f"{name} is not installed: run scripts/setup.sh --with-tests"
    return found


def test_no_undefined_names_or_unused_imports():
    done = subprocess.run([_tool("ruff"), "check", "--isolated", "--select", "F,E9", "--output-format", "concise",
                           "src", "tests", "bench"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_imports_point_down_the_layers():
    # --no-cache: a full analysis takes well under a second and leaves nothing in the tree
    done = subprocess.run([_tool("lint-imports"), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_types_check():
    # mypy's cache lives outside the tree (CI runs with a fresh checkout): a cold run of src/ takes
    # a few seconds, a warm one well under one
    cache = Path(tempfile.gettempdir()) / f"dockerbank-mypy-cache-{os.getuid()}"
    done = subprocess.run([_tool("mypy"), "--cache-dir", str(cache)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_test_modules_have_unique_names():
    """tests/ has no __init__.py: two test files of one name in two folders break the whole suite's
    collection (each subset alone passes)."""
    names = [p.name for p in (ROOT / "tests").rglob("test_*.py")]
    assert sorted({n for n in names if names.count(n) > 1}) == []
