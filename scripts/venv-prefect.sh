#!/usr/bin/env bash
# Create or refresh the Prefect test virtualenv at .venvs/prefect.
# The environment is reused while tests/prefect/requirements.txt and pyproject.toml are unchanged.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venvs/prefect"
REQ="$ROOT/tests/prefect/requirements.txt"
PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.requirements.sha256"

want="$(cat "$REQ" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
    echo "venv-prefect: reusing $VENV (requirements unchanged)"
    exit 0
fi

start=$SECONDS
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ" -e "$ROOT"
echo "$want" > "$STAMP"
echo "venv-prefect: created $VENV in $((SECONDS - start)) s"
