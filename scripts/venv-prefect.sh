#!/usr/bin/env bash
# Create or refresh the Prefect test virtualenv at .venvs/prefect.
# Rebuilt when tests/prefect/requirements.txt changes; when only pyproject.toml changes, just the
# project is reinstalled; otherwise the environment is reused as it is.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venvs/prefect"
REQ="$ROOT/tests/prefect/requirements.txt"
PYTHON="${PYTHON:-python3}"
REQ_STAMP="$VENV/.requirements.sha256"
PROJECT_STAMP="$VENV/.pyproject.sha256"
PIP=(--quiet --disable-pip-version-check)

want_req="$(sha256sum "$REQ" | cut -d' ' -f1)"
want_project="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
start=$SECONDS

if [[ ! -x "$VENV/bin/python" || ! -f "$REQ_STAMP" || "$(cat "$REQ_STAMP")" != "$want_req" ]]; then
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install "${PIP[@]}" --upgrade pip
    "$VENV/bin/python" -m pip install "${PIP[@]}" -r "$REQ" -e "$ROOT"
    echo "$want_req" > "$REQ_STAMP"
    echo "$want_project" > "$PROJECT_STAMP"
    echo "venv-prefect: created $VENV in $((SECONDS - start)) s"
elif [[ ! -f "$PROJECT_STAMP" || "$(cat "$PROJECT_STAMP")" != "$want_project" ]]; then
    # -c keeps the pinned Prefect stack as it is while the project's own dependencies change.
    "$VENV/bin/python" -m pip freeze --exclude-editable > "$VENV/.constraints.txt"
    "$VENV/bin/python" -m pip install "${PIP[@]}" -c "$VENV/.constraints.txt" -e "$ROOT"
    echo "$want_project" > "$PROJECT_STAMP"
    echo "venv-prefect: reinstalled the project into $VENV in $((SECONDS - start)) s"
else
    echo "venv-prefect: reusing $VENV (requirements unchanged)"
fi
