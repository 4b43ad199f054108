#!/usr/bin/env bash
# Install everything the tests need, then run every suite. `.ci/run` runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
status=0

echo "== core: install and test"
"$PYTHON" -m pip install -q --disable-pip-version-check -e '.[test]'
"$PYTHON" -m pytest -q -p no:cacheprovider tests || status=1

# --- Airflow adapter (tests/airflow): its own virtualenv, as Airflow 3.3 and Prefect 3.9 cannot share one.
echo "== airflow: virtualenv (.venvs/airflow) and tests"
if bash scripts/venv-airflow.sh; then
    .venvs/airflow/bin/python -m pytest -q tests/airflow || status=1
else
    echo "airflow: building .venvs/airflow failed"
    status=1
fi
# --- end of the Airflow block

exit $status
