"""Static checks that fail the suite, not a user: pyflakes-class errors (ruff) and imports that point
up the layers of shared/DESIGN.md (import-linter, contract in pyproject.toml)."""

import shutil
import subprocess
import sys
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
