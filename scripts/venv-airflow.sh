#!/usr/bin/env bash
# Create or refresh .venvs/airflow: Airflow 3.3, the standard provider, pytest and this project.
# The environment is rebuilt only when tests/airflow/requirements.txt or constraints.txt change;
# when only pyproject.toml changed (entry points, extras) the project alone is reinstalled.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venvs/airflow"
requirements="$root/tests/airflow/requirements.txt"
constraints="$root/tests/airflow/constraints.txt"
python="${PYTHON:-python3}"

hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }
wanted_env="$(hash_of "$requirements" "$constraints")"
wanted_project="$(hash_of "$root/pyproject.toml")"
env_stamp="$venv/.requirements-hash"
project_stamp="$venv/.project-hash"

start=$SECONDS
if [[ -x "$venv/bin/python" && -f "$env_stamp" && "$(cat "$env_stamp")" == "$wanted_env" ]]; then
    if [[ -f "$project_stamp" && "$(cat "$project_stamp")" == "$wanted_project" ]]; then
        echo "venv-airflow: $venv is up to date"
        exit 0
    fi
else
    echo "venv-airflow: building $venv"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet --constraint "$constraints" -r "$requirements"
    echo "$wanted_env" > "$env_stamp"
fi
# The project itself, editable, so the tests see the working tree (and its entry points).
"$venv/bin/python" -m pip install --quiet --constraint "$constraints" -e "$root"
echo "$wanted_project" > "$project_stamp"
echo "venv-airflow: ready in $((SECONDS - start)) s"
