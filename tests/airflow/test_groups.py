"""Task groups on Airflow: a connected part of the pipeline runs as one Airflow task through the standalone executor."""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow_harness import (
    DATABASE,
    load_dag_bag,
    run_grouped_dag_test_as_engine,
    write_scenario_dag,
    xcom_values,
)

from task_engine.airflow import GROUP_STATES_XCOM_KEY
from task_engine_core._groups import GroupError
from tests.conformance import connected_groups, load, mismatches, scenarios_for


@pytest.mark.parametrize("name", scenarios_for("airflow"))
def test_scenario_with_every_task_in_a_group_matches_standalone(dags_folder: Path, name: str) -> None:
    scenario = load(name)
    write_scenario_dag(dags_folder, name, grouped=True)
    bag = load_dag_bag(dags_folder)
    assert bag.import_errors == {}
    dag = bag.dags[name]
    groups = connected_groups(scenario)
    assert sorted(dag.task_ids) == sorted(groups)  # one Airflow task per group, none per engine task
    assert mismatches(scenario, run_grouped_dag_test_as_engine(dag, groups), start_order=False) == []


def test_a_group_ends_in_its_worst_inner_state_and_shows_every_inner_state(dags_folder: Path) -> None:
    name = "seed_tasks_run1"  # Task1 retries once, AlwaysFailsTask is skipped after 3 attempts
    write_scenario_dag(dags_folder, name, grouped=True)
    dag = load_dag_bag(dags_folder).dags[name]
    dag_run = dag.test()
    # Skipped is the worst inner state; the retries happened inside one Airflow try.
    assert {ti.task_id: (str(ti.state), ti.try_number) for ti in dag_run.get_task_instances()} == {
        "part1": ("skipped", 1)
    }
    inner = xcom_values(DATABASE, name, dag_run.run_id, GROUP_STATES_XCOM_KEY)["part1"]
    assert {task: (value["state"], value["attempts"]) for task, value in inner.items()} == {
        "BaseTask": ("success", 1),
        "Task1": ("success", 2),
        "AlwaysFailsTask": ("skipped", 3),
        "Task2": ("success", 1),
    }
    assert inner["AlwaysFailsTask"]["reason"]


def test_a_group_that_is_not_connected_is_refused_when_the_dag_is_built() -> None:
    from task_engine.airflow import to_airflow_dag

    pipeline = load("keep_going").pipeline
    with pytest.raises(
        GroupError, match=r"task group 'all' is not connected: \{'Broken', 'NeedsBroken', 'TwoBelowBroken'\}"
    ):
        to_airflow_dag(pipeline, groups={"all": list(pipeline.task_names)})
