"""Every conformance scenario, run as a Prefect flow, ends like the standalone run.

Three views must agree per task: the scenario's EXPECTED, the standalone executor's result, and
the flow's result; Prefect's own record of the flow run (task run states and run counts, read from
its API) must say the same thing in Prefect's terms.
"""

from __future__ import annotations

from typing import Any

import pytest

from adapters.prefect import SKIPPED_STATE_NAME, last_result, to_prefect_flow
from task_engine_core import PipelineExecutor, TaskState
from tests.conformance import DATA_SCENARIOS, SCENARIOS, load, mismatches, output_mismatches

Observed = dict[str, tuple[TaskState, int]]


def run_standalone(name: str) -> Observed:
    scenario = load(name)
    executor = PipelineExecutor(
        scenario.pipeline, workers=1, keep_going=scenario.keep_going, reporters=[], sleep=lambda s: None
    )
    try:
        executor.run()
    except Exception:
        assert scenario.fails
    assert executor.result is not None
    return {task: (r.state, r.attempts) for task, r in executor.result.tasks.items()}


def run_flow(name: str, max_workers: int) -> tuple[Any, Any]:
    """Run scenario `name` as a Prefect flow; return the engine's RunResult and the flow's state."""
    scenario = load(name)
    flow = to_prefect_flow(scenario.pipeline, max_workers=max_workers, keep_going=scenario.keep_going, reporters=[])
    state = flow(return_state=True)
    assert state.is_failed() is scenario.fails, state
    result = last_result(flow)
    assert result is not None
    return result, state


def run_as_flow(name: str, max_workers: int) -> tuple[Observed, Any]:
    result, state = run_flow(name, max_workers)
    return {task: (r.state, r.attempts) for task, r in result.tasks.items()}, state


def check_prefect_record(flow_state: Any, observed: Observed, task_runs: Any, mapped: frozenset[str] = frozenset()) -> None:
    # A mapped task is the roll-up of its instances; each instance (Poll[0], ...) is a Prefect task run.
    started = {task: value for task, value in observed.items() if value[1] > 0 and task not in mapped}
    runs = task_runs(flow_state.state_details.flow_run_id, len(started))
    assert sorted(runs) == sorted(started), "only started tasks become Prefect task runs"
    for task, (state, attempts) in started.items():
        run = runs[task]
        assert run.run_count == attempts, task
        if state is TaskState.SUCCESS:
            assert (run.state.type.value, run.state.name) == ("COMPLETED", "Completed"), task
        elif state is TaskState.SKIPPED:
            assert (run.state.type.value, run.state.name) == ("COMPLETED", SKIPPED_STATE_NAME), task
        else:
            assert state is TaskState.FAILED
            assert run.state.type.value == "FAILED", task


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_on_one_worker(name: str, task_runs: Any) -> None:
    observed, flow_state = run_as_flow(name, max_workers=1)
    assert mismatches(load(name), observed) == []
    assert observed == run_standalone(name)
    check_prefect_record(flow_state, observed, task_runs)


@pytest.mark.parametrize("name", [n for n in SCENARIOS if load(n).parallel_safe])
def test_scenario_on_four_workers(name: str, task_runs: Any) -> None:
    observed, flow_state = run_as_flow(name, max_workers=4)
    assert mismatches(load(name), observed) == []
    assert observed == run_standalone(name)
    # Submitted from the core's worker threads, the task runs still belong to this flow run.
    check_prefect_record(flow_state, observed, task_runs)


@pytest.mark.parametrize("workers", [1, 4])
@pytest.mark.parametrize("name", DATA_SCENARIOS)
def test_data_scenario(name: str, workers: int, task_runs: Any) -> None:
    """Outputs and fan-out on Prefect: the same states, attempts and outputs; one task run per instance."""
    scenario = load(name)
    result, state = run_flow(name, workers)
    observed = {task: (r.state, r.attempts) for task, r in result.tasks.items()}
    assert mismatches(scenario, observed) == []
    assert output_mismatches(scenario, {task: r.output for task, r in result.tasks.items()}) == []
    mapped = frozenset(scenario.pipeline.validate().mapped)
    check_prefect_record(state, observed, task_runs, mapped)
