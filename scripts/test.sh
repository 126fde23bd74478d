#!/usr/bin/env bash
# Install everything (system packages, the package and its test extras) and run the whole test suite.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
"$here/scripts/setup.sh" --with-tests
"$here/scripts/start-services.sh"
mkdir -p /var/cache/dockerbank-test
cd "$here"
exec /opt/dockerbank-venv/bin/python -m pytest tests -q -p no:cacheprovider --durations=15 "$@"
