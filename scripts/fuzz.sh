#!/usr/bin/env bash
# The full fuzz run (issue 20): random examples, EXAMPLES per target (default 3000), counts to a JSON
# report. CI runs the same tests bounded and derandomized (tests/fuzz/conftest.py).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
examples="${1:-3000}"
report="${2:-$here/bench/work/fuzz-report.json}"
mkdir -p "$(dirname "$report")"
cd "$here"
FUZZ_EXAMPLES="$examples" FUZZ_RANDOM=1 FUZZ_REPORT="$report" \
  /opt/dockerbank-venv/bin/python -m pytest tests/fuzz -q -p no:cacheprovider -W ignore::pytest.PytestWarning
cat "$report"
