"""Pyflakes-class errors (undefined names, unused imports, syntax) fail the suite, not a user."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_no_undefined_names_or_unused_imports():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert ruff, "ruff is not installed: run scripts/setup.sh --with-tests"
    done = subprocess.run([ruff, "check", "--isolated", "--select", "F,E9", "--output-format", "concise",
                           "src", "tests", "bench"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
