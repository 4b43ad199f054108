"""Task groups on Prefect: a connected part of the pipeline runs as one Prefect task run through the standalone executor."""

from __future__ import annotations

from typing import Any

import pytest

from task_engine.prefect import SKIPPED_STATE_NAME, last_result, to_prefect_flow
from task_engine_core import PipelineExecutor, TaskState
from task_engine_core._groups import GroupError
from tests.conformance import connected_groups, load, mismatches, scenarios_for


def run_grouped(name: str, max_workers: int = 1) -> tuple[dict[str, tuple[TaskState, int]], Any, dict[str, list[str]]]:
    scenario = load(name)
    groups = connected_groups(scenario)
    flow = to_prefect_flow(
        scenario.pipeline, max_workers=max_workers, keep_going=scenario.keep_going, reporters=[], groups=groups
    )
    state = flow(return_state=True)
    assert state.is_failed() is scenario.fails, state
    result = last_result(flow)
    assert result is not None
    return {task: (r.state, r.attempts) for task, r in result.tasks.items()}, state, groups


@pytest.mark.parametrize("name", scenarios_for("prefect"))
def test_scenario_with_every_task_in_a_group_matches_standalone(name: str, task_runs: Any) -> None:
    observed, flow_state, groups = run_grouped(name)
    assert mismatches(load(name), observed) == []
    executor = PipelineExecutor(
        load(name).pipeline, keep_going=load(name).keep_going, reporters=[], sleep=lambda s: None, stats=False
    )
    try:
        executor.run()
    except Exception:
        pass
    assert observed == {task: (r.state, r.attempts) for task, r in executor.result.tasks.items()}
    # Prefect sees one task run per group that started, never one per engine task.
    started = [group for group, members in groups.items() if any(observed[task][1] > 0 for task in members)]
    runs = task_runs(flow_state.state_details.flow_run_id, len(started))
    assert sorted(runs) == sorted(started)
    assert all(run.run_count == 1 for run in runs.values())  # retries happen inside the group's one try


def test_a_group_ends_in_its_worst_inner_state_with_an_artifact_of_the_inner_states(task_runs: Any) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterTaskRunId

    observed, flow_state, _ = run_grouped("seed_tasks_run1")
    assert observed["AlwaysFailsTask"] == (TaskState.SKIPPED, 3)
    [(name, run)] = task_runs(flow_state.state_details.flow_run_id, 1).items()
    assert (name, run.state.type.value, run.state.name) == ("part1", "COMPLETED", SKIPPED_STATE_NAME)
    with get_client(sync_client=True) as client:
        [artifact] = client.read_artifacts(
            artifact_filter=ArtifactFilter(task_run_id=ArtifactFilterTaskRunId(any_=[run.id]))
        )
    rows = artifact.data if isinstance(artifact.data, list) else __import__("json").loads(artifact.data)
    assert [(row["task"], row["state"], row["attempts"]) for row in rows] == [
        ("BaseTask", "success", 1),
        ("Task1", "success", 2),
        ("AlwaysFailsTask", "skipped", 3),
        ("Task2", "success", 1),
    ]


def test_a_failed_group_fails_the_flow_with_the_tasks_own_error() -> None:
    scenario = load("retries_exhausted")
    flow = to_prefect_flow(scenario.pipeline, reporters=[], groups={"all": ["Flaky", "after_flaky"]})
    with pytest.raises(RuntimeError, match="still broken"):
        flow()
    assert last_result(flow).tasks["Flaky"].attempts == 3


def test_a_group_that_would_close_a_cycle_is_refused_when_the_flow_is_built() -> None:
    pipeline = load("diamond").pipeline
    with pytest.raises(GroupError, match=r"task group 'ends' would create a dependency cycle"):
        to_prefect_flow(pipeline, groups={"ends": ["top", "left", "bottom"]})


def test_data_that_would_cross_a_task_group_boundary_is_refused_when_the_flow_is_built() -> None:
    from task_engine_core.errors import InputUnavailableError

    pipeline = load("fan_out_rate_limited").pipeline  # list_runs -> get_run (mapped over it) -> summary
    # This used to fail with "parameter 'get_run' names no upstream task; its upstream tasks are: 'both'".
    with pytest.raises(InputUnavailableError) as read_out:
        to_prefect_flow(pipeline, groups={"both": ["list_runs", "get_run"]})
    assert str(read_out.value) == (
        "task 'summary' reads the output of 'get_run', which this run does not have: 'get_run' runs inside the "
        "Prefect task group 'both', whose outputs stay in it\nput 'summary' in that group too, or 'get_run' in none"
    )
    with pytest.raises(
        GroupError, match="task 'get_run' maps over the output of 'list_runs', but only 'get_run' is in"
    ):
        to_prefect_flow(pipeline, groups={"polling": ["get_run"]})
    to_prefect_flow(pipeline, groups={"all": ["list_runs", "get_run", "summary"]})
