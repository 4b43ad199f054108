"""Every conformance scenario run through Airflow's dag.test() ends as the standalone run does."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_harness import load_dag_bag, run_dag_test_as_engine, run_dag_test_with_outputs, write_scenario_dag
from task_engine_core import PipelineExecutor
from tests.conformance import DATA_SCENARIOS, SCENARIOS, load, mismatches, output_mismatches


def run_scenario(folder: Path, name: str) -> dict[str, tuple[str, int]]:
    write_scenario_dag(folder, name)
    bag = load_dag_bag(folder)
    assert bag.import_errors == {}
    return run_dag_test_as_engine(bag.dags[name])


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_on_airflow_matches_standalone(dags_folder: Path, name: str) -> None:
    assert mismatches(load(name), run_scenario(dags_folder, name)) == []


@pytest.mark.parametrize("name", DATA_SCENARIOS)
def test_data_scenario_on_airflow_matches_standalone(dags_folder: Path, name: str) -> None:
    """Outputs through XCom, fan-out through dynamic task mapping: the same states, attempts and outputs."""
    write_scenario_dag(dags_folder, name)
    bag = load_dag_bag(dags_folder)
    assert bag.import_errors == {}
    states, outputs = run_dag_test_with_outputs(bag.dags[name])
    scenario = load(name)
    assert mismatches(scenario, states) == []
    assert output_mismatches(scenario, outputs) == []


def test_keep_going_dag_runs_the_independent_branch_of_the_fail_fast_scenario(dags_folder: Path) -> None:
    name = "fail_fast_independent_branch"
    (dags_folder / f"{name}.py").write_text(
        "from adapters.airflow import to_airflow_dag\n"
        "from tests.conformance import load\n\n"
        f"dag = to_airflow_dag(load({name!r}).pipeline, dag_id={name!r}, keep_going=True)\n"
    )
    executor = PipelineExecutor(load(name).pipeline, keep_going=True, reporters=[], sleep=lambda seconds: None)
    with pytest.raises(RuntimeError, match="broken on purpose"):
        executor.run()
    standalone = {task: (result.state.value, result.attempts) for task, result in executor.result.tasks.items()}

    assert run_dag_test_as_engine(load_dag_bag(dags_folder).dags[name]) == standalone == {
        "Broken": ("failed", 1),
        "NeedsBroken": ("upstream_failed", 0),
        "Independent": ("success", 1),
        "AfterIndependent": ("success", 1),
    }
