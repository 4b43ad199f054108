"""Conformance scenarios: pipelines every backend must run to the same per-task states and attempts.

Each scenario is a module in `tests/conformance/scenarios/` that defines

- `pipeline`: a `Pipeline` with its tasks registered,
- `EXPECTED`: task name -> (TaskState, attempts) after a run,
- `KEEP_GOING`: whether the run uses keep-going instead of fail-fast,

and optionally `PARALLEL_SAFE = False` when the expected states assume tasks start one at a time
(fail-fast with an independent branch: with several workers the branch may already be running),
with `WITHOUT_START_ORDER`: task -> the other outcome it may have on a backend that cannot honour
the core's start order (Airflow), compared with `mismatches(..., start_order=False)`.
Backoff delays in scenarios are 0 s so every backend runs them quickly. A backend adapter runs a
scenario its own way, collects {task: (state, attempts)}, and compares with `mismatches()`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

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
    without_start_order: Observed

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
        without_start_order=dict(getattr(module, "WITHOUT_START_ORDER", {})),
    )


def mismatches(scenario: Scenario, observed: Observed, start_order: bool = True) -> list[str]:
    """Human-readable differences between what a backend observed and what the scenario expects.

    `start_order=False`: the backend starts ready tasks in its own order, so a task may also end
    as the scenario's WITHOUT_START_ORDER says.
    """
    problems = []
    for task, (state, attempts) in scenario.expected.items():
        if task not in observed:
            problems.append(f"{scenario.name}: task {task!r} missing from the backend's result")
            continue
        got_state, got_attempts = observed[task]
        got = (TaskState(got_state), got_attempts)
        if not start_order and got == scenario.without_start_order.get(task):
            continue
        if got != (state, attempts):
            problems.append(
                f"{scenario.name}: task {task!r} ended {TaskState(got_state).value} after {got_attempts} "
                f"attempt(s); expected {state.value} after {attempts}"
            )
    for task in observed.keys() - scenario.expected.keys():
        problems.append(f"{scenario.name}: unexpected task {task!r}")
    return problems
