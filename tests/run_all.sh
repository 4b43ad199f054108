#!/usr/bin/env bash
# Install everything the tests need, then run every suite. `.ci/run` runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
status=0

echo "== core: install and test"
"$PYTHON" -m pip install -q --disable-pip-version-check -e '.[test]'
"$PYTHON" -m pytest -q -p no:cacheprovider tests || status=1

exit $status
