"""Every conformance scenario run through Airflow's dag.test() ends as the standalone run does."""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow_harness import (
    DATABASE,
    dag_test_as_engine,
    engine_marks,
    load_dag_bag,
    run_dag_test_as_engine,
    run_dag_test_with_outputs,
    write_scenario_dag,
)

from task_engine_core import PipelineExecutor, TaskState
from tests.conformance import RESUME_SCENARIOS, SELECTION_SCENARIOS, load, mismatches, output_mismatches, scenarios_for


def run_scenario(folder: Path, name: str) -> tuple[dict[str, tuple[str, int]], dict[str, object]]:
    write_scenario_dag(folder, name)
    bag = load_dag_bag(folder)
    assert bag.import_errors == {}
    return run_dag_test_with_outputs(bag.dags[name])


@pytest.mark.parametrize("name", scenarios_for("airflow"))
def test_scenario_on_airflow_matches_standalone(dags_folder: Path, name: str) -> None:
    """The same states and attempts; outputs through XCom, fan-out through dynamic task mapping, the same outputs."""
    scenario = load(name)
    states, outputs = run_scenario(dags_folder, name)
    # Airflow starts ready tasks in its own order (priority_weight is the scheduler's hint, dag.test()
    # picks any ready task), so start-order-dependent outcomes are compared as Airflow can honour them.
    assert mismatches(scenario, states, start_order=False) == []
    assert output_mismatches(scenario, outputs) == []


def test_keep_going_dag_runs_the_independent_branch_of_the_fail_fast_scenario(dags_folder: Path) -> None:
    name = "fail_fast_independent_branch"
    (dags_folder / f"{name}.py").write_text(
        "from task_engine.airflow import to_airflow_dag\n"
        "from tests.conformance import load\n\n"
        f"dag = to_airflow_dag(load({name!r}).pipeline, dag_id={name!r}, keep_going=True)\n"
    )
    executor = PipelineExecutor(load(name).pipeline, keep_going=True, reporters=[], sleep=lambda seconds: None)
    with pytest.raises(RuntimeError, match="broken on purpose"):
        executor.run()
    standalone = {task: (result.state.value, result.attempts) for task, result in executor.result.tasks.items()}

    assert (
        run_dag_test_as_engine(load_dag_bag(dags_folder).dags[name])
        == standalone
        == {
            "Broken": ("failed", 1),
            "NeedsBroken": ("upstream_failed", 0),
            "Independent": ("success", 1),
            "AfterIndependent": ("success", 1),
        }
    )


def as_states(observed: dict[str, tuple[str, int]]) -> dict[str, tuple[TaskState, int]]:
    return {task: (TaskState(state), attempts) for task, (state, attempts) in observed.items()}


@pytest.mark.parametrize("name", SELECTION_SCENARIOS)
def test_selection_scenario_as_dag_run_conf(dags_folder: Path, name: str) -> None:
    scenario = load(name)
    write_scenario_dag(dags_folder, name)
    dag = load_dag_bag(dags_folder).dags[name]
    observed, run_id = dag_test_as_engine(dag, {"task_engine": scenario.run_options})
    assert mismatches(scenario, as_states(observed)) == []
    left_out = {task for task, (state, _) in scenario.expected.items() if state is TaskState.NOT_RUN}
    assert {task for task, state in engine_marks(DATABASE, name, run_id).items() if state == "not_run"} == left_out


@pytest.mark.parametrize("name", RESUME_SCENARIOS)
def test_resume_scenario_as_dag_run_conf(dags_folder: Path, name: str) -> None:
    scenario = load(name)
    write_scenario_dag(dags_folder, name)
    dag = load_dag_bag(dags_folder).dags[name]
    scenario.module.reset()
    first, first_run = dag_test_as_engine(dag)
    assert mismatches(scenario, as_states(first), scenario.first_expected) == []
    scenario.module.fix()
    observed, run_id = dag_test_as_engine(dag, {"task_engine": {"resume": first_run}})
    assert mismatches(scenario, as_states(observed)) == []
    assert engine_marks(DATABASE, name, run_id, key="task_engine_resumed_from") == {
        task: first_run for task in scenario.module.KEPT
    }


def test_a_bad_selection_fails_the_tasks_with_the_core_message(dags_folder: Path) -> None:
    name = "selection_from_tags"
    write_scenario_dag(dags_folder, name)
    dag = load_dag_bag(dags_folder).dags[name]
    observed, _ = dag_test_as_engine(dag, {"task_engine": {"only": ["Claen"]}})
    assert observed["extract"] == ("failed", 1) and observed["audit"] == ("failed", 1)
    assert observed["Clean"][0] == "upstream_failed"


@pytest.mark.parametrize("resume", [True, "no-such-dag-run"])
def test_a_resume_airflow_cannot_honour_fails_the_tasks(dags_folder: Path, resume: object) -> None:
    name = "resume_after_failure"
    write_scenario_dag(dags_folder, name)
    dag = load_dag_bag(dags_folder).dags[name]
    observed, _ = dag_test_as_engine(dag, {"task_engine": {"resume": resume}})
    assert observed["optional"] == ("failed", 1)
    assert {state for task, (state, _) in observed.items() if task != "optional"} == {"upstream_failed"}
