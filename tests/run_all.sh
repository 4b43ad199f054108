#!/usr/bin/env bash
# Install everything the tests need, then run every suite. `.ci/run` runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
failed=()
logs=test-artifacts/ci-logs
mkdir -p "$logs"

# Run one step, keep its output in $logs/<name>.log, and remember it if it failed: only the end of
# CI's output may be shown, so the summary at the end names every failed step and failed test.
step() {
    local name=$1
    shift
    local rc=0
    "$@" 2>&1 | tee "$logs/$name.log" || rc=$?
    if [ "$rc" -ne 0 ]; then
        failed+=("$name")
        status=1
    fi
}

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
    step core-tests .venvs/core/bin/python -m pytest -q -rfE -p no:cacheprovider tests
else
    echo "core: building .venvs/core failed"
    failed+=(core-venv)
    status=1
fi
# --- end of the core block

# --- the house's tools: ruff (lint and format) and mypy --strict over the core, in .venvs/core
echo "== lint: ruff check, ruff format --check, mypy --strict task_engine_core"
if [ -x .venvs/core/bin/python ]; then
    step ruff-check .venvs/core/bin/python -m ruff check .
    step ruff-format .venvs/core/bin/python -m ruff format --check .
    step mypy-core .venvs/core/bin/python -m mypy
fi
# --- end of the lint block

# --- Airflow adapter (tests/airflow): its own virtualenv, as Airflow 3.3 and Prefect 3.9 cannot share one.
echo "== airflow: virtualenv (.venvs/airflow) and tests"
if bash scripts/suite-venv.sh airflow; then
    step airflow-tests .venvs/airflow/bin/python -m pytest -q -rfE tests/airflow
    # The adapter is type-checked where Airflow is installed; the core it imports is checked above.
    step mypy-airflow .venvs/airflow/bin/python -m mypy --strict --follow-imports=silent adapters/airflow.py adapters/airflow_dags.py adapters/_xcom.py adapters/_provider.py
else
    echo "airflow: building .venvs/airflow failed"
    failed+=(airflow-venv)
    status=1
fi
# --- end of the Airflow block

# -- Prefect suite: its own virtualenv (.venvs/prefect), since Prefect 3.9 and Airflow 3.3 cannot
#    share one; scripts/suite-venv.sh reuses it while tests/prefect/requirements.txt is unchanged.
echo "== prefect: install and test"
if bash scripts/suite-venv.sh prefect; then
    step prefect-tests .venvs/prefect/bin/python -m pytest -q -rfE tests/prefect
    step mypy-prefect .venvs/prefect/bin/python -m mypy --strict --follow-imports=silent adapters/prefect.py
else
    echo "prefect: creating .venvs/prefect failed"
    failed+=(prefect-venv)
    status=1
fi
# -- end of Prefect suite

echo "== summary"
if [ "$status" -eq 0 ]; then
    echo "every step passed"
else
    for name in "${failed[@]}"; do
        echo "failed: $name"
        if [ -f "$logs/$name.log" ]; then
            grep -E '^(FAILED|ERROR) |error:|would reformat|Found [0-9]+ error' "$logs/$name.log" | head -40 || true
        fi
    done
fi
exit $status
