"""Every conformance scenario run through Airflow's dag.test() ends as the standalone run does."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_harness import as_engine_outcomes, load_dag_bag, run_dag_test, write_scenario_dag
from task_engine_core import PipelineExecutor
from tests.conformance import SCENARIOS, load, mismatches

# Airflow starts every ready task, like the threaded executor: scenarios whose expectations
# assume one task at a time under fail-fast (PARALLEL_SAFE = False) are checked separately below.
PARALLEL_SAFE = [name for name in SCENARIOS if load(name).parallel_safe]


def run_scenario(folder: Path, name: str) -> dict[str, tuple[str, int]]:
    write_scenario_dag(folder, name)
    bag = load_dag_bag(folder)
    assert bag.import_errors == {}
    return as_engine_outcomes(run_dag_test(bag.dags[name]))


@pytest.mark.parametrize("name", PARALLEL_SAFE)
def test_scenario_on_airflow_matches_standalone(dags_folder: Path, name: str) -> None:
    assert mismatches(load(name), run_scenario(dags_folder, name)) == []


def test_fail_fast_scenario_ends_as_a_keep_going_standalone_run(dags_folder: Path) -> None:
    # Airflow has no fail-fast that leaves tasks unstarted (its fail_fast skips them and forbids
    # none_failed), so a DAG runs like keep_going=True: the independent branch still runs.
    name = "fail_fast_independent_branch"
    executor = PipelineExecutor(load(name).pipeline, keep_going=True, reporters=[], sleep=lambda seconds: None)
    with pytest.raises(RuntimeError, match="broken on purpose"):
        executor.run()
    standalone = {task: (result.state.value, result.attempts) for task, result in executor.result.tasks.items()}

    assert run_scenario(dags_folder, name) == standalone == {
        "Broken": ("failed", 1),
        "NeedsBroken": ("upstream_failed", 0),
        "Independent": ("success", 1),
        "AfterIndependent": ("success", 1),
    }


def test_every_scenario_is_checked() -> None:
    assert set(PARALLEL_SAFE) | {"fail_fast_independent_branch"} == set(SCENARIOS)
