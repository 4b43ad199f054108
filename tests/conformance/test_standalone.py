"""The standalone backend runs every conformance scenario to its expected states and attempts."""

from __future__ import annotations

import pytest

from task_engine_core import PipelineExecutor, TaskState
from task_engine_core.backend import parse_backend_options

from . import (
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


def run_standalone(name: str, workers: int) -> dict:
    scenario = load(name)
    executor = PipelineExecutor(
        scenario.pipeline, workers=workers, keep_going=scenario.keep_going, sleep=lambda s: None
    )
    if scenario.fails:
        with pytest.raises(Exception):
            executor.run()
    else:
        executor.run()
    assert executor.result is not None
    return {name: (r.state, r.attempts, r.output) for name, r in executor.result.tasks.items()}


def check(name: str, workers: int) -> None:
    observed = run_standalone(name, workers)
    scenario = load(name)
    assert mismatches(scenario, {task: (state, attempts) for task, (state, attempts, _) in observed.items()}) == []
    assert output_mismatches(scenario, {task: output for task, (_, _, output) in observed.items()}) == []


@pytest.mark.parametrize("name", scenarios_for("sequential"))
def test_scenario_sequential(name):
    check(name, workers=1)


@pytest.mark.parametrize("name", scenarios_for("threads"))
def test_scenario_on_threads(name):
    check(name, workers=4)


def test_output_mismatches_reports_a_wrong_output():
    scenario = load("fan_out_one")
    observed = dict(scenario.outputs)
    observed["Poll"] = ["polled something else"]
    assert output_mismatches(scenario, observed) == [
        "fan_out_one: task 'Poll' output ['polled something else']; expected ['polled flaky']"
    ]


def test_mismatches_reports_a_wrong_state():
    scenario = load("diamond")
    observed = dict(scenario.expected)
    observed["left"] = ("failed", 1)
    assert mismatches(scenario, observed) == [
        "diamond: task 'left' ended failed after 1 attempt(s); expected success after 1"
    ]


@pytest.mark.parametrize("workers", [1, 4])
@pytest.mark.parametrize("name", SELECTION_SCENARIOS)
def test_selection_scenario(name, workers):
    scenario = load(name)
    select, resume = parse_backend_options(scenario.run_options, "RUN_OPTIONS")
    executor = PipelineExecutor(
        scenario.pipeline, workers=workers, select=select, stats=False, reporters=[], sleep=lambda s: None
    )
    result = executor.run()
    assert mismatches(scenario, {n: (r.state, r.attempts) for n, r in result.tasks.items()}) == []
    assert {n for n, r in result.tasks.items() if r.excluded} == {
        n for n, (state, _) in scenario.expected.items() if state.value == "not_run"
    }


@pytest.mark.parametrize("workers", [1, 4])
@pytest.mark.parametrize("name", RESUME_SCENARIOS)
def test_resume_scenario(name, workers, tmp_path):
    scenario = load(name)
    stats = tmp_path / "stats.sqlite3"
    scenario.module.reset()
    first = PipelineExecutor(scenario.pipeline, workers=workers, stats=stats, reporters=[], sleep=lambda s: None)
    with pytest.raises(Exception):
        first.run()
    observed = {n: (r.state, r.attempts) for n, r in first.result.tasks.items()}
    assert mismatches(scenario, observed, scenario.first_expected) == []
    scenario.module.fix()
    select, resume = parse_backend_options({"resume": first.result.run_id}, "resume")
    second = PipelineExecutor(
        scenario.pipeline, workers=workers, stats=stats, resume=resume, reporters=[], sleep=lambda s: None
    )
    result = second.run()
    assert mismatches(scenario, {n: (r.state, r.attempts) for n, r in result.tasks.items()}) == []
    assert {n: r.resumed_from for n, r in result.tasks.items() if r.resumed_from} == {
        n: first.result.run_id for n in scenario.module.KEPT
    }
    assert result.resumed_from == first.result.run_id


def test_without_start_order_only_the_declared_alternatives_pass():
    scenario = load("fail_fast_independent_branch")
    observed = dict(scenario.expected, Independent=(TaskState.SUCCESS, 1))
    assert mismatches(scenario, observed, start_order=False) == []
    assert mismatches(scenario, observed) == [
        "fail_fast_independent_branch: task 'Independent' ended success after 1 attempt(s); expected not_run after 0"
    ]
    observed["Broken"] = (TaskState.SUCCESS, 1)
    assert len(mismatches(scenario, observed, start_order=False)) == 1


def events_of(name: str, workers: int) -> dict:
    scenario = load(name)
    events: list[object] = []
    executor = PipelineExecutor(
        scenario.pipeline,
        workers=workers,
        keep_going=scenario.keep_going,
        reporters=[events.append],
        stats=False,
        sleep=lambda s: None,
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
def test_one_and_four_workers_emit_the_same_lifecycle_events_per_task(name):
    assert events_of(name, 4) == events_of(name, 1)


def test_the_lifecycle_events_of_a_retried_task():
    events = events_of("seed_tasks_run1", 1)
    assert events["Task1"] == [
        ("started",),
        ("attempt failed", 1, "Exception"),
        ("retry scheduled", 2, 0.0),
        ("wait started", "retry"),
        ("wait finished", "retry"),
        ("finished", "success", 2, "", ("retry",)),
    ]
