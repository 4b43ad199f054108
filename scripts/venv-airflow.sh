#!/usr/bin/env bash
# Create or refresh .venvs/airflow: Airflow 3.3, the standard provider, pytest and this project.
# The environment is reused while tests/airflow/requirements.txt, tests/airflow/constraints.txt
# and pyproject.toml are unchanged (their hash is kept in .venvs/airflow/.requirements-hash).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venvs/airflow"
requirements="$root/tests/airflow/requirements.txt"
constraints="$root/tests/airflow/constraints.txt"
python="${PYTHON:-python3}"

inputs=("$requirements" "$root/pyproject.toml")
[[ -f "$constraints" ]] && inputs+=("$constraints")
wanted="$(cat "${inputs[@]}" | sha256sum | cut -d' ' -f1)"
stamp="$venv/.requirements-hash"

if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
    echo "venv-airflow: $venv is up to date"
    exit 0
fi

start=$SECONDS
echo "venv-airflow: building $venv"
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
constraint_args=()
[[ -f "$constraints" ]] && constraint_args=(--constraint "$constraints")
"$venv/bin/python" -m pip install --quiet "${constraint_args[@]}" -r "$requirements"
# The project itself, editable, so the tests see the working tree.
"$venv/bin/python" -m pip install --quiet "${constraint_args[@]}" -e "$root"
echo "$wanted" > "$stamp"
echo "venv-airflow: ready in $((SECONDS - start)) s"
