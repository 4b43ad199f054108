#!/usr/bin/env bash
# Create or refresh the virtualenv of one adapter's test suite: `scripts/suite-venv.sh airflow|prefect`.
# Airflow 3.3 and Prefect 3.9 cannot share one environment, so each suite gets .venvs/<suite>,
# built from tests/<suite>/requirements.txt (and tests/<suite>/constraints.txt when present).
# It is rebuilt only when those files change; when only pyproject.toml changed, just the project
# is reinstalled, pinned to what the environment already has.
set -euo pipefail

suite="${1:?usage: scripts/suite-venv.sh airflow|prefect}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venvs/$suite"
requirements="$root/tests/$suite/requirements.txt"
constraints="$root/tests/$suite/constraints.txt"
python="${PYTHON:-python3}"
pip_quiet=(--quiet --disable-pip-version-check)

[[ -f "$requirements" ]] || { echo "suite-venv: no $requirements" >&2; exit 2; }
env_files=("$requirements")
env_constraint=()
if [[ -f "$constraints" ]]; then
    env_files+=("$constraints")
    env_constraint=(--constraint "$constraints")
fi
hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }
wanted_env="$(hash_of "${env_files[@]}")"
wanted_project="$(hash_of "$root/pyproject.toml")"
env_stamp="$venv/.requirements-hash"
project_stamp="$venv/.project-hash"
start=$SECONDS

if [[ -x "$venv/bin/python" && -f "$env_stamp" && "$(cat "$env_stamp")" == "$wanted_env" ]]; then
    if [[ -f "$project_stamp" && "$(cat "$project_stamp")" == "$wanted_project" ]]; then
        echo "suite-venv: $venv is up to date"
        exit 0
    fi
else
    echo "suite-venv: building $venv"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install "${pip_quiet[@]}" --upgrade pip
    "$venv/bin/python" -m pip install "${pip_quiet[@]}" "${env_constraint[@]}" -r "$requirements"
    echo "$wanted_env" > "$env_stamp"
fi
# The project itself, editable so the tests see the working tree (and its entry points); pinned to
# the environment as built, so a change of the project's own dependencies cannot move the stack.
"$venv/bin/python" -m pip freeze --exclude-editable > "$venv/.installed.txt"
"$venv/bin/python" -m pip install "${pip_quiet[@]}" --constraint "$venv/.installed.txt" -e "$root"
echo "$wanted_project" > "$project_stamp"
echo "suite-venv: $venv ready in $((SECONDS - start)) s"
