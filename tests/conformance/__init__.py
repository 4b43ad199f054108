"""Conformance scenarios: pipelines every backend must run to the same per-task states and attempts.

Each scenario is a module in `tests/conformance/scenarios/` that defines

- `pipeline`: a `Pipeline` with its tasks registered,
- `EXPECTED`: task name -> (TaskState, attempts) after a run,
- `KEEP_GOING`: whether the run uses keep-going instead of fail-fast,

and optionally `OUTPUTS` (task name -> the output every backend must give it) and
`PARALLEL_SAFE = False` when the expected states assume tasks start one at a time
(fail-fast with an independent branch: with several workers the branch may already be running).
Backoff delays in scenarios are 0 s so every backend runs them quickly. A backend adapter runs a
scenario its own way, collects {task: (state, attempts)}, and compares with `mismatches()`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from task_engine_core import Pipeline, TaskState

SCENARIOS: tuple[str, ...] = (
    "seed_tasks_run1",
    "seed_tasks_run2",
    "seed_jobs",
    "retries_exhausted",
    "retry_handler_refuses",
    "skip_outer",
    "skip_inner",
    "diamond",
    "fail_fast_independent_branch",
    "keep_going",
    "cross_module_jobs",
)

#: Scenarios that pass data between tasks and fan out at run time (`map_over=`).
DATA_SCENARIOS: tuple[str, ...] = (
    "outputs_diamond",
    "fan_out_empty",
    "fan_out_one",
    "fan_out_fifty",
    "fan_out_rate_limited",
    "fan_out_keep_going",
)

Observed = dict[str, tuple[TaskState, int]]


@dataclass(frozen=True)
class Scenario:
    """One conformance scenario, loaded."""

    name: str
    module: ModuleType
    pipeline: Pipeline
    expected: Observed
    keep_going: bool
    parallel_safe: bool
    outputs: dict[str, Any] | None = None

    @property
    def module_name(self) -> str:
        """The importable module that defines the scenario's pipeline."""
        return self.module.__name__

    @property
    def fails(self) -> bool:
        """True when some task is expected to end FAILED (the run raises)."""
        return any(state is TaskState.FAILED for state, _ in self.expected.values())


def load(name: str) -> Scenario:
    """Import scenario `name` and return it."""
    module = importlib.import_module(f"{__name__}.scenarios.{name}")
    return Scenario(
        name=name,
        module=module,
        pipeline=module.pipeline,
        expected=dict(module.EXPECTED),
        keep_going=getattr(module, "KEEP_GOING", False),
        parallel_safe=getattr(module, "PARALLEL_SAFE", True),
        outputs=getattr(module, "OUTPUTS", None),
    )


def mismatches(scenario: Scenario, observed: Observed) -> list[str]:
    """Human-readable differences between what a backend observed and what the scenario expects."""
    problems = []
    for task, (state, attempts) in scenario.expected.items():
        if task not in observed:
            problems.append(f"{scenario.name}: task {task!r} missing from the backend's result")
            continue
        got_state, got_attempts = observed[task]
        if (TaskState(got_state), got_attempts) != (state, attempts):
            problems.append(
                f"{scenario.name}: task {task!r} ended {TaskState(got_state).value} after {got_attempts} "
                f"attempt(s); expected {state.value} after {attempts}"
            )
    for task in observed.keys() - scenario.expected.keys():
        problems.append(f"{scenario.name}: unexpected task {task!r}")
    return problems


def output_mismatches(scenario: Scenario, observed: dict[str, Any]) -> list[str]:
    """Differences between the outputs a backend observed (task -> output) and the scenario's OUTPUTS."""
    if scenario.outputs is None:
        return []
    problems = []
    for task, output in scenario.outputs.items():
        got = observed.get(task)
        if got != output:
            problems.append(f"{scenario.name}: task {task!r} output {got!r}; expected {output!r}")
    return problems
