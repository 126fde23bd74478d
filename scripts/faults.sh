#!/usr/bin/env bash
# The full fault-injection run (issue 20): every step of every operation, RANDOM kills at random times
# per operation (default 10), the counts in a JSON report. CI runs a bounded subset of the same test.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
report="${2:-$here/bench/work/fault-report.json}"
mkdir -p "$(dirname "$report")"
cd "$here"
# PYTHON: the interpreter whose dockerbank is tested (a worktree's own venv)
FAULT_POINTS=0 FAULT_RANDOM="${1:-10}" FAULT_REPORT="$report" \
  "${PYTHON:-/opt/dockerbank-venv/bin/python}" -m pytest tests/integration/test_fault_injection.py -q -p no:cacheprovider
cat "$report"
