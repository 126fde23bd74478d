"""Helpers of the fuzz suite. Fuzzing with Hypothesis: every target takes hostile input and may only fail with Dockerbank's
own errors (one line each), never with a traceback or a 500.

CI runs a bounded, derandomized set (``FUZZ_EXAMPLES``, default 120 per target, the same examples
every run, so CI never turns red by chance); the full run is ``scripts/fuzz.sh`` (random, thousands
per target), which writes the counts to docs/reliability.md's table.
"""

from __future__ import annotations

import atexit
import json
import os
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from dockerbank.errors import DockerbankError

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "120"))
settings.register_profile(
    "dockerbank", max_examples=EXAMPLES, deadline=None, derandomize=os.environ.get("FUZZ_RANDOM") != "1",
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                           HealthCheck.function_scoped_fixture], database=None)
settings.load_profile("dockerbank")

CASES: Counter[str] = Counter()
FAILURES: Counter[str] = Counter()


def only_our_errors(target: str, call, *args, **kwargs):
    """Run ``call``; a DockerbankError (one line) is a fine answer, anything else fails the test."""
    CASES[target] += 1
    try:
        return call(*args, **kwargs)
    except DockerbankError as exc:
        message = str(exc)
        assert message and "\n" not in message.strip(), f"{target}: error is not one line: {message!r}"
        FAILURES[target] += 1
        return None
    except RecursionError:
        pytest.fail(f"{target}: RecursionError (a traceback for the user)")


def _report() -> None:
    """With FUZZ_REPORT=FILE, the cases run per target go to FILE as JSON (scripts/fuzz.sh)."""
    path = os.environ.get("FUZZ_REPORT")
    if path:
        Path(path).write_text(json.dumps({"cases": dict(CASES), "refused": dict(FAILURES)}, indent=2, sort_keys=True))


atexit.register(_report)  # not a conftest.py: tests/conftest.py is imported as "conftest" by the other suites
