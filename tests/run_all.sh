#!/usr/bin/env bash
# Install everything the tests need, then run every suite. `.ci/run` runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
status=0

echo "== core: install and test"
"$PYTHON" -m pip install -q --disable-pip-version-check -e '.[test]'
"$PYTHON" -m pytest -q -p no:cacheprovider tests || status=1

# -- Prefect suite: its own virtualenv (.venvs/prefect), since Prefect 3.9 and Airflow 3.3 cannot
#    share one. The venv is reused while tests/prefect/requirements.txt and pyproject.toml are unchanged.
echo "== prefect: install and test"
if bash scripts/venv-prefect.sh; then
    .venvs/prefect/bin/python -m pytest -q tests/prefect || status=1
else
    echo "prefect: creating .venvs/prefect failed"
    status=1
fi
# -- end of Prefect suite

exit $status
