#!/usr/bin/env bash
# Create or refresh the virtualenv of one test suite: `scripts/suite-venv.sh core|airflow|prefect`.
# Every suite runs in a virtualenv of its own under .venvs/ (the global interpreter is never
# installed into: Debian and Ubuntu mark it externally managed, PEP 668). Airflow 3.3 and Prefect
# 3.9 cannot share one environment, so each adapter suite gets .venvs/<suite>, built from
# tests/<suite>/requirements.txt (and tests/<suite>/constraints.txt when present); `core` is the
# project with its `test` extra. It is rebuilt only when those files change; when only
# pyproject.toml changed, an adapter suite's project is reinstalled, pinned to what it already has.
set -euo pipefail

suite="${1:?usage: scripts/suite-venv.sh core|airflow|prefect}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venvs/$suite"
python="${PYTHON:-python3}"
pip_quiet=(--quiet --disable-pip-version-check)

# Debian's python3 ships without venv/ensurepip (they are the python3-venv package): install it.
ensure_venv_module() {
    if "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
        return 0
    fi
    echo "suite-venv: $python has no venv/ensurepip; installing python3-venv (apt)"
    local sudo=()
    [[ "$(id -u)" == 0 ]] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq python3-venv >/dev/null
}

hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }
env_stamp="$venv/.requirements-hash"
project_stamp="$venv/.project-hash"
start=$SECONDS

if [[ "$suite" == core ]]; then
    # The core suite's environment is the project's own `test` extra: pyproject.toml is its only input.
    wanted="$(hash_of "$root/pyproject.toml")"
    if [[ -x "$venv/bin/python" && -f "$project_stamp" && "$(cat "$project_stamp")" == "$wanted" ]]; then
        echo "suite-venv: $venv is up to date"
        exit 0
    fi
    echo "suite-venv: building $venv"
    ensure_venv_module
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install "${pip_quiet[@]}" --upgrade pip
    "$venv/bin/python" -m pip install "${pip_quiet[@]}" -e "$root[test]"
    echo "$wanted" > "$project_stamp"
    echo "suite-venv: $venv ready in $((SECONDS - start)) s"
    exit 0
fi

requirements="$root/tests/$suite/requirements.txt"
constraints="$root/tests/$suite/constraints.txt"
[[ -f "$requirements" ]] || { echo "suite-venv: no $requirements" >&2; exit 2; }
env_files=("$requirements")
env_constraint=()
if [[ -f "$constraints" ]]; then
    env_files+=("$constraints")
    env_constraint=(--constraint "$constraints")
fi
wanted_env="$(hash_of "${env_files[@]}")"
wanted_project="$(hash_of "$root/pyproject.toml")"

if [[ -x "$venv/bin/python" && -f "$env_stamp" && "$(cat "$env_stamp")" == "$wanted_env" ]]; then
    if [[ -f "$project_stamp" && "$(cat "$project_stamp")" == "$wanted_project" ]]; then
        echo "suite-venv: $venv is up to date"
        exit 0
    fi
else
    echo "suite-venv: building $venv"
    ensure_venv_module
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
