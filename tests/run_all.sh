#!/usr/bin/env bash
# Install everything the tests need, then run every suite. `.ci/run` runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0

# --- reporters and telemetry: a real browser, Graphviz and Mermaid for the report/graph tests ---
echo "== reporters: chromium, graphviz (apt) and mermaid (npm, tests/js)"
if ! command -v chromium >/dev/null 2>&1 || ! command -v dot >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium graphviz >/dev/null \
        || echo "apt-get could not install chromium/graphviz: the HTML report and DOT tests will fail"
fi
if [ ! -f tests/js/node_modules/mermaid/dist/mermaid.min.js ]; then
    (cd tests/js && npm ci --no-audit --no-fund --loglevel=error) \
        || echo "npm ci failed in tests/js: Mermaid output is checked structurally only"
fi
# --- end reporters and telemetry ---

# --- shared stores: redis-server (rate limits) and PostgreSQL 15 (statistics, Airflow metadata) ---
echo "== stores: redis-server and postgresql (apt)"
if ! command -v redis-server >/dev/null 2>&1 || [ ! -x /usr/lib/postgresql/15/bin/initdb ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server postgresql >/dev/null \
        || echo "apt-get could not install redis-server/postgresql: the shared-store tests will skip"
fi
# --- end shared stores ---

# --- core: its own virtualenv (.venvs/core, the project with its `test` extra); the global
#     interpreter is never installed into (PEP 668 marks Debian's and Ubuntu's as externally managed).
echo "== core: virtualenv (.venvs/core) and tests"
if bash scripts/suite-venv.sh core; then
    .venvs/core/bin/python -m pytest -q -p no:cacheprovider tests || status=1
else
    echo "core: building .venvs/core failed"
    status=1
fi
# --- end of the core block

# --- the house's tools: ruff (lint and format) and mypy --strict over the core, in .venvs/core
echo "== lint: ruff check, ruff format --check, mypy --strict task_engine_core"
if [ -x .venvs/core/bin/python ]; then
    .venvs/core/bin/python -m ruff check . || status=1
    .venvs/core/bin/python -m ruff format --check . || status=1
    .venvs/core/bin/python -m mypy || status=1
fi
# --- end of the lint block

# --- Airflow adapter (tests/airflow): its own virtualenv, as Airflow 3.3 and Prefect 3.9 cannot share one.
echo "== airflow: virtualenv (.venvs/airflow) and tests"
if bash scripts/suite-venv.sh airflow; then
    .venvs/airflow/bin/python -m pytest -q tests/airflow || status=1
    # The adapter is type-checked where Airflow is installed; the core it imports is checked above.
    .venvs/airflow/bin/python -m mypy --strict --follow-imports=silent adapters/airflow.py adapters/airflow_dags.py adapters/_xcom.py adapters/_provider.py || status=1
else
    echo "airflow: building .venvs/airflow failed"
    status=1
fi
# --- end of the Airflow block

# -- Prefect suite: its own virtualenv (.venvs/prefect), since Prefect 3.9 and Airflow 3.3 cannot
#    share one; scripts/suite-venv.sh reuses it while tests/prefect/requirements.txt is unchanged.
echo "== prefect: install and test"
if bash scripts/suite-venv.sh prefect; then
    .venvs/prefect/bin/python -m pytest -q tests/prefect || status=1
    .venvs/prefect/bin/python -m mypy --strict --follow-imports=silent adapters/prefect.py || status=1
else
    echo "prefect: creating .venvs/prefect failed"
    status=1
fi
# -- end of Prefect suite

exit $status
