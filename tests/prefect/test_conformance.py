"""Every conformance scenario, run as a Prefect flow, ends like the standalone run.

Three views must agree per task: the scenario's EXPECTED, the standalone executor's result, and
the flow's result; Prefect's own record of the flow run (task run states and run counts, read from
its API) must say the same thing in Prefect's terms.
"""

from __future__ import annotations

from typing import Any

import pytest

from task_engine.prefect import (
    NOT_RUN_STATE_NAME,
    RESUMED_STATE_NAME,
    SKIPPED_STATE_NAME,
    UPSTREAM_FAILED_STATE_NAME,
    last_result,
    to_prefect_flow,
)
from task_engine_core import PipelineExecutor, TaskState
from tests.conformance import (
    DATA_SCENARIOS,
    RESUME_SCENARIOS,
    SCENARIOS,
    SELECTION_SCENARIOS,
    lifecycle_events,
    load,
    mismatches,
    output_mismatches,
    scenarios_for,
)

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


def check_prefect_record(
    flow_state: Any, observed: Observed, task_runs: Any, kept: Any = (), mapped: Any = frozenset()
) -> None:
    """Every task has one task run in the flow run, in the Prefect state its outcome maps to; `kept` ones were resumed.

    A `mapped` task is the roll-up of its instances and has no task run of its own: each instance
    (Poll[0], ...) is one, as with Prefect's `.map`.
    """
    observed = {task: value for task, value in observed.items() if task not in mapped}
    runs = task_runs(flow_state.state_details.flow_run_id, len(observed))
    assert sorted(runs) == sorted(observed), "every task has a Prefect task run, also one that never started"
    for task, (state, attempts) in observed.items():
        run = runs[task]
        if state in (TaskState.UPSTREAM_FAILED, TaskState.NOT_RUN):
            expected = UPSTREAM_FAILED_STATE_NAME if state is TaskState.UPSTREAM_FAILED else NOT_RUN_STATE_NAME
            assert (run.state.type.value, run.state.name, run.run_count) == ("CANCELLED", expected, 0), task
            continue
        assert run.run_count == attempts, task
        if task in kept:
            assert (run.state.type.value, run.state.name) == ("COMPLETED", RESUMED_STATE_NAME), task
            assert run.state.message.startswith("Kept from run "), run.state.message
        elif state is TaskState.SUCCESS:
            assert (run.state.type.value, run.state.name) == ("COMPLETED", "Completed"), task
        elif state is TaskState.SKIPPED:
            assert (run.state.type.value, run.state.name) == ("COMPLETED", SKIPPED_STATE_NAME), task
        else:
            assert state is TaskState.FAILED
            assert run.state.type.value == "FAILED", task


def check_scenario(name: str, max_workers: int, task_runs: Any) -> None:
    """States, attempts and outputs as standalone; the flow run's task runs say the same."""
    scenario = load(name)
    result, flow_state = run_flow(name, max_workers)
    observed = {task: (r.state, r.attempts) for task, r in result.tasks.items()}
    assert mismatches(scenario, observed) == []
    assert observed == run_standalone(name)
    assert output_mismatches(scenario, {task: r.output for task, r in result.tasks.items()}) == []
    mapped = frozenset(scenario.pipeline.validate().mapped)
    check_prefect_record(flow_state, observed, task_runs, mapped=mapped)


@pytest.mark.parametrize("name", scenarios_for("prefect"))
def test_scenario_on_one_worker(name: str, task_runs: Any) -> None:
    check_scenario(name, 1, task_runs)


@pytest.mark.parametrize("name", [n for n in scenarios_for("prefect") if load(n).parallel_safe])
def test_scenario_on_four_workers(name: str, task_runs: Any) -> None:
    # Submitted from the core's worker threads, the task runs still belong to this flow run.
    check_scenario(name, 4, task_runs)


def flow_parameters(options: dict) -> dict:
    """A scenario's RUN_OPTIONS (CLI names) as the flow's typed parameters (`from` is `from_tasks`)."""
    return {("from_tasks" if key == "from" else key): value for key, value in options.items()}


@pytest.mark.parametrize("max_workers", [1, 4])
@pytest.mark.parametrize("name", SELECTION_SCENARIOS)
def test_selection_scenario_as_flow_parameter(name: str, max_workers: int, task_runs: Any) -> None:
    scenario = load(name)
    flow = to_prefect_flow(scenario.pipeline, max_workers=max_workers, reporters=[], stats=False)
    state = flow(**flow_parameters(scenario.run_options), return_state=True)
    assert state.is_completed(), state
    result = last_result(flow)
    observed = {task: (r.state, r.attempts) for task, r in result.tasks.items()}
    assert mismatches(scenario, observed) == []
    assert {task for task, r in result.tasks.items() if r.excluded} == {"extract", "report", "audit"}
    # Left-out tasks never become Prefect task runs.
    check_prefect_record(state, observed, task_runs)


@pytest.mark.parametrize("name", RESUME_SCENARIOS)
def test_resume_scenario_as_flow_parameter(name: str, tmp_path: Any, task_runs: Any) -> None:
    scenario = load(name)
    stats = tmp_path / "stats.sqlite3"
    flow = to_prefect_flow(scenario.pipeline, max_workers=1, reporters=[], stats=stats)
    scenario.module.reset()
    first_state = flow(return_state=True)
    assert first_state.is_failed()
    first = last_result(flow)
    observed = {task: (r.state, r.attempts) for task, r in first.tasks.items()}
    assert mismatches(scenario, observed, scenario.first_expected) == []

    scenario.module.fix()
    state = flow(resume=first.run_id, return_state=True)
    assert state.is_completed(), state
    result = last_result(flow)
    observed = {task: (r.state, r.attempts) for task, r in result.tasks.items()}
    assert mismatches(scenario, observed) == []
    assert result.resumed_from == first.run_id
    assert {task: r.resumed_from for task, r in result.tasks.items() if r.resumed_from} == {
        task: first.run_id for task in scenario.module.KEPT
    }
    check_prefect_record(state, observed, task_runs, kept=scenario.module.KEPT)


def test_a_bad_task_engine_parameter_fails_the_flow_run_before_any_task(task_runs: Any) -> None:
    scenario = load("selection_from_tags")
    flow = to_prefect_flow(scenario.pipeline, max_workers=1, reporters=[], stats=False)
    state = flow(only=["Claen"], return_state=True)
    assert state.is_failed()
    assert (
        "--only 'Claen': pipeline 'selection_from_tags' has no task matching it; did you mean 'Clean'?" in state.message
    )
    assert last_result(flow) is None
    resumed = flow(resume=True, return_state=True)
    assert resumed.is_failed()
    assert "cannot resume pipeline 'selection_from_tags': statistics are off" in resumed.message


def standalone_events(name: str) -> dict:
    scenario = load(name)
    events: list[object] = []
    executor = PipelineExecutor(
        scenario.pipeline, keep_going=scenario.keep_going, reporters=[events.append], stats=False, sleep=lambda s: None
    )
    try:
        executor.run()
    except Exception:
        assert scenario.fails
    return lifecycle_events(events)


@pytest.mark.parametrize(
    "name",
    [
        n
        for n in SCENARIOS + DATA_SCENARIOS
        if load(n).parallel_safe and not getattr(load(n).module, "TIMING_DEPENDENT_EVENTS", False)
    ],
)
def test_a_flow_emits_the_lifecycle_events_of_the_standalone_run(name: str) -> None:
    scenario = load(name)
    events: list[object] = []
    flow = to_prefect_flow(
        scenario.pipeline, max_workers=2, keep_going=scenario.keep_going, reporters=[events.append], stats=False
    )
    flow(return_state=True)
    assert lifecycle_events(events) == standalone_events(name)


def test_a_resume_that_would_hand_a_task_a_kept_output_fails_the_flow_run_before_any_task(tmp_path: Any) -> None:
    from task_engine_core import Pipeline

    pipeline = Pipeline("resume_outputs")
    broken = {"load": True}

    @pipeline.register
    def extract():
        return [1, 2, 3]

    @pipeline.register(depends_on=extract)
    def load(extract):
        if broken["load"]:
            raise ConnectionError("warehouse down")
        return sum(extract)

    flow = to_prefect_flow(pipeline, max_workers=1, reporters=[], stats=tmp_path / "stats.sqlite3")
    assert flow(return_state=True).is_failed()
    first = last_result(flow)
    broken["load"] = False
    state = flow(resume=first.run_id, return_state=True)
    assert state.is_failed()
    assert (
        f"task 'load' reads the output of 'extract', which this run does not have: 'extract' was kept from run "
        f"{first.run_id} by --resume" in state.message
    )
    # Without resume the flow runs both, and the output reaches load.
    assert flow(return_state=True).is_completed()
    assert last_result(flow).tasks["load"].output == 6
