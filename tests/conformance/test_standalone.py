"""The standalone backend runs every conformance scenario to its expected states and attempts."""

from __future__ import annotations

import pytest

from task_engine_core import PipelineExecutor, TaskState

from . import SCENARIOS, load, mismatches


def run_standalone(name: str, workers: int) -> dict:
    scenario = load(name)
    executor = PipelineExecutor(scenario.pipeline, workers=workers, keep_going=scenario.keep_going, sleep=lambda s: None)
    if scenario.fails:
        with pytest.raises(Exception):
            executor.run()
    else:
        executor.run()
    assert executor.result is not None
    return {name: (r.state, r.attempts) for name, r in executor.result.tasks.items()}


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_sequential(name):
    assert mismatches(load(name), run_standalone(name, workers=1)) == []


@pytest.mark.parametrize("name", [n for n in SCENARIOS if load(n).parallel_safe])
def test_scenario_on_threads(name):
    assert mismatches(load(name), run_standalone(name, workers=4)) == []


def test_mismatches_reports_a_wrong_state():
    scenario = load("diamond")
    observed = dict(scenario.expected)
    observed["left"] = ("failed", 1)
    assert mismatches(scenario, observed) == ["diamond: task 'left' ended failed after 1 attempt(s); expected success after 1"]


def test_without_start_order_only_the_declared_alternatives_pass():
    scenario = load("fail_fast_independent_branch")
    observed = dict(scenario.expected, Independent=(TaskState.SUCCESS, 1))
    assert mismatches(scenario, observed, start_order=False) == []
    assert mismatches(scenario, observed) == [
        "fail_fast_independent_branch: task 'Independent' ended success after 1 attempt(s); expected not_run after 0"
    ]
    observed["Broken"] = (TaskState.SUCCESS, 1)
    assert len(mismatches(scenario, observed, start_order=False)) == 1
