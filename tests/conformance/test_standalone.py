"""The standalone backend runs every conformance scenario to its expected states and attempts."""

from __future__ import annotations

import pytest

from task_engine_core import PipelineExecutor

from . import DATA_SCENARIOS, SCENARIOS, load, mismatches, output_mismatches

ALL = SCENARIOS + DATA_SCENARIOS


def run_standalone(name: str, workers: int) -> dict:
    scenario = load(name)
    executor = PipelineExecutor(scenario.pipeline, workers=workers, keep_going=scenario.keep_going, sleep=lambda s: None)
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


@pytest.mark.parametrize("name", ALL)
def test_scenario_sequential(name):
    check(name, workers=1)


@pytest.mark.parametrize("name", [n for n in ALL if load(n).parallel_safe])
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
    assert mismatches(scenario, observed) == ["diamond: task 'left' ended failed after 1 attempt(s); expected success after 1"]
